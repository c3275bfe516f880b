// `mailstack check`'s verdicts: the plan's expectations (when a stack manages the domain), the live
// answers (check-probes.ts), and one row per check.
import type { DkimPublicKey } from "../../components/records/types";
import { canonicalIpv4, canonicalIpv6 } from "../../components/records/address";
import type { CheckOptions } from "./check-args";
import type { DnsAnswer, DnsLookups } from "./check-dns";
import { checkDkim } from "./check-dkim";
import { expectationsFromPlan, type AddressSource, type Expectations, type ExpectedDkim } from "./check-expect";
import type { CheckReport } from "./check-format";
import { checkMtaStsMx, checkMtaStsPolicy, checkMtaStsRecord } from "./check-mtasts";
import { probeLive } from "./check-probes";
import { checkAddresses, checkCaa, checkDmarc, checkMx, checkPtr, checkTlsrpt } from "./check-records";
import { fail, pass, warn, type CheckRow } from "./check-result";
import { checkSpf } from "./check-spf";
import type { StackChoice } from "./check-stack";
import { checkTlsa, checkTlsProbe, MAIL_TLS_PORTS, type TlsProbeResult } from "./check-tls";
import { ipv6Network64 } from "./ipv6-network";
import { planStack } from "./plan";
import { blocklistZone, checkBlocklists, type BlocklistDns } from "../../components/shared/dnsbl";

export interface CheckContext {
  options: CheckOptions;
  dns: DnsLookups;
  /** trusted CA certificates (PEM) */
  ca: string[];
  choice: StackChoice | null;
  dkimKeys?: DkimPublicKey[];
  now: Date;
  /** progress for people, one line each */
  progress?: (line: string) => void;
}

const sortMx = (a: DnsAnswer<{ exchange: string; priority: number }>): string[] =>
  a.ok
    ? [...a.records]
        .sort((x, y) => x.priority - y.priority)
        .map((r) => r.exchange.toLowerCase().replace(/\.$/, ""))
        .filter(Boolean)
    : [];

