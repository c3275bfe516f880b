// The facts the digest, the alerts and the status page are made of, gathered from where each
// lives: the certificate file, the outbound queue, the data volume, the backup job's status file,
// the spam filter, DNS (drift against the plan), the blocklist monitor and the stored reports.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { workPaths } from "../../backup/settings";
import { backupAgeSeconds, readStatus } from "../../backup/status";
import type { BlocklistResult } from "../../../components/shared/dnsbl";
import type { DriftFinding } from "../../../components/shared/dns-drift";
import type { QueueSnapshotEntry } from "../outbound/queue";
import type { TlsDayReport } from "../outbound/tls-report";
import type { DmarcSummary, TlsSummary } from "../reports/report-summary";

export interface CertificateFact {
  notAfter: string;
  daysLeft: number;
  subject: string;
  error?: string;
}

export interface QueueFact {
  size: number;
  /** ms since the epoch of the oldest waiting message */
  oldestArrival?: number;
  /** pending recipients by destination domain, with the last error each gave */
  deferredByDomain: { domain: string; recipients: number; lastError?: string }[];
}

export interface DiskFact {
  path: string;
  usedPercent: number;
  freeBytes: number;
}

export interface BackupFact {
  configured: boolean;
  lastSuccess?: string;
  ageSeconds?: number;
  overdueAfterSeconds?: number;
  lastAttemptOk?: boolean;
  lastError?: string;
}

export interface SpamFilterFact {
  configured: boolean;
  ok: boolean;
  detail: string;
}

export interface Facts {
  /** ms since the epoch when gathered */
  at: number;
  hostname: string;
  certificate: CertificateFact;
  queue: QueueFact;
  disk?: DiskFact;
  backup: BackupFact;
  spamFilter: SpamFilterFact;
  dnsDrift: { checked: number; findings: DriftFinding[] };
  blocklists: { checkedAt?: number; results: BlocklistResult[] };
  /** reports received over the last day */
  dmarc: DmarcSummary;
  tlsrpt: TlsSummary;
  /** our own outbound TLS, today so far (RFC 8460 shape) */
  outboundTls?: TlsDayReport;
}

export function certificateFact(certPath: string, now: number): CertificateFact {
  try {
    const cert = new X509Certificate(readFileSync(certPath));
    const notAfter = new Date(cert.validTo);
    return {
      notAfter: notAfter.toISOString(),
      daysLeft: Math.floor((notAfter.getTime() - now) / 86_400_000),
      subject: cert.subject.replace(/\n/g, ", "),
    };
  } catch (e) {
    return { notAfter: "", daysLeft: 0, subject: "", error: `${certPath}: ${(e as Error).message}` };
  }
}

export function queueFact(entries: QueueSnapshotEntry[]): QueueFact {
  const byDomain = new Map<string, { recipients: number; lastError?: string; lastAt: number }>();
  let oldest: number | undefined;
  for (const e of entries) {
    oldest = oldest === undefined ? e.arrival : Math.min(oldest, e.arrival);
    for (const r of e.pending) {
      const domain = r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase();
      const d = byDomain.get(domain) ?? { recipients: 0, lastAt: 0 };
      d.recipients++;
      if (r.lastDiagnostic !== undefined && (r.lastAt ?? 0) >= d.lastAt) {
        d.lastError = r.lastDiagnostic;
        d.lastAt = r.lastAt ?? 0;
      }
      byDomain.set(domain, d);
    }
  }
  return {
    size: entries.length,
    ...(oldest !== undefined ? { oldestArrival: oldest } : {}),
    deferredByDomain: [...byDomain]
      .map(([domain, d]) => ({ domain, recipients: d.recipients, ...(d.lastError ? { lastError: d.lastError } : {}) }))
      .sort((a, b) => b.recipients - a.recipients || a.domain.localeCompare(b.domain)),
  };
}

export async function diskFact(path: string): Promise<DiskFact | undefined> {
  try {
    const s = await statfs(path);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    return { path, usedPercent: total > 0 ? Math.round(((total - free) / total) * 1000) / 10 : 0, freeBytes: free };
  } catch {
    return undefined;
  }
}

/** The backup job's status file (server-bootstrap/backup/status.ts), as the digest and the alert need it. */
export function backupFact(dataDir: string, now: number): BackupFact {
  const s = readStatus(workPaths(dataDir).status);
  if (!s) return { configured: false };
  const age = backupAgeSeconds(s, now);
  return {
    configured: true,
    ...(s.lastSuccess ? { lastSuccess: s.lastSuccess.time } : {}),
    ...(age !== undefined ? { ageSeconds: age } : {}),
    overdueAfterSeconds: s.overdueAfterSeconds,
    ...(s.lastAttempt ? { lastAttemptOk: s.lastAttempt.ok } : {}),
    ...(s.lastAttempt?.error ? { lastError: s.lastAttempt.error } : {}),
  };
}

export async function spamFilterFact(url: string | undefined): Promise<SpamFilterFact> {
  if (!url) return { configured: false, ok: true, detail: "no spam filter configured" };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return res.ok
      ? { configured: true, ok: true, detail: `${url} answered ${res.status}` }
      : { configured: true, ok: false, detail: `${url} answered ${res.status}` };
  } catch (e) {
    return {
      configured: true,
      ok: false,
      detail: `${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
    };
  }
}
