// mailstack-backup: the backup job on the box (bundled into one file, like maild; run by systemd's
// timers, by the install step for a restore, and by hand).
//
//   mailstack-backup run              one backup (the hourly timer)
//   mailstack-backup check            restic check of a sample of the data (the weekly timer)
//   mailstack-backup restore-volume   restore an empty data directory (the install step, before maild)
//   mailstack-backup restore-mailbox ADDRESS [--folder NAME]   add back what a mailbox or folder lacks
//   mailstack-backup status [--json]  the last runs, from the status file
//   mailstack-backup snapshots [--json]
// Every command takes --settings FILE (default /etc/mailstack/backup/settings.json) and, where a
// snapshot is chosen, --snapshot ID|latest. Logs are JSON lines (stdout; stderr for restore-volume,
// whose stdout is one result line for the install script). Exit 0 on success, 1 on failure, 2 on
// bad usage.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger, type Logger } from "../maild/log";
import { parseBackupSettings, secretPaths, SNAPSHOT_ID, workPaths, type BackupSettings } from "./settings";
import { listSnapshots, Restic, resticInvocation } from "./restic";
import { runBackup, runCheck, withLock, currentStatus } from "./job";
import { restoreMailbox, restoreVolume } from "./restore";
import { backupAgeSeconds, isOverdue, readStatus, type BackupStatus } from "./status";

export const DEFAULT_SETTINGS_FILE = "/etc/mailstack/backup/settings.json";

const USAGE = `usage: mailstack-backup run|check|restore-volume|status|snapshots [--settings FILE] [--snapshot ID] [--json]
       mailstack-backup restore-mailbox ADDRESS [--folder NAME] [--snapshot ID] [--settings FILE]`;

class UsageError extends Error {}

function loadSettings(file: string): BackupSettings {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read the backup settings ${file}: ${(e as Error).message}`);
  }
  try {
    return parseBackupSettings(text);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

function openRestic(settingsFile: string, settings: BackupSettings): Restic & { dispose(): void } {
  const invocation = resticInvocation(settings, secretPaths(settingsFile));
  const restic = new Restic(invocation) as Restic & { dispose(): void };
  restic.dispose = invocation.dispose;
  return restic;
}

function ago(seconds: number): string {
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${(seconds / 86400).toFixed(1)} days ago`;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The status for people: one fact per line. */
export function formatStatus(status: BackupStatus, now: number = Date.now()): string {
  const age = backupAgeSeconds(status, now);
  const rows: [string, string][] = [["target", status.target]];
  const s = status.lastSuccess;
  rows.push([
    "last backup",
    s ? `${s.time} (${ago(age!)}), snapshot ${s.snapshot.slice(0, 8)}, ${s.files} files, ${mib(s.bytes)}` : "none yet",
  ]);
  if (status.lastAttempt && !status.lastAttempt.ok)
    rows.push(["last attempt", `FAILED at ${status.lastAttempt.time}: ${status.lastAttempt.error}`]);
  rows.push(["overdue", isOverdue(status, now) ? `YES (more than ${status.overdueAfterSeconds} s since the last good backup)` : "no"]);
  if (status.lastCheck) {
    rows.push([
      "last check",
      `${status.lastCheck.ok ? "ok" : "FAILED"} at ${status.lastCheck.time} (${status.lastCheck.subset})${status.lastCheck.error ? `: ${status.lastCheck.error}` : ""}`,
    ]);
  }
  if (status.lastPrune)
    rows.push([
      "last prune",
      `${status.lastPrune.ok ? `removed ${status.lastPrune.removed} snapshots` : `FAILED: ${status.lastPrune.error}`} at ${status.lastPrune.time}`,
    ]);
  if (status.beyondRetention)
    rows.push(["beyond retention", `${status.beyondRetention} snapshots (append-only: run mailstack backup prune)`]);
  if (status.restored) rows.push(["restored", `snapshot ${status.restored.snapshot.slice(0, 8)} at ${status.restored.time}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n";
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [command, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        settings: { type: "string", default: DEFAULT_SETTINGS_FILE },
        snapshot: { type: "string" },
        folder: { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const snapshot = values.snapshot;
  if (snapshot !== undefined && snapshot !== "latest" && !SNAPSHOT_ID.test(snapshot)) {
    process.stderr.write(`--snapshot: ${JSON.stringify(snapshot)} is not latest or a snapshot id (8 to 64 hex digits)\n`);
    return 2;
  }
  const wantsAddress = command === "restore-mailbox";
  if (positionals.length !== (wantsAddress ? 1 : 0) || (values.folder !== undefined && !wantsAddress)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  // restore-volume talks to the install script on stdout: its log goes to stderr.
  const log: Logger = createLogger(command === "restore-volume" ? (l) => process.stderr.write(l) : (l) => out(l));
  const settingsFile = values.settings!;
  try {
    const settings = loadSettings(settingsFile);
    switch (command) {
      case "status": {
        const status = readStatus(workPaths(settings.dataDir).status) ?? currentStatus(settings);
        const now = Date.now();
        if (values.json)
          out(JSON.stringify({ ...status, ageSeconds: backupAgeSeconds(status, now) ?? null, overdue: isOverdue(status, now) }) + "\n");
        else out(formatStatus(status, now));
        return 0;
      }
      case "run":
      case "check":
      case "restore-volume":
      case "restore-mailbox":
      case "snapshots":
        break;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command ?? "")}`);
    }
    const restic = openRestic(settingsFile, settings);
    try {
      switch (command) {
        case "run":
          return (await withLock(settings, "run", () => runBackup(settings, restic, log))).ok ? 0 : 1;
        case "check":
          return (await withLock(settings, "check", () => runCheck(settings, restic, log))) ? 0 : 1;
        case "restore-volume": {
          const r = await withLock(settings, "restore-volume", () =>
            restoreVolume(settings, restic, log, snapshot ?? settings.restoreFrom),
          );
          out(`mailstack-backup: restore=${r.result}${r.result === "restored" ? ` snapshot=${r.snapshot}` : ""}\n`);
          return 0;
        }
        case "restore-mailbox": {
          const r = await withLock(settings, "restore-mailbox", () =>
            restoreMailbox(settings, restic, log, { address: positionals[0], folder: values.folder, snapshot }),
          );
          process.stderr.write(
            `restored from ${r.snapshot.slice(0, 8)}: ${r.messagesAdded} messages added, ${r.messagesPresent} already there` +
              (r.foldersRestored.length > 0 ? `, folders restored whole: ${r.foldersRestored.join(", ")}` : "") +
              "\n",
          );
          return 0;
        }
        case "snapshots": {
          const list = await listSnapshots(restic, settings.hostname);
          if (values.json) out(JSON.stringify(list) + "\n");
          else out(list.map((s) => `${s.short_id}  ${s.time}`).join("\n") + (list.length > 0 ? "\n" : "no snapshots\n"));
          return 0;
        }
      }
    } finally {
      restic.dispose();
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n${USAGE}\n`);
      return 2;
    }
    log.error(`${command}.failed`, { error: (e as Error).message });
    process.stderr.write(`mailstack-backup ${command}: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`mailstack-backup: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
