// DNS-01 through RFC 2136 dynamic updates signed with TSIG: for users who run their own DNS
// (knot, BIND, PowerDNS) and for the integration tests.
import type { Challenge, ChallengeSolver } from "./challenge-solver";
import { findZoneApex, waitForTxt, type PropagationOptions } from "./dns01-propagation";
import { CLASS_IN, CLASS_NONE, TYPE_TXT, encodeTxtRdata } from "../dns-wire";
import { sendUpdate } from "./rfc2136";
import { checkTsigKey, type TsigKey } from "./tsig";
import { isIP } from "node:net";

export interface Rfc2136SolverOptions {
  /** address of the primary server that accepts updates */
  server: string;
  /** default 53 */
  port?: number;
  /** the zone to update; default: found by asking `server` for the SOA of the name's ancestors */
  zone?: string;
  tsig: TsigKey;
  /** TTL of the challenge record; default 60 */
  ttl?: number;
  /** how the solver waits for the record at the zone's authoritative servers */
  propagation?: PropagationOptions;
}

export class Rfc2136Dns01Solver implements ChallengeSolver {
  readonly type = "dns-01" as const;
  private readonly opts: Rfc2136SolverOptions;
  private readonly zones = new Map<string, string>();

  constructor(opts: Rfc2136SolverOptions) {
    if (!isIP(opts.server)) throw new Error(`rfc2136.server: "${opts.server}" must be an IPv4 or IPv6 address`);
    if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port > 0 && opts.port < 65536)) {
      throw new Error(`rfc2136.port: ${opts.port} must be 1-65535`);
    }
    checkTsigKey(opts.tsig, "rfc2136.tsig");
    this.opts = opts;
  }

  private serverSpec(): string {
    const port = this.opts.port ?? 53;
    return isIP(this.opts.server) === 6 ? `[${this.opts.server}]:${port}` : `${this.opts.server}:${port}`;
  }

  private async zoneOf(name: string): Promise<string> {
    if (this.opts.zone) return this.opts.zone;
    let zone = this.zones.get(name);
    if (!zone) {
      zone = await findZoneApex(name, [this.serverSpec()]);
      this.zones.set(name, zone);
    }
    return zone;
  }

  private async update(c: Challenge, cls: number, ttl: number): Promise<void> {
    await sendUpdate({
      server: this.opts.server,
      port: this.opts.port,
      zone: await this.zoneOf(c.dnsName),
      tsig: this.opts.tsig,
      // RFC 2136 2.5.1 add to an RRset / 2.5.4 delete one RR (class NONE, TTL 0): never touches other values
      updates: [{ name: c.dnsName, type: TYPE_TXT, class: cls, ttl, rdata: encodeTxtRdata(c.dnsValue) }],
    });
  }

  async present(c: Challenge): Promise<void> {
    await this.update(c, CLASS_IN, this.opts.ttl ?? 60);
  }

  async waitUntilVisible(c: Challenge): Promise<void> {
    await waitForTxt(c.dnsName, c.dnsValue, this.opts.propagation);
  }

  async cleanup(c: Challenge): Promise<void> {
    await this.update(c, CLASS_NONE, 0);
  }
}
