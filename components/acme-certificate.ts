// AcmeCertificate: an ACME certificate as a Pulumi resource (dynamic provider, logic in
// components/providers/acme-certificate.ts).
//
// - Orders with the account of an AcmeAccount (its URL and key); never changes the account.
// - Answers DNS-01 through Cloudflare's API or RFC 2136 + TSIG, waits (bounded) until the TXT is at
//   the zone's authoritative servers, and always removes what it wrote.
// - The certificate key stays out of this resource: @pulumi/tls's CertRequest (`<name>-request`,
//   a sibling) signs a certificate request with it once and keeps it in its state, and only that
//   request goes to the provider. Every issue uses it, so DANE TLSA and the box's TLS key survive
//   renewals. The request is replaced, and the certificate re-issued, only with a new key or new
//   names (terraform-provider-tls resource_cert_request.go: every input RequiresReplace).
// - Every `pulumi up` runs diff: it re-issues in place when a third (renewBeforeFraction) or less of
//   the lifetime remains, when the CA's ARI window (RFC 9773) says so, or when names or key change.
//   pulumi.dynamic's DiffResult has no free-text reason: the diff names the trigger as the changed
//   property ("names", "csrPem" or "renewal"), logs the reason, and `issueReason` records it.
// - revokeOnDelete revokes on `pulumi destroy`.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { Dns01Config } from "./providers/acme-certificate";
import { packageProvider } from "./package-provider";

export type { Dns01Config } from "./providers/acme-certificate";

export interface AcmeCertificateArgs {
  /** ACME directory URL: Let's Encrypt production/staging or any RFC 8555 CA */
  directoryUrl: pulumi.Input<string>;
  /** the ordering account's URL: AcmeAccount's `accountUrl` */
  accountUrl: pulumi.Input<string>;
  /** that account's key PEM (secret) */
  accountKeyPem: pulumi.Input<string>;
  /**
   * certificate key PEM (secret), stable across renewals (ECDSA P-256/P-384 or RSA); signs the
   * request (a tls.CertRequest), never sent to this resource's provider
   */
  certificateKeyPem: pulumi.Input<string>;
  /** DNS names; the first is the subject CN */
  names: pulumi.Input<pulumi.Input<string>[]>;
  /** how DNS-01 is answered (credentials: secret; stored encrypted among the inputs, never in the outputs) */
  dns01: pulumi.Input<Dns01Config>;
  /** bound on waiting for the TXT at the zone's authoritative servers; default 120 */
  propagationTimeoutSeconds?: pulumi.Input<number>;
  /** resolvers ("ip" or "ip:port") used to find the zone's authoritative servers; default: the system's */
  propagationResolvers?: pulumi.Input<pulumi.Input<string>[]>;
  /** an extra CA to trust for the ACME server (test CAs such as pebble) */
  extraCaPem?: pulumi.Input<string>;
  /** revoke the certificate on delete (default false); keeps the account key in the outputs (secret) */
  revokeOnDelete?: pulumi.Input<boolean>;
  /** renew when this fraction of the lifetime or less remains (default 1/3) */
  renewBeforeFraction?: pulumi.Input<number>;
}

const provider = packageProvider("mailstack/providers/acme-certificate");

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

  /** the certificate request the orders are finalized with (public; replaced only with a new key or new names) */
  public readonly request: tls.CertRequest;

  constructor(name: string, args: AcmeCertificateArgs, opts?: pulumi.CustomResourceOptions) {
    const names = pulumi.output(args.names);
    const request = new tls.CertRequest(
      `${name}-request`,
      {
        privateKeyPem: args.certificateKeyPem,
        // RFC 5280 4.1.2.4: a CN holds at most 64 characters; the names are in the subjectAltName anyway
        subject: names.apply((n) => (n[0] !== undefined && n[0].length <= 64 ? { commonName: n[0] } : undefined)),
        dnsNames: names,
      },
      { parent: opts?.parent, protect: opts?.protect, retainOnDelete: opts?.retainOnDelete },
    );
    // A request is public; the provider marks nothing of it secret, but it comes from a secret input.
    const csrPem = pulumi.unsecret(request.certRequestPem);
    super(
      provider,
      name,
      {
        directoryUrl: args.directoryUrl,
        accountUrl: args.accountUrl,
        accountKeyPem: pulumi.secret(args.accountKeyPem),
        csrPem,
        names: args.names,
        dns01: pulumi.secret(args.dns01),
        propagationTimeoutSeconds: args.propagationTimeoutSeconds,
        propagationResolvers: args.propagationResolvers,
        extraCaPem: args.extraCaPem,
        revokeOnDelete: args.revokeOnDelete,
        renewBeforeFraction: args.renewBeforeFraction,
        certificatePem: undefined,
        notBefore: undefined,
        notAfter: undefined,
        issuer: undefined,
        spkiSha256: undefined,
        issueReason: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "accountKeyPem", "dns01"] },
      "mailstack",
      "AcmeCertificate",
    );
    this.request = request;
  }
}
