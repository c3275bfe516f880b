// The backup job's status file (`<dataDir>/.mailstack-backup/status.json`): what the last runs did.
// The job rewrites it after every run (atomically); maild's /metrics reads it for the age of the last
// good backup (maild/backup-metrics.ts), and `mailstack backup status` prints it.
import { readFileSync } from "node:fs";
import { chmod } from "node:fs/promises";
import { writeFileAtomic } from "../maild/outbound/atomic-file";

export interface BackupStatus {
  version: 1;
  /** where the repository is, for people (no credentials) */
  target: string;
  /** whether the box can only add to the repository (retention is then applied from outside) */
  appendOnly: boolean;
  overdueAfterSeconds: number;
  lastSuccess?: {
    snapshot: string;
    /** ISO time the snapshot was taken */
    time: string;
    files: number;
    bytes: number;
    /** bytes the run added to the repository (after deduplication and compression) */
    dataAdded: number;
    durationMs: number;
  };
  lastAttempt?: { time: string; ok: boolean; error?: string };
  lastCheck?: { time: string; ok: boolean; subset: string; error?: string };
  lastPrune?: { time: string; ok: boolean; removed: number; error?: string };
  /** append-only: snapshots the retention policy would remove, left for `mailstack backup prune` */
  beyondRetention?: number;
  /** the last restore of the whole data directory */
  restored?: { snapshot: string; time: string };
}

export function readStatus(file: string): BackupStatus | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as BackupStatus;
    return s && s.version === 1 ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the status file whole; readable by all (maild reads it, it holds no secret). */
export async function writeStatus(file: string, status: BackupStatus): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(status, null, 2) + "\n");
  await chmod(file, 0o644);
}

/** Seconds since the last good backup's snapshot, or undefined when there has been none. */
export function backupAgeSeconds(status: BackupStatus | undefined, now: number = Date.now()): number | undefined {
  if (!status?.lastSuccess) return undefined;
  return Math.max(0, Math.floor((now - Date.parse(status.lastSuccess.time)) / 1000));
}

/** Overdue: no good backup at all, or the last one is older than the bound. */
export function isOverdue(status: BackupStatus | undefined, now: number = Date.now()): boolean {
  if (!status) return true;
  const age = backupAgeSeconds(status, now);
  return age === undefined || age > status.overdueAfterSeconds;
}
