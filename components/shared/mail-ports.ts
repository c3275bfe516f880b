// The TCP ports a mailstack host answers on: one table for the firewall (components/mail-host.ts),
// the daemons' defaults (maild's listen addresses, Dovecot), the client settings maild publishes
// (autoconfig, autodiscover), `mailstack check` and the local demo.

/** How a client starts TLS on a port. */
export type PortTls = "starttls" | "implicit" | "none";

export interface MailPort {
  port: number;
  protocol: "smtp" | "imap" | "http";
  tls: PortTls;
  /** why the port is open, for people (firewall rule descriptions, reports) */
  why: string;
}

export const MAIL_PORTS = {
  smtp: { port: 25, protocol: "smtp", tls: "starttls", why: "SMTP from other mail servers (RFC 5321)" },
  http: { port: 80, protocol: "http", tls: "none", why: "ACME HTTP-01 and redirect to HTTPS" },
  imap: { port: 143, protocol: "imap", tls: "starttls", why: "IMAP with STARTTLS (RFC 9051)" },
  https: { port: 443, protocol: "http", tls: "implicit", why: "MTA-STS policy, autoconfig, autodiscover" },
  submissions: { port: 465, protocol: "smtp", tls: "implicit", why: "Submission over implicit TLS (RFC 8314)" },
  submission: { port: 587, protocol: "smtp", tls: "starttls", why: "Submission with STARTTLS (RFC 6409)" },
  imaps: { port: 993, protocol: "imap", tls: "implicit", why: "IMAP over implicit TLS (RFC 8314)" },
} as const satisfies Record<string, MailPort>;

export type MailService = keyof typeof MAIL_PORTS;

/** Every port, in ascending order. */
export const PUBLIC_TCP_PORTS: ReadonlyArray<{ port: number; why: string }> = Object.values(MAIL_PORTS)
  .map(({ port, why }) => ({ port, why }))
  .sort((a, b) => a.port - b.port);
