// The backup job's settings file on the box (`/etc/mailstack/backup/settings.json`), written by the
// deployment (deploy-files.ts) and read by the job (main.ts). One declaration for both sides: the
// deployment builds a BackupSettings, the job parses the file back with parseBackupSettings.
//
// Secrets are not in this file. They sit beside it, each in a file of its own (SECRET_FILES), so a
// settings file can be shown or logged, and so the install step can point the job at the copies in
// its private manifest directory before anything is installed (a restore runs before that).
import * as path from "node:path";

export const BACKUP_SETTINGS_VERSION = 1;

/** The files beside the settings file, by role. */
export const SECRET_FILES = {
  /** the restic repository password (one line) */
  password: "repository-password",
  /** the box's SSH private key for an SSH target (OpenSSH format) */
  sshKey: "ssh-key",
  /** the target's pinned host key: one line `<alias> <type> <base64>` */
  knownHosts: "known_hosts",
  /** an S3 target's credentials: AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=..., one per line */
  s3Credentials: "s3-credentials",
} as const;

/** The ssh_config Host (and HostKeyAlias) the job uses for an SSH target. */
export const SSH_TARGET_ALIAS = "mailstack-backup-target";

/**
 * Where the repository is and how the box reaches it:
 * - `rclone`: an SSH account whose key runs `rclone serve restic --stdio --append-only <path>` as a
 *   forced command (a Hetzner Storage Box sub-account as mailstack sets it up, or any host set up
 *   the same way): the box can add snapshots but never delete or overwrite one;
 * - `sftp`: plain SFTP, full access (the box also prunes);
 * - `s3`: an S3-compatible bucket, full access with the given credentials.
 */
export type RepositorySettings =
  | { kind: "rclone"; host: string; port: number; user: string; path: string }
  | { kind: "sftp"; host: string; port: number; user: string; path: string }
  | { kind: "s3"; endpoint: string; bucket: string; prefix: string; region?: string };

/** restic's --keep-* counts (0: that bucket keeps nothing). */
export interface RetentionSettings {
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
}

export interface BackupSettings {
  version: typeof BACKUP_SETTINGS_VERSION;
  /** the mail hostname: restic's --host, so a rebuilt server continues the same line of snapshots */
  hostname: string;
  /** maild's data directory: what is backed up, and where a restore lands */
  dataDir: string;
  repository: RepositorySettings;
  /** whether this box applies the retention policy itself (forget --prune); never with `rclone` */
  prune: boolean;
  retention: RetentionSettings;
  /** restic check --read-data-subset value: `N%` or `n/t` */
  checkSubset: string;
  /** the install step restores an empty data directory from this: `latest`, a snapshot id, or `never` */
  restoreFrom: string;
  /** how long after the last good backup it counts as overdue (seconds) */
  overdueAfterSeconds: number;
  /** restic's cache (kept between runs: index and tree blobs, so a run does not fetch them again) */
  cacheDir: string;
}

export class BackupSettingsError extends Error {}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9a-fA-F:]+$/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** a relative path on the target: the Storage Box and most SFTP servers root it in the account's home */
const REMOTE_PATH = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;
const ABS_PATH = /^\/[A-Za-z0-9._/+-]*$/;
export const SNAPSHOT_ID = /^[0-9a-f]{8,64}$/;
export const CHECK_SUBSET = /^([1-9][0-9]?(\.[0-9]+)?%|100%|[1-9][0-9]*\/[1-9][0-9]*)$/;

function fail(key: string, message: string): never {
  throw new BackupSettingsError(`${key}: ${message}`);
}

/** `key` may be a dotted path for the message; the value is looked up by its last part. */
function str(obj: Record<string, unknown>, key: string, pattern: RegExp, what: string): string {
  const v = obj[key.split(".").pop()!];
  if (typeof v !== "string" || !pattern.test(v) || v.includes("..")) fail(key, `expected ${what}, got ${JSON.stringify(v)}`);
  return v;
}

function int(obj: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = obj[key.split(".").pop()!];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    fail(key, `expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function object(v: unknown, key: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(key, "expected an object");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${key}.${k}`, `unknown key; allowed: ${keys.join(", ")}`);
  return o;
}

