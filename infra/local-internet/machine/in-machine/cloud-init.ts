// cloud-init as it runs a #cloud-config on a Hetzner server's first boot, for the keys a
// mailstack user data uses. Source read: canonical/cloud-init at 04eacd06 (2026-08-21):
// config/cloud.cfg.tmpl (module order per stage), cloudinit/config/cc_write_files.py,
// cc_ssh.py, cc_set_passwords.py, cc_runcmd.py, cc_scripts_user.py, cloudinit/cmd/status.py.
//
// Stages, in boot order (cloud.cfg.tmpl cloud_init_modules / cloud_config_modules /
// cloud_final_modules): init (write_files, set_hostname, ssh, set_passwords) before sshd starts;
// config (runcmd: writes the script) and final (package_update_upgrade_install,
// write_files_deferred, scripts_user: runs it) after multi-user.target. Every module used here is
// once per instance: a reboot of the same server runs none of them again.
//
// Refused (clear error, nothing half-done): any other top-level key, since cloud-init would act on
// it and this stand-in would not. Cannot happen here: apt. package_update is skipped (no network);
// each package must already be installed on this machine's host (the machine sees the host's
// /usr), and is then "installed" as its postinst would: its units enabled and started.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import type { Journal } from "./journal";
import { packageClosure, packageInstalled, restoreHiddenUnits } from "./image";

export const DATASOURCE_FILE = "/run/cloud-init/mailstack-datasource.json";
const STATUS_FILE = "/run/cloud-init/status.json";
const RESULT_FILE = "/run/cloud-init/result.json";
const OUTPUT_LOG = "/var/log/cloud-init-output.log";

/** What the Hetzner metadata service tells cloud-init (DataSourceHetzner: instance-id, local-hostname, public-keys, user data). */
export interface Datasource {
  instanceId: string;
  localHostname: string;
  publicKeys: string[];
  userData: string;
}

const SUPPORTED_KEYS = new Set([
  "ssh_deletekeys",
  "ssh_genkeytypes",
  "ssh_keys",
  "ssh_pwauth",
  "ssh_authorized_keys",
  "disable_root",
  "package_update",
  "packages",
  "write_files",
  "runcmd",
]);

export interface CloudConfig {
  ssh_deletekeys?: boolean;
  ssh_genkeytypes?: string[];
  ssh_keys?: Record<string, string>;
  ssh_pwauth?: boolean;
  ssh_authorized_keys?: string[];
  disable_root?: boolean;
  package_update?: boolean;
  packages?: (string | string[])[];
  write_files?: WriteFile[];
  runcmd?: (string | string[])[];
}

export interface WriteFile {
  path: string;
  content?: string;
  permissions?: string;
  owner?: string;
  encoding?: string;
  append?: boolean;
  defer?: boolean;
}

/** Parses user data; only `#cloud-config` with the keys above (see the file comment). */
export function parseUserData(userData: string): CloudConfig {
  if (!userData.startsWith("#cloud-config")) {
    throw new Error(
      `user data: only "#cloud-config" is modeled by the machine's cloud-init stand-in; it starts with ${JSON.stringify(userData.slice(0, 20))}`,
    );
  }
  const doc = YAML.parse(userData) as Record<string, unknown> | null;
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("user data: #cloud-config is not a mapping");
  for (const key of Object.keys(doc)) {
    if (!SUPPORTED_KEYS.has(key)) {
      throw new Error(
        `user data: key "${key}" is not modeled by the machine's cloud-init stand-in (infra/local-internet/machine/in-machine/cloud-init.ts); cloud-init would act on it`,
      );
    }
  }
  const files = (doc.write_files ?? []) as WriteFile[];
  files.forEach((f, i) => {
    if (typeof f?.path !== "string" || !f.path.startsWith("/"))
      throw new Error(`user data: write_files[${i}].path must be an absolute path`);
    const enc = (f.encoding ?? "").toLowerCase();
    if (!["", "text/plain", "b64", "base64"].includes(enc)) {
      throw new Error(`user data: write_files[${i}].encoding "${f.encoding}" is not modeled (text/plain, b64)`);
    }
    for (const k of Object.keys(f)) {
      if (!["path", "content", "permissions", "owner", "encoding", "append", "defer"].includes(k)) {
        throw new Error(`user data: write_files[${i}].${k} is not modeled by the machine's cloud-init stand-in`);
      }
    }
  });
  return doc as CloudConfig;
}

/** The packages the user data installs, as names (a [name, version] pair names its package first). */
export function packageNames(config: CloudConfig): string[] {
  return (config.packages ?? []).map((p) => (Array.isArray(p) ? p[0] : p));
}

interface StageStatus {
  start: number | null;
  finished: number | null;
  errors: string[];
  recoverable_errors: Record<string, string[]>;
}

