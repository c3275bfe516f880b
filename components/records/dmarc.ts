// DMARC policy record (RFC 7489).
import type { DmarcSpec } from "../spec";

/** The policy's owner name (RFC 7489 6.1). */
export function dmarcRecordName(domain: string): string {
  return `_dmarc.${domain}`;
}

/**
 * The DMARC record value. RFC 7489 6.4: `v=DMARC1` first, `p=` second; the rest in a fixed
 * order so the content is stable. `pct` is left out at its default 100 (RFC 7489 6.3), `fo=1`
 * (a failure report when any mechanism fails) only when there are `ruf` targets to send it to.
 */
export function dmarcTxt(dmarc: DmarcSpec): string {
  if (!Number.isInteger(dmarc.pct) || dmarc.pct < 0 || dmarc.pct > 100) {
    throw new Error(`dmarc.pct: ${dmarc.pct} is not an integer 0..100 (RFC 7489 6.3)`);
  }
  const tags = ["v=DMARC1", `p=${dmarc.policy}`, `sp=${dmarc.subdomainPolicy}`, `adkim=${dmarc.adkim}`, `aspf=${dmarc.aspf}`];
  if (dmarc.pct !== 100) tags.push(`pct=${dmarc.pct}`);
  if (dmarc.rua.length > 0) tags.push(`rua=${dmarc.rua.map(mailtoUri).join(",")}`);
  if (dmarc.ruf.length > 0) tags.push(`ruf=${dmarc.ruf.map(mailtoUri).join(",")}`, "fo=1");
  return tags.join("; ");
}

/** RFC 7489 6.3: report URIs are comma-separated, so `,` and `!` inside one must be %-encoded. */
function mailtoUri(address: string): string {
  const bare = address.startsWith("mailto:") ? address.slice("mailto:".length) : address;
  return `mailto:${bare.replace(/[,!;]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}
