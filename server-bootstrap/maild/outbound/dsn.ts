// Delivery Status Notifications: the bounce and delay messages the queue sends to a message's
// (non-null) sender. RFC 3464 (message/delivery-status) inside RFC 6522 multipart/report:
//   1. text/plain: what happened, for a human;
//   2. message/delivery-status: one per-message group, then one group per recipient;
//   3. text/rfc822-headers (RFC 6522 3): the original header section alone. Returning the
//      body would pass a spammer's payload on to the forged sender (backscatter).
// A DSN is itself sent with the null reverse-path (RFC 5321 4.5.5), so it can never cause another.
// Pure: the caller supplies the date; the Message-ID and MIME boundary are fresh random values.
import { randomBytes } from "node:crypto";
import { rfc5322Date } from "../trace-headers";

export interface DsnRecipient {
  address: string;
  /** RFC 3464 2.3.3; the queue reports failures and delays only (no NOTIFY=SUCCESS support) */
  action: "failed" | "delayed";
  /** RFC 3463 status, e.g. "5.1.1", "4.4.7" */
  status: string;
  /** the MX host that gave the answer (Remote-MTA: dns; ...) */
  remoteMta?: string;
  /** the remote server's reply, verbatim (Diagnostic-Code: smtp; ...) */
  smtpReply?: string;
  /** why, in words, for the text part */
  reason: string;
  lastAttempt?: Date;
  /** action=delayed: when the queue will give up (Will-Retry-Until) */
  willRetryUntil?: Date;
}

export interface DsnInput {
  /** our host name: Reporting-MTA and the MAILER-DAEMON address */
  hostname: string;
  /** the original reverse-path, the DSN's recipient; never "" (RFC 5321 6.1) */
  to: string;
  /** our queue id of the original message, for the sender to quote to the postmaster */
  queueId: string;
  arrivalDate: Date;
  /** RFC 3461 ENVID from the original MAIL FROM, when the client gave one (xtext, as received) */
  envelopeId?: string;
  recipients: DsnRecipient[];
  /** the original message's header section, fields ending in CRLF */
  originalHeader: Buffer;
  date: Date;
}

export interface Dsn {
  message: Buffer;
  messageId: string;
}

const CRLF = Buffer.from("\r\n");

