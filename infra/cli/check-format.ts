// Renders a `mailstack check` report for people (a table and a summary line) and for machines (JSON).
import { countByStatus, exitCodeFor, type CheckRow } from "./check-result";
import { textTable } from "./text-table";

export interface CheckReport {
  domain: string;
  hostname: string;
  /** the stack whose plan gave the expectations; null: syntax and consistency only */
  stack: string | null;
  /** notes about what was compared with what, one line each */
  notes: string[];
  rows: CheckRow[];
}

export function summaryLine(rows: CheckRow[]): string {
  const n = countByStatus(rows);
  return `${rows.length} checks: ${n.pass} pass, ${n.warn} warn, ${n.fail} fail`;
}

export function formatCheckTable(report: CheckReport): string {
  const against = report.stack === null ? "no plan: syntax and consistency only" : `against the plan of stack ${report.stack}`;
  const out = [`mailstack check ${report.domain}: mail host ${report.hostname}, ${against}`];
  for (const note of report.notes) out.push(`  ${note}`);
  out.push("");
  out.push(textTable([["CHECK", "STATUS", "TARGET", "DETAIL"], ...report.rows.map((r) => [r.check, r.status, r.target ?? "-", r.detail])]));
  out.push("", `${summaryLine(report.rows)}${exitCodeFor(report.rows) === 0 ? "" : " (exit status 1)"}`);
  return out.join("\n") + "\n";
}

/** What `mailstack check --json` prints. */
export interface CheckJson {
  domain: string;
  hostname: string;
  stack: string | null;
  notes: string[];
  summary: { pass: number; warn: number; fail: number; total: number; ok: boolean };
  checks: CheckRow[];
}

export function formatCheckJson(report: CheckReport): string {
  const summary = countByStatus(report.rows);
  const doc: CheckJson = {
    domain: report.domain,
    hostname: report.hostname,
    stack: report.stack,
    notes: report.notes,
    summary: { ...summary, total: report.rows.length, ok: summary.fail === 0 },
    checks: report.rows,
  };
  return JSON.stringify(doc, null, 2) + "\n";
}
