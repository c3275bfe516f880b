// DMARC aggregate reports (RFC 7489 appendix C; RFC 9990 keeps the element names and adds a few):
// the XML a receiver mails to our rua, read into the facts we summarise: who reported, about which
// of our domains, and per source IP how many messages passed or failed SPF, DKIM and alignment.
// Reading is strict about structure (every problem names the element) and tolerant of the optional
// elements either RFC version leaves out.
import { isIP } from "node:net";
import { MalformedXmlError, parseUntrustedXml, UnsafeXmlError } from "../safe-xml";
import { ReportRefused } from "./report-payload";

export type AuthResult = string;

export interface DmarcRecord {
  sourceIp: string;
  count: number;
  /** policy_evaluated: what the receiver did and the DMARC-aligned verdicts (RFC 7489 C) */
  disposition: string;
  dkimAligned: "pass" | "fail";
  spfAligned: "pass" | "fail";
  headerFrom: string;
  envelopeFrom?: string;
  /** auth_results: the raw results whatever their alignment */
  dkim: { domain: string; selector?: string; result: AuthResult }[];
  spf: { domain: string; scope?: string; result: AuthResult }[];
}

export interface DmarcAggregateReport {
  orgName: string;
  email: string;
  reportId: string;
  /** date_range in UNIX seconds */
  begin: number;
  end: number;
  /** policy_published.domain: the domain the report is about */
  domain: string;
  policy: { p: string; sp?: string; adkim?: string; aspf?: string; pct?: number };
  records: DmarcRecord[];
}

// Elements that may repeat (RFC 7489 appendix C maxOccurs="unbounded"), always read as lists.
const REPEATED = new Set([
  "feedback.record",
  "feedback.record.auth_results.dkim",
  "feedback.record.auth_results.spf",
  "feedback.record.row.policy_evaluated.reason",
  "feedback.report_metadata.error",
]);

/** Records per report beyond which the rest is left out of the summary (a large receiver's day stays far below). */
export const MAX_DMARC_RECORDS = 20_000;

type Node = Record<string, unknown>;

class Reader {
  readonly problems: string[] = [];

  obj(v: unknown, path: string): Node | undefined {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Node;
    this.problems.push(`${path}: ${v === undefined ? "missing" : "is not an element with children"}`);
    return undefined;
  }

  text(v: unknown, path: string, optional = false): string | undefined {
    if (v === undefined && optional) return undefined;
    if (typeof v === "string" && v.length > 0 && v.length <= 1024) return v;
    this.problems.push(`${path}: ${v === undefined ? "missing" : "is not a text of 1 to 1024 characters"}`);
    return undefined;
  }

  int(v: unknown, path: string, optional = false): number | undefined {
    const t = this.text(v, path, optional);
    if (t === undefined) return undefined;
    if (!/^\d{1,15}$/.test(t)) {
      this.problems.push(`${path}: ${JSON.stringify(t)} is not a whole number`);
      return undefined;
    }
    return Number(t);
  }

  list(v: unknown): unknown[] {
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }
}

function optionalText(reader: Reader, v: unknown, key: string): Record<string, string> {
  const t = reader.text(v, `feedback.policy_published.${key}`, true);
  return t === undefined ? {} : { [key]: t };
}

const verdict = (v: string | undefined): "pass" | "fail" => (v?.toLowerCase() === "pass" ? "pass" : "fail");

/**
 * Reads a DMARC aggregate report. Throws ReportRefused: "unsafe" for a DTD, "malformed" for
 * anything that is not a report, naming the element at fault.
 */
