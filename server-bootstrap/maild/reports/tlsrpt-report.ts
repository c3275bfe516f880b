// SMTP TLS reports (RFC 8460 4.4) received at our TLSRPT rua: JSON read into the facts we summarise,
// sessions that reached our MX with and without TLS, and the failures by RFC 8460 4.3 result type.
// Field names and shapes as RFC 8460 4.4 defines them (mx-host is a list per erratum 6241; a single
// string from older senders is taken too, as mox tlsrpt/report.go does).
import { ReportRefused } from "./report-payload";

export interface TlsrptFailure {
  resultType: string;
  sendingMtaIp?: string;
  receivingMxHostname?: string;
  receivingIp?: string;
  failedSessions: number;
  reasonCode?: string;
}

export interface TlsrptPolicy {
  policyType: string;
  policyDomain: string;
  mxHost: string[];
  successful: number;
  failed: number;
  failures: TlsrptFailure[];
}

export interface TlsrptReport {
  orgName: string;
  reportId: string;
  contactInfo?: string;
  /** UNIX seconds */
  begin: number;
  end: number;
  policies: TlsrptPolicy[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads an RFC 8460 report; throws ReportRefused ("malformed") naming the field at fault. */
export function parseTlsrpt(json: string): TlsrptReport {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new ReportRefused("malformed", `TLSRPT report: not JSON: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  const text = (o: Obj, key: string, at: string, optional = false): string | undefined => {
    const v = o[key];
    if (v === undefined && optional) return undefined;
    if (typeof v === "string" && v.length > 0 && v.length <= 1024) return v;
    problems.push(`${at}${key}: ${v === undefined ? "missing" : "is not a string of 1 to 1024 characters"}`);
    return undefined;
  };
  const count = (o: Obj, key: string, at: string, optional = false): number => {
    const v = o[key];
    if (v === undefined && optional) return 0;
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
    problems.push(`${at}${key}: ${v === undefined ? "missing" : "is not a whole number of sessions"}`);
    return 0;
  };
  const time = (o: Obj, key: string, at: string): number => {
    const t = text(o, key, at);
    // RFC 8460 4.4: date-time as RFC 3339
    const ms = t !== undefined && /^\d{4}-\d{2}-\d{2}T/.test(t) ? Date.parse(t) : NaN;
    if (t !== undefined && Number.isNaN(ms)) problems.push(`${at}${key}: ${JSON.stringify(t)} is not an RFC 3339 date-time`);
    return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
  };

  if (!isObj(doc)) throw new ReportRefused("malformed", "TLSRPT report: the JSON is not an object");
  const orgName = text(doc, "organization-name", "");
  const reportId = text(doc, "report-id", "");
  const contactInfo = text(doc, "contact-info", "", true);
  const range = doc["date-range"];
  let begin = 0;
  let end = 0;
  if (!isObj(range)) problems.push("date-range: missing or not an object");
  else {
    begin = time(range, "start-datetime", "date-range.");
    end = time(range, "end-datetime", "date-range.");
  }
  const policies: TlsrptPolicy[] = [];
  if (!Array.isArray(doc.policies) || doc.policies.length === 0) problems.push("policies: missing or empty");
  else
    doc.policies.forEach((raw: unknown, i) => {
      const at = `policies[${i}].`;
      if (!isObj(raw) || !isObj(raw.policy) || !isObj(raw.summary)) {
        problems.push(`policies[${i}]: needs "policy" and "summary" objects`);
        return;
      }
      const policyType = text(raw.policy, "policy-type", `${at}policy.`);
      const policyDomain = text(raw.policy, "policy-domain", `${at}policy.`);
      const mx = raw.policy["mx-host"];
      const mxHost = Array.isArray(mx) ? mx.filter((m): m is string => typeof m === "string") : typeof mx === "string" ? [mx] : [];
      const successful = count(raw.summary, "total-successful-session-count", `${at}summary.`);
      const failed = count(raw.summary, "total-failure-session-count", `${at}summary.`);
      const details = raw["failure-details"];
      const failures: TlsrptFailure[] = [];
      if (details !== undefined && !Array.isArray(details)) problems.push(`${at}failure-details: is not a list`);
      if (Array.isArray(details))
        details.slice(0, 10_000).forEach((d: unknown, j) => {
          const dat = `${at}failure-details[${j}].`;
          if (!isObj(d)) {
            problems.push(`${at}failure-details[${j}]: is not an object`);
            return;
          }
          const resultType = text(d, "result-type", dat);
          if (resultType === undefined) return;
          const opt = (key: string) => text(d, key, dat, true);
          const sendingMtaIp = opt("sending-mta-ip");
          const receivingMxHostname = opt("receiving-mx-hostname");
          const receivingIp = opt("receiving-ip");
          const reasonCode = opt("failure-reason-code");
          failures.push({
            resultType,
            failedSessions: count(d, "failed-session-count", dat),
            ...(sendingMtaIp ? { sendingMtaIp } : {}),
            ...(receivingMxHostname ? { receivingMxHostname } : {}),
            ...(receivingIp ? { receivingIp } : {}),
            ...(reasonCode ? { reasonCode } : {}),
          });
        });
      if (policyType && policyDomain)
        policies.push({ policyType, policyDomain: policyDomain.toLowerCase().replace(/\.$/, ""), mxHost, successful, failed, failures });
    });
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join("; ");
    throw new ReportRefused("malformed", `TLSRPT report: ${shown}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ""}`);
  }
  return { orgName: orgName!, reportId: reportId!, ...(contactInfo ? { contactInfo } : {}), begin, end, policies };
}
