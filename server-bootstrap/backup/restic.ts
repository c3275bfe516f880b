// restic, as the backup job runs it: the repository argument, the options and environment that
// reach the target, and the calls the job makes. restic 0.14 (Debian 12) is the oldest supported:
// repository format 2 (compressed), `backup --json`, `snapshots --json`, `forget --json`,
// `check --read-data-subset` and `restore --include` all exist there.
//
// How each target is reached (settings.ts RepositorySettings):
// - rclone: restic's rclone backend starts `ssh ... <alias>` instead of rclone; the account's key is
//   bound to `rclone serve restic --stdio --append-only <path>` on the other side, which serves the
//   restic REST protocol over the SSH channel (restic docs 030_preparing_a_new_repo, "Other services
//   via rclone"; rclone cmd/serve/restic). restic's own arguments are ignored by the forced command.
// - sftp: restic's sftp backend through the same ssh_config.
// - s3: restic's s3 backend with the credentials file as its environment.
// The ssh_config, and a copy of the key ssh accepts (mode 0600), go into a private temporary
// directory per run, so the settings directory can be any copy of it (the install step runs a
// restore from its manifest directory before anything is installed).
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SSH_TARGET_ALIAS, type BackupSettings, type RepositorySettings, type RetentionSettings } from "./settings";

export interface SecretFiles {
  password: string;
  sshKey: string;
  knownHosts: string;
  s3Credentials: string;
}

/** restic's invocation for one repository: global options and environment. */
export interface ResticInvocation {
  args: string[];
  env: NodeJS.ProcessEnv;
  /** removes the private temporary directory */
  dispose(): void;
}

/** For people and logs: where the repository is, without credentials. */
export function describeTarget(repo: RepositorySettings): string {
  switch (repo.kind) {
    case "rclone":
      return `${repo.user}@${repo.host}:${repo.port} ${repo.path} (rclone serve restic, append-only)`;
    case "sftp":
      return `sftp://${repo.user}@${repo.host}:${repo.port}/${repo.path}`;
    case "s3":
      return `s3:${repo.endpoint}/${repo.bucket}/${repo.prefix}`;
  }
}

/** The ssh_config of an SSH target: the pinned host key only, the given key only, never a prompt. */
export function sshConfig(repo: { host: string; port: number; user: string }, keyFile: string, knownHostsFile: string): string {
  return [
    `Host ${SSH_TARGET_ALIAS}`,
    `  HostName ${repo.host}`,
    `  Port ${repo.port}`,
    `  User ${repo.user}`,
    `  IdentityFile ${keyFile}`,
    "  IdentitiesOnly yes",
    "  IdentityAgent none",
    `  UserKnownHostsFile ${knownHostsFile}`,
    "  GlobalKnownHostsFile /dev/null",
    // The known_hosts line names the alias, so it does not depend on how the host is addressed.
    `  HostKeyAlias ${SSH_TARGET_ALIAS}`,
    "  StrictHostKeyChecking yes",
    "  UpdateHostKeys no",
    "  BatchMode yes",
    "  PasswordAuthentication no",
    "  KbdInteractiveAuthentication no",
    "  ConnectTimeout 30",
    "  ServerAliveInterval 30",
    "  ServerAliveCountMax 10",
    "",
  ].join("\n");
}

/** KEY=value lines (the S3 credentials file); blank lines and # comments are skipped. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) continue;
    const eq = t.indexOf("=");
    if (eq <= 0) throw new Error(`credentials file: "${t.slice(0, 20)}..." is not KEY=value`);
    env[t.slice(0, eq)] = t.slice(eq + 1);
  }
  return env;
}

export function resticInvocation(settings: Pick<BackupSettings, "repository" | "cacheDir">, secrets: SecretFiles): ResticInvocation {
  const repo = settings.repository;
  const tmp = mkdtempSync(path.join(os.tmpdir(), "mailstack-backup-"));
  chmodSync(tmp, 0o700);
  const dispose = () => rmSync(tmp, { recursive: true, force: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: tmp,
    RESTIC_PASSWORD_FILE: secrets.password,
    RESTIC_CACHE_DIR: settings.cacheDir,
  };
  try {
    if (repo.kind === "s3") {
      const creds = parseEnvFile(readFileSync(secrets.s3Credentials, "utf8"));
      for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
        if (!creds[k]) throw new Error(`${secrets.s3Credentials}: ${k} is missing`);
      Object.assign(env, creds, repo.region ? { AWS_DEFAULT_REGION: repo.region } : {});
      return { args: ["--repo", `s3:${repo.endpoint}/${repo.bucket}/${repo.prefix}`], env, dispose };
    }
    // ssh refuses a key file others can read: a private copy with mode 0600.
    const key = path.join(tmp, "key");
    copyFileSync(secrets.sshKey, key);
    chmodSync(key, 0o600);
    const config = path.join(tmp, "ssh_config");
    writeFileSync(config, sshConfig(repo, key, secrets.knownHosts), { mode: 0o600 });
    const ssh = `ssh -F ${config} ${SSH_TARGET_ALIAS}`;
    if (repo.kind === "rclone") {
      return { args: ["--repo", `rclone:${repo.path}`, "--option", `rclone.program=${ssh}`], env, dispose };
    }
    return { args: ["--repo", `sftp:${SSH_TARGET_ALIAS}:${repo.path}`, "--option", `sftp.command=${ssh} -s sftp`], env, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

export interface ResticResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Notices a remote rclone prints on every start, which say nothing about the run. */
const NOISE = /^rclone: .* NOTICE: Config file .* not found - using defaults$/;