type StageName = "init-local" | "init" | "modules-config" | "modules-final";

/** status.json as cloud-init writes it (cloudinit/cmd/status.py reads `v1`). */
interface StatusFile {
  v1: { datasource: string; stage: StageName | null } & Record<StageName, StageStatus>;
}

function emptyStage(): StageStatus {
  return { start: null, finished: null, errors: [], recoverable_errors: {} };
}

export class CloudInit {
  private readonly status: StatusFile;
  private readonly config: CloudConfig;
  private readonly instanceDir: string;

  constructor(
    private readonly ds: Datasource,
    private readonly journal: Journal,
  ) {
    this.config = parseUserData(ds.userData);
    this.instanceDir = path.join("/var/lib/cloud/instances", ds.instanceId);
    this.status = {
      v1: {
        datasource: `DataSourceHetzner`,
        stage: null,
        "init-local": emptyStage(),
        init: emptyStage(),
        "modules-config": emptyStage(),
        "modules-final": emptyStage(),
      },
    };
    fs.mkdirSync("/run/cloud-init", { recursive: true });
    fs.rmSync(RESULT_FILE, { force: true });
    this.writeStatus();
  }

  private writeStatus(): void {
    fs.writeFileSync(STATUS_FILE, JSON.stringify(this.status, null, 1));
  }

  private log(message: string): void {
    this.journal.write({ unit: "cloud-init.service", ident: "cloud-init", message });
    fs.appendFileSync(OUTPUT_LOG, `${message}\n`);
  }

  /** Runs a per-instance module once: the semaphore file under the instance's sem/ (cloudinit/helpers.py). */
  private async module(stage: StageName, name: string, body: () => Promise<void> | void): Promise<void> {
    const sem = path.join(this.instanceDir, "sem", `config_${name}`);
    if (fs.existsSync(sem)) return;
    try {
      await body();
      fs.mkdirSync(path.dirname(sem), { recursive: true });
      fs.writeFileSync(sem, `${process.pid}\n`);
    } catch (err) {
      const message = `('${name}', ${(err as Error).message})`;
      this.status.v1[stage].errors.push(message);
      this.log(`Running module ${name} failed: ${(err as Error).message}`);
    }
  }

  private async stage(stage: StageName, body: () => Promise<void>): Promise<void> {
    this.status.v1.stage = stage;
    this.status.v1[stage].start = Date.now() / 1000;
    this.writeStatus();
    await body();
    this.status.v1[stage].finished = Date.now() / 1000;
    this.status.v1.stage = null;
    this.writeStatus();
  }

  /** cloud-init.service: Before=ssh.service, so the host key is in place when sshd starts. */
  async initStage(): Promise<void> {
    fs.mkdirSync(this.instanceDir, { recursive: true });
    fs.rmSync("/var/lib/cloud/instance", { force: true });
    fs.symlinkSync(this.instanceDir, "/var/lib/cloud/instance");
    await this.stage("init-local", async () => undefined);
    await this.stage("init", async () => {
      await this.module("init", "write_files", () => this.writeFiles(false));
      await this.module("init", "set_hostname", () => {
        fs.writeFileSync("/etc/hostname", `${this.ds.localHostname}\n`);
        spawnSync("/usr/bin/hostname", [this.ds.localHostname]);
      });
      await this.module("init", "ssh", () => this.ssh());
      await this.module("init", "set_passwords", () => this.setPasswords());
    });
  }

  /** cloud-config.service and cloud-final.service (After=multi-user.target). */
  async configAndFinalStages(startUnits: (units: string[]) => Promise<void>): Promise<void> {
    await this.stage("modules-config", async () => {
      await this.module("modules-config", "runcmd", () => this.runcmd());
    });
    await this.stage("modules-final", async () => {
      await this.module("modules-final", "package_update_upgrade_install", () => this.packages(startUnits));
      await this.module("modules-final", "write_files_deferred", () => this.writeFiles(true));
      await this.module("modules-final", "scripts_user", () => this.scriptsUser());
    });
    const errors = Object.values(this.status.v1).flatMap((s) => (typeof s === "object" && s !== null && "errors" in s ? s.errors : []));
    fs.writeFileSync(RESULT_FILE, JSON.stringify({ v1: { datasource: this.status.v1.datasource, errors } }, null, 1));
    fs.writeFileSync(path.join(this.instanceDir, "boot-finished"), `${new Date().toISOString()}\n`);
    this.log(`Cloud-init finished${errors.length ? ` with errors: ${errors.join("; ")}` : ""}.`);
  }

