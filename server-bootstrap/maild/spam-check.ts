// Asks rspamd about one message and turns its answer into maild's verdict, with the metrics and
// the log fields every verdict gets. Shared by receiving (inbound.ts) and submission.
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import type { Logger, LogFields } from "./log";
import { metrics } from "./metrics";
import { RspamdClient, ScanUnavailable, type RspamdReply, type ScanEnvelope } from "./rspamd-client";
import { spamVerdict, type SpamVerdict } from "./spam-verdict";
import type { SpamConfig } from "./config";

export { ScanUnavailable } from "./rspamd-client";

/** The reply when rspamd gives no verdict: never accept unchecked, never lose the message. */
export const SCAN_UNAVAILABLE_REPLY = "4.7.1 Spam filter unavailable, try again later";

export class SpamCheck {
  private readonly client: RspamdClient;

  constructor(
    config: () => SpamConfig,
    private readonly log: Logger,
  ) {
    this.client = new RspamdClient(() => ({ url: config().rspamdUrl, timeoutMs: config().scanTimeoutMs }));
  }

  /**
   * Scans the message and decides; logs `<service>.spam_verdict` with rspamd's action, score and
   * symbols, and the authentication results. Throws ScanUnavailable (logged, counted) when rspamd
   * gives no verdict in time.
   */
  async check(
    service: "smtp" | "submission",
    envelope: ScanEnvelope,
    message: { held?: Buffer[]; path: string },
    fields: LogFields,
  ): Promise<SpamVerdict & { scanMs: number; symbols: RspamdReply["symbols"] }> {
    const t0 = performance.now();
    let reply;
    try {
      reply = await this.client.scan(envelope, message);
    } catch (e) {
      const reason = e instanceof ScanUnavailable ? e.reason : "unavailable";
      metrics.spamScanErrors.inc({ service, reason });
      this.log.error(`${service}.spam_unavailable`, { ...fields, reason, error: (e as Error).message });
      throw e instanceof ScanUnavailable ? e : new ScanUnavailable("unavailable", (e as Error).message);
    }
    const scanMs = Math.round(performance.now() - t0);
    metrics.spamScanSeconds.observe((performance.now() - t0) / 1000, { service });
    const verdict = spamVerdict(reply, { authenticated: envelope.user !== undefined });
    metrics.spamVerdicts.inc({ service, action: reply.action, outcome: verdict.outcome.kind });
    this.log.info(`${service}.spam_verdict`, {
      ...fields,
      action: reply.action,
      outcome: verdict.outcome.kind,
      ...(verdict.outcome.kind === "reject" || verdict.outcome.kind === "tempfail" ? { reason: verdict.outcome.reason } : {}),
      score: Math.round(reply.score * 100) / 100,
      requiredScore: reply.requiredScore,
      symbols: Object.keys(reply.symbols).sort(),
      ...verdict.auth,
      scanMs,
    });
    // the symbols also carry the SPF, DKIM and DMARC details our DMARC reports need (reports/dmarc-evaluation.ts)
    return { ...verdict, scanMs, symbols: reply.symbols };
  }

  close(): void {
    this.client.close();
  }
}

/**
 * The client's forward-confirmed reverse DNS name (FCrDNS: a PTR name whose A/AAAA records include
 * the address), or undefined. rspamd scores an unknown name (hfilter HFILTER_HOSTNAME_UNKNOWN), as
 * Postfix reports it "unknown" to a milter.
 */
export async function verifiedHostname(ip: string, servers: string[] | undefined, timeoutMs = 3000): Promise<string | undefined> {
  const r = resolverFor(servers, timeoutMs);
  try {
    const names = await r.reverse(ip);
    for (const name of names.slice(0, 3)) {
      const addrs = isIP(ip) === 6 ? await r.resolve6(name).catch(() => []) : await r.resolve4(name).catch(() => []);
      if (addrs.some((a) => sameAddress(a, ip))) return name.replace(/\.$/, "");
    }
  } catch {
    // no PTR, or no answer in time: the name stays unknown
  }
  return undefined;
}

/**
 * One resolver per server list and timeout, shared by all lookups: a c-ares channel serves
 * concurrent queries, and making one per lookup (its sockets, reading resolv.conf) cost more
 * than the queries themselves. Few entries: the configured list (it changes only on a reload).
 */
const resolvers = new Map<string, dns.Resolver>();
const MAX_RESOLVERS = 4;

function resolverFor(servers: string[] | undefined, timeoutMs: number): dns.Resolver {
  const key = `${timeoutMs} ${(servers ?? []).join(",")}`;
  let r = resolvers.get(key);
  if (!r) {
    r = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
    if (servers && servers.length > 0) r.setServers(servers);
    if (resolvers.size >= MAX_RESOLVERS) resolvers.clear();
    resolvers.set(key, r);
  }
  return r;
}

function sameAddress(a: string, b: string): boolean {
  if (isIP(a) === 6 && isIP(b) === 6) {
    const expand = (x: string) => new URL(`http://[${x}]/`).hostname;
    return expand(a) === expand(b);
  }
  return a === b;
}
