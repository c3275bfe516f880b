// What TLS looked like on the way out, per recipient (policy) domain and UTC day: the raw
// material of SMTP TLS Reporting (RFC 8460). Each outbound SMTP session counts once, as a success
// or as a failure with its RFC 8460 4.3 result type, under the policy that applied to it (MTA-STS,
// DANE TLSA, or none). A later TLSRPT sender reads a finished day back with `readDay` and mails it
// to the domain's `rua`; the stored shape is already the "policies" array of RFC 8460 4.4.
//
// Files: <dataDir>/reports/tlsrpt/<YYYY-MM-DD>.json, rewritten whole and atomically after each
// change (coalesced: sessions recorded in the same tick share one write). A restart the same day
// continues the file on disk.
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { counter } from "../metrics";
import { writeFileAtomic } from "./atomic-file";
import type { TlsResultType } from "./types";

/** RFC 8460 4.4 policy-type. */
export type TlsPolicyType = "sts" | "tlsa" | "no-policy-found";

export interface TlsSessionOutcome {
  /** the recipient domain the policy belongs to (RFC 8460 4.4 policy-domain) */
  policyDomain: string;
  policyType: TlsPolicyType;
  /** MTA-STS: the policy file's lines; DANE: the TLSA records in presentation form */
  policyString?: string[];
  /** MTA-STS: the policy's mx patterns */
  mxHost?: string[];
  result: TlsResultType;
  receivingMxHostname?: string;
  receivingIp?: string;
  sendingMtaIp?: string;
  /** our own short reason (RFC 8460 4.4 failure-reason-code), e.g. an OpenSSL verify code */
  failureReasonCode?: string;
}

/** RFC 8460 4.4 failure-details entry. */
export interface TlsFailureDetails {
  "result-type": Exclude<TlsResultType, "success">;
  "sending-mta-ip"?: string;
  "receiving-mx-hostname"?: string;
  "receiving-ip"?: string;
  "failed-session-count": number;
  "failure-reason-code"?: string;
}

/** RFC 8460 4.4 entry of the "policies" array. */
export interface TlsPolicyReport {
  policy: {
    "policy-type": TlsPolicyType;
    "policy-string"?: string[];
    "policy-domain": string;
    "mx-host"?: string[];
  };
  summary: { "total-successful-session-count": number; "total-failure-session-count": number };
  "failure-details": TlsFailureDetails[];
}

export interface TlsDayReport {
  /** UTC day, YYYY-MM-DD (RFC 8460 4.4 date-range is one such day) */
  date: string;
  policies: TlsPolicyReport[];
}

// OpenSSL's verify results as Node reports them (err.code, TLSSocket#authorizationError).
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD"]);
const HOST_MISMATCH = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"]);
const NOT_TRUSTED = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_SIGNATURE_FAILURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

/**
 * The RFC 8460 4.3.1 result type for a certificate verification error code, or undefined when
 * the code is not about the certificate (a reset connection, a handshake failure).
 */
export function certificateResult(
  code: string | undefined,
): "certificate-expired" | "certificate-host-mismatch" | "certificate-not-trusted" | undefined {
  if (code === undefined) return undefined;
  if (EXPIRED.has(code)) return "certificate-expired";
  if (HOST_MISMATCH.has(code)) return "certificate-host-mismatch";
  if (NOT_TRUSTED.has(code)) return "certificate-not-trusted";
  return undefined;
}

const sessions = counter("maild_outbound_tls_sessions_total", "Outbound SMTP sessions by TLS policy type and RFC 8460 result type");
const uncounted = counter(
  "maild_outbound_tls_sessions_unreported_total",
  "Outbound SMTP sessions left out of the day's TLSRPT report (or out of its failure details only) because it reached its size limit",
);

/**
 * A day's report is bounded (it is held in memory and rewritten whole): at most this many
 * policies (recipient domains with their policy), and this many distinct failure details per
 * policy; sessions beyond still count in the policy's summary when it is there, and in the metric.
 */
export const MAX_POLICIES_PER_DAY = 10_000;
export const MAX_FAILURE_DETAILS_PER_POLICY = 100;

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function sameFailure(f: TlsFailureDetails, o: TlsSessionOutcome): boolean {
  return (
    f["result-type"] === o.result &&
    f["receiving-mx-hostname"] === o.receivingMxHostname &&
    f["receiving-ip"] === o.receivingIp &&
    f["sending-mta-ip"] === o.sendingMtaIp &&
    f["failure-reason-code"] === o.failureReasonCode
  );
}

export interface TlsReportOptions {
  /** read on every write, so a reloaded configuration applies */
  dataDir: () => string;
  now?: () => Date;
  /** told about a failed write; the counts stay in memory and the next change writes again */
  onWriteError?: (err: Error) => void;
}

function policyKey(p: { domain: string; type: TlsPolicyType; policyString?: string[]; mxHost?: string[] }): string {
  return JSON.stringify([p.domain, p.type, p.policyString ?? [], p.mxHost ?? []]);
}

