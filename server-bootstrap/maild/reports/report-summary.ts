// What received reports say, summed up for people: DMARC per reported domain, source IP and
// reporter (pass/fail of SPF, DKIM and alignment), TLSRPT per policy domain and reporter (sessions,
// failures by RFC 8460 4.3 result type), and both per day for the status page's charts. Pure.
import type { DmarcAggregateReport } from "./dmarc-aggregate";
import type { TlsrptReport } from "./tlsrpt-report";
import { isIP } from "node:net";
import { utcDay } from "./received-reports";

/** One text per address: receivers write IPv6 in any of its forms (2001:db8::1, 2001:DB8:0:0::1). */
function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

export interface DmarcSourceRow {
  domain: string;
  sourceIp: string;
  reporter: string;
  /** the source is one of our own server's addresses: its failures are our problem, not spoofing */
  ours: boolean;
  messages: number;
  /** DMARC passes when either aligned result passes (RFC 7489 3.1, 4.2) */
  dmarcPass: number;
  dmarcFail: number;
  spfAlignedPass: number;
  dkimAlignedPass: number;
  /** messages by the receiver's disposition (none, quarantine, reject) */
  dispositions: Record<string, number>;
}

export interface DmarcSummary {
  reports: number;
  messages: number;
  dmarcPass: number;
  dmarcFail: number;
  sources: DmarcSourceRow[];
  /** by the UTC day the reported period began */
  daily: { date: string; pass: number; fail: number }[];
}

export function summariseDmarc(reports: DmarcAggregateReport[], ourIps: string[]): DmarcSummary {
  const ours = new Set(ourIps.map(canonicalIp));
  const rows = new Map<string, DmarcSourceRow>();
  const days = new Map<string, { pass: number; fail: number }>();
  let messages = 0;
  let pass = 0;
  for (const report of reports) {
    const date = utcDay(report.begin * 1000);
    const day = days.get(date) ?? { pass: 0, fail: 0 };
    days.set(date, day);
    for (const rec of report.records) {
      const key = `${report.domain}\n${rec.sourceIp}\n${report.orgName}`;
      let row = rows.get(key);
      if (!row) {
        row = {
          domain: report.domain,
          sourceIp: rec.sourceIp,
          reporter: report.orgName,
          ours: ours.has(canonicalIp(rec.sourceIp)),
          messages: 0,
          dmarcPass: 0,
          dmarcFail: 0,
          spfAlignedPass: 0,
          dkimAlignedPass: 0,
          dispositions: {},
        };
        rows.set(key, row);
      }
      const passed = rec.dkimAligned === "pass" || rec.spfAligned === "pass";
      row.messages += rec.count;
      row.dmarcPass += passed ? rec.count : 0;
      row.dmarcFail += passed ? 0 : rec.count;
      row.spfAlignedPass += rec.spfAligned === "pass" ? rec.count : 0;
      row.dkimAlignedPass += rec.dkimAligned === "pass" ? rec.count : 0;
      row.dispositions[rec.disposition] = (row.dispositions[rec.disposition] ?? 0) + rec.count;
      messages += rec.count;
      pass += passed ? rec.count : 0;
      day[passed ? "pass" : "fail"] += rec.count;
    }
  }
  return {
    reports: reports.length,
    messages,
    dmarcPass: pass,
    dmarcFail: messages - pass,
    // failures first: they are what a reader looks for
    sources: [...rows.values()].sort(
      (a, b) => b.dmarcFail - a.dmarcFail || b.messages - a.messages || a.sourceIp.localeCompare(b.sourceIp),
    ),
    daily: [...days].sort(([a], [b]) => a.localeCompare(b)).map(([date, d]) => ({ date, ...d })),
  };
}

export interface TlsPolicyRow {
  policyDomain: string;
  reporter: string;
  policyType: string;
  successful: number;
  failed: number;
  /** failed sessions by RFC 8460 4.3 result type */
  failures: Record<string, number>;
}

export interface TlsSummary {
  reports: number;
  successful: number;
  failed: number;
  policies: TlsPolicyRow[];
  daily: { date: string; successful: number; failed: number }[];
}

export function summariseTlsrpt(reports: TlsrptReport[]): TlsSummary {
  const rows = new Map<string, TlsPolicyRow>();
  const days = new Map<string, { successful: number; failed: number }>();
  let successful = 0;
  let failed = 0;
  for (const report of reports) {
    const date = utcDay(report.begin * 1000);
    const day = days.get(date) ?? { successful: 0, failed: 0 };
    days.set(date, day);
    for (const p of report.policies) {
      const key = `${p.policyDomain}\n${report.orgName}\n${p.policyType}`;
      let row = rows.get(key);
      if (!row) {
        row = { policyDomain: p.policyDomain, reporter: report.orgName, policyType: p.policyType, successful: 0, failed: 0, failures: {} };
        rows.set(key, row);
      }
      row.successful += p.successful;
      row.failed += p.failed;
      for (const f of p.failures) row.failures[f.resultType] = (row.failures[f.resultType] ?? 0) + f.failedSessions;
      successful += p.successful;
      failed += p.failed;
      day.successful += p.successful;
      day.failed += p.failed;
    }
  }
  return {
    reports: reports.length,
    successful,
    failed,
    policies: [...rows.values()].sort((a, b) => b.failed - a.failed || a.policyDomain.localeCompare(b.policyDomain)),
    daily: [...days].sort(([a], [b]) => a.localeCompare(b)).map(([date, d]) => ({ date, ...d })),
  };
}
