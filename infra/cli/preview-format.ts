// Renders a PreviewReport the way `pulumi preview --diff` reads (steps with symbols and reasons, a
// summary), plus the run order and DNS record changes; and as JSON. Secrets print as [secret],
// unknown values as [unknown].
import { Secret, Unknown, type PropertyMap, type Step } from "../offline/model";
import { parsePropertyPath } from "../offline/property-path";
import { EncryptedSecret, isAsset, isObjectValue } from "../offline/property-values";
import { shortType } from "./plan";
import type { PreviewReport } from "./preview";

/** The engine's step symbols (pkg/backend/display: OpCreate "+", OpUpdate "~", OpCreateReplacement "++", OpDeleteReplaced "--", OpDelete "-"). */
const SYMBOL: Record<Step["op"], string> = {
  same: " ",
  create: "+",
  update: "~",
  "create-replacement": "++",
  "delete-replaced": "--",
  "delete-replaced-old": "--",
  delete: "-",
  import: "=",
  retain: "-",
  read: ">",
};

function label(step: Step): string {
  switch (step.op) {
    case "create-replacement":
      return /delete-before-replace|re-created/.test(step.reason)
        ? "create replacement (delete-first)"
        : "create replacement (create-first)";
    case "delete-replaced":
      return "delete before replacement";
    case "delete-replaced-old":
      return "delete replaced (old one)";
    case "retain":
      return "delete from state (retainOnDelete)";
    default:
      return step.op;
  }
}

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** One value for people: strings quoted, secrets and unknowns marked, long values cut. */
export function displayPropertyValue(value: unknown, key?: string): string {
  if (key === "__provider" && typeof value === "string") return `[serialized provider, ${value.length} bytes]`;
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Secret || v instanceof EncryptedSecret) return "[secret]";
    if (v === Unknown) return "[unknown]";
    if (isAsset(v))
      return `[asset ${typeof v.path === "string" ? v.path : typeof v.text === "string" ? `text, ${v.text.length} chars` : String(v.uri ?? "")}]`;
    return v;
  });
  const shown =
    value instanceof Secret && value.value === Unknown
      ? "[secret, unknown]"
      : value instanceof Secret || value instanceof EncryptedSecret
        ? "[secret]"
        : value === Unknown
          ? "[unknown]"
          : (text ?? "undefined");
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}

/**
 * An old and a new value for people. Two long texts that differ only past the cut of
 * displayPropertyValue (a digest at the end of a command line) are both shown from a little before
 * where they first differ, so the change is visible.
 */
export function displayPropertyChange(before: unknown, after: unknown, key?: string): [string, string] {
  const shown: [string, string] = [displayPropertyValue(before, key), displayPropertyValue(after, key)];
  if (typeof before !== "string" || typeof after !== "string" || key === "__provider" || shown[0] !== shown[1]) return shown;
  const [a, b] = [JSON.stringify(before), JSON.stringify(after)];
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  const from = Math.max(0, at - 40);
  const cut = (t: string) => `...${t.slice(from, from + 114)}${t.length > from + 114 ? "..." : ""}`;
  return [cut(a), cut(b)];
}

/** The value at a property path (`triggers[1]`, `data.flags`); a secret along the way hides it. */
function valueAt(map: PropertyMap | undefined, pathText: string): unknown {
  if (!map) return undefined;
  let path;
  try {
    path = parsePropertyPath(pathText);
  } catch {
    return map[pathText];
  }
  let v: unknown = map;
  for (const element of path) {
    if (v instanceof Secret) return v;
    if (Array.isArray(v) && typeof element === "number") v = v[element];
    else if (isObjectValue(v) && typeof element === "string") v = v[element];
    else return undefined;
  }
  return v;
}

