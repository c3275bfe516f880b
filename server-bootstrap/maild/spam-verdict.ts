// What maild does with rspamd's answer at the end of DATA. Pure: the reply in, the SMTP outcome,
// the header fields to add and the fields to log out.
//
// rspamd checks SPF, DKIM, DMARC and ARC (its spf, dkim, dmarc and arc modules); maild verifies
// nothing itself. DMARC `p=reject` is enforced here, from the DMARC_POLICY_REJECT symbol, rather
// than with the dmarc module's `actions` (which would force rspamd's own `reject` and its own
// text): the symbol is inserted only when the effective policy is reject after `sp=` and `pct=`
// sampling (src/plugins/lua/dmarc.lua, dmarc_validate_policy and handle_dmarc_failure at tag
// 3.4); a message sampled out is marked with the option "sampled_out" and kept.
import type { RspamdReply } from "./rspamd-client";

export type SpamOutcome =
  /** 550: spam by score, or a DMARC p=reject failure */
  | { kind: "reject"; reason: "spam" | "dmarc"; code: 550; text: string }
  /** 451: greylisted, rate limited, or another soft reject; the client tries again later */
  | { kind: "tempfail"; reason: "greylist" | "rate-limit" | "soft-reject"; code: 451; text: string }
  /** accepted, into the Junk folder (inbound) */
  | { kind: "junk" }
  /** accepted, into the inbox */
  | { kind: "inbox" };

export interface SpamVerdict {
  outcome: SpamOutcome;
  /** header fields to prepend, each ending in CRLF (Authentication-Results and rspamd's spam fields) */
  headers: string;
  /** names (lowercase) of the message's own fields to drop before adding ours */
  removeHeaders: string[];
  /** the RFC 8601 results, for logs */
  auth: { spf: string; dkim: string; dmarc: string; arc: string };
}

// Symbol -> RFC 8601 result, as rspamd's own Authentication-Results writer maps them
// (lualib/lua_auth_results.lua default_settings at tag 3.4).
const SPF: [string, string][] = [
  ["R_SPF_ALLOW", "pass"],
  ["R_SPF_FAIL", "fail"],
  ["R_SPF_SOFTFAIL", "softfail"],
  ["R_SPF_NEUTRAL", "neutral"],
  ["R_SPF_DNSFAIL", "temperror"],
  ["R_SPF_PERMFAIL", "permerror"],
  ["R_SPF_NA", "none"],
];
const DKIM: [string, string][] = [
  ["R_DKIM_ALLOW", "pass"],
  ["R_DKIM_REJECT", "fail"],
  ["R_DKIM_TEMPFAIL", "temperror"],
  ["R_DKIM_PERMFAIL", "permerror"],
  ["R_DKIM_NA", "none"],
];
const DMARC: [string, string][] = [
  ["DMARC_POLICY_ALLOW", "pass"],
  ["DMARC_POLICY_REJECT", "fail"],
  ["DMARC_POLICY_QUARANTINE", "fail"],
  ["DMARC_POLICY_SOFTFAIL", "fail"],
  ["DMARC_BAD_POLICY", "permerror"],
  ["DMARC_DNSFAIL", "temperror"],
  ["DMARC_NA", "none"],
];
const ARC: [string, string][] = [
  ["ARC_ALLOW", "pass"],
  ["ARC_REJECT", "fail"],
  ["ARC_INVALID", "permerror"],
  ["ARC_DNSFAIL", "temperror"],
  ["ARC_NA", "none"],
];

// DKIM_TRACE's options are "<d=>:<result>" per signature checked: + pass, - fail, ? temperror,
// ~ permerror (src/plugins/dkim_check.c at tag 3.4; test/integration/operations.test.ts reads
// Debian's rspamd 3.4 through it).
const DKIM_TRACE_RESULT: Record<string, string> = { "+": "pass", "-": "fail", "?": "temperror", "~": "permerror" };

/** Each DKIM signature rspamd checked: its d= (lowercase, no trailing dot) and its result. */
export function dkimTrace(symbols: Record<string, { options?: string[] }>): { domain: string; result: string }[] {
  return (symbols.DKIM_TRACE?.options ?? []).flatMap((o) => {
    const m = /^(.+):([-+?~])$/.exec(o);
    return m ? [{ domain: m[1].toLowerCase().replace(/\.$/, ""), result: DKIM_TRACE_RESULT[m[2]] }] : [];
  });
}

