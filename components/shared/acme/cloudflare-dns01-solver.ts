// DNS-01 through the Cloudflare API v4, with Cloudflare's official SDK (npm "cloudflare").
// Calls made: GET /zones?name=<candidate> (closest enclosing zone), POST /zones/<id>/dns_records
// (the TXT), DELETE /zones/<id>/dns_records/<record id> (exactly the record it created).
// The token needs Zone:Read and DNS:Edit on the zone.
import Cloudflare from "cloudflare";
import type { Challenge, ChallengeSolver } from "./challenge-solver";
import { waitForTxt, type PropagationOptions } from "./dns01-propagation";

export interface CloudflareSolverOptions {
  apiToken: string;
  /** default https://api.cloudflare.com/client/v4 */
  baseUrl?: string;
  /** TTL of the challenge record; default 60 (Cloudflare's minimum for non-enterprise zones) */
  ttl?: number;
  /** how the solver waits for the record at the zone's authoritative servers */
  propagation?: PropagationOptions;
}

export class CloudflareDns01Solver implements ChallengeSolver {
  readonly type = "dns-01" as const;
  private readonly client: Cloudflare;
  /** what present() created, by challenge: cleanup deletes exactly these */
  private readonly created = new Map<string, { zoneId: string; recordId: string }>();
  private readonly zoneIds = new Map<string, string>();

  constructor(private readonly opts: CloudflareSolverOptions) {
    if (!opts.apiToken || /\s/.test(opts.apiToken)) {
      throw new Error("cloudflare.apiToken: must be a Cloudflare API token (Zone:Read + DNS:Edit), without spaces");
    }
    this.client = new Cloudflare({
      apiToken: opts.apiToken,
      // never pick up a global key from the environment: the token alone decides what is allowed
      apiKey: null,
      apiEmail: null,
      userServiceKey: null,
      baseURL: opts.baseUrl ?? "https://api.cloudflare.com/client/v4",
      maxRetries: 2,
    });
  }

  private key(c: Challenge): string {
    return `${c.dnsName} ${c.dnsValue}`;
  }

  /** The closest enclosing zone in the account: try the name, then each parent. */
  async zoneIdFor(name: string): Promise<string> {
    const labels = name.replace(/\.$/, "").split(".");
    for (let i = 0; i < labels.length - 1; i++) {
      const candidate = labels.slice(i).join(".");
      const cached = this.zoneIds.get(candidate);
      if (cached) return cached;
      const page = await this.client.zones.list({ name: candidate });
      const zone = page.result.find((z) => z.name === candidate);
      if (zone) {
        this.zoneIds.set(candidate, zone.id);
        return zone.id;
      }
    }
    throw new Error(`Cloudflare: no zone for ${name.replace(/\.$/, "")} is visible to this API token (it needs Zone:Read on the zone)`);
  }

  async present(c: Challenge): Promise<void> {
    const name = c.dnsName.replace(/\.$/, "");
    const zoneId = await this.zoneIdFor(name);
    const record = await this.client.dns.records.create({
      zone_id: zoneId,
      type: "TXT",
      name,
      // RFC 1035 quoted form, as Cloudflare stores TXT content
      content: `"${c.dnsValue}"`,
      ttl: this.opts.ttl ?? 60,
      comment: "ACME DNS-01 challenge (RFC 8555 8.4); removed after validation",
    });
    this.created.set(this.key(c), { zoneId, recordId: record.id });
  }

  async waitUntilVisible(c: Challenge): Promise<void> {
    await waitForTxt(c.dnsName, c.dnsValue, this.opts.propagation);
  }

  async cleanup(c: Challenge): Promise<void> {
    const made = this.created.get(this.key(c));
    if (!made) return; // present() failed before creating anything
    await this.client.dns.records.delete(made.recordId, { zone_id: made.zoneId });
    this.created.delete(this.key(c));
  }
}
