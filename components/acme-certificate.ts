// AcmeCertificate: an ACME certificate as a Pulumi resource (dynamic provider).
//
// - Registers or reuses the ACME account of `accountKeyPem`; `accountUrl` feeds CAA accounturi (RFC 8657).
// - Answers DNS-01 through Cloudflare's API or RFC 2136 + TSIG, waits (bounded) until the TXT is at
//   the zone's authoritative servers, and always removes what it wrote.
// - Uses `certificateKeyPem` (stable, e.g. from @pulumi/tls) for every issue, so DANE TLSA and the
//   box's TLS key survive renewals.
// - Every `pulumi up` runs diff: it re-issues in place when a third (renewBeforeFraction) or less of
//   the lifetime remains, when the CA's ARI window (RFC 9773) says so, or when names or key change.
//   pulumi.dynamic's DiffResult has no free-text reason: the diff names the trigger as the changed
//   property ("names", "certificateKeyPem" or "renewal"), logs the reason, and `issueReason` records it.
// - revokeOnDelete revokes on `pulumi destroy`.
// Dynamic providers are serialised: the provider's methods load the ACME logic at run time from
// this package's own files (ACME_MODULE), never through captured imports.
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import type { Dns01Config } from "./acme-certificate-provider";

export type { Dns01Config } from "./acme-certificate-provider";

export interface AcmeCertificateArgs {
  /** ACME directory URL: Let's Encrypt production/staging or any RFC 8555 CA */
  directoryUrl: pulumi.Input<string>;
  /** account contact address */
  email?: pulumi.Input<string>;
  /** account key PEM (secret), e.g. tls.PrivateKey("acme-account", {algorithm: "ECDSA"}).privateKeyPem */
  accountKeyPem: pulumi.Input<string>;
  /** certificate key PEM (secret), stable across renewals */
  certificateKeyPem: pulumi.Input<string>;
  /** DNS names; the first is the subject CN */
  names: pulumi.Input<pulumi.Input<string>[]>;
  /** how DNS-01 is answered (credentials are secret and never stored in the state) */
  dns01: pulumi.Input<Dns01Config>;
  /** bound on waiting for the TXT at the zone's authoritative servers; default 120 */
  propagationTimeoutSeconds?: pulumi.Input<number>;
  /** resolvers ("ip" or "ip:port") used to find the zone's authoritative servers; default: the system's */
  propagationResolvers?: pulumi.Input<pulumi.Input<string>[]>;
  /** an extra CA to trust for the ACME server (test CAs such as pebble) */
  extraCaPem?: pulumi.Input<string>;
  /** revoke the certificate on delete (default false) */
  revokeOnDelete?: pulumi.Input<boolean>;
  /** renew when this fraction of the lifetime or less remains (default 1/3) */
  renewBeforeFraction?: pulumi.Input<number>;
}

/** Absolute path of the ACME logic, resolved where this file lives (compiled .js or .ts source). */
const ACME_MODULE = path.join(__dirname, "acme-certificate-provider");

/** Load the ACME logic inside the provider process; TypeScript sources get a TS loader first. */
function loadAcme(modulePath: string): typeof import("./acme-certificate-provider") {
  const req = require;
  try {
    return req(modulePath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw err;
    try {
      req("tsx/cjs/api").register();
    } catch {
      req("ts-node").register({ transpileOnly: true });
    }
    return req(modulePath);
  }
}

export function acmeCertificateProvider(modulePath: string = ACME_MODULE): pulumi.dynamic.ResourceProvider {
  return {
    async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
      const m = loadAcme(modulePath);
      return { inputs: news, failures: m.checkInputs(m.normalizeInputs(news)) };
    },
    async create(inputs: Record<string, unknown>) {
      return loadAcme(modulePath).createCertificate(inputs);
    },
    async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
      const plan = await loadAcme(modulePath).planCertificate(olds, news);
      if (plan.reissue || plan.changes) {
        // the only channel for a free-text reason out of a dynamic provider: the provider's log
        try {
          // Serialised with the provider: the engine's log is looked up inside the provider process.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          require("@pulumi/pulumi").log.info(`AcmeCertificate ${plan.reissue ? "re-issue" : "update"}: ${plan.reason}`);
        } catch {
          /* no engine */
        }
      }
      return {
        changes: plan.changes,
        replaces: plan.replace ? plan.properties : [],
        deleteBeforeReplace: false,
        stables: plan.replace || plan.properties.includes("accountKeyPem") ? [] : ["accountUrl"],
      };
    },
    async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
      return { outs: await loadAcme(modulePath).updateCertificate(olds, news) };
    },
    async delete(_id: string, props: Record<string, unknown>) {
      await loadAcme(modulePath).deleteCertificate(props);
    },
  };
}

export class AcmeCertificate extends pulumi.dynamic.Resource {
  public readonly accountUrl!: pulumi.Output<string>;
  /** leaf first, then intermediates (PEM) */
  public readonly certificatePem!: pulumi.Output<string>;
  /** ISO 8601 */
  public readonly notBefore!: pulumi.Output<string>;
  /** ISO 8601 */
  public readonly notAfter!: pulumi.Output<string>;
  public readonly issuer!: pulumi.Output<string>;
  public readonly names!: pulumi.Output<string[]>;
  /** SHA-256 (hex) of the certificate key's SPKI, for DANE TLSA 3 1 1 */
  public readonly spkiSha256!: pulumi.Output<string>;
  /** why the current certificate was issued (e.g. "a third or less of the 90 days lifetime remains ...") */
  public readonly issueReason!: pulumi.Output<string>;

  constructor(name: string, args: AcmeCertificateArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      acmeCertificateProvider(),
      name,
      {
        ...args,
        accountKeyPem: pulumi.secret(args.accountKeyPem),
        certificateKeyPem: pulumi.secret(args.certificateKeyPem),
        dns01: pulumi.secret(args.dns01),
        accountUrl: undefined,
        certificatePem: undefined,
        notBefore: undefined,
        notAfter: undefined,
        issuer: undefined,
        spkiSha256: undefined,
        issueReason: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "accountKeyPem", "certificateKeyPem", "dns01"],
      },
      "mailstack",
      "AcmeCertificate",
    );
  }
}
