// The dynamic ACME providers' inputs against an ACME testbed (pebble resolving through knot):
// what the provider tests hand AcmeAccount and AcmeCertificate, written once.
import type { AcmeTestbed } from "../../infra/local-internet/pebble";
import { certificateRequestPem } from "../../components/shared/acme/certificate-request";

/** AcmeAccount inputs: an account for `accountKeyPem` at the testbed's pebble. */
export function acmeAccountInputs(bed: AcmeTestbed, accountKeyPem: string): Record<string, unknown> {
  return {
    directoryUrl: bed.pebble.directoryUrl,
    accountKeyPem,
    email: "postmaster@example.test",
    extraCaPem: bed.pebble.listenerCaPem,
  };
}

/**
 * AcmeCertificate inputs for `names`: DNS-01 through the testbed's knot over RFC 2136 (TSIG),
 * propagation checked at knot alone, revoked on delete, with a short back-off so tests stay quick.
 */
export async function acmeCertificateInputs(
  bed: AcmeTestbed,
  account: { accountUrl: string; accountKeyPem: string },
  certificateKeyPem: string,
  names: string[],
): Promise<Record<string, unknown>> {
  return {
    directoryUrl: bed.pebble.directoryUrl,
    accountUrl: account.accountUrl,
    accountKeyPem: account.accountKeyPem,
    csrPem: await certificateRequestPem(certificateKeyPem, names),
    names,
    dns01: {
      provider: "rfc2136",
      server: bed.dns.ipv4,
      tsigName: bed.knot.tsig.name,
      tsigAlgorithm: "hmac-sha256",
      tsigSecret: bed.knot.tsig.secretB64,
    },
    propagationTimeoutSeconds: 10,
    propagationResolvers: [bed.dns.ipv4],
    extraCaPem: bed.pebble.listenerCaPem,
    revokeOnDelete: true,
    backoffMinMs: 100,
  };
}
