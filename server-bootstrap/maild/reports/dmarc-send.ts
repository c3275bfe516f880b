// Our DMARC aggregate reports (RFC 7489 7.2 and appendix C; RFC 9990 keeps the format): for one
// finished UTC day, one report per policy domain that asks for them (rua), the day's evaluations
// of its mail summed into rows, as gzipped XML. The rules mox applies (dmarcdb/eval.go) where
// RFC 7489 leaves room: rua by mailto only; a `!size` limit compared with the whole message; an rua
// outside the policy domain needs the `<policy>._report._dmarc.<rua domain>` opt-in (7.1); a day
// whose evaluations are all "optional" (mail to our report addresses) sends nothing. Pure.
import { gzipSync } from "node:zlib";
import { xmlEscape } from "../web/xml-escape";
import type { DmarcEvaluation } from "./dmarc-evaluation";

export interface DmarcRua {
  address: string;
  /** RFC 7489 6.2 `!size`: the largest report this address takes, in bytes */
  maxBytes?: number;
}

export interface PublishedPolicy {
  p: string;
  sp?: string;
  adkim: string;
  aspf: string;
  pct: number;
  rua: DmarcRua[];
}

const UNITS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** The one DMARC record among `_dmarc.<domain>`'s TXT records (RFC 7489 6.6.3: more than one is none). */
export function parseDmarcRecord(txt: string[]): PublishedPolicy | undefined {
  const records = txt.filter((t) => /^v\s*=\s*DMARC1\s*(;|$)/i.test(t));
  if (records.length !== 1) return undefined;
  const tags = new Map<string, string>();
  for (const part of records[0].split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const p = (tags.get("p") ?? "").toLowerCase();
  if (!["none", "quarantine", "reject"].includes(p)) return undefined;
  const rua = (tags.get("rua") ?? "").split(",").flatMap((u): DmarcRua[] => {
    // RFC 7489 6.4: a URI, "!" and a size with an optional unit
    const m = /^mailto:([^!\s]+@[^!\s]+?)(?:!(\d+)([kmgt])?)?$/i.exec(u.trim());
    if (!m) return [];
    const address = decodeURIComponent(m[1]);
    return [{ address, ...(m[2] ? { maxBytes: Number(m[2]) * (m[3] ? UNITS[m[3].toLowerCase()] : 1) } : {}) }];
  });
  const pct = Number(tags.get("pct") ?? "100");
  return {
    p,
    ...(tags.has("sp") ? { sp: tags.get("sp")!.toLowerCase() } : {}),
    adkim: (tags.get("adkim") ?? "r").toLowerCase() === "s" ? "s" : "r",
    aspf: (tags.get("aspf") ?? "r").toLowerCase() === "s" ? "s" : "r",
    pct: Number.isInteger(pct) && pct >= 0 && pct <= 100 ? pct : 100,
    rua,
  };
}

/**
 * RFC 7489 7.1: reports for `policyDomain` may go to `ruaDomain` without asking only inside the
 * policy domain; elsewhere the TXT record at the returned name must hold "v=DMARC1". (The policy
 * domain is where the record was found: the organizational domain or below it, so "inside" is the
 * safe reading without a public suffix list.)
 */
export function externalVerificationName(policyDomain: string, ruaDomain: string): string | undefined {
  const r = ruaDomain.toLowerCase();
  return r === policyDomain || r.endsWith(`.${policyDomain}`) ? undefined : `${policyDomain}._report._dmarc.${r}`;
}

export interface ReportRow {
  sourceIp: string;
  count: number;
  disposition: string;
  dkimAligned: string;
  spfAligned: string;
  headerFrom: string;
  envelopeFrom: string;
  dkim: DmarcEvaluation["dkim"];
  spf: DmarcEvaluation["spf"];
}

/** Identical evaluations summed into rows (appendix C `record` with its `count`), largest first. */
export function reportRows(evals: DmarcEvaluation[]): ReportRow[] {
  const rows = new Map<string, ReportRow>();
  for (const e of evals) {
    const { at: _at, optional: _o, policyDomain: _p, ...rest } = e;
    const key = JSON.stringify(rest);
    const row = rows.get(key);
    if (row) row.count++;
    else rows.set(key, { ...rest, count: 1 });
  }
  return [...rows.values()].sort((a, b) => b.count - a.count || a.sourceIp.localeCompare(b.sourceIp));
}

/** Evaluations of the day by policy domain, leaving out domains with only optional ones and our own. */
export function evaluationsByDomain(evals: DmarcEvaluation[], ourDomains: string[]): Map<string, DmarcEvaluation[]> {
  const out = new Map<string, DmarcEvaluation[]>();
  for (const e of evals) out.set(e.policyDomain, [...(out.get(e.policyDomain) ?? []), e]);
  for (const [domain, list] of out) if (ourDomains.includes(domain) || list.every((e) => e.optional)) out.delete(domain);
  return out;
}

export interface ReportMeta {
  orgName: string;
  email: string;
  reportId: string;
  /** UNIX seconds, whole day */
  begin: number;
  end: number;
}

export function dmarcReportXml(meta: ReportMeta, policyDomain: string, policy: PublishedPolicy, rows: ReportRow[]): string {
  const x = (s: string | number) => xmlEscape(String(s));
  const records = rows
    .map(
      (r) => `  <record>
    <row>
      <source_ip>${x(r.sourceIp)}</source_ip>
      <count>${r.count}</count>
      <policy_evaluated>
        <disposition>${x(r.disposition)}</disposition>
        <dkim>${x(r.dkimAligned)}</dkim>
        <spf>${x(r.spfAligned)}</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_from>${x(r.envelopeFrom)}</envelope_from>
      <header_from>${x(r.headerFrom)}</header_from>
    </identifiers>
    <auth_results>
${r.dkim
  .map(
    (d) => `      <dkim>
        <domain>${x(d.domain)}</domain>${d.selector ? `\n        <selector>${x(d.selector)}</selector>` : ""}
        <result>${x(d.result)}</result>
      </dkim>
`,
  )
  .join("")}      <spf>
        <domain>${x(r.spf.domain)}</domain>
        <scope>${x(r.spf.scope)}</scope>
        <result>${x(r.spf.result)}</result>
      </spf>
    </auth_results>
  </record>
`,
    )
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>${x(meta.orgName)}</org_name>
    <email>${x(meta.email)}</email>
    <report_id>${x(meta.reportId)}</report_id>
    <date_range>
      <begin>${meta.begin}</begin>
      <end>${meta.end}</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>${x(policyDomain)}</domain>
    <adkim>${x(policy.adkim)}</adkim>
    <aspf>${x(policy.aspf)}</aspf>
    <p>${x(policy.p)}</p>
    <sp>${x(policy.sp ?? policy.p)}</sp>
    <pct>${policy.pct}</pct>
  </policy_published>
${records}</feedback>
`;
}

export interface DmarcReportMail {
  subject: string;
  filename: string;
  gzipped: Buffer;
  text: string;
}

/** RFC 7489 7.2.1.1 file name and subject. */
export function dmarcReportMail(meta: ReportMeta, policyDomain: string, xml: string): DmarcReportMail {
  return {
    subject: `Report Domain: ${policyDomain} Submitter: ${meta.orgName} Report-ID: <${meta.reportId}>`,
    filename: `${meta.orgName}!${policyDomain}!${meta.begin}!${meta.end}.xml.gz`,
    gzipped: gzipSync(xml),
    text: `This is a DMARC aggregate report from ${meta.orgName} for ${policyDomain} (RFC 7489).\n`,
  };
}