  /** cc_write_files.py: default mode 0644 and owner root:root; b64 decoded; append; deferred ones in the final stage. */
  private writeFiles(deferred: boolean): void {
    for (const f of this.config.write_files ?? []) {
      if (Boolean(f.defer) !== deferred) continue;
      const enc = (f.encoding ?? "").toLowerCase();
      const content = enc === "b64" || enc === "base64" ? Buffer.from(f.content ?? "", "base64") : Buffer.from(f.content ?? "", "utf8");
      const mode = f.permissions !== undefined ? parseInt(String(f.permissions), 8) : 0o644;
      fs.mkdirSync(path.dirname(f.path), { recursive: true });
      if (f.append) fs.appendFileSync(f.path, content);
      else fs.writeFileSync(f.path, content);
      fs.chmodSync(f.path, mode);
      const [user, group] = (f.owner ?? "root:root").split(":");
      const r = spawnSync("/usr/bin/chown", [`${user}:${group ?? user}`, f.path], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`chown ${f.owner} ${f.path}: ${r.stderr.trim()}`);
    }
  }

  /** cc_ssh.py handle(): delete image keys, write given keys (or generate), root's authorized_keys. */
  private ssh(): void {
    const c = this.config;
    if (c.ssh_deletekeys ?? true) {
      for (const f of fs.readdirSync("/etc/ssh")) if (/^ssh_host_.*key/.test(f)) fs.rmSync(path.join("/etc/ssh", f));
    }
    if (c.ssh_keys) {
      for (const [key, val] of Object.entries(c.ssh_keys)) {
        const m = /^(rsa|ecdsa|ed25519)_(private|public|certificate)$/.exec(key);
        if (!m) {
          this.log(`Skipping unrecognized ssh_keys entry: "${key}"`);
          continue;
        }
        const base = `/etc/ssh/ssh_host_${m[1]}_key`;
        const file = m[2] === "private" ? base : m[2] === "public" ? `${base}.pub` : `${base}-cert.pub`;
        fs.writeFileSync(file, val);
        fs.chmodSync(file, m[2] === "private" ? 0o600 : 0o644);
      }
      // A private key without its public half: derived with ssh-keygen -y (KEY_GEN_TPL).
      for (const t of ["rsa", "ecdsa", "ed25519"]) {
        if (c.ssh_keys[`${t}_private`] && !c.ssh_keys[`${t}_public`]) {
          const r = spawnSync("/usr/bin/ssh-keygen", ["-yf", `/etc/ssh/ssh_host_${t}_key`], { encoding: "utf8" });
          if (r.status === 0) fs.writeFileSync(`/etc/ssh/ssh_host_${t}_key.pub`, `${r.stdout.trim()} root@localhost\n`);
        }
      }
    } else {
      // Only without ssh_keys are keys generated (cc_ssh.py: the `else` branch).
      for (const t of c.ssh_genkeytypes ?? ["rsa", "ecdsa", "ed25519"]) {
        const file = `/etc/ssh/ssh_host_${t}_key`;
        if (fs.existsSync(file)) continue;
        spawnSync("/usr/bin/ssh-keygen", ["-q", "-t", t, "-N", "", "-f", file]);
      }
    }
    const keys = [...new Set([...this.ds.publicKeys, ...(c.ssh_authorized_keys ?? [])].map((k) => k.trim()).filter(Boolean))];
    // disable_root (default true in cloud.cfg): root's keys get a forced command telling the user to
    // log in as the default user instead (ssh_util.DISABLE_USER_OPTS; no default user here: "NONE").
    const prefix =
      (c.disable_root ?? true)
        ? `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \\"NONE\\" rather than the user \\"root\\".';echo;sleep 10;exit 142" `
        : "";
    fs.mkdirSync("/root/.ssh", { recursive: true, mode: 0o700 });
    fs.chmodSync("/root/.ssh", 0o700);
    fs.writeFileSync("/root/.ssh/authorized_keys", keys.map((k) => `${prefix}${k}\n`).join(""), { mode: 0o600 });
  }