function storedPolicyKey(p: TlsPolicyReport): string {
  return policyKey({
    domain: p.policy["policy-domain"],
    type: p.policy["policy-type"],
    policyString: p.policy["policy-string"],
    mxHost: p.policy["mx-host"],
  });
}

export class TlsReport {
  private readonly days = new Map<string, TlsDayReport>();
  /** the policies of each day held, by policyKey: a lookup per session, not a scan of the day */
  private readonly index = new Map<string, Map<string, TlsPolicyReport>>();
  private readonly dirty = new Set<string>();
  private writing: Promise<void> = Promise.resolve();
  private scheduled = false;
  private readonly now: () => Date;

  constructor(private readonly opts: TlsReportOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Counts one session; the file is written soon after (await `flush` to wait for it). */
  record(o: TlsSessionOutcome): void {
    sessions.inc({ policy: o.policyType, result: o.result });
    const day = this.day(utcDay(this.now()));
    const byKey = this.index.get(day.date)!;
    const key = policyKey({ domain: o.policyDomain, type: o.policyType, policyString: o.policyString, mxHost: o.mxHost });
    let p = byKey.get(key);
    if (!p && day.policies.length >= MAX_POLICIES_PER_DAY) {
      uncounted.inc();
      return;
    }
    if (!p) {
      p = {
        policy: {
          "policy-type": o.policyType,
          ...(o.policyString ? { "policy-string": o.policyString } : {}),
          "policy-domain": o.policyDomain,
          ...(o.mxHost ? { "mx-host": o.mxHost } : {}),
        },
        summary: { "total-successful-session-count": 0, "total-failure-session-count": 0 },
        "failure-details": [],
      };
      day.policies.push(p);
      byKey.set(key, p);
    }
    if (o.result === "success") p.summary["total-successful-session-count"]++;
    else {
      p.summary["total-failure-session-count"]++;
      let f = p["failure-details"].find((x) => sameFailure(x, o));
      if (!f && p["failure-details"].length >= MAX_FAILURE_DETAILS_PER_POLICY) {
        uncounted.inc();
        this.dirty.add(day.date);
        this.schedule();
        return;
      }
      if (!f) {
        f = {
          "result-type": o.result,
          ...(o.sendingMtaIp ? { "sending-mta-ip": o.sendingMtaIp } : {}),
          ...(o.receivingMxHostname ? { "receiving-mx-hostname": o.receivingMxHostname } : {}),
          ...(o.receivingIp ? { "receiving-ip": o.receivingIp } : {}),
          "failed-session-count": 0,
          ...(o.failureReasonCode ? { "failure-reason-code": o.failureReasonCode } : {}),
        };
        p["failure-details"].push(f);
      }
      f["failed-session-count"]++;
    }
    this.dirty.add(day.date);
    this.schedule();
  }

  /** Resolves once everything recorded so far is on disk (or its write failed and was reported). */
  async flush(): Promise<void> {
    while (this.scheduled || this.dirty.size > 0) {
      this.schedule();
      await this.writing;
    }
    await this.writing;
  }

  /** The report of one UTC day (YYYY-MM-DD) as stored, after pending writes; undefined if none. */
  async readDay(date: string): Promise<TlsDayReport | undefined> {
    if (!DATE_RE.test(date)) throw new Error(`readDay: ${JSON.stringify(date)} is not a YYYY-MM-DD date`);
    await this.flush();
    try {
      return JSON.parse(await readFile(this.file(date), "utf8")) as TlsDayReport;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  private file(date: string): string {
    return join(this.opts.dataDir(), "reports", "tlsrpt", `${date}.json`);
  }

  // The day's counts continue what an earlier process of the same day wrote. A synchronous read,
  // once per day: `record` stays synchronous, so the transport never waits for bookkeeping.
  private day(date: string): TlsDayReport {
    let d = this.days.get(date);
    if (d) return d;
    d = { date, policies: [] };
    const file = this.file(date);
    if (existsSync(file)) {
      try {
        const stored = JSON.parse(readFileSync(file, "utf8")) as TlsDayReport;
        if (stored.date === date && Array.isArray(stored.policies)) d = stored;
      } catch (err) {
        this.opts.onWriteError?.(new Error(`${file}: unreadable, starting the day afresh: ${(err as Error).message}`));
      }
    }
    this.days.set(date, d);
    this.index.set(date, new Map(d.policies.map((p) => [storedPolicyKey(p), p])));
    return d;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.writing = this.writing.then(async () => {
      this.scheduled = false;
      const dates = [...this.dirty];
      this.dirty.clear();
      for (const date of dates) {
        const d = this.days.get(date);
        if (!d) continue;
        try {
          await writeFileAtomic(this.file(date), JSON.stringify(d, null, 1) + "\n");
        } catch (err) {
          this.opts.onWriteError?.(err as Error);
        }
      }
      // Only today's counts can still change; older days are complete on disk.
      const today = utcDay(this.now());
      for (const date of this.days.keys()) {
        if (date !== today && !this.dirty.has(date)) {
          this.days.delete(date);
          this.index.delete(date);
        }
      }
    });
  }
}
