// The messages the server writes itself (alerts, the digest, TLSRPT and DMARC reports): a text
// part and optional attachments, CRLF line ends and 7-bit content (base64 attachments,
// quoted-printable text), so they survive any hop unchanged and their DKIM signatures hold.
import { randomBytes } from "node:crypto";
import { rfc5322Date } from "../trace-headers";

export interface Attachment {
  contentType: string;
  filename: string;
  data: Buffer;
}

export interface MessageInput {
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** the host name used in Message-ID */
  hostname: string;
  attachments?: Attachment[];
  /** extra header fields, e.g. TLS-Report-Domain */
  headers?: Record<string, string>;
  /** RFC 6522 multipart/report with this report-type (RFC 8460 5.3: "tlsrpt") instead of multipart/mixed */
  reportType?: string;
  date?: Date;
}

/** RFC 2045 6.7 quoted-printable of UTF-8 text with CRLF line ends. */
function quotedPrintable(text: string): string {
  const lines = text.replace(/\r?\n/g, "\n").split("\n");
  return lines
    .map((line) => {
      let out = "";
      let width = 0;
      for (const byte of Buffer.from(line, "utf8")) {
        const c = String.fromCharCode(byte);
        const enc = (byte >= 33 && byte <= 126 && c !== "=") || byte === 32 ? c : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
        if (width + enc.length > 75) {
          out += "=\r\n";
          width = 0;
        }
        out += enc;
        width += enc.length;
      }
      // a space at the end of a line would be lost in transport (RFC 2045 6.7 rule 3)
      return out.endsWith(" ") ? `${out.slice(0, -1)}=20` : out;
    })
    .join("\r\n");
}

/** RFC 2047 encoded-word when the subject is not ASCII. */
function headerText(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, "utf8").toString("base64")}?=`;
}

function base64Lines(data: Buffer): string {
  return (data.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n");
}

export function composeMessage(m: MessageInput): { message: Buffer; messageId: string } {
  const messageId = `<${Date.now().toString(36)}.${randomBytes(8).toString("hex")}@${m.hostname}>`;
  const head = [
    `From: ${m.from}`,
    `To: ${m.to.join(", ")}`,
    `Subject: ${headerText(m.subject)}`,
    `Date: ${rfc5322Date(m.date ?? new Date())}`,
    `Message-ID: ${messageId}`,
    "MIME-Version: 1.0",
    "Auto-Submitted: auto-generated",
    ...Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
  ];
  const textPart = `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(m.text)}\r\n`;
  const attachments = m.attachments ?? [];
  if (attachments.length === 0 && !m.reportType) return { message: Buffer.from(`${head.join("\r\n")}\r\n${textPart}`, "utf8"), messageId };
  const boundary = `=_maild_${randomBytes(12).toString("hex")}`;
  const type = m.reportType ? `multipart/report; report-type="${m.reportType}"` : "multipart/mixed";
  const parts = [
    textPart,
    ...attachments.map(
      (a) =>
        `Content-Type: ${a.contentType}; name="${a.filename}"\r\nContent-Disposition: attachment; filename="${a.filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(a.data)}\r\n`,
    ),
  ];
  const body = parts.map((p) => `--${boundary}\r\n${p}`).join("") + `--${boundary}--\r\n`;
  return {
    message: Buffer.from(`${head.join("\r\n")}\r\nContent-Type: ${type}; boundary="${boundary}"\r\n\r\n${body}`, "utf8"),
    messageId,
  };
}