function result(reply: RspamdReply, table: [string, string][]): string {
  const found = table.find(([symbol]) => symbol in reply.symbols);
  return found ? found[1] : "none";
}

/**
 * The symbol our ratelimit.conf names `info_symbol`: inserted beside the soft reject a limit causes
 * (src/plugins/lua/ratelimit.lua, the bucket check callback, at tag 3.4).
 */
export const RATELIMIT_SYMBOL = "RATELIMITED";

/**
 * rspamd's text for a reply, kept to printable ASCII on one line (it may quote message content, e.g.
 * a rate limit's name), or `fallback`.
 */
function replyText(reply: RspamdReply, fallback: string): string {
  const t = (reply.smtpMessage ?? "").replace(/[^\x20-\x7e]/g, " ").trim();
  return t ? t.slice(0, 200) : fallback;
}

/**
 * A header field from rspamd's reply as it goes into the message: `Name: value` with every line
 * break CRLF and every continuation line starting with whitespace, so a value can never start a
 * field of its own (RFC 5322 2.2.3).
 */
export function headerField(name: string, value: string): string {
  const lines = value.split(/\r?\n/);
  const folded = lines.map((l, i) => (i === 0 || /^[ \t]/.test(l) ? l : `\t${l}`)).filter((l, i) => i === 0 || l.trim() !== "");
  return `${name}: ${folded.join("\r\n")}\r\n`;
}

export interface VerdictContext {
  /** submission: the sender is our own authenticated user */
  authenticated: boolean;
}

export function spamVerdict(reply: RspamdReply, ctx: VerdictContext): SpamVerdict {
  const auth = { spf: result(reply, SPF), dkim: result(reply, DKIM), dmarc: result(reply, DMARC), arc: result(reply, ARC) };
  // A submission is sent on as the user wrote it: rspamd's spam fields are for incoming mail.
  const add = ctx.authenticated ? [] : reply.addHeaders;
  const headers = add.map((h) => headerField(h.name, h.value)).join("");
  const removeHeaders = ctx.authenticated
    ? []
    : reply.removeHeaders
        .map((h) => h.toLowerCase())
        // Other hosts' Authentication-Results stay (RFC 8601 5); maild removes only the ones that
        // claim our authserv-id (trace-headers.ts isForgedAuthResults).
        .filter((h) => h !== "authentication-results");
  const verdict = (outcome: SpamOutcome): SpamVerdict => ({ outcome, headers, removeHeaders, auth });

  if (reply.action === "reject") {
    return verdict({ kind: "reject", reason: "spam", code: 550, text: `5.7.1 Message refused as spam: ${replyText(reply, "spam")}` });
  }
  const dmarcReject = reply.symbols.DMARC_POLICY_REJECT;
  if (!ctx.authenticated && dmarcReject && !dmarcReject.options.includes("sampled_out")) {
    // options[0] is "<policy domain> : <reason>" (dmarc.lua handle_dmarc_failure)
    const domain = (dmarcReject.options[0] ?? "").split(" : ")[0].replace(/[^\x21-\x7e]/g, "") || "the author's domain";
    return verdict({
      kind: "reject",
      reason: "dmarc",
      code: 550,
      text: `5.7.1 Message refused: DMARC policy of ${domain} is reject and the message fails DMARC`,
    });
  }
  if (reply.action === "soft reject") {
    if (RATELIMIT_SYMBOL in reply.symbols) {
      return verdict({
        kind: "tempfail",
        reason: "rate-limit",
        code: 451,
        text: `4.7.1 Too many messages, try again later (${replyText(reply, "rate limit exceeded")})`,
      });
    }
    // GREYLIST carries "greylisted" when this message was held back, "pass" once it is let through (greylist.lua)
    if (reply.symbols.GREYLIST?.options[0] === "greylisted") {
      return verdict({ kind: "tempfail", reason: "greylist", code: 451, text: `4.7.1 Greylisted: ${replyText(reply, "try again later")}` });
    }
    return verdict({ kind: "tempfail", reason: "soft-reject", code: 451, text: `4.7.1 ${replyText(reply, "Try again later")}` });
  }
  if (!ctx.authenticated && (reply.action === "add header" || reply.action === "rewrite subject")) return verdict({ kind: "junk" });
  return verdict({ kind: "inbox" });
}
