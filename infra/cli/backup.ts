// `mailstack backup status|snapshots|restore-mailbox|prune`: the backups of a deployed stack, from
// the operator's machine. What it knows of the stack comes from its outputs, as
// `pulumi stack output --json --show-secrets` prints them (`--outputs FILE`).
//
// - status, snapshots, restore-mailbox log in to the mail server as the deployment does (root, the
//   deployer key, the server's pinned host key) and run the backup job there
//   (server-bootstrap/backup/main.ts): the box knows what its last runs did, and what it restores
//   lands where Dovecot reads it.
// - prune, and `snapshots --direct` when the server is gone, talk to the repository from here with
//   the admin key (the one key with delete rights on an append-only Storage Box) through the local
//   restic (0.14 or later).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { Client } from "ssh2";
import { boxLayout, type BoxLayout } from "../../server-bootstrap/install/layout";
import { deployerKeyForSsh2 } from "../../server-bootstrap/install/deployer-key";
import { parsePinnedHostKey, sha256Fingerprint } from "../../server-bootstrap/install/host-key-pin";
import { shq } from "../../server-bootstrap/install/shell-steps";
import { formatStatus } from "../../server-bootstrap/backup/main";
import { isOverdue, type BackupStatus } from "../../server-bootstrap/backup/status";
import { keepOptions, listSnapshots, Restic, resticInvocation, SNAPSHOT_TAG } from "../../server-bootstrap/backup/restic";
import { SNAPSHOT_ID, SSH_TARGET_ALIAS, type RepositorySettings } from "../../server-bootstrap/backup/settings";
import type { BackupInfo } from "../../components/mail-backup";
import { execCollect, type ExecResult } from "../../components/shared/ssh-session";
import { UsageError, type Command } from "./command";

export const BACKUP_USAGE = `usage: mailstack backup status [--json]                       --outputs FILE
       mailstack backup snapshots [--json] [--direct]            --outputs FILE
       mailstack backup restore-mailbox ADDRESS [--folder NAME] [--snapshot ID] --outputs FILE
       mailstack backup prune [--dry-run]                        --outputs FILE

  FILE holds the stack's outputs: pulumi stack output --json --show-secrets > FILE (keep it private),
  or --outputs <(pulumi stack output --json --show-secrets).
  status           the last backup (snapshot, age, size), failures, the last integrity check, the
                   target; exit 1 when the backup is overdue or the last run failed
  snapshots        the snapshots of this mail host; --direct reads the repository from here (when
                   the server is gone) with the admin key and the local restic
  restore-mailbox  adds back, from a snapshot (default the latest), what one mailbox or one folder
                   lacks; nothing present is changed
  prune            applies the stack's retention policy to the repository from here with the admin
                   key (an append-only Storage Box: the server cannot delete)`;

/** The stack outputs this command reads (infra/program.ts). */
export interface BackupStackOutputs {
  hostname: string;
  ipv4: string;
  hostKey: string;
  deployerPrivateKey: string;
  backup: BackupInfo;
  backupRepositoryPassword: string;
  backupAdminPrivateKey: string;
}

export interface BackupCliOptions {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** the box's paths (tests install into a temp root); default the real box's */
  layout?: BoxLayout;
  /** SSH port of the mail server; default 22 */
  sshPort?: number;
  /** the restic binary for --direct and prune */
  restic?: string;
}

export function readOutputs(file: string): BackupStackOutputs {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`--outputs ${file}: not the JSON of pulumi stack output --json --show-secrets (${(e as Error).message})`);
  }
  if (raw.backup === undefined || raw.backup === null)
    throw new Error(`--outputs ${file}: the stack has no backup (mailstack:backup is not set)`);
  for (const key of ["ipv4", "hostKey", "deployerPrivateKey", "backupRepositoryPassword", "backupAdminPrivateKey"]) {
    const v = raw[key];
    if (typeof v !== "string")
      throw new Error(`--outputs ${file}: ${key} is missing; export with pulumi stack output --json --show-secrets`);
    if (v === "[secret]") throw new Error(`--outputs ${file}: ${key} is "[secret]"; export with pulumi stack output --json --show-secrets`);
  }
  return raw as unknown as BackupStackOutputs;
}

