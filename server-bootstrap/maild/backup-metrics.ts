// The backup job's status as Prometheus gauges on maild's /metrics (text format 0.0.4), read from
// the status file the job writes after every run (server-bootstrap/backup/status.ts). Read on each
// scrape: the file is small and the job replaces it atomically. Nothing when there is no file
// (no backup configured, or none run yet): alert on `absent(mailstack_backup_age_seconds)` too.
import { workPaths } from "../backup/settings";
import { backupAgeSeconds, isOverdue, readStatus } from "../backup/status";

export function renderBackupMetrics(dataDir: string, now: number = Date.now()): string {
  const status = readStatus(workPaths(dataDir).status);
  if (!status) return "";
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number | undefined) => {
    if (value === undefined || !Number.isFinite(value)) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  };
  const age = backupAgeSeconds(status, now);
  gauge("mailstack_backup_age_seconds", "Seconds since the snapshot of the last good backup was taken", age);
  gauge(
    "mailstack_backup_last_success_timestamp_seconds",
    "Unix time of the last good backup's snapshot",
    status.lastSuccess ? Math.floor(Date.parse(status.lastSuccess.time) / 1000) : undefined,
  );
  gauge("mailstack_backup_last_success_bytes", "Bytes in the last good backup's snapshot", status.lastSuccess?.bytes);
  gauge(
    "mailstack_backup_last_attempt_ok",
    "1 if the last backup run succeeded, 0 if it failed",
    status.lastAttempt ? Number(status.lastAttempt.ok) : undefined,
  );
  gauge("mailstack_backup_overdue", "1 if there is no good backup younger than the configured bound", Number(isOverdue(status, now)));
  gauge("mailstack_backup_overdue_after_seconds", "The bound after which a backup counts as overdue", status.overdueAfterSeconds);
  gauge(
    "mailstack_backup_last_check_ok",
    "1 if the last integrity check passed, 0 if it failed",
    status.lastCheck ? Number(status.lastCheck.ok) : undefined,
  );
  gauge(
    "mailstack_backup_snapshots_beyond_retention",
    "Snapshots the retention policy would remove (append-only targets: pruned from outside)",
    status.beyondRetention,
  );
  return lines.length > 0 ? lines.join("\n") + "\n" : "";
}
