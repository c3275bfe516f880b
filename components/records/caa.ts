// CAA records (RFC 8659) restricting certificate issuance to the configured ACME CA.
import type { CaaData } from "./types";

export interface CaaOptions {
  /** The CA's issuer domain name (RFC 8659 4.2), e.g. letsencrypt.org */
  caaIdentity: string;
  /** ACME account URL; binds issuance to our account (RFC 8657 3). */
  accountUri?: string;
}

/**
 * The property set at the domain apex, in a fixed order:
 * - `issue`: only this CA (RFC 8659 4.2), only our account once known (RFC 8657 3), only by the
 *   challenge types we use (RFC 8657 4, ACME method labels);
 * - `issuewild ";"`: no wildcard certificates at all (RFC 8659 4.3), none are needed.
 * No `iodef`: CAs are not required to send reports (RFC 8659 4.4) and the major ACME CAs do not.
 */
export function caaProperties(options: CaaOptions): CaaData[] {
  const issue = [options.caaIdentity.toLowerCase()];
  if (options.accountUri !== undefined) issue.push(`accounturi=${options.accountUri}`);
  issue.push("validationmethods=dns-01,http-01");
  return [
    { flags: 0, tag: "issue", value: issue.join("; ") },
    { flags: 0, tag: "issuewild", value: ";" },
  ];
}

/** Presentation form (RFC 8659 4.1.1), which is also how Cloudflare shows CAA content. */
export function caaContent(data: CaaData): string {
  return `${data.flags} ${data.tag} "${data.value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
