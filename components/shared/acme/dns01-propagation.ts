// Wait until a DNS-01 TXT record is served by every authoritative server of its zone, so the CA
// (which may query any of them) sees it. Bounded: the commonest ACME failure users report is an
// unbounded or silent wait on propagation.
import { promises as dns } from "node:dns";

export interface PropagationOptions {
  /** how long to wait for the TXT at every authoritative server; default 120 000 ms */
  timeoutMs?: number;
  /** time between polls; default 2000 ms */
  intervalMs?: number;
  /** resolvers used to find the zone's authoritative servers ("ip" or "ip:port"); default: the system's */
  resolvers?: string[];
  /** skip discovery and poll exactly these servers ("ip" or "ip:port") */
  authoritativeServers?: string[];
}

export const DEFAULT_PROPAGATION_TIMEOUT_MS = 120_000;

/**
 * A resolver of this process's configured name servers: the system's (/etc/resolv.conf), unless the
 * process chose others with `dns.setServers` (a `new Resolver()` alone would read the system's file
 * again and ignore that choice).
 */
function defaultResolver(): dns.Resolver {
  return resolverFor(dns.getServers());
}

function resolverFor(servers: string[]): dns.Resolver {
  const r = new dns.Resolver({ timeout: 2000, tries: 2 });
  r.setServers(servers);
  return r;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** The closest enclosing zone apex of `name` (the first ancestor, or itself, that has an SOA). */
export async function findZoneApex(name: string, resolvers?: string[]): Promise<string> {
  const r = resolvers ? resolverFor(resolvers) : defaultResolver();
  const labels = name.replace(/\.$/, "").split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join(".");
    try {
      await r.resolveSoa(candidate);
      return candidate;
    } catch (err) {
      if (code(err) === "ENODATA" || code(err) === "ENOTFOUND") continue;
      throw new Error(
        `DNS-01: cannot find the zone of ${name}: SOA lookup of ${candidate} failed (${code(err) ?? (err as Error).message}) using ${r.getServers().join(", ")}`,
      );
    }
  }
  throw new Error(`DNS-01: no zone found for ${name} (no SOA at any of its parents) using ${r.getServers().join(", ")}`);
}

/** Addresses of the zone's NS hosts, grouped by NS host name. */
export async function authoritativeServers(zone: string, resolvers?: string[]): Promise<Map<string, string[]>> {
  const r = resolvers ? resolverFor(resolvers) : defaultResolver();
  let nsNames: string[];
  try {
    nsNames = await r.resolveNs(zone);
  } catch (err) {
    throw new Error(`DNS-01: cannot list the name servers of ${zone} (${code(err) ?? (err as Error).message})`);
  }
  const out = new Map<string, string[]>();
  for (const ns of nsNames) {
    const v4 = await r.resolve4(ns).catch(() => [] as string[]);
    const v6 = await r.resolve6(ns).catch(() => [] as string[]);
    const all = [...v4, ...v6];
    if (all.length === 0) throw new Error(`DNS-01: name server ${ns} of ${zone} has no A/AAAA address`);
    out.set(ns, all);
  }
  return out;
}

async function serves(server: string, name: string, value: string): Promise<boolean> {
  try {
    const records = await resolverFor([server]).resolveTxt(name);
    return records.some((chunks) => chunks.join("") === value);
  } catch {
    return false;
  }
}

/**
 * Resolve when every authoritative server of the zone answers `name` TXT with `value`;
 * reject with an error naming the record, the servers still missing it and the timeout.
 */
export async function waitForTxt(name: string, value: string, opts: PropagationOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROPAGATION_TIMEOUT_MS;
  const intervalMs = opts.intervalMs ?? 2000;
  const fqdn = name.replace(/\.$/, "");
  let zone = "(given servers)";
  let groups: Map<string, string[]>;
  if (opts.authoritativeServers?.length) {
    groups = new Map(opts.authoritativeServers.map((s) => [s, [s]]));
  } else {
    zone = await findZoneApex(fqdn, opts.resolvers);
    groups = await authoritativeServers(zone, opts.resolvers);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing: string[] = [];
    for (const [host, addresses] of groups) {
      let seen = false;
      for (const a of addresses) if (!seen) seen = await serves(a, fqdn, value);
      if (!seen) missing.push(`${host} (${addresses.join(", ")})`);
    }
    if (missing.length === 0) return;
    if (Date.now() + intervalMs > deadline) {
      throw new Error(
        `DNS-01: TXT ${fqdn} = "${value}" not visible at the authoritative servers of ${zone} after ${Math.round(timeoutMs / 1000)} s; ` +
          `missing at ${missing.join("; ")}. Check that the DNS provider wrote into the zone those servers serve, ` +
          `or raise the propagation timeout (propagationTimeoutSeconds).`,
      );
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}
