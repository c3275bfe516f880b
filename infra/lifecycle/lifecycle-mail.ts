// What a lifecycle checks from outside after every step, as the rest of the internet sees the
// box: which of its ports answer, mail sent to it over SMTP, and that mail read back over IMAPS.
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import nodemailer from "nodemailer";
import { readOverImap, type ImapResult } from "../demo/mail-flows";
import { CLIENT_DOMAIN, type Lifecycle } from "./lifecycle";
import { MAIL_PORTS } from "../../components/shared/mail-ports";

/** maild's ports (SMTP, submission, submissions, HTTP, HTTPS) and Dovecot's IMAPS. */
export const MAILD_PORTS = [MAIL_PORTS.smtp, MAIL_PORTS.submission, MAIL_PORTS.submissions, MAIL_PORTS.http, MAIL_PORTS.https].map(
  (p) => p.port,
);
export const DOVECOT_PORTS = [MAIL_PORTS.imaps.port];

export async function portsAnswering(host: string, ports: number[], timeoutMs = 3000): Promise<Record<number, boolean>> {
  const open = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port, timeout: timeoutMs });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("timeout", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(false));
    });
  return Object.fromEntries(await Promise.all(ports.map(async (p) => [p, await open(p)] as const)));
}

export interface SentMessage {
  to: string;
  messageId: string;
  subject: string;
}

/** One message to `to`, delivered to the box's port 25 as another server would (STARTTLS, the box's certificate verified). */
export async function sendMessage(lc: Lifecycle, to: string, subject: string): Promise<SentMessage> {
  const messageId = `<${randomBytes(8).toString("hex")}@${CLIENT_DOMAIN}>`;
  const transport = nodemailer.createTransport({
    host: lc.hosts.box.ipv4,
    port: 25,
    secure: false,
    requireTLS: true,
    name: CLIENT_DOMAIN,
    tls: { servername: lc.hostname },
  });
  try {
    await transport.sendMail({ from: `sender@${CLIENT_DOMAIN}`, to, subject, text: `${subject}\n`, messageId });
  } finally {
    transport.close();
  }
  return { to, messageId, subject };
}

/** Reads `message` from its recipient's INBOX over IMAPS (Dovecot on 993). */
export async function readMessage(lc: Lifecycle, message: SentMessage): Promise<ImapResult> {
  const user = lc.users.find((u) => u.address === message.to);
  if (!user) throw new Error(`readMessage: ${message.to} is not one of the lifecycle's users`);
  return readOverImap(
    { host: lc.hosts.box.ipv4, servername: lc.hostname, caPem: lc.caRootPem, user: user.address, password: user.password },
    message.messageId,
    lc.hostname,
  );
}
