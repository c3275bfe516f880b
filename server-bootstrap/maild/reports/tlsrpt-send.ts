// Our SMTP TLS reports (RFC 8460): once a UTC day is over, each recipient domain that publishes a
// TLSRPT record gets the counts maild kept of its sessions that day (outbound/tls-report.ts, stored
// already in the shape of RFC 8460 4.4 "policies"), gzipped JSON, by mail (5.3) or HTTPS POST (5.4).
import { gzipSync } from "node:zlib";
import type { TlsDayReport, TlsPolicyReport } from "../outbound/tls-report";

export interface TlsrptRecord {
  /** RFC 8460 3: mailto: and https: URIs, in the record's order */
  rua: string[];
}

/**
 * The TLSRPT policy among a domain's `_smtp._tls` TXT records (RFC 8460 3): exactly one starting
 * with `v=TLSRPTv1`, with an `rua` of comma-separated URIs. undefined when there is none or more
 * than one (3: "If multiple TXT records ... are returned, ... no reports").
 */
export function parseTlsrptRecord(txt: string[]): TlsrptRecord | undefined {
  const records = txt.filter((t) => /^v=TLSRPTv1\s*(;|$)/.test(t));
  if (records.length !== 1) return undefined;
  const fields = new Map(
    records[0]
      .split(";")
      .map((f) => f.trim())
      .filter(Boolean)
      .map((f) => [f.slice(0, f.indexOf("=")).trim().toLowerCase(), f.slice(f.indexOf("=") + 1).trim()] as const),
  );
  const rua = (fields.get("rua") ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter((u) => /^mailto:[^@\s]+@[^@\s]+$/i.test(u) || /^https:\/\//i.test(u));
  return rua.length > 0 ? { rua } : undefined;
}

export interface TlsReportDocument {
  "organization-name": string;
  "date-range": { "start-datetime": string; "end-datetime": string };
  "contact-info": string;
  "report-id": string;
  policies: TlsPolicyReport[];
}

/** RFC 8460 4.4: one day, the policies that applied to `policyDomain`. */
export function tlsReportDocument(
  day: TlsDayReport,
  policyDomain: string,
  o: { organization: string; contact: string },
): TlsReportDocument {
  return {
    "organization-name": o.organization,
    "date-range": { "start-datetime": `${day.date}T00:00:00Z`, "end-datetime": `${day.date}T23:59:59Z` },
    "contact-info": o.contact,
    "report-id": `${day.date}T00:00:00Z_${policyDomain}`,
    policies: day.policies.filter((p) => p.policy["policy-domain"] === policyDomain),
  };
}

/** The domains a finished day has sessions for. */
export function reportedDomains(day: TlsDayReport): string[] {
  return [...new Set(day.policies.map((p) => p.policy["policy-domain"]))].sort();
}

export interface TlsReportMail {
  subject: string;
  headers: Record<string, string>;
  filename: string;
  gzipped: Buffer;
  text: string;
}

/** RFC 8460 5.1 file name and 5.3 subject and header fields. */
export function tlsReportMail(doc: TlsReportDocument, policyDomain: string, submitter: string): TlsReportMail {
  const begin = Math.floor(Date.parse(doc["date-range"]["start-datetime"]) / 1000);
  const end = Math.floor(Date.parse(doc["date-range"]["end-datetime"]) / 1000);
  return {
    subject: `Report Domain: ${policyDomain} Submitter: ${submitter} Report-ID: <${doc["report-id"]}>`,
    headers: { "TLS-Report-Domain": policyDomain, "TLS-Report-Submitter": submitter },
    filename: `${submitter}!${policyDomain}!${begin}!${end}.json.gz`,
    gzipped: gzipSync(JSON.stringify(doc)),
    text: `This is an aggregate TLS report from ${submitter} for ${policyDomain} (RFC 8460).\n`,
  };
}