  /** cc_set_passwords.py handle_ssh_pwauth: PasswordAuthentication in sshd_config.d/50-cloud-init.conf (ssh_util.update_ssh_config). */
  private setPasswords(): void {
    const pw = this.config.ssh_pwauth;
    if (pw === undefined) return;
    const sshd = fs.readFileSync("/etc/ssh/sshd_config", "utf8");
    const file = /^Include \/etc\/ssh\/sshd_config\.d\/\*\.conf/m.test(sshd)
      ? "/etc/ssh/sshd_config.d/50-cloud-init.conf"
      : "/etc/ssh/sshd_config";
    const line = `PasswordAuthentication ${pw ? "yes" : "no"}`;
    if (file.endsWith("50-cloud-init.conf")) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `${line}\n`, { mode: 0o600 });
    } else if (!sshd.includes(line)) {
      fs.appendFileSync(file, `${line}\n`);
    }
  }

  /** cc_runcmd.py: the commands become a /bin/sh script (util.shellify), run later by scripts_user. */
  private runcmd(): void {
    const cmds = this.config.runcmd;
    if (!cmds) return;
    const quote = (s: string) => `'${String(s).replace(/'/g, `'\\''`)}'`;
    const script = ["#!/bin/sh", ...cmds.map((c) => (Array.isArray(c) ? c.map(quote).join(" ") : c))].join("\n") + "\n";
    const file = path.join(this.instanceDir, "scripts", "runcmd");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, script, { mode: 0o700 });
  }

  /** cc_scripts_user.py: runs the instance's scripts; a failing one fails the module. */
  private scriptsUser(): void {
    const dir = path.join(this.instanceDir, "scripts");
    if (!fs.existsSync(dir)) return;
    const failed: string[] = [];
    const scripts = fs.readdirSync(dir).sort();
    for (const s of scripts) {
      const out = fs.openSync(OUTPUT_LOG, "a");
      const r = spawnSync(path.join(dir, s), [], {
        stdio: ["ignore", out, out],
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root", LANG: "C.UTF-8" },
      });
      fs.closeSync(out);
      if (r.status !== 0) failed.push(s);
    }
    if (failed.length)
      throw new Error(`RuntimeError('Runparts: ${failed.length} failures (${failed.join(", ")}) in ${scripts.length} attempted commands')`);
  }

  /**
   * package_update_upgrade_install: apt-get update cannot run (no network, nothing to fetch);
   * every package must be installed on the host already. Each package and what it depends on is
   * then "installed" as dpkg would: the units its postinst enables are enabled and started
   * (deb-systemd-helper enable, deb-systemd-invoke start; no policy-rc.d on a real server).
   */
  private async packages(startUnits: (units: string[]) => Promise<void>): Promise<void> {
    const names = packageNames(this.config);
    if (names.length === 0) return;
    if (this.config.package_update)
      this.log("apt-get update: skipped (the machine has no network to a mirror; the host's package lists stand in)");
    const missing = names.filter((n) => !packageInstalled(n));
    if (missing.length) {
      throw new Error(
        `packages ${missing.join(", ")} are not installed on this machine's host, and the machine cannot run apt (no mirror): install them on the host (apt-get install ${missing.join(" ")})`,
      );
    }
    const units = restoreHiddenUnits(packageClosure(names));
    this.log(`installed ${names.join(", ")}; enabled ${units.length ? units.join(", ") : "no units"}`);
    await startUnits(units);
  }
}

/** `cloud-init status [--wait] [--long] [--format json]` (cloudinit/cmd/status.py handle_status_args). */
export async function cloudInitStatusCli(args: string[], write: (s: string) => void): Promise<number> {
  if (args[0] !== "status") {
    write(`cloud-init: "${args[0] ?? ""}" is not modeled by the machine's cloud-init stand-in (only "status")\n`);
    return 2;
  }
  const opts = new Set(args.slice(1));
  for (const o of opts) {
    if (!["--wait", "-w", "--long", "-l", "--format", "json", "tabular"].includes(o)) {
      write(
        `usage: cloud-init status [-h] [--format {json,tabular,yaml}] [-l] [-w]\ncloud-init status: error: unrecognized arguments: ${o}\n`,
      );
      return 2;
    }
  }
  const read = () => {
    const status = fs.existsSync(STATUS_FILE) ? (JSON.parse(fs.readFileSync(STATUS_FILE, "utf8")) as StatusFile) : undefined;
    const result = fs.existsSync(RESULT_FILE)
      ? (JSON.parse(fs.readFileSync(RESULT_FILE, "utf8")) as { v1: { errors: string[] } })
      : undefined;
    const running = !result;
    const errors =
      result?.v1.errors ??
      (status ? Object.values(status.v1).flatMap((s) => (typeof s === "object" && s !== null && "errors" in s ? s.errors : [])) : []);
    return { status, running, errors, notStarted: !status };
  };
  let s = read();
  if (opts.has("--wait") || opts.has("-w")) {
    while (s.running) {
      write(".");
      await new Promise((r) => setTimeout(r, 250));
      s = read();
    }
    write("\n");
  }
  const state = s.notStarted ? "not started" : s.running ? "running" : s.errors.length ? "error" : "done";
  if (opts.has("json")) write(JSON.stringify({ status: state, errors: s.errors, stage: s.status?.v1.stage ?? null }, null, 2) + "\n");
  else {
    write(`status: ${state}\n`);
    if (opts.has("--long") || opts.has("-l")) write(`errors:${s.errors.length ? "\n\t- " + s.errors.join("\n\t- ") : " []"}\n`);
  }
  return s.errors.length && !s.running ? 1 : 0;
}
