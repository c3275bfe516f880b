import * as pulumi from "@pulumi/pulumi";
import * as cloudflare from "@pulumi/cloudflare";
import type { AcmeSpec, DomainSpec } from "./spec";
import type { DkimPublicKey, HostFacts, PlannedRecord } from "./records/types";
import { planDomainRecords, planHostRecords } from "./records/plan";
import { placeholderDkimKeys, placeholderHostFacts } from "./records/placeholders";

/** Host facts as Pulumi inputs. Which optional fields are present is static: it shapes the record set. */
export interface HostFactsInput {
  hostname: string;
  ipv4: pulumi.Input<string>;
  ipv6: pulumi.Input<string>;
  tlsSpkiSha256?: pulumi.Input<string>;
  acmeAccountUri?: pulumi.Input<string>;
}

export interface DkimPublicKeyInput {
  selector: string;
  algorithm: DkimPublicKey["algorithm"];
  publicKeyB64: pulumi.Input<string>;
}

export interface MailDomainArgs {
  domain: DomainSpec;
  acme: AcmeSpec;
  host: HostFactsInput;
  dkim: DkimPublicKeyInput[];
  /** Cloudflare zone id; looked up by `domain.zone` when absent. */
  zoneId?: pulumi.Input<string>;
  /**
   * Also publish the mail host's own records (A/AAAA, HELO SPF, TLSA). Exactly one MailDomain per
   * deployment does: the one whose zone holds the hostname.
   */
  includeHostRecords?: boolean;
}

/**
 * Every DNS record one mail domain needs, as Cloudflare DNS records.
 *
 * Each record's Pulumi name comes from its identity (`PlannedRecord.key`), never its content,
 * so a changed SPF or DKIM value is an in-place update and a preview shows exactly that change.
 */
export class MailDomain extends pulumi.ComponentResource {
  public readonly domain: string;
  public readonly zoneId: pulumi.Output<string>;
  /** The planned records with their final content. */
  public readonly records: pulumi.Output<PlannedRecord[]>;

  constructor(name: string, args: MailDomainArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mailstack:index:MailDomain", name, {}, opts);
    this.domain = args.domain.name;

    const plan = (facts: HostFacts, dkim: DkimPublicKey[]): PlannedRecord[] => [
      ...(args.includeHostRecords ? planHostRecords(facts) : []),
      ...planDomainRecords(args.domain, facts, dkim, args.acme),
    ];

    // The record set's shape depends only on the spec and on which facts exist, so it can be
    // planned now with stand-in values; the real content follows once addresses are known.
    const standIn = placeholderHostFacts(args.host.hostname, {
      tlsSpkiSha256: args.host.tlsSpkiSha256 !== undefined,
      acmeAccountUri: args.host.acmeAccountUri !== undefined,
    });
    const standInKeys = new Map(placeholderDkimKeys(args.domain).map((k) => [k.selector, k]));
    const shape = plan(
      standIn,
      args.dkim.map((k) => standInKeys.get(k.selector) ?? { ...k, publicKeyB64: "" }),
    );

    const facts = pulumi.output({
      hostname: args.host.hostname,
      ipv4: args.host.ipv4,
      ipv6: args.host.ipv6,
      tlsSpkiSha256: args.host.tlsSpkiSha256,
      acmeAccountUri: args.host.acmeAccountUri,
    });
    const dkim = pulumi.output(args.dkim.map((k) => pulumi.output(k)));
    this.records = pulumi.all([facts, dkim]).apply(([f, d]) => plan(dropUndefined(f) as HostFacts, d as DkimPublicKey[]));

    this.zoneId = args.zoneId
      ? pulumi.output(args.zoneId)
      : cloudflare.getZoneOutput({ filter: { name: args.domain.zone } }, { parent: this }).apply((z) => z.id);

    for (const planned of shape) {
      const live = this.records.apply((rs) => recordByKey(rs, planned.key));
      new cloudflare.DnsRecord(
        recordResourceName(name, planned.key),
        {
          zoneId: this.zoneId,
          name: planned.name,
          type: planned.type,
          ttl: planned.ttl,
          comment: planned.comment,
          proxied: false,
          // CAA/SRV/TLSA are written as structured data; Cloudflare derives their content.
          ...(planned.data ? { data: live.apply((r) => r.data!) } : { content: live.apply((r) => r.content) }),
          ...(planned.priority !== undefined ? { priority: live.apply((r) => r.priority!) } : {}),
        },
        { parent: this },
      );
    }

    this.registerOutputs({ domain: this.domain, zoneId: this.zoneId, records: this.records });
  }
}

/** Pulumi logical name of a record: the component name plus the record's identity. */
export function recordResourceName(component: string, key: string): string {
  return `${component}/${key.toLowerCase().replace(/\s+/g, "/")}`;
}

function recordByKey(records: PlannedRecord[], key: string): PlannedRecord {
  const found = records.find((r) => r.key === key);
  if (!found) {
    // The planner promises a shape independent of fact values; this is that promise broken.
    throw new Error(`record "${key}" vanished once real host facts were known`);
  }
  return found;
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
