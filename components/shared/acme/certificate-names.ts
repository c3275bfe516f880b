// Which identifiers a certificate order may carry (RFC 8555 7.1.4: type "dns").

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Why `name` cannot be a certificate name, or undefined when it can. */
export function certificateNameProblem(name: string): string | undefined {
  if (name !== name.trim() || name.length === 0) return "is empty or has surrounding spaces";
  if (name !== name.toLowerCase()) return "must be lowercase";
  if (name.endsWith(".")) return "must not end with a dot";
  if (name.length > 253) return "is longer than 253 characters";
  if (/^[0-9.]+$/.test(name) || name.includes(":")) return "is an IP address; only DNS names are supported";
  const labels = name.split(".");
  if (labels.length < 2) return "must have at least two labels (e.g. mail.example.org)";
  for (const [i, label] of labels.entries()) {
    if (i === 0 && label === "*") continue;
    if (!LABEL.test(label)) return `has an invalid label "${label}" (letters, digits and inner hyphens, 1-63 characters)`;
  }
  return undefined;
}

/** Validate an order's names; errors name the index and what is allowed. */
export function checkCertificateNames(names: readonly string[], where = "names"): void {
  if (!Array.isArray(names) || names.length === 0) throw new Error(`${where}: at least one DNS name is required`);
  if (names.length > 100) throw new Error(`${where}: at most 100 names per certificate (Let's Encrypt's limit)`);
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (typeof n !== "string") throw new Error(`${where}[${i}]: must be a string`);
    const problem = certificateNameProblem(n);
    if (problem) throw new Error(`${where}[${i}]: "${n}" ${problem}`);
    if (seen.has(n)) throw new Error(`${where}[${i}]: "${n}" appears twice`);
    seen.add(n);
  });
}

/** Names compared as sets (order and case do not matter for a certificate). */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a.map((n) => n.toLowerCase()))].sort();
  const y = [...new Set(b.map((n) => n.toLowerCase()))].sort();
  return x.length === y.length && x.every((n, i) => n === y[i]);
}
