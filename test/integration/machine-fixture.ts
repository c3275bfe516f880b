// Shared by the machine tests: a server booted from the program's real user data in a local
// internet, MailDaemon's deploy steps over SSH into it, and a fingerprint of the paths of this
// computer a machine must never write.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import {
  connectPinned,
  copyToRemote,
  ed25519KeyPair,
  exec,
  type ExecResult,
  type KeyPair,
  type SshTarget,
} from "../../infra/local-internet/sshd";
import { Machine } from "../../infra/local-internet/machine/machine";
import { MachineVolume } from "../../infra/local-internet/machine/machine-volume";
import { renderCloudInit } from "../../server-bootstrap/cloud-init";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { renderManifest } from "../../server-bootstrap/install/file-manifest";
import { installScript } from "../../server-bootstrap/install/install-script";
import {
  installCommand,
  sha256Hex,
  stagedPath,
  waitCommand,
  type DeployCommandOptions,
} from "../../server-bootstrap/install/deploy-commands";

export interface ServerKeys {
  hostKey: KeyPair;
  deployer: KeyPair;
}

export async function serverKeys(dir: string): Promise<ServerKeys> {
  return { hostKey: await ed25519KeyPair(dir, "ssh-host-key"), deployer: await ed25519KeyPair(dir, "deployer") };
}

/** What MailHost pins: `ssh-ed25519 AAAA...` without the comment. */
export function pinned(keys: ServerKeys): string {
  return keys.hostKey.publicKey.split(" ").slice(0, 2).join(" ");
}

export function sshTarget(host: NetHost, keys: ServerKeys): SshTarget {
  return { host: host.ipv4, port: 22, user: "root", privateKey: keys.deployer.privateKey, hostKey: pinned(keys) };
}

/**
 * A server as Hetzner starts it: created from the user data MailHost renders, powered on, the
 * volume attached a moment later (the VolumeAttachment follows the Server), booted to the end of
 * cloud-init.
 */
export async function bootServer(opts: {
  internet: LocalInternet;
  host: NetHost;
  keys: ServerKeys;
  volume: MachineVolume;
  serverId: string;
  name?: string;
}): Promise<Machine> {
  const userData = renderCloudInit({
    hostKeyPrivateOpenssh: opts.keys.hostKey.privateKey,
    hostKeyPublicOpenssh: opts.keys.hostKey.publicKey,
    volumeId: opts.volume.id,
  });
  const machine = await Machine.create({
    host: opts.host,
    name: opts.name ?? "mail-1",
    instanceId: opts.serverId,
    userData,
    publicKeys: [opts.keys.deployer.publicKey],
    resolver: opts.internet.localIpv4,
    dir: path.join(opts.internet.workDir, `server-${opts.serverId}`),
  });
  await machine.powerOn();
  await new Promise((r) => setTimeout(r, 300));
  await opts.volume.attach(machine);
  await machine.waitForBoot();
  return machine;
}

export async function onServer(target: SshTarget, command: string): Promise<ExecResult> {
  const conn = await connectPinned(target);
  try {
    return await exec(conn, command);
  } finally {
    conn.end();
  }
}

/**
 * MailDaemon's steps in order, the real layout, systemd on: wait, the two copies, install with
 * the manifest on stdin (components/mail-daemon.ts).
 */
export async function deployOverSsh(
  target: SshTarget,
  input: DeployInput,
  bundle: string,
  options: DeployCommandOptions,
): Promise<{ machineId: string; install: ExecResult }> {
  const layout = boxLayout();
  const installer = installScript(layout);
  const daemon = fs.readFileSync(bundle);
  const manifest = renderManifest(deployFiles(layout, input));
  const conn = await connectPinned(target);
  try {
    const wait = await exec(conn, waitCommand(options));
    if (wait.code !== 0) throw new Error(`the wait step failed (${wait.code}): ${wait.stderr}`);
    await copyToRemote(conn, daemon, stagedPath(options, "daemon"));
    await copyToRemote(conn, installer, stagedPath(options, "installer"));
    const command = installCommand(options, { installer: sha256Hex(installer), daemon: sha256Hex(daemon), files: sha256Hex(manifest) });
    const install = await exec(conn, command, manifest);
    return { machineId: wait.stdout.trim(), install };
  } finally {
    conn.end();
  }
}

/** The last line the install script prints. */
export function summaryOf(r: ExecResult): string {
  return r.stdout.trim().split("\n").pop() ?? "";
}

/**
 * Every path of this computer a server writes to when it boots and is deployed, fingerprinted:
 * files by content, directories by their tree (names, types, sizes, modes, mtimes, link targets).
 * `root` reads another root (a machine's, through /proc/<pid>/root) for the control comparison.
 */
export const WATCHED_HOST_PATHS = [
  "/etc/passwd",
  "/etc/group",
  "/etc/shadow",
  "/etc/gshadow",
  "/etc/fstab",
  "/etc/machine-id",
  "/etc/hostname",
  "/etc/hosts",
  "/etc/resolv.conf",
  "/etc/ssh",
  "/etc/systemd/system",
  "/etc/dovecot",
  "/etc/maild",
  "/etc/apt/apt.conf.d/20auto-upgrades",
  "/usr/local",
  "/usr/bin/systemctl",
  "/usr/sbin/policy-rc.d",
  "/root/.ssh",
  "/root/.mailstack-deploy",
  "/var/lib/maild",
  "/var/lib/cloud",
  "/var/lib/mailstack-machine",
  "/var/log/cloud-init-output.log",
];

export function fingerprint(paths: string[] = WATCHED_HOST_PATHS, root = ""): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (p: string, depth: number) => {
    const full = root + p;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(full);
    } catch {
      out[p] = "absent";
      return;
    }
    if (st.isSymbolicLink()) out[p] = `link ${fs.readlinkSync(full)}`;
    else if (st.isDirectory()) {
      out[p] = `dir ${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (depth < 12) for (const e of fs.readdirSync(full).sort()) visit(path.posix.join(p, e), depth + 1);
    } else if (st.isFile() && st.size < 1_000_000) {
      out[p] = `file ${st.mode.toString(8)} ${st.uid}:${st.gid} ${crypto.createHash("sha256").update(fs.readFileSync(full)).digest("hex")}`;
    } else out[p] = `other ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`;
  };
  for (const p of paths) visit(p, 0);
  return out;
}

/** The entries that differ between two fingerprints. */
export function differences(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}