/** Runs every probe and turns the answers into rows. Never throws for what it finds. */
export async function checkDomain(ctx: CheckContext): Promise<CheckReport> {
  const { options, dns, choice } = ctx;
  const domain = options.domain;
  const notes: string[] = [];
  const mx = await dns.mx(domain);

  const firstMx = sortMx(mx)[0];
  const hostname = options.hostname ?? choice?.spec.hostname ?? firstMx ?? domain;
  if (!options.hostname && !choice) {
    notes.push(
      `mail host ${hostname}: ${firstMx ? "the domain's first MX" : "the domain itself, it has no MX"} (pass --hostname to check another)`,
    );
  }
  const [liveA, liveAaaa] = await Promise.all([dns.a(hostname), dns.aaaa(hostname)]);

  // The plan's addresses: as given, else the ones DNS has (so SPF and PTR compare like with like).
  const source = (given: unknown, live: DnsAnswer<string>): AddressSource =>
    given !== undefined ? "options" : live.ok && live.records.length > 0 ? "dns" : "unknown";
  const addressSource = { ipv4: source(options.ipv4, liveA), ipv6: source(options.ipv6Network, liveAaaa) };
  const planIpv4 = options.ipv4 ?? (liveA.ok ? liveA.records[0] : undefined);
  const planIpv6 = options.ipv6Network ?? (liveAaaa.ok && liveAaaa.records[0] ? ipv6Network64(liveAaaa.records[0]) : undefined);

  let expect: Expectations | undefined;
  if (choice) {
    ctx.progress?.(`planning stack ${choice.stack} offline ...`);
    const plan = await planStack({
      stack: choice.stack,
      projectDir: choice.projectDir,
      ipv4: planIpv4,
      ipv6: planIpv6,
      acmeAccount: options.acmeAccount,
    });
    expect = expectationsFromPlan(plan, choice.domain, { addressSource, dkimKeys: ctx.dkimKeys });
    const from = (s: AddressSource) => (s === "options" ? "as given" : s === "dns" ? "taken from DNS" : "unknown");
    notes.push(`plan of stack ${choice.stack}: addresses ${from(addressSource.ipv4)} (IPv4), ${from(addressSource.ipv6)} (IPv6)`);
  } else {
    notes.push(`no stack in stacks/ lists ${domain} (or no project here): checking syntax and consistency only`);
  }
  notes.push(
    ctx.dkimKeys !== undefined
      ? `DKIM keys compared with ${options.dkimKeysFile}`
      : "DKIM keys not compared: pass --dkim-keys FILE (pulumi stack output dkimPublicKeys --json)",
  );
  notes.push(options.resolvers.length > 0 ? `DNS queries to ${options.resolvers.join(", ")}` : "DNS queries to the system resolver");

  // The addresses the server has: as given, else what DNS says.
  const hostV4 = options.ipv4 !== undefined ? [options.ipv4] : liveA.ok ? liveA.records.map(canonicalIpv4) : [];
  const hostV6 = options.ipv6Network !== undefined ? [`${options.ipv6Network}1`] : liveAaaa.ok ? liveAaaa.records.map(canonicalIpv6) : [];
  const hostAddresses = [...hostV4, ...hostV6];

  ctx.progress?.(`checking ${domain} and ${hostname} (${hostAddresses.join(", ") || "no address"}) ...`);
  const dkimExpected = dkimSelectors(options, expect, ctx.dkimKeys);
  const live = await probeLive(dns, {
    domain,
    hostname,
    hostV4,
    hostV6,
    dkimSelectors: dkimExpected.map((d) => d.selector),
    planned: expect !== undefined,
    ca: ctx.ca,
    timeoutMs: options.timeoutMs,
  });

  const rows: CheckRow[] = [];
  rows.push(checkMx(domain, mx, expect?.mx));
  const addressExpectation = (family: 4 | 6) => {
    const given = family === 4 ? options.ipv4 : options.ipv6Network !== undefined ? `${options.ipv6Network}1` : undefined;
    if (expect)
      return { planned: true, address: family === 4 ? expect.ipv4 : expect.ipv6, source: addressSource[family === 4 ? "ipv4" : "ipv6"] };
    return given !== undefined ? { planned: false, address: given, source: "options" as const } : undefined;
  };
  rows.push(checkAddresses(4, hostname, liveA, addressExpectation(4)));
  rows.push(checkAddresses(6, hostname, liveAaaa, addressExpectation(6)));
  if (hostV4.length > 0) rows.push(checkPtr(4, hostname, live.ptrV4));
  if (hostV6.length > 0) rows.push(checkPtr(6, hostname, live.ptrV6));
  rows.push(checkSpf("spf.domain", domain, live.spfDomainTxt, live.spfDomain, expect?.spfDomain));
  rows.push(checkSpf("spf.helo", hostname, live.spfHeloTxt, live.spfHelo, expect?.spfHelo));
  if (dkimExpected.length === 0) {
    rows.push(warn("dkim", "no selector to check: DNS cannot list DKIM selectors; pass --selector NAME", `_domainkey.${domain}`));
  }
  dkimExpected.forEach((d, i) => rows.push(checkDkim(domain, d, live.dkim[i])));
  rows.push(checkDmarc(domain, live.dmarc, expect?.dmarc));
  rows.push(checkTlsrpt(domain, live.tlsrpt, expect ? expect.tlsrpt : undefined));
  rows.push(checkMtaStsRecord(domain, live.mtaSts, expect?.mtaSts));
  if (live.policy) {
    rows.push(checkMtaStsPolicy(domain, live.policy, ctx.now, expect?.mtaSts));
    rows.push(checkMtaStsMx(domain, live.policy, mx));
  }
  rows.push(checkCaa(domain, live.caa, expect?.caa));
  rows.push(...tlsRows(live.tls, hostV4, hostV6, hostname, ctx.now));
  rows.push(
    checkTlsa(
      hostname,
      live.tlsa,
      live.tls.filter((p) => p.port === 25),
      expect?.tlsa,
    ),
  );
  // Asked only when named: from a workstation the query usually goes through a public resolver,
  // which Spamhaus refuses (127.255.255.254), so the default lists would mostly say "no verdict".
  // The box asks its lists through its own resolver every hour.
  if (options.dnsbl.length + options.dbl.length === 0) {
    const boxLists = choice ? [...choice.spec.operations.ipBlocklists, ...choice.spec.operations.domainBlocklists] : [];
    notes.push(
      `blocklists not asked: pass --dnsbl ZONE / --dbl ZONE${boxLists.length > 0 ? ` (the box asks ${boxLists.join(", ")})` : ""}`,
    );
  } else rows.push(...(await blocklistRows(dns, hostV4, hostV6, [domain, hostname], options.dnsbl, options.dbl)));
  return { domain, hostname, stack: choice?.stack ?? null, notes, rows };
}