/** Runs `command` on the mail server as root, the host key pinned. */
export function sshExec(outputs: BackupStackOutputs, command: string, port = 22): Promise<ExecResult> {
  const pin = parsePinnedHostKey(outputs.hostKey, "hostKey");
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let refused: Buffer | undefined;
    conn.once("ready", () => {
      execCollect(conn, command)
        .then(resolve, reject)
        .finally(() => conn.end());
    });
    conn.once("error", (err) =>
      reject(
        refused
          ? new Error(
              `${outputs.ipv4}:${port} presents the host key ${sha256Fingerprint(refused)}, not the stack's ${sha256Fingerprint(pin.blob)}`,
            )
          : new Error(`cannot log in to ${outputs.ipv4}:${port}: ${err.message}`),
      ),
    );
    conn.connect({
      host: outputs.ipv4,
      port,
      username: "root",
      privateKey: deployerKeyForSsh2(outputs.deployerPrivateKey, "deployerPrivateKey"),
      readyTimeout: 20_000,
      hostVerifier: (key: Buffer) => {
        if (key.equals(pin.blob)) return true;
        refused = key;
        return false;
      },
    });
  });
}

/** The job's command line on the box. */
function jobCommand(layout: BoxLayout, args: string[]): string {
  return [layout.node, layout.backupJs, ...args, "--settings", layout.backupSettings].map(shq).join(" ");
}

/** How the admin key reaches the repository (only SSH targets have one). */
function adminRepository(info: BackupInfo): RepositorySettings {
  const repo = info.repository;
  if (repo.kind === "s3") throw new Error("an S3 target has no admin key: the server applies the retention policy itself");
  // The admin key's line has no forced command: plain SFTP with delete rights.
  return { ...repo, kind: "sftp" };
}

/** restic on this machine against the repository, with the admin key (a private temporary directory holds the secrets). */
function directRestic(outputs: BackupStackOutputs, binary: string): Restic & { dispose(): void } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-backup-admin-"));
  fs.chmodSync(tmp, 0o700);
  const files = {
    password: path.join(tmp, "password"),
    sshKey: path.join(tmp, "key"),
    knownHosts: path.join(tmp, "known_hosts"),
    s3Credentials: path.join(tmp, "s3"),
  };
  fs.writeFileSync(files.password, `${outputs.backupRepositoryPassword}\n`, { mode: 0o600 });
  fs.writeFileSync(files.sshKey, deployerKeyForSsh2(outputs.backupAdminPrivateKey, "backupAdminPrivateKey"), { mode: 0o600 });
  if (!outputs.backup.hostKey) throw new Error("the stack's backup output has no hostKey: run pulumi up first");
  fs.writeFileSync(files.knownHosts, `${SSH_TARGET_ALIAS} ${outputs.backup.hostKey}\n`);
  const invocation = resticInvocation({ repository: adminRepository(outputs.backup), cacheDir: path.join(tmp, "cache") }, files);
  const restic = new Restic(invocation, binary) as Restic & { dispose(): void };
  restic.dispose = () => {
    invocation.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  return restic;
}

