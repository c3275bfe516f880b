// How each outcome of a delivery attempt becomes a result per recipient: a server's reply
// (RFC 5321 4.2.1: 2yz done, 4yz transient, 5yz permanent, with the RFC 3463 enhanced code), a
// route that cannot be used, or a transaction that broke off.
import type { Route } from "./mx";
import type { DeliveryAttempt, RecipientResult } from "./types";

// RFC 3463: "class.subject.detail" after the basic code, in the same class.
const ENHANCED = /^([245])\d\d[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/;

export function oneLine(reply: string): string {
  return reply.replace(/\r?\n/g, " ").trim();
}

/** A recipient's result from a server reply. */
export function resultFromReply(recipient: string, reply: string, remoteMta: string): RecipientResult {
  const text = oneLine(reply);
  const basic = text.charAt(0);
  const m = ENHANCED.exec(text);
  const enhancedCode = m && m[1] === m[2] ? `${m[2]}.${m[3]}.${m[4]}` : `${basic === "2" || basic === "5" ? basic : "4"}.0.0`;
  const status = basic === "2" ? "delivered" : basic === "5" ? "failed" : "deferred";
  return { recipient, status, enhancedCode, diagnostic: text, remoteReply: true, remoteMta };
}

/** Why an attempt did not get as far as a transaction with one host. */
export interface Failure {
  enhancedCode: string;
  diagnostic: string;
  remoteReply: boolean;
  remoteMta?: string;
}

export function everyone(attempt: DeliveryAttempt, status: RecipientResult["status"], f: Failure): RecipientResult[] {
  return attempt.recipients.map((recipient) => ({ recipient, status, ...f }));
}

/** What a route that leads to no host means for every recipient, and the reason to log. */
export function routeFailure(
  route: Exclude<Route, { kind: "hosts" }>,
  domain: string,
  ownHostname: string,
): { status: RecipientResult["status"]; reason: string; failure: Failure } {
  const failed = (reason: string, enhancedCode: string, diagnostic: string) => ({
    status: "failed" as const,
    reason,
    failure: { enhancedCode, diagnostic, remoteReply: false },
  });
  switch (route.kind) {
    case "nxdomain":
      return failed("nxdomain", "5.1.2", `domain ${domain} does not exist (DNS NXDOMAIN)`);
    case "null-mx":
      return failed("null-mx", "5.1.10", `domain ${domain} does not accept mail (null MX, RFC 7505)`);
    case "no-mail-host":
      // RFC 3463 X.4.4: no routing information, e.g. a name with only an SOA.
      return failed("no-mail-host", "5.4.4", `domain ${domain} has no MX and no address records`);
    case "loop":
      return failed("loop", "5.4.6", `mail for ${domain} loops back to myself (${ownHostname} is its best MX)`);
    case "temporary":
      return { status: "deferred", reason: route.reason, failure: { enhancedCode: "4.4.3", diagnostic: route.reason, remoteReply: false } };
  }
}

/** nodemailer's SMTPConnection errors: a Node error with the command and reply it failed on. */
export type SmtpError = Error & {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
};

/** After the server took the message: each recipient's own RCPT refusal, or the DATA reply. */
export function sentResults(
  attempt: DeliveryAttempt,
  mx: string,
  info: { accepted: string[]; response: string; rejectedErrors?: SmtpError[] },
): RecipientResult[] {
  const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient, e]));
  return attempt.recipients.map((r) => {
    const e = rejected.get(r);
    if (e?.response) return resultFromReply(r, e.response, mx);
    if (info.accepted.includes(r)) return resultFromReply(r, info.response, mx);
    return {
      recipient: r,
      status: "deferred",
      enhancedCode: "4.4.2",
      diagnostic: "no reply for this recipient",
      remoteReply: false,
      remoteMta: mx,
    };
  });
}

/**
 * After a transaction failed: the MAIL reply for everyone, else each recipient's RCPT refusal
 * (`rcptRefusals`: the ones the connection kept), else the failing reply or the broken connection.
 */
export function failedResults(attempt: DeliveryAttempt, mx: string, err: SmtpError, rcptRefusals: SmtpError[]): RecipientResult[] {
  // MAIL FROM refused: its reply is every recipient's (pipelined RCPTs only got "need MAIL").
  const mailReply = err.command === "MAIL FROM" ? err.response : undefined;
  if (mailReply) return attempt.recipients.map((r) => resultFromReply(r, mailReply, mx));
  if (err.command === "MAIL FROM" && err.code === "EMESSAGE") {
    // RFC 1870: the server announced a SIZE limit below the message's size.
    return everyone(attempt, "failed", {
      enhancedCode: "5.3.4",
      diagnostic: `message size ${attempt.size} exceeds the size limit of ${mx}: ${err.message}`,
      remoteReply: false,
      remoteMta: mx,
    });
  }
  const refused = new Map((err.rejectedErrors ?? rcptRefusals).map((e) => [e.recipient, e]));
  return attempt.recipients.map((r): RecipientResult => {
    const own = refused.get(r);
    if (own?.response) return resultFromReply(r, own.response, mx);
    if (err.response) return resultFromReply(r, err.response, mx);
    if (err.code === "ESTREAM")
      return {
        recipient: r,
        status: "deferred",
        enhancedCode: "4.3.0",
        diagnostic: `cannot read the queued message: ${err.message}`,
        remoteReply: false,
      };
    // The connection broke mid-transaction (RFC 5321 4.1.1.4 / RFC 1047: it may even have
    // been after the server took the message; the queue accepts that duplicate risk).
    return {
      recipient: r,
      status: "deferred",
      enhancedCode: "4.4.2",
      diagnostic: `connection to ${mx} lost: ${err.message}`,
      remoteReply: false,
      remoteMta: mx,
    };
  });
}