export function buildDsn(input: DsnInput): Dsn {
  if (input.to === "") throw new Error(`DSN for queue id ${input.queueId}: the null sender never gets one (RFC 5321 6.1)`);
  if (input.recipients.length === 0) throw new Error(`DSN for queue id ${input.queueId}: no recipients to report`);
  const failed = input.recipients.some((r) => r.action === "failed");
  const messageId = `<${input.date.getTime().toString(36)}.${randomBytes(8).toString("hex")}@${input.hostname}>`;
  const boundary = `=_maild_${randomBytes(12).toString("hex")}`;

  const text = notification(input, failed);
  const status = deliveryStatus(input);
  const header = input.originalHeader;
  const eightBit = !isAscii(Buffer.from(text)) || !isAscii(Buffer.from(status)) || !isAscii(header);

  const top =
    `From: "Mail Delivery System" <MAILER-DAEMON@${input.hostname}>\r\n` +
    `To: <${oneLine(input.to)}>\r\n` +
    `Subject: ${failed ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)"}\r\n` +
    `Date: ${rfc5322Date(input.date)}\r\n` +
    `Message-ID: ${messageId}\r\n` +
    // RFC 3834 5: an automatic response; well-behaved responders do not answer it
    `Auto-Submitted: auto-replied\r\n` +
    `MIME-Version: 1.0\r\n` +
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"\r\n` +
    `Content-Transfer-Encoding: ${eightBit ? "8bit" : "7bit"}\r\n` +
    `\r\n` +
    `This is a MIME-encapsulated message.\r\n` +
    `\r\n`;
  const parts = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\n` +
        `Content-Description: Notification\r\n` +
        `Content-Type: text/plain; charset=utf-8\r\n` +
        `Content-Transfer-Encoding: ${isAscii(Buffer.from(text)) ? "7bit" : "8bit"}\r\n` +
        `\r\n` +
        text +
        `\r\n` +
        `--${boundary}\r\n` +
        `Content-Description: Delivery report\r\n` +
        `Content-Type: message/delivery-status\r\n` +
        `\r\n` +
        status +
        `\r\n` +
        `--${boundary}\r\n` +
        `Content-Description: ${failed ? "Undelivered" : "Delayed"} message headers\r\n` +
        `Content-Type: text/rfc822-headers\r\n` +
        `Content-Transfer-Encoding: ${isAscii(header) ? "7bit" : "8bit"}\r\n` +
        `\r\n`,
      "utf8",
    ),
    header,
    Buffer.from(`${header.length > 0 && !header.subarray(-2).equals(CRLF) ? "\r\n" : ""}\r\n--${boundary}--\r\n`),
  ]);
  return { message: Buffer.concat([Buffer.from(top), parts]), messageId };
}

function notification(input: DsnInput, failed: boolean): string {
  const lines = [`This is the mail system at host ${input.hostname}.`, ""];
  const failures = input.recipients.filter((r) => r.action === "failed");
  const delays = input.recipients.filter((r) => r.action === "delayed");
  if (failed) {
    lines.push(
      "Your message could not be delivered to the recipients below. The mail system has",
      "given up on them; sending the message again will not help unless the problem is fixed.",
      "",
      ...failures.map(recipientLine),
      "",
    );
  }
  if (delays.length > 0) {
    const until = delays[0].willRetryUntil;
    lines.push(
      "Your message has not been delivered yet to the recipients below. This is a warning",
      `only: the mail system keeps trying${until ? ` until ${rfc5322Date(until)},` : ""}`,
      "and you do not need to send it again.",
      "",
      ...delays.map(recipientLine),
      "",
    );
  }
  lines.push(
    `The message arrived on ${rfc5322Date(input.arrivalDate)} (queue id ${input.queueId}).`,
    "Its header is attached; give this notice to your postmaster if you need help.",
  );
  return lines.map((l) => l + "\r\n").join("");
}

function recipientLine(r: DsnRecipient): string {
  return `<${oneLine(r.address)}>: ${oneLine(r.reason)}`;
}

/** RFC 3464 2.1-2.3: per-message fields, then a blank line before each per-recipient group. */
function deliveryStatus(input: DsnInput): string {
  const groups: string[][] = [];
  const message: string[] = [];
  if (input.envelopeId !== undefined) message.push(field("Original-Envelope-Id", input.envelopeId));
  message.push(field("Reporting-MTA", `dns; ${input.hostname}`));
  message.push(field("Arrival-Date", rfc5322Date(input.arrivalDate)));
  groups.push(message);
  for (const r of input.recipients) {
    const g = [field("Final-Recipient", `rfc822; ${r.address}`), field("Action", r.action), field("Status", r.status)];
    if (r.remoteMta) g.push(field("Remote-MTA", `dns; ${r.remoteMta}`));
    if (r.smtpReply) g.push(field("Diagnostic-Code", `smtp; ${r.smtpReply}`));
    if (r.lastAttempt) g.push(field("Last-Attempt-Date", rfc5322Date(r.lastAttempt)));
    if (r.action === "delayed" && r.willRetryUntil) g.push(field("Will-Retry-Until", rfc5322Date(r.willRetryUntil)));
    groups.push(g);
  }
  return groups.map((g) => g.join("")).join("\r\n");
}

/**
 * One header-style field, folded at spaces to keep lines near 78 characters (RFC 5322 2.1.1);
 * the value is put on one line first, so no input can start a field or a group of its own.
 */
function field(name: string, value: string): string {
  const words = oneLine(value).split(" ");
  let line = `${name}: ${words[0]}`;
  let out = "";
  for (const w of words.slice(1)) {
    if (line.length + 1 + w.length > 78) {
      out += line + "\r\n";
      line = ` ${w}`;
    } else line += ` ${w}`;
  }
  return out + line + "\r\n";
}

/** CR, LF and other controls become single spaces: remote replies are multi-line. */
function oneLine(s: string): string {
  return s
    .replace(/\p{Cc}+/gu, " ")
    .replace(/ {2,}/g, " ")
    .trim();
}

function isAscii(b: Buffer): boolean {
  return b.every((c) => c < 0x80);
}
