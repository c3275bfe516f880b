// SRV records that let mail clients find the submission and IMAP services
// (RFC 6186, RFC 8314) and Outlook find the autodiscover service.
import type { SrvData } from "./types";
import { MAIL_PORTS } from "../shared/mail-ports";

export interface SrvRecordSpec {
  /** `_service._proto` label pair */
  service: string;
  data: SrvData;
  why: string;
}

/**
 * The services at `<service>._tcp.<domain>`:
 * - implicit TLS first (RFC 8314 5.1: priority 0 for submissions/imaps),
 * - submission with STARTTLS (587) offered too, at a lower preference per RFC 8314 5.1,
 * - IMAP with STARTTLS (143) likewise, less preferred than 993 (RFC 8314 5.1),
 * - POP3 is not offered: target "." says the service is decidedly not available (RFC 2782;
 *   labels from RFC 6186 3.3, which shows exactly `0 0 0 .`), so clients do not guess hosts.
 *   Cloudflare accepts `data.target: "."` and returns it unchanged (DNSControl's "Null Target"
 *   integration test against CLOUDFLAREAPI; octodns-cloudflare `_data_for_SRV`); an empty target
 *   is refused (octodns #640), so the dot is what we send,
 * - `_autodiscover._tcp` for Outlook ([MS-OXDSCLI] 3.1.5).
 * Targets carry no trailing dot, except the root ".".
 */
export function srvRecords(mailHost: string): SrvRecordSpec[] {
  const host = mailHost.toLowerCase();
  const offered = (service: string, priority: number, port: number, why: string): SrvRecordSpec => ({
    service,
    data: { priority, weight: 1, port, target: host },
    why,
  });
  const notOffered = (service: string, why: string): SrvRecordSpec => ({
    service,
    data: { priority: 0, weight: 0, port: 0, target: "." },
    why,
  });
  return [
    offered("_submissions._tcp", 0, MAIL_PORTS.submissions.port, "Mail submission over implicit TLS (RFC 8314 5.1, RFC 6186 3.1)"),
    offered(
      "_submission._tcp",
      10,
      MAIL_PORTS.submission.port,
      "Mail submission with STARTTLS, less preferred (RFC 8314 5.1, RFC 6186 3.1)",
    ),
    offered("_imaps._tcp", 0, MAIL_PORTS.imaps.port, "IMAP over implicit TLS (RFC 8314 5.1, RFC 6186 3.2)"),
    offered("_imap._tcp", 10, MAIL_PORTS.imap.port, "IMAP with STARTTLS, less preferred (RFC 8314 5.1, RFC 6186 3.2)"),
    notOffered("_pop3s._tcp", "POP3 over TLS is not offered: target . (RFC 2782, RFC 6186 3.3)"),
    notOffered("_pop3._tcp", "POP3 is not offered: target . (RFC 2782, RFC 6186 3.3)"),
    offered("_autodiscover._tcp", 0, MAIL_PORTS.https.port, "Outlook account autodiscovery ([MS-OXDSCLI] 3.1.5)"),
  ];
}

/**
 * SRV content as Cloudflare returns it today: `weight port target`, single spaces, no trailing
 * dot, with the priority in the record's separate priority field (the same split as MX). The
 * tab-separated form is from 2019 (DNSControl #561); the current one is in Cloudflare's API docs
 * (cloudflare-docs dns-record-types.mdx, SRV example) and terraform-provider-cloudflare v5.22.0
 * resource_test.go TestAccCloudflareRecord_SRV. Records are written through `data`, so this is
 * what a preview compares against, never what is sent.
 */
export function srvContent(data: SrvData): string {
  return `${data.weight} ${data.port} ${data.target}`;
}

/** RDATA presentation form (RFC 2782): `priority weight port target.` for zone files. */
export function srvPresentation(data: SrvData): string {
  const target = data.target === "." ? "." : `${data.target}.`;
  return `${data.priority} ${data.weight} ${data.port} ${target}`;
}