export function parseDmarcAggregate(xml: string): DmarcAggregateReport {
  let doc: Node;
  try {
    doc = parseUntrustedXml(xml, { isArray: (_name, jpath) => REPEATED.has(String(jpath)) });
  } catch (e) {
    if (e instanceof UnsafeXmlError) throw new ReportRefused("unsafe", `DMARC report: ${e.message}`);
    if (e instanceof MalformedXmlError) throw new ReportRefused("malformed", `DMARC report: ${e.message}`);
    throw e;
  }
  const r = new Reader();
  const feedback = r.obj(doc.feedback, "feedback");
  if (!feedback) throw new ReportRefused("malformed", `DMARC report: ${r.problems.join("; ")}`);
  const meta = r.obj(feedback.report_metadata, "feedback.report_metadata");
  const range = meta && r.obj(meta.date_range, "feedback.report_metadata.date_range");
  const published = r.obj(feedback.policy_published, "feedback.policy_published");
  const orgName = meta && r.text(meta.org_name, "feedback.report_metadata.org_name");
  const email = meta && r.text(meta.email, "feedback.report_metadata.email");
  const reportId = meta && r.text(meta.report_id, "feedback.report_metadata.report_id");
  const begin = range && r.int(range.begin, "feedback.report_metadata.date_range.begin");
  const end = range && r.int(range.end, "feedback.report_metadata.date_range.end");
  const domain = published && r.text(published.domain, "feedback.policy_published.domain")?.toLowerCase().replace(/\.$/, "");
  const p = published && r.text(published.p, "feedback.policy_published.p");
  const policy = {
    p: p ?? "",
    ...optionalText(r, published?.sp, "sp"),
    ...optionalText(r, published?.adkim, "adkim"),
    ...optionalText(r, published?.aspf, "aspf"),
    ...(published?.pct !== undefined ? { pct: r.int(published.pct, "feedback.policy_published.pct") ?? 100 } : {}),
  };

  const rawRecords = r.list(feedback.record);
  if (rawRecords.length === 0) r.problems.push("feedback.record: missing (a report has at least one record)");
  const records: DmarcRecord[] = [];
  rawRecords.slice(0, MAX_DMARC_RECORDS).forEach((raw, i) => {
    const at = `feedback.record[${i}]`;
    const rec = r.obj(raw, at);
    const row = rec && r.obj(rec.row, `${at}.row`);
    const evaluated = row && r.obj(row.policy_evaluated, `${at}.row.policy_evaluated`);
    const ids = rec && r.obj(rec.identifiers, `${at}.identifiers`);
    const auth = rec && r.obj(rec.auth_results, `${at}.auth_results`);
    const sourceIp = row && r.text(row.source_ip, `${at}.row.source_ip`);
    if (sourceIp !== undefined && isIP(sourceIp) === 0)
      r.problems.push(`${at}.row.source_ip: ${JSON.stringify(sourceIp)} is not an IP address`);
    const count = row && r.int(row.count, `${at}.row.count`);
    const headerFrom = ids && r.text(ids.header_from, `${at}.identifiers.header_from`);
    const envelopeFrom = ids && r.text(ids.envelope_from, `${at}.identifiers.envelope_from`, true);
    const dkim = r.list(auth?.dkim).flatMap((d, j) => {
      const o = r.obj(d, `${at}.auth_results.dkim[${j}]`);
      const dom = o && r.text(o.domain, `${at}.auth_results.dkim[${j}].domain`);
      const result = o && r.text(o.result, `${at}.auth_results.dkim[${j}].result`);
      const selector = o && r.text(o.selector, `${at}.auth_results.dkim[${j}].selector`, true);
      return dom && result ? [{ domain: dom.toLowerCase(), result: result.toLowerCase(), ...(selector ? { selector } : {}) }] : [];
    });
    const spf = r.list(auth?.spf).flatMap((s, j) => {
      const o = r.obj(s, `${at}.auth_results.spf[${j}]`);
      const dom = o && r.text(o.domain, `${at}.auth_results.spf[${j}].domain`, true);
      const result = o && r.text(o.result, `${at}.auth_results.spf[${j}].result`);
      const scope = o && r.text(o.scope, `${at}.auth_results.spf[${j}].scope`, true);
      return result ? [{ domain: (dom ?? "").toLowerCase(), result: result.toLowerCase(), ...(scope ? { scope } : {}) }] : [];
    });
    if (sourceIp === undefined || count === undefined || headerFrom === undefined || !evaluated) return;
    records.push({
      sourceIp,
      count,
      disposition: typeof evaluated.disposition === "string" ? evaluated.disposition : "none",
      dkimAligned: verdict(typeof evaluated.dkim === "string" ? evaluated.dkim : undefined),
      spfAligned: verdict(typeof evaluated.spf === "string" ? evaluated.spf : undefined),
      headerFrom: headerFrom.toLowerCase(),
      ...(envelopeFrom ? { envelopeFrom: envelopeFrom.toLowerCase() } : {}),
      dkim,
      spf,
    });
  });
  if (begin !== undefined && end !== undefined && end < begin)
    r.problems.push(`feedback.report_metadata.date_range: end ${end} is before begin ${begin}`);
  if (r.problems.length > 0) {
    const shown = r.problems.slice(0, 5).join("; ");
    throw new ReportRefused("malformed", `DMARC report: ${shown}${r.problems.length > 5 ? ` (and ${r.problems.length - 5} more)` : ""}`);
  }
  return { orgName: orgName!, email: email!, reportId: reportId!, begin: begin!, end: end!, domain: domain!, policy, records };
}
