// SPF (RFC 7208) for `mailstack check`: the record's syntax (section 12 ABNF), its DNS-lookup
// cost, and whether it authorizes the mail host's addresses, evaluated by mailauth's SPF
// implementation against the same resolver as every other check.
import { isIP } from "node:net";
import { fail, pass, warn, type CheckRow } from "./check-result";
import { lookupFailure, type DnsAnswer } from "./check-dns";

// mailauth's SPF evaluator on its own (the package has no exports map; index.d.ts omits it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { spf: mailauthSpf } = require("mailauth/lib/spf") as {
  spf: (opts: Record<string, unknown>) => Promise<{ status?: { result?: string; comment?: string } }>;
};

/** RFC 7208 4.6.4: at most 10 terms that cause DNS lookups. */
export const SPF_LOOKUP_LIMIT = 10;

export interface SpfTerm {
  qualifier: "+" | "-" | "~" | "?";
  /** mechanism name (lowercase) or modifier name */
  name: string;
  value?: string;
  modifier: boolean;
}

export interface ParsedSpf {
  terms: SpfTerm[];
  /** terms that count against the lookup limit, at this level (includes are not followed) */
  lookups: number;
  problems: string[];
  warnings: string[];
}

const MECHANISMS = ["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"];
const LOOKUP_TERMS = ["include", "a", "mx", "ptr", "exists", "redirect"];

/** Records that are SPF records: "v=spf1" alone or followed by a space (RFC 7208 4.5). */
export function spfRecords(txt: string[]): string[] {
  return txt.filter((t) => /^v=spf1( |$)/i.test(t));
}

export function parseSpf(record: string): ParsedSpf {
  const out: ParsedSpf = { terms: [], lookups: 0, problems: [], warnings: [] };
  const [version, ...rest] = record.split(" ").filter((t) => t !== "");
  if (version.toLowerCase() !== "v=spf1") out.problems.push(`does not start with v=spf1`);
  const seenModifiers = new Set<string>();
  for (const text of rest) {
    const modifier = /^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$/.exec(text);
    if (modifier) {
      const name = modifier[1].toLowerCase();
      // RFC 7208 6: redirect and exp each at most once.
      if ((name === "redirect" || name === "exp") && seenModifiers.has(name)) out.problems.push(`${name}= appears twice (RFC 7208 6)`);
      seenModifiers.add(name);
      if (modifier[2] === "" && (name === "redirect" || name === "exp")) out.problems.push(`${name}= has no domain`);
      out.terms.push({ qualifier: "+", name, value: modifier[2], modifier: true });
      if (name === "redirect") out.lookups++;
      continue;
    }
    const m = /^([+\-~?]?)([A-Za-z0-9]+)(?:([:/])(.*))?$/.exec(text);
    const name = m?.[2].toLowerCase();
    if (!m || !name || !MECHANISMS.includes(name)) {
      out.problems.push(`"${text}" is not an SPF mechanism or modifier`);
      continue;
    }
    const qualifier = (m[1] || "+") as SpfTerm["qualifier"];
    const value = m[3] === undefined ? undefined : m[3] === "/" ? `/${m[4]}` : m[4];
    const problem = mechanismProblem(name, value);
    if (problem) out.problems.push(`"${text}": ${problem}`);
    out.terms.push({ qualifier, name, value, modifier: false });
    if (LOOKUP_TERMS.includes(name)) out.lookups++;
    if (name === "ptr") out.warnings.push(`"${text}": ptr is slow and unreliable, RFC 7208 5.5 says not to use it`);
  }
  if (out.lookups > SPF_LOOKUP_LIMIT) {
    out.problems.push(`${out.lookups} terms need DNS lookups, more than ${SPF_LOOKUP_LIMIT} (RFC 7208 4.6.4: permerror)`);
  }
  return out;
}