/** restic's own error lines, for a one-line message: the `Fatal:` line first, else the last lines. */
export function resticError(r: ResticResult): string {
  const lines = r.stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !NOISE.test(l) && !/^\s*(github\.com|golang\.org|runtime\/|main\.)/.test(l) && !l.startsWith("\t"));
  const fatal = lines.find((l) => l.startsWith("Fatal:"));
  // "Fatal: unable to create lock in backend: repository is already locked ... by PID 1 on host"
  const locked = lines.find((l) => /repository is already locked/.test(l));
  if (locked && fatal !== locked)
    return `${fatal ?? ""} ${locked}; another restic (a prune or check from outside?) holds the repository: try again when it is done`.trim();
  return (fatal ?? lines.slice(-3).join("; ")) || `restic exited with ${r.code}`;
}

/** restic 0.14 prints this hint when the repository's config file does not exist (0.17: exit code 10). */
export function repositoryMissing(r: ResticResult): boolean {
  return r.code === 10 || /Is there a repository at the following location\?|repository does not exist/.test(r.stderr);
}

export class Restic {
  constructor(
    private readonly invocation: ResticInvocation,
    private readonly binary = "restic",
  ) {}

  run(args: string[], opts: { cwd?: string } = {}): Promise<ResticResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, [...this.invocation.args, ...args], {
        env: this.invocation.env,
        cwd: opts.cwd,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", (e) =>
        reject(new Error(`cannot run ${this.binary}: ${e.message} (install restic 0.14 or later: apt-get install restic)`)),
      );
      child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    });
  }

  async mustRun(args: string[], what: string, opts: { cwd?: string } = {}): Promise<ResticResult> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`restic ${what}: ${resticError(r)}`);
    return r;
  }
}

export interface Snapshot {
  id: string;
  short_id: string;
  time: string;
  paths: string[];
  hostname: string;
  tags?: string[];
}

/** The tag every snapshot of this job carries. */
export const SNAPSHOT_TAG = "mailstack";

export async function listSnapshots(restic: Restic, hostname: string): Promise<Snapshot[]> {
  const r = await restic.mustRun(["snapshots", "--json", "--host", hostname, "--tag", SNAPSHOT_TAG], "snapshots");
  const list = JSON.parse(r.stdout || "[]") as Snapshot[];
  return list.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/** `latest`, or a snapshot id or unique prefix of one. */
export function pickSnapshot(snapshots: Snapshot[], wanted: string): Snapshot | undefined {
  if (wanted === "latest") return snapshots[snapshots.length - 1];
  const matches = snapshots.filter((s) => s.id.startsWith(wanted));
  if (matches.length > 1) throw new Error(`snapshot id ${wanted} is ambiguous: ${matches.map((s) => s.short_id).join(", ")}`);
  return matches[0];
}

/** forget's --keep-* options for a policy (0 counts are left out). */
export function keepOptions(retention: RetentionSettings): string[] {
  const out: string[] = [];
  for (const [flag, n] of [
    ["--keep-hourly", retention.hourly],
    ["--keep-daily", retention.daily],
    ["--keep-weekly", retention.weekly],
    ["--keep-monthly", retention.monthly],
  ] as const) {
    if (n > 0) out.push(flag, String(n));
  }
  return out;
}

/** forget --json: per group, the snapshots it keeps and removes. */
export function countRemoved(forgetJson: string): number {
  const groups = JSON.parse(forgetJson || "[]") as { remove?: unknown[] | null }[];
  return (groups ?? []).reduce((n, g) => n + (g.remove?.length ?? 0), 0);
}
