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

    // Each record's content is computed from the inputs it depends on and no others, so a value
    // unknown in a preview (a new DKIM key, a new account URL) leaves every other record known
    // and unchanged: a preview shows only what really changes (DESIGN.md invariant 3).
    const standInDkim = args.dkim.map((k) => standInKeys.get(k.selector) ?? { ...k, publicKeyB64: "" });
    const inputs: RecordInput[] = [
      { name: "ipv4", value: args.host.ipv4, alternate: "0.0.0.1" },
      { name: "ipv6", value: args.host.ipv6, alternate: "::1" },
      ...(args.host.tlsSpkiSha256 !== undefined
        ? [{ name: "tlsSpkiSha256", value: args.host.tlsSpkiSha256, alternate: "1".repeat(64) }]
        : []),
      ...(args.host.acmeAccountUri !== undefined
        ? [{ name: "acmeAccountUri", value: args.host.acmeAccountUri, alternate: "https://acme.invalid/account/1" }]
        : []),
      ...args.dkim.map((k) => ({
        name: `dkim:${k.selector}`,
        value: k.publicKeyB64,
        alternate: k.algorithm === "rsa" ? "BBBB" : Buffer.alloc(32, 1).toString("base64"),
      })),
    ];
    // The planner is pure and many records depend on the same inputs: each set of values is
    // planned once (not once per record), which at 100 domains was most of the planner's time.
    const plannedWith = new Map<string, PlannedRecord[]>();
    const planWith = (values: Record<string, string>): PlannedRecord[] => {
      const id = JSON.stringify(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1)));
      const known = plannedWith.get(id);
      if (known) return known;
      const f: HostFacts = { ...standIn };
      for (const key of ["ipv4", "ipv6", "tlsSpkiSha256", "acmeAccountUri"] as const) if (key in values) f[key] = values[key];
      const d = standInDkim.map((k) => (`dkim:${k.selector}` in values ? { ...k, publicKeyB64: values[`dkim:${k.selector}`] } : k));
      const records = plan(f, d);
      plannedWith.set(id, records);
      return records;
    };
    const dependsOn = recordDependencies(shape, inputs, planWith);
    const liveRecord = (key: string): pulumi.Output<PlannedRecord> => {
      const needed = inputs.filter((i) => dependsOn.get(key)!.has(i.name));
      return pulumi
        .all(needed.map((i) => pulumi.output(i.value)))
        .apply((values) => recordByKey(planWith(Object.fromEntries(needed.map((i, n) => [i.name, values[n]]))), key));
    };

    const facts = pulumi.output({
      hostname: args.host.hostname,
      ipv4: args.host.ipv4,
      ipv6: args.host.ipv6,
      tlsSpkiSha256: args.host.tlsSpkiSha256,
      acmeAccountUri: args.host.acmeAccountUri,
    });
    const dkim = pulumi.output(args.dkim.map((k) => pulumi.output(k)));
    this.records = pulumi.all([facts, dkim]).apply(([f, d]) => {
      const records = plan(dropUndefined(f) as HostFacts, d as DkimPublicKey[]);
      // The per-record computation above rests on the dependencies found by perturbing one input
      // at a time; with every value known, check it agrees with the plan over all of them.
      const values: Record<string, string> = Object.fromEntries(
        [
          ["ipv4", f.ipv4],
          ["ipv6", f.ipv6],
          ["tlsSpkiSha256", f.tlsSpkiSha256],
          ["acmeAccountUri", f.acmeAccountUri],
          ...(d as DkimPublicKey[]).map((k) => [`dkim:${k.selector}`, k.publicKeyB64]),
        ].filter(([, v]) => v !== undefined),
      );
      for (const r of records) {
        const only = Object.fromEntries([...dependsOn.get(r.key)!].map((n) => [n, values[n]]));
        if (signature(recordByKey(planWith(only), r.key)) !== signature(r)) {
          throw new Error(`record "${r.key}" depends on more than the inputs found for it: the planner's per-input independence is broken`);
        }
      }
      return records;
    });

    this.zoneId = args.zoneId
      ? pulumi.output(args.zoneId)
      : cloudflare.getZoneOutput({ filter: { name: args.domain.zone } }, { parent: this }).apply((z) => z.id);

    for (const planned of shape) {
      const live = liveRecord(planned.key);
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

interface RecordInput {
  /** `ipv4`, `ipv6`, `tlsSpkiSha256`, `acmeAccountUri` or `dkim:<selector>` */
  name: string;
  value: pulumi.Input<string>;
  /** a second valid stand-in, to see which records change with this input */
  alternate: string;
}

/** What of a record reaches Cloudflare: content, structured data, priority. */
function signature(r: PlannedRecord): string {
  return JSON.stringify([r.content, r.data ?? null, r.priority ?? null]);
}

/** For each record key, the inputs whose value changes it: found by planning once per input with that input changed. */
function recordDependencies(
  shape: PlannedRecord[],
  inputs: RecordInput[],
  planWith: (values: Record<string, string>) => PlannedRecord[],
): Map<string, Set<string>> {
  const base = new Map(shape.map((r) => [r.key, signature(r)]));
  const deps = new Map(shape.map((r) => [r.key, new Set<string>()]));
  for (const input of inputs) {
    for (const r of planWith({ [input.name]: input.alternate })) {
      if (base.get(r.key) !== signature(r)) deps.get(r.key)?.add(input.name);
    }
  }
  return deps;
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