export async function runBackupCommand(argv: string[], opts: BackupCliOptions = {}): Promise<number> {
  const out = opts.stdout ?? ((t: string) => process.stdout.write(t));
  const err = opts.stderr ?? ((t: string) => process.stderr.write(t));
  // Bad arguments throw UsageError: the dispatcher (main.ts) prints the reason and the usage, exit 2.
  const layout = opts.layout ?? boxLayout();
  const [sub, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        outputs: { type: "string" },
        json: { type: "boolean", default: false },
        direct: { type: "boolean", default: false },
        folder: { type: "string" },
        snapshot: { type: "string" },
        "dry-run": { type: "boolean", default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  const commands = ["status", "snapshots", "restore-mailbox", "prune"];
  if (sub === undefined) throw new UsageError(`a subcommand is missing: ${commands.join(", ")}`);
  if (!commands.includes(sub)) throw new UsageError(`"${sub}" is not one of ${commands.join(", ")}`);
  if (sub === "restore-mailbox" && positionals.length === 0)
    throw new UsageError("ADDRESS is missing, e.g. mailstack backup restore-mailbox alice@example.org");
  if (positionals.length > (sub === "restore-mailbox" ? 1 : 0)) throw new UsageError(`unexpected argument "${positionals.at(-1)}"`);
  if (!values.outputs) throw new UsageError(`--outputs FILE is required: the stack's outputs, pulumi stack output --json --show-secrets`);
  if (values.snapshot !== undefined && values.snapshot !== "latest" && !SNAPSHOT_ID.test(values.snapshot)) {
    throw new UsageError(`--snapshot: ${JSON.stringify(values.snapshot)} is not latest or a snapshot id (8 to 64 hex digits)`);
  }
  const outputs = readOutputs(values.outputs);
  const onBox = async (args: string[]) => {
    const r = await sshExec(outputs, jobCommand(layout, args), opts.sshPort);
    if (r.code !== 0)
      throw new Error((r.stderr.trim().split("\n").pop() ?? "") || `the backup job on ${outputs.ipv4} exited with ${r.code}`);
    return r;
  };

  switch (sub) {
    case "status": {
      const r = await onBox(["status", "--json"]);
      const status = JSON.parse(r.stdout) as BackupStatus & { ageSeconds: number | null; overdue: boolean };
      if (values.json) out(r.stdout);
      else out(`mail host   ${outputs.hostname} (${outputs.ipv4})\n${formatStatus(status)}`);
      const failed = status.lastAttempt !== undefined && !status.lastAttempt.ok;
      if (isOverdue(status) || failed) {
        err(`mailstack backup status: ${failed ? `the last backup failed: ${status.lastAttempt!.error}` : "the backup is overdue"}\n`);
        return 1;
      }
      return 0;
    }
    case "snapshots": {
      if (values.direct) {
        const restic = directRestic(outputs, opts.restic ?? "restic");
        try {
          const list = await listSnapshots(restic, outputs.hostname);
          out(values.json ? JSON.stringify(list) + "\n" : list.map((s) => `${s.short_id}  ${s.time}`).join("\n") + "\n");
        } finally {
          restic.dispose();
        }
        return 0;
      }
      out((await onBox(["snapshots", ...(values.json ? ["--json"] : [])])).stdout);
      return 0;
    }
    case "restore-mailbox": {
      const r = await onBox([
        "restore-mailbox",
        positionals[0],
        ...(values.folder !== undefined ? ["--folder", values.folder] : []),
        ...(values.snapshot !== undefined ? ["--snapshot", values.snapshot] : []),
      ]);
      out(
        r.stderr
          .split("\n")
          .filter((l) => l.startsWith("restored from"))
          .join("\n") + "\n",
      );
      return 0;
    }
    case "prune": {
      const restic = directRestic(outputs, opts.restic ?? "restic");
      try {
        const args = ["forget", "--host", outputs.hostname, "--tag", SNAPSHOT_TAG, ...keepOptions(outputs.backup.retention)];
        const r = await restic.mustRun(values["dry-run"] ? [...args, "--dry-run"] : [...args, "--prune"], "forget --prune");
        out(r.stdout);
      } finally {
        restic.dispose();
      }
      return 0;
    }
  }
  throw new UsageError(`"${sub}" is not a backup command`);
}

export const backupCommand: Command = {
  name: "backup",
  summary: "the deployed stack's backups: status, snapshots, restore one mailbox or folder, prune",
  usage: BACKUP_USAGE,
  run: (argv, io) => runBackupCommand(argv, { stdout: io.stdout, stderr: io.stderr }),
};
