// Outlook "POX" autodiscover: the client POSTs
//   <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
//     <Request><EMailAddress>user@example.com</EMailAddress>
//       <AcceptableResponseSchema>.../outlook/responseschema/2006a</AcceptableResponseSchema></Request>
//   </Autodiscover>
// to https://autodiscover.<domain>/autodiscover/autodiscover.xml and reads IMAP/SMTP settings
// from the answer ([MS-OXDSCLI] 2.2.4, the "email" account type).
import { MalformedXmlError, parseUntrustedXml, UnsafeXmlError } from "../safe-xml";
import { xmlEscape } from "./xml-escape";
import { MAIL_PORTS } from "../../../components/shared/mail-ports";

export class AutodiscoverRequestError extends Error {}

/** The EMailAddress of an autodiscover request body; throws AutodiscoverRequestError on bad XML or a missing address. */
export function autodiscoverRequestEmail(body: string): string {
  let doc: { Autodiscover?: { Request?: { EMailAddress?: unknown } } };
  try {
    doc = parseUntrustedXml(body);
  } catch (e) {
    // A client has no reason to send a DOCTYPE; entity declarations are the usual way to abuse XML parsers.
    if (e instanceof UnsafeXmlError) throw new AutodiscoverRequestError("autodiscover request: DOCTYPE is not allowed");
    if (e instanceof MalformedXmlError) throw new AutodiscoverRequestError(`autodiscover request: ${e.message}`);
    throw e;
  }
  const email = doc?.Autodiscover?.Request?.EMailAddress;
  if (typeof email !== "string" || email.length === 0) {
    throw new AutodiscoverRequestError("autodiscover request: Autodiscover/Request/EMailAddress is missing or empty");
  }
  return email;
}

export interface AutodiscoverInput {
  /** the address the client asked about, echoed as the login name */
  email: string;
  /** the mail host FQDN serving IMAP and submission */
  hostname: string;
}

export function autodiscoverXml({ email, hostname }: AutodiscoverInput): string {
  const e = xmlEscape(email);
  const h = xmlEscape(hostname);
  const protocol = (type: string, port: number, encryption: "SSL" | "TLS") =>
    [
      `      <Protocol>`,
      `        <Type>${type}</Type>`,
      `        <Server>${h}</Server>`,
      `        <Port>${port}</Port>`,
      `        <LoginName>${e}</LoginName>`,
      `        <DomainRequired>off</DomainRequired>`,
      `        <SPA>off</SPA>`,
      // [MS-OXDSCLI] 2.2.4.1.1.2.4.12: Encryption overrides SSL; "TLS" means STARTTLS.
      `        <SSL>on</SSL>`,
      `        <Encryption>${encryption}</Encryption>`,
      `        <AuthRequired>on</AuthRequired>`,
      `      </Protocol>`,
    ].join("\n");
  return [
    `<?xml version="1.0" encoding="utf-8"?>`,
    `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">`,
    `  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">`,
    `    <User>`,
    `      <DisplayName>${e}</DisplayName>`,
    `    </User>`,
    `    <Account>`,
    `      <AccountType>email</AccountType>`,
    `      <Action>settings</Action>`,
    protocol("IMAP", MAIL_PORTS.imaps.port, "SSL"),
    protocol("SMTP", MAIL_PORTS.submissions.port, "SSL"),
    `    </Account>`,
    `  </Response>`,
    `</Autodiscover>`,
    ``,
  ].join("\n");
}