function readRepository(v: unknown): RepositorySettings {
  const kind = (v as Record<string, unknown> | null)?.kind;
  if (kind === "rclone" || kind === "sftp") {
    const o = object(v, "repository", ["kind", "host", "port", "user", "path"]);
    return {
      kind,
      host: str(o, "repository.host", HOST, "a host name or IP address"),
      port: int(o, "repository.port", 1, 65535),
      user: str(o, "repository.user", USER, "an account name"),
      path: str(o, "repository.path", REMOTE_PATH, "a relative path"),
    };
  }
  if (kind === "s3") {
    const o = object(v, "repository", ["kind", "endpoint", "bucket", "prefix", "region"]);
    const endpoint = o.endpoint;
    if (typeof endpoint !== "string" || !/^https?:\/\/[^/\s]+$/.test(endpoint)) fail("repository.endpoint", "expected https://host[:port]");
    return {
      kind,
      endpoint,
      bucket: str(o, "repository.bucket", /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "an S3 bucket name"),
      prefix: str(o, "repository.prefix", REMOTE_PATH, "a key prefix"),
      ...(o.region !== undefined ? { region: str(o, "repository.region", /^[a-z0-9-]+$/, "a region name") } : {}),
    };
  }
  return fail("repository.kind", `expected rclone, sftp or s3, got ${JSON.stringify(kind)}`);
}

/** The settings file's content, checked; throws BackupSettingsError naming the key at fault. */
export function parseBackupSettings(text: string): BackupSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BackupSettingsError(`not JSON: ${(e as Error).message}`);
  }
  const o = object(raw, "(settings)", [
    "version",
    "hostname",
    "dataDir",
    "repository",
    "prune",
    "retention",
    "checkSubset",
    "restoreFrom",
    "overdueAfterSeconds",
    "cacheDir",
  ]);
  if (o.version !== BACKUP_SETTINGS_VERSION) fail("version", `expected ${BACKUP_SETTINGS_VERSION}, got ${JSON.stringify(o.version)}`);
  const repository = readRepository(o.repository);
  if (typeof o.prune !== "boolean") fail("prune", "expected true or false");
  if (o.prune && repository.kind === "rclone") fail("prune", "an append-only (rclone) repository cannot be pruned by the box");
  const r = object(o.retention, "retention", ["hourly", "daily", "weekly", "monthly"]);
  const retention = {
    hourly: int(r, "retention.hourly", 0, 100000),
    daily: int(r, "retention.daily", 0, 100000),
    weekly: int(r, "retention.weekly", 0, 100000),
    monthly: int(r, "retention.monthly", 0, 100000),
  };
  if (Object.values(retention).every((n) => n === 0)) fail("retention", "keeps nothing; at least one count must be above 0");
  const restoreFrom = o.restoreFrom;
  if (typeof restoreFrom !== "string" || !(restoreFrom === "latest" || restoreFrom === "never" || SNAPSHOT_ID.test(restoreFrom))) {
    fail("restoreFrom", `expected latest, never or a snapshot id (8 to 64 hex digits), got ${JSON.stringify(restoreFrom)}`);
  }
  return {
    version: BACKUP_SETTINGS_VERSION,
    hostname: str(o, "hostname", HOST, "a host name"),
    dataDir: str(o, "dataDir", ABS_PATH, "an absolute path"),
    repository,
    prune: o.prune,
    retention,
    checkSubset: str(o, "checkSubset", CHECK_SUBSET, "N% or n/t"),
    restoreFrom,
    overdueAfterSeconds: int(o, "overdueAfterSeconds", 60, 366 * 86400),
    cacheDir: str(o, "cacheDir", ABS_PATH, "an absolute path"),
  };
}

/** Paths of the secret files that belong to a settings file (its directory). */
export function secretPaths(settingsFile: string): Record<keyof typeof SECRET_FILES, string> {
  const dir = path.dirname(settingsFile);
  return {
    password: path.join(dir, SECRET_FILES.password),
    sshKey: path.join(dir, SECRET_FILES.sshKey),
    knownHosts: path.join(dir, SECRET_FILES.knownHosts),
    s3Credentials: path.join(dir, SECRET_FILES.s3Credentials),
  };
}

/** The job's own directory on the data volume: status, the staging tree, a restore in progress. */
export function workPaths(dataDir: string): { dir: string; status: string; stage: string; restore: string; lock: string } {
  const dir = path.posix.join(dataDir, WORK_DIR);
  return {
    dir,
    status: path.posix.join(dir, "status.json"),
    stage: path.posix.join(dir, "stage"),
    restore: path.posix.join(dir, "restore"),
    lock: path.posix.join(dir, "lock"),
  };
}

/** The name of the job's directory in the data directory; never backed up, never counted as data. */
export const WORK_DIR = ".mailstack-backup";