/** One row per list and target: listed fails (with the delisting page), clear passes, no verdict warns. */
async function blocklistRows(
  dns: DnsLookups,
  v4: string[],
  v6: string[],
  names: string[],
  ipLists: string[],
  domainLists: string[],
): Promise<CheckRow[]> {
  const lookup: BlocklistDns = {
    resolve4: async (name) => {
      const a = await dns.a(name);
      if (!a.ok) throw Object.assign(new Error(a.error), { code: a.error });
      return a.records;
    },
    resolveTxt: async (name) => {
      const t = await dns.txt(name);
      return t.ok ? t.records : [];
    },
  };
  const zones = [...ipLists.map((z) => blocklistZone(z, "ip")), ...domainLists.map((z) => blocklistZone(z, "domain"))];
  const results = await checkBlocklists({ ips: [...v4, ...v6], domains: [...new Set(names)] }, zones, lookup);
  const label = (target: string) =>
    v4.includes(target) ? (v4.length === 1 ? "ipv4" : target) : v6.includes(target) ? (v6.length === 1 ? "ipv6" : target) : target;
  return results.map((r) => {
    const check = `blocklist.${r.zone}.${label(r.target)}`;
    if (r.status === "listed") return fail(check, `listed: ${r.reason}${r.delistUrl ? `; removal: ${r.delistUrl}` : ""}`, r.target);
    if (r.status === "error") return warn(check, `no verdict: ${r.reason}`, r.target);
    return pass(check, `not listed on ${r.zone}`, r.target);
  });
}

/** Selectors to check: --selector, else the plan's, else those of --dkim-keys. */
function dkimSelectors(options: CheckOptions, expect: Expectations | undefined, keys: DkimPublicKey[] | undefined): ExpectedDkim[] {
  const keyOf = (selector: string) => keys?.find((k) => k.selector === selector)?.publicKeyB64 ?? null;
  if (options.selectors.length > 0) {
    return options.selectors.map((selector) => {
      const planned = expect?.dkim.find((d) => d.selector === selector);
      const given = keys?.find((k) => k.selector === selector);
      return { selector, algorithm: planned?.algorithm ?? given?.algorithm ?? null, publicKeyB64: keyOf(selector) };
    });
  }
  if (expect) return expect.dkim;
  return (keys ?? []).map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKeyB64: k.publicKeyB64 }));
}

function tlsRows(probes: TlsProbeResult[], v4: string[], v6: string[], hostname: string, now: Date): CheckRow[] {
  if (probes.length === 0) return [fail("tls", `${hostname} has no address to connect to`, hostname)];
  const label = (address: string): string => {
    const family = v4.includes(address) ? v4 : v6;
    const name = family === v4 ? "ipv4" : "ipv6";
    return family.length === 1 ? name : address;
  };
  const order = MAIL_TLS_PORTS.map((p) => p.port);
  return [...probes]
    .sort((a, b) => order.indexOf(a.port) - order.indexOf(b.port) || Number(v6.includes(a.address)) - Number(v6.includes(b.address)))
    .map((p) => checkTlsProbe(`tls.${p.port}.${label(p.address)}`, p, hostname, now));
}
