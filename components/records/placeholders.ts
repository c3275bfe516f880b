// Stand-in facts for planning the record SET before the real values exist (the planner's
// output shape depends only on which optional facts are present, never on their values).
// A Pulumi component plans with these to learn the keys, creates one resource per key, and
// fills each resource's content from a second plan over the real values.
import type { DomainSpec } from "../spec";
import { dkimSelectors } from "./dkim";
import type { DkimPublicKey, HostFacts } from "./types";

export interface PresentFacts {
  /** the TLS key's SPKI hash will be known (TLSA is planned) */
  tlsSpkiSha256?: boolean;
  /** the ACME account URL will be known (CAA carries accounturi) */
  acmeAccountUri?: boolean;
}

export function placeholderHostFacts(hostname: string, present: PresentFacts = {}): HostFacts {
  return {
    hostname,
    // The unspecified addresses (RFC 1122 3.2.1.3, RFC 4291 2.5.2): obviously no real host.
    ipv4: "0.0.0.0",
    ipv6: "::",
    ...(present.tlsSpkiSha256 ? { tlsSpkiSha256: "0".repeat(64) } : {}),
    ...(present.acmeAccountUri ? { acmeAccountUri: "https://acme.invalid/account/0" } : {}),
  };
}

/** One syntactically valid stand-in key per selector the domain's spec publishes. */
export function placeholderDkimKeys(domain: DomainSpec): DkimPublicKey[] {
  return domain.dkim.generations.flatMap((generation) => {
    const s = dkimSelectors(generation);
    return [
      { selector: s.rsa, algorithm: "rsa" as const, publicKeyB64: "AAAA" },
      { selector: s.ed25519, algorithm: "ed25519" as const, publicKeyB64: Buffer.alloc(32).toString("base64") },
    ];
  });
}
