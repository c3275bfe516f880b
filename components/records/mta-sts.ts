// MTA-STS (RFC 8461): the policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt
// and the TXT record announcing its version.
import { createHash } from "node:crypto";
import type { DomainSpec } from "../spec";

/** RFC 8461 3.2: max_age is at most 31557600 seconds (about a year). */
export const MTA_STS_MAX_AGE_LIMIT = 31557600;

/** Where senders fetch the policy (RFC 8461 3.3). */
export function mtaStsPolicyHost(domain: string): string {
  return `mta-sts.${domain}`;
}

export function mtaStsRecordName(domain: string): string {
  return `_mta-sts.${domain}`;
}

/**
 * The policy file (RFC 8461 3.2): `version` first, then `mode`, one `mx` line per MX host,
 * `max_age`; every line ends in CRLF.
 */
export function mtaStsPolicy(domain: DomainSpec, mxHosts: string[]): string {
  const { mode, maxAge } = domain.mtaSts;
  if (!Number.isInteger(maxAge) || maxAge < 0 || maxAge > MTA_STS_MAX_AGE_LIMIT) {
    throw new Error(`${domain.name}: mtaSts.maxAge ${maxAge} is not an integer 0..${MTA_STS_MAX_AGE_LIMIT} (RFC 8461 3.2)`);
  }
  if (mxHosts.length === 0) throw new Error(`${domain.name}: an MTA-STS policy needs at least one mx host`);
  const lines = ["version: STSv1", `mode: ${mode}`, ...mxHosts.map((host) => `mx: ${host.toLowerCase()}`), `max_age: ${maxAge}`];
  return lines.map((line) => `${line}\r\n`).join("");
}

/**
 * The policy id, derived from the policy text so it changes exactly when the policy does
 * (RFC 8461 3.1: senders refetch when the id changes; 1-32 alphanumerics). 20 hex digits of
 * SHA-256 = 80 bits.
 */
export function mtaStsId(policy: string): string {
  return createHash("sha256").update(policy, "utf8").digest("hex").slice(0, 20);
}

/** The `_mta-sts` TXT value (RFC 8461 3.1). */
export function mtaStsTxt(policy: string): string {
  return `v=STSv1; id=${mtaStsId(policy)}`;
}
