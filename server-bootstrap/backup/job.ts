// One backup run, one integrity check: what the timers start (systemd/backup-units.ts), each an
// idempotent step that leaves the status file and JSON log lines behind.
//
// A run: make sure the repository exists (restic init on first use), stage the data directory
// (stage.ts), `restic backup` the staging tree, then apply the retention policy where the box may
// delete (prune: true; once a day, forget --prune), or count what the policy would remove where it
// may not (append-only: forget --dry-run). Every outcome lands in the status file; a failure also
// exits non-zero, so systemd marks the unit failed and the journal keeps the reason.
import { mkdir, rm, chmod, open, readdir, readFile, unlink } from "node:fs/promises";
import type { Logger } from "../maild/log";
import { isHousekeeping, stageDataDir, type StageReport } from "./stage";
import { type BackupSettings, workPaths } from "./settings";
import { countRemoved, describeTarget, keepOptions, repositoryMissing, Restic, resticError, SNAPSHOT_TAG } from "./restic";
import { isOverdue, readStatus, writeStatus, type BackupStatus } from "./status";

/** The box prunes at most this often: forget is cheap, prune repacks. */
const PRUNE_INTERVAL_MS = 20 * 3600 * 1000;

export function initialStatus(settings: BackupSettings): BackupStatus {
  return {
    version: 1,
    target: describeTarget(settings.repository),
    appendOnly: settings.repository.kind === "rclone",
    overdueAfterSeconds: settings.overdueAfterSeconds,
  };
}

/** The status so far, with the target and bounds of these settings. */
export function currentStatus(settings: BackupSettings): BackupStatus {
  const old = readStatus(workPaths(settings.dataDir).status);
  return { ...(old ?? {}), ...initialStatus(settings) };
}

/**
 * Held while a run, check or restore works on the data directory's job directory; a second one
 * waits for nothing and refuses (systemd never starts a running oneshot twice; this covers a run
 * started by hand). A lock whose process is gone is taken over.
 */
