// One row of `mailstack check`: a named check, its verdict and a short reason a person can act on.

export type CheckStatus = "pass" | "warn" | "fail";
export const CHECK_STATUSES: readonly CheckStatus[] = ["pass", "warn", "fail"];

export interface CheckRow {
  /** stable, machine-readable name, e.g. `mx`, `ptr.ipv4`, `dkim.s1-rsa`, `tls.25.ipv6` */
  check: string;
  status: CheckStatus;
  /** one line: what was found and, when it is not a pass, what is wrong */
  detail: string;
  /** the name or address:port the check looked at */
  target?: string;
}

export const pass = (check: string, detail: string, target?: string): CheckRow => row(check, "pass", detail, target);
export const warn = (check: string, detail: string, target?: string): CheckRow => row(check, "warn", detail, target);
export const fail = (check: string, detail: string, target?: string): CheckRow => row(check, "fail", detail, target);

function row(check: string, status: CheckStatus, detail: string, target: string | undefined): CheckRow {
  return target === undefined ? { check, status, detail } : { check, status, detail, target };
}

/** The worst of several verdicts about one thing. */
export function worst(statuses: CheckStatus[]): CheckStatus {
  if (statuses.includes("fail")) return "fail";
  if (statuses.includes("warn")) return "warn";
  return "pass";
}

/**
 * One row from several findings about the same thing: the worst status, and the details of the
 * findings with that status (a pass row lists everything it found).
 */
export function combine(check: string, findings: { status: CheckStatus; detail: string }[], target?: string): CheckRow {
  const status = worst(findings.map((f) => f.status));
  const shown = status === "pass" ? findings : findings.filter((f) => f.status === status);
  return row(check, status, shown.map((f) => f.detail).join("; "), target);
}

export function countByStatus(rows: CheckRow[]): Record<CheckStatus, number> {
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0 };
  for (const r of rows) counts[r.status]++;
  return counts;
}

/** 0 when nothing failed, 1 when anything did (warnings do not change the exit code). */
export function exitCodeFor(rows: CheckRow[]): 0 | 1 {
  return rows.some((r) => r.status === "fail") ? 1 : 0;
}
