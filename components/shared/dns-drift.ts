// DNS drift: the records the plan published, compared with what DNS answers now. The Pulumi side
// turns its planned records (Cloudflare's content format) into ExpectedRecord values for the box;
// maild's monitor asks for each and reports what is missing or different. Values are compared in
// one normal form per type, the form Node's resolver answers can be brought to.
import { isIP } from "node:net";

export const DNS_DRIFT_TYPES = ["A", "AAAA", "MX", "TXT", "CAA", "TLSA", "SRV"] as const;
export type DriftType = (typeof DNS_DRIFT_TYPES)[number];

export interface ExpectedRecord {
  /** fully qualified, lowercase, no trailing dot */
  name: string;
  type: DriftType;
  /** the normal form: A/AAAA the address, MX `pref host`, TXT the strings joined, CAA `flags tag value`, TLSA `u s m hex`, SRV `prio weight port target` */
  value: string;
}

/** A planned record as the planner writes it (components/records/types.ts PlannedRecord, structurally). */
export interface PlannedRecordLike {
  name: string;
  type: string;
  content: string;
  priority?: number;
  data?: unknown;
}

const lowerHost = (h: string) => h.toLowerCase().replace(/\.$/, "");

function canonicalAddress(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  // Node's resolver answers the compressed form; bring the plan's (any) form to it
  const url = new URL(`http://[${ip}]/`);
  return url.hostname.slice(1, -1);
}

/** TXT content as Cloudflare stores it (RFC 1035 quoted strings) -> the strings joined. */
function unquoteTxt(content: string): string {
  const strings = content.match(/"((?:[^"\\]|\\.)*)"/g);
  if (!strings) return content;
  return strings.map((s) => s.slice(1, -1).replace(/\\(.)/g, "$1")).join("");
}

/** The record's value in the normal form, or undefined for a type the monitor does not compare. */
export function expectedFromPlanned(r: PlannedRecordLike): ExpectedRecord | undefined {
  const name = lowerHost(r.name);
  const data = (r.data ?? {}) as Record<string, unknown>;
  switch (r.type) {
    case "A":
    case "AAAA":
      return { name, type: r.type, value: canonicalAddress(r.content) };
    case "MX":
      return { name, type: "MX", value: `${r.priority ?? 0} ${lowerHost(r.content)}` };
    case "TXT":
      return { name, type: "TXT", value: unquoteTxt(r.content) };
    case "CAA":
      return { name, type: "CAA", value: `${data.flags ?? 0} ${String(data.tag)} ${String(data.value)}` };
    case "TLSA":
      return { name, type: "TLSA", value: `${data.usage} ${data.selector} ${data.matchingType} ${String(data.certificate).toLowerCase()}` };
    case "SRV":
      return { name, type: "SRV", value: `${data.priority} ${data.weight} ${data.port} ${lowerHost(String(data.target))}` };
    default:
      return undefined;
  }
}

/** The resolver calls the comparison needs (node:dns promises Resolver has them all). */
export interface DriftResolver {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveMx(name: string): Promise<{ priority: number; exchange: string }[]>;
  resolveTxt(name: string): Promise<string[][]>;
  resolveCaa(name: string): Promise<Record<string, unknown>[]>;
  resolveTlsa(name: string): Promise<{ certUsage: number; selector: number; match: number; data: ArrayBuffer }[]>;
  resolveSrv(name: string): Promise<{ priority: number; weight: number; port: number; name: string }[]>;
}

async function liveValues(resolver: DriftResolver, name: string, type: DriftType): Promise<string[]> {
  switch (type) {
    case "A":
      return resolver.resolve4(name);
    case "AAAA":
      return (await resolver.resolve6(name)).map(canonicalAddress);
    case "MX":
      return (await resolver.resolveMx(name)).map((m) => `${m.priority} ${lowerHost(m.exchange)}`);
    case "TXT":
      return (await resolver.resolveTxt(name)).map((chunks) => chunks.join(""));
    case "CAA":
      return (await resolver.resolveCaa(name)).map((c) => {
        const tag = ["issue", "issuewild", "iodef"].find((t) => c[t] !== undefined) ?? "unknown";
        return `${c.critical ?? 0} ${tag} ${String(c[tag])}`;
      });
    case "TLSA":
      return (await resolver.resolveTlsa(name)).map(
        (t) => `${t.certUsage} ${t.selector} ${t.match} ${Buffer.from(t.data).toString("hex")}`,
      );
    case "SRV":
      return (await resolver.resolveSrv(name)).map((s) => `${s.priority} ${s.weight} ${s.port} ${lowerHost(s.name)}`);
  }
}

export interface DriftFinding {
  name: string;
  type: DriftType;
  expected: string;
  /** what DNS answered for the name and type (empty: nothing) */
  found: string[];
  /** the lookup failed (not an empty answer): no verdict */
  error?: string;
}

/** The expected records DNS does not answer with (missing or changed); a failed lookup is a finding with `error`. */
export async function dnsDrift(expected: ExpectedRecord[], resolver: DriftResolver): Promise<DriftFinding[]> {
  const groups = new Map<string, ExpectedRecord[]>();
  for (const r of expected) groups.set(`${r.type} ${r.name}`, [...(groups.get(`${r.type} ${r.name}`) ?? []), r]);
  const out: DriftFinding[] = [];
  await Promise.all(
    [...groups.values()].map(async (rs) => {
      const { name, type } = rs[0];
      let found: string[];
      try {
        found = await liveValues(resolver, name, type);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        if (code !== "ENOTFOUND" && code !== "ENODATA") {
          for (const r of rs) out.push({ name, type, expected: r.value, found: [], error: code });
          return;
        }
        found = [];
      }
      for (const r of rs) if (!found.includes(r.value)) out.push({ name, type, expected: r.value, found });
    }),
  );
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.type.localeCompare(b.type));
}