export async function withLock<T>(settings: BackupSettings, what: string, fn: () => Promise<T>): Promise<T> {
  const { dir, lock } = workPaths(settings.dataDir);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lock, "wx", 0o600);
      await fh.writeFile(`${process.pid} ${what}\n`);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw e;
      const [pid, holder] = (await readFile(lock, "utf8").catch(() => "")).trim().split(" ");
      let alive = false;
      try {
        process.kill(Number(pid), 0);
        alive = Number(pid) > 0;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another backup job (${holder ?? "?"}, pid ${pid}) is running; try again when it is done`);
      await unlink(lock).catch(() => undefined);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

/** What the data directory holds besides housekeeping (lost+found, the job's own directory). */
export async function dataEntries(dataDir: string): Promise<string[]> {
  const names = await readdir(dataDir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [] as string[];
    throw e;
  });
  return names.filter((n) => !isHousekeeping(n)).sort();
}

/** Creates the repository unless it exists. Returns whether it did. */
export async function ensureRepository(restic: Restic): Promise<boolean> {
  // No lock for the probe: another restic holding one (a prune from outside) is not a missing repository.
  const probe = await restic.run(["cat", "config", "--no-lock"]);
  if (probe.code === 0) return false;
  if (!repositoryMissing(probe)) throw new Error(`restic cannot reach the repository: ${resticError(probe)}`);
  await restic.mustRun(["init"], "init");
  return true;
}

interface BackupSummary {
  snapshot_id: string;
  data_added: number;
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  total_files_processed: number;
  total_bytes_processed: number;
}

function summaryOf(stdout: string): BackupSummary {
  for (const line of stdout.split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    const msg = JSON.parse(line) as { message_type?: string } & BackupSummary;
    if (msg.message_type === "summary") return msg;
  }
  throw new Error("restic backup printed no summary");
}

export interface RunResult {
  ok: boolean;
  snapshot?: string;
  staged?: StageReport;
  error?: string;
}

export async function runBackup(settings: BackupSettings, restic: Restic, log: Logger, now: () => number = Date.now): Promise<RunResult> {
  const paths = workPaths(settings.dataDir);
  const status = currentStatus(settings);
  const started = now();
  if (isOverdue(status, started) && status.lastAttempt !== undefined) {
    log.warn("backup.overdue", {
      lastSuccess: status.lastSuccess?.time ?? null,
      overdueAfterSeconds: settings.overdueAfterSeconds,
    });
  }
  log.info("backup.start", { target: status.target });
  try {
    // An empty data directory is a volume that lost its data or never got it (a failed restore):
    // a snapshot of it would become `latest`, the snapshot the next restore takes.
    if ((await dataEntries(settings.dataDir)).length === 0) {
      throw new Error(`${settings.dataDir} is empty; not taking a snapshot of nothing (restore it first: README "Backups and recovery")`);
    }
    if (await ensureRepository(restic)) log.info("backup.repository_created", { target: status.target });
    const staged = await stageDataDir(settings.dataDir, paths.stage);
    log.info("backup.staged", { files: staged.files, bytes: staged.bytes, dirs: staged.dirs, vanished: staged.vanished });
    let r;
    try {
      r = await restic.run(
        // --ignore-ctime: staging links every file anew, which changes its ctime each run; contents
        // are judged by size, mtime and inode, which the links keep.
        ["backup", "--json", "--host", settings.hostname, "--tag", SNAPSHOT_TAG, "--ignore-ctime", "--one-file-system", paths.stage],
      );
    } finally {
      await rm(paths.stage, { recursive: true, force: true });
    }
    // 3: some files could not be read, the snapshot was saved anyway (restic 0.14 075_scripting).
    if (r.code !== 0 && r.code !== 3) throw new Error(`restic backup: ${resticError(r)}`);
    const summary = summaryOf(r.stdout);
    if (r.code === 3) log.warn("backup.incomplete", { snapshot: summary.snapshot_id, error: resticError(r) });
    const snapshot = summary.snapshot_id;
    const durationMs = now() - started;
    status.lastSuccess = {
      snapshot,
      time: new Date(started).toISOString(),
      files: staged.files,
      bytes: staged.bytes,
      dataAdded: summary.data_added,
      durationMs,
    };
    status.lastAttempt = { time: new Date(started).toISOString(), ok: true };
    log.info("backup.done", {
      snapshot,
      files: staged.files,
      bytes: staged.bytes,
      filesNew: summary.files_new,
      filesChanged: summary.files_changed,
      filesUnmodified: summary.files_unmodified,
      dataAdded: summary.data_added,
      durationMs,
    });
    await applyRetention(settings, restic, status, log, now);
    await writeStatus(paths.status, status);
    return { ok: true, snapshot, staged };
  } catch (e) {
    const error = (e as Error).message;
    status.lastAttempt = { time: new Date(started).toISOString(), ok: false, error };
    log.error("backup.failed", { error, lastSuccess: status.lastSuccess?.time ?? null });
    await writeStatus(paths.status, status).catch(() => undefined);
    return { ok: false, error };
  }
}

/** forget --prune (box may delete), or forget --dry-run (append-only): never fails the run. */
async function applyRetention(
  settings: BackupSettings,
  restic: Restic,
  status: BackupStatus,
  log: Logger,
  now: () => number,
): Promise<void> {
  const policy = ["forget", "--json", "--host", settings.hostname, "--tag", SNAPSHOT_TAG, ...keepOptions(settings.retention)];
  if (!settings.prune) {
    const r = await restic.run([...policy, "--dry-run"]);
    if (r.code !== 0) {
      log.warn("backup.retention_unknown", { error: resticError(r) });
      return;
    }
    status.beyondRetention = countRemoved(r.stdout);
    if (status.beyondRetention > 0) log.info("backup.prune_due", { snapshots: status.beyondRetention });
    return;
  }
  const last = status.lastPrune ? Date.parse(status.lastPrune.time) : 0;
  if (now() - last < PRUNE_INTERVAL_MS && status.lastPrune?.ok) return;
  const r = await restic.run([...policy, "--prune"]);
  const time = new Date(now()).toISOString();
  if (r.code !== 0) {
    status.lastPrune = { time, ok: false, removed: 0, error: resticError(r) };
    log.error("backup.prune_failed", { error: status.lastPrune.error! });
    return;
  }
  // With --prune, restic prints the forget JSON, then prune's own text.
  const json = r.stdout.split("\n").find((l) => l.startsWith("[")) ?? "[]";
  status.lastPrune = { time, ok: true, removed: countRemoved(json) };
  status.beyondRetention = 0;
  log.info("backup.pruned", { removed: status.lastPrune.removed });
}

export async function runCheck(settings: BackupSettings, restic: Restic, log: Logger, now: () => number = Date.now): Promise<boolean> {
  const status = currentStatus(settings);
  const time = new Date(now()).toISOString();
  log.info("backup.check_start", { subset: settings.checkSubset, target: status.target });
  const r = await restic.run(["check", "--read-data-subset", settings.checkSubset]);
  if (r.code === 0) {
    status.lastCheck = { time, ok: true, subset: settings.checkSubset };
    log.info("backup.check_done", { subset: settings.checkSubset, durationMs: now() - Date.parse(time) });
  } else {
    status.lastCheck = { time, ok: false, subset: settings.checkSubset, error: resticError(r) };
    log.error("backup.check_failed", { subset: settings.checkSubset, error: status.lastCheck.error! });
  }
  await writeStatus(workPaths(settings.dataDir).status, status);
  return r.code === 0;
}