function mechanismProblem(name: string, value: string | undefined): string | undefined {
  const cidr = (v: string, max: number) => /^\d{1,3}$/.test(v) && Number(v) <= max;
  switch (name) {
    case "all":
      return value === undefined ? undefined : "all takes no argument";
    case "include":
    case "exists":
      return value && !value.startsWith("/") ? undefined : `${name} needs a domain`;
    case "ip4": {
      if (!value) return "ip4 needs an address";
      const [ip, len, more] = value.split("/");
      if (more !== undefined || isIP(ip) !== 4 || (len !== undefined && !cidr(len, 32)))
        return `"${value}" is not an IPv4 address or network`;
      return undefined;
    }
    case "ip6": {
      if (!value) return "ip6 needs an address";
      const [ip, len, more] = value.split("/");
      if (more !== undefined || isIP(ip) !== 6 || (len !== undefined && !cidr(len, 128)))
        return `"${value}" is not an IPv6 address or network`;
      return undefined;
    }
    case "a":
    case "mx": {
      // a[:domain][/v4cidr][//v6cidr] (RFC 7208 5.3, 5.4)
      if (value === undefined) return undefined;
      const m = /^([^/]*)(?:\/(\d{1,3}))?(?:\/\/(\d{1,3}))?$/.exec(value);
      if (!m || (m[2] !== undefined && !cidr(m[2], 32)) || (m[3] !== undefined && !cidr(m[3], 128)))
        return `"${value}" is not [domain][/cidr]`;
      return undefined;
    }
    default:
      return undefined;
  }
}

export interface SpfVerdict {
  address: string;
  /** pass, fail, softfail, neutral, none, temperror, permerror */
  result: string;
  comment?: string;
}

/**
 * mailauth's evaluation for one client address. `sender` is the checked identity: an address at
 * the domain for MAIL FROM, `postmaster@<helo>` for the HELO identity (RFC 7208 2.3).
 */
export async function evaluateSpf(
  resolve: (name: string, rrtype: string) => Promise<unknown>,
  sender: string,
  helo: string,
  address: string,
  timeoutMs: number,
): Promise<SpfVerdict> {
  try {
    const r = await mailauthSpf({ sender, ip: address, helo, mta: "mailstack-check", resolver: resolve, maxElapsedTime: timeoutMs });
    return { address, result: r.status?.result ?? "none", comment: r.status?.comment };
  } catch (err) {
    return { address, result: "temperror", comment: (err as Error).message };
  }
}

/**
 * The SPF row for one name (`spf.domain` for the mail domain, `spf.helo` for the mail host's own
 * name): exactly one record, valid, ending in a restrictive `all`, authorizing every address of
 * the mail host, and equal to the planned value when there is one.
 */
export function checkSpf(
  check: string,
  name: string,
  answer: DnsAnswer<string>,
  verdicts: SpfVerdict[],
  expected?: string | null,
): CheckRow {
  if (!answer.ok) return fail(check, lookupFailure(`TXT ${name}`, answer), name);
  const records = spfRecords(answer.records);
  if (records.length === 0) return fail(check, `no v=spf1 record at ${name}`, name);
  // RFC 7208 4.5: more than one SPF record is a permerror.
  if (records.length > 1)
    return fail(
      check,
      `${records.length} v=spf1 records at ${name} (RFC 7208 4.5: permerror): ${records.map((r) => `"${r}"`).join(", ")}`,
      name,
    );
  const record = records[0];
  const parsed = parseSpf(record);
  if (parsed.problems.length > 0) return fail(check, `"${record}": ${parsed.problems.join("; ")}`, name);
  const denied = verdicts.filter((v) => v.result !== "pass");
  if (denied.length > 0) {
    return fail(check, `"${record}" does not authorize the mail host: ${denied.map((v) => `${v.address} ${v.result}`).join(", ")}`, name);
  }
  if (expected !== undefined && expected !== null && record !== expected) {
    return fail(check, `"${record}" differs from the plan: "${expected}"`, name);
  }
  const all = parsed.terms.find((t) => !t.modifier && t.name === "all");
  if (all?.qualifier === "+") return fail(check, `"${record}": +all authorizes every host on the internet`, name);
  const hasRedirect = parsed.terms.some((t) => t.modifier && t.name === "redirect");
  const warnings = [...parsed.warnings];
  if (!all && !hasRedirect) warnings.push("no all mechanism: mail from other hosts is neutral, not refused");
  else if (all?.qualifier === "?") warnings.push("?all: mail from other hosts is neutral, not refused");
  const authorized = verdicts.length > 0 ? `; authorizes ${verdicts.map((v) => v.address).join(", ")}` : "";
  if (warnings.length > 0) return warn(check, `"${record}": ${warnings.join("; ")}`, name);
  const planned = expected !== undefined && expected !== null ? " (as planned)" : "";
  return pass(check, `"${record}"${authorized}${planned}`, name);
}