function diffLines(step: Step): string[] {
  if (step.op === "create" || step.op === "import") {
    return Object.entries(step.newInputs ?? {}).map(([k, v]) => `        + ${k}: ${displayPropertyValue(v, k)}`);
  }
  if (step.op !== "update" && step.op !== "create-replacement") return [];
  const paths = step.detailedDiff ? Object.keys(step.detailedDiff) : step.changedKeys;
  return paths.sort().map((p) => {
    const d = step.detailedDiff?.[p];
    const kind = d?.kind === "add" ? "+" : d?.kind === "delete" ? "-" : "~";
    const replace = d?.replace || step.replaceKeys.includes(p) ? " (forces replacement)" : "";
    const key = parsePropertyPathSafe(p);
    const [before, after] = displayPropertyChange(valueAt(step.oldInputs, p), valueAt(step.newInputs, p), key);
    return `        ${kind} ${p}: ${before} => ${after}${replace}`;
  });
}

function parsePropertyPathSafe(p: string): string | undefined {
  try {
    const first = parsePropertyPath(p)[0];
    return typeof first === "string" ? first : undefined;
  } catch {
    return undefined;
  }
}

export function formatPreview(report: PreviewReport, options: { diff: boolean }): string {
  const out: string[] = [];
  const against = report.stateSource ? `the state in ${report.stateSource} (${report.resourcesBefore} resources)` : "an empty stack";
  out.push(`Previewing stack ${report.stack} against ${against}`);
  for (const w of report.warnings) out.push(`warning: ${w}`);
  out.push("");

  const changes = report.steps.filter((s) => s.op !== "same");
  if (changes.length > 0) {
    out.push("Steps, in the order the engine runs them (the real engine runs steps that do not depend on each other in parallel):");
    let inDeletes = false;
    changes.forEach((step, i) => {
      if (step.wave !== undefined && !inDeletes) {
        inDeletes = true;
        out.push("  after the program finished, deletes, dependents first:");
      }
      const wave = step.wave !== undefined ? `  [wave ${step.wave + 1}]` : "";
      out.push(
        `  ${String(i + 1).padStart(3)}. ${SYMBOL[step.op].padEnd(2)} ${label(step)}  ${shortType(step.type)}  ${nameOf(step.urn)}${wave}`,
      );
      if (step.op !== "create") out.push(`        ${step.reason}`);
      if (options.diff) out.push(...diffLines(step));
    });
    out.push("");
  }

  if (report.dns.length > 0) {
    out.push("DNS records:");
    for (const d of report.dns) {
      const symbol = { create: "+", update: "~", replace: "+-", delete: "-" }[d.op];
      const data = d.op === "create" ? d.new : d.op === "delete" ? d.old : `${d.old} -> ${d.new}`;
      out.push(`  ${symbol.padEnd(2)} ${d.name}  ${d.type}  ${data}${d.op === "replace" ? "  (replaced)" : ""}`);
    }
    out.push("");
  }

  for (const d of report.diagnostics) out.push(`${d.severity}: ${nameOf(d.urn) || report.stack}: ${d.message}`);
  for (const l of report.logs) out.push(`info: ${nameOf(l.urn)}: ${l.message}`);
  if (report.diagnostics.length || report.logs.length) out.push("");

  const c = report.counts;
  if (changes.length === 0 && !report.failed) {
    out.push(`no changes: ${c.same} resources unchanged`);
  } else {
    out.push("Resources:");
    if (c.create) out.push(`    + ${c.create} to create`);
    if (c.update) out.push(`    ~ ${c.update} to update`);
    if (c.replace) out.push(`    +-${c.replace} to replace`);
    if (c.delete) out.push(`    - ${c.delete} to delete`);
    out.push(`      ${c.same} unchanged`);
  }
  if (report.failed) out.push("the preview failed: the errors above stop `pulumi up` too");
  return `${out.join("\n")}\n`;
}

export function formatPreviewJson(report: PreviewReport): string {
  const steps = report.steps.map((s, i) => ({ order: i + 1, ...s, name: nameOf(s.urn) }));
  return `${JSON.stringify(
    { ...report, steps },
    (k, v: unknown) => {
      if (v instanceof Secret || v instanceof EncryptedSecret) return "[secret]";
      if (v === Unknown) return "[unknown]";
      if (k === "__provider" && typeof v === "string") return `[serialized provider, ${v.length} bytes]`;
      return v;
    },
    2,
  )}\n`;
}
