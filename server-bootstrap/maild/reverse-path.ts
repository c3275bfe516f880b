// The reverse-path of mail maild sends on, and who may get a delivery status notification.
//
// Forwarding. Mail an alias sends on to another server leaves with an SRS address in the alias's
// domain (srs.ts): SPF at the destination checks the MAIL FROM domain (RFC 7208 2.4), and ours
// authorizes us where the original sender's would not; a bounce comes back to us, where the SRS
// address is checked before it goes on. A sender in one of our own domains is left as it is (our
// SPF already covers it, and its bounces come to us anyway: postsrsd srs_forward does the same
// for its own domain); so is the null sender (RFC 5321 4.5.5: a bounce is never rewritten into
// something that can be bounced).
//
// Notifications. A DSN goes to the reverse-path (RFC 3464 2, RFC 5321 4.5.5), which on port 25
// nobody has verified: DSNs to forged senders are backscatter, and RFC 5321 6.2 says notices for
// hostile content should not be sent unless they will be usefully delivered. Postfix with
// postsrsd bounces to whatever SRS decodes to. maild notifies only a sender it has reason to
// believe sent the message:
//   - submission (587/465): the authenticated user, who owns the address (submission.ts);
//   - port 25: SPF passed for the MAIL FROM domain itself (RFC 7208 2.4: the domain authorized
//     the client to use it), or a DKIM signature verified whose d= is that domain or a parent of
//     it (the domain's owner signed the message; RFC 6376 3.5, the relaxed alignment of RFC 7489
//     3.1.1 without the public suffix list, so a bare top-level domain never counts). rspamd is
//     the verifier (spam-check.ts): its SPF result is about the MAIL FROM domain (the HELO name
//     only for the null sender: https://docs.rspamd.com/modules/spf), its DKIM_TRACE lists each
//     signature's d= and result (rspamdSenderAuth);
//   - the null sender never (RFC 5321 4.5.5, 6.1: no notice about a notice).
// A forwarded message from anyone else is still forwarded; if the destination refuses it, the
// failure is logged and no DSN goes anywhere (Postfix notify_classes: a notice nobody can use
// is dropped).
import { dkimTrace, type SpamVerdict } from "./spam-verdict";
import type { RspamdReply } from "./rspamd-client";
import type { Router } from "./router";

/** The MAIL FROM with which the queue sends on mail an alias in `forwardedBy` forwards. */
export function forwardingReversePath(sender: string, forwardedBy: string | undefined, router: Router): string {
  if (sender === "" || forwardedBy === undefined || !router.srs) return sender;
  const domain = sender.slice(sender.lastIndexOf("@") + 1);
  if (router.isLocalDomain(domain)) return sender;
  return router.srs.forward(sender, forwardedBy);
}

/** What the verifier found about the senders of a message (senderVerified). */
export interface SenderAuth {
  /** the SPF result (RFC 8601 name) */
  spf: string;
  /** the domain SPF evaluated (the MAIL FROM domain, or the HELO name for the null sender) */
  spfDomain?: string;
  /** lowercase d= of every DKIM signature that verified */
  dkimPassDomains: string[];
}

/** SenderAuth from rspamd's verdict on a message with this MAIL FROM (see above). */
export function rspamdSenderAuth(sender: string, verdict: Pick<SpamVerdict, "auth"> & { symbols: RspamdReply["symbols"] }): SenderAuth {
  const at = sender.lastIndexOf("@");
  return {
    spf: verdict.auth.spf,
    ...(sender !== "" && at >= 0 ? { spfDomain: sender.slice(at + 1).toLowerCase() } : {}),
    dkimPassDomains: dkimTrace(verdict.symbols)
      .filter((d) => d.result === "pass")
      .map((d) => d.domain),
  };
}

/** Whether the sender of a message received on port 25 may be sent DSNs about it (see above). */
export function senderVerified(sender: string, verdict: SenderAuth): boolean {
  const at = sender.lastIndexOf("@");
  if (sender === "" || at < 0) return false;
  const domain = sender
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, "");
  if (verdict.spf === "pass" && verdict.spfDomain?.toLowerCase() === domain) return true;
  return verdict.dkimPassDomains.some((d) => d.includes(".") && (d === domain || domain.endsWith(`.${d}`)));
}
