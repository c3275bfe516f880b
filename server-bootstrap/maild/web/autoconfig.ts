// Thunderbird autoconfig ("clientConfig" v1.1), served at
// https://autoconfig.<domain>/mail/config-v1.1.xml and
// https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml.
// Format: https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat
// Submission: RFC 8314 3.3 prefers implicit TLS (465); 587 with STARTTLS is listed second for
// networks that block 465.
import { xmlEscape } from "./xml-escape";
import { MAIL_PORTS } from "../../../components/shared/mail-ports";

export interface AutoconfigInput {
  /** the mail domain the client asked about, e.g. example.com */
  domain: string;
  /** the mail host FQDN serving IMAP and submission, e.g. mail.example.com */
  hostname: string;
}

export function autoconfigXml({ domain, hostname }: AutoconfigInput): string {
  const d = xmlEscape(domain);
  const h = xmlEscape(hostname);
  const server = (tag: "incomingServer" | "outgoingServer", type: string, port: number, socketType: string) =>
    [
      `    <${tag} type="${type}">`,
      `      <hostname>${h}</hostname>`,
      `      <port>${port}</port>`,
      `      <socketType>${socketType}</socketType>`,
      `      <authentication>password-cleartext</authentication>`,
      `      <username>%EMAILADDRESS%</username>`,
      `    </${tag}>`,
    ].join("\n");
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<clientConfig version="1.1">`,
    `  <emailProvider id="${d}">`,
    `    <domain>${d}</domain>`,
    `    <displayName>${d}</displayName>`,
    `    <displayShortName>${d}</displayShortName>`,
    server("incomingServer", "imap", MAIL_PORTS.imaps.port, "SSL"),
    server("outgoingServer", "smtp", MAIL_PORTS.submissions.port, "SSL"),
    server("outgoingServer", "smtp", MAIL_PORTS.submission.port, "STARTTLS"),
    `  </emailProvider>`,
    `</clientConfig>`,
    ``,
  ].join("\n");
}
