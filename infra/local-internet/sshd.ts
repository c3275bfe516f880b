/**
 * OpenSSH's sshd in a namespace host, standing in for the mail server a deployment logs into;
 * plus an ssh2 client that pins the host key the way @pulumi/command's `connection.hostKey` does
 * and runs commands / copies files exactly as MailDaemon's steps would.
 *
 * The host key is an Ed25519 key in OpenSSH format, as MailHost generates it (@pulumi/tls) and
 * cloud-init installs it; the client logs in as root with its own Ed25519 key.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Client } from "ssh2";
import { connectCheckingHostKey, execCollect as exec } from "../../components/shared/ssh-session";
import { runCommand, type LocalInternet, type NetHost } from "./netns";
import { waitForPort } from "./wait-for-port";

export interface KeyPair {
  /** OpenSSH private key */
  privateKey: string;
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string;
}

/** A fresh Ed25519 key pair in OpenSSH format (ssh-keygen, as @pulumi/tls's privateKeyOpenssh). */
export async function ed25519KeyPair(dir: string, name: string): Promise<KeyPair> {
  const file = path.join(dir, name);
  const r = await runCommand(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]);
  if (r.code !== 0) throw new Error(`ssh-keygen failed (install openssh-client): ${r.stderr}`);
  return { privateKey: fs.readFileSync(file, "utf8"), publicKey: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

export interface SshServer {
  host: NetHost;
  port: number;
  /** the server's host key, `ssh-ed25519 AAAA...` (what MailHost.hostKeyPublic holds) */
  hostKey: string;
  /** the deployer's key, authorised for root */
  client: KeyPair;
  stop(): Promise<void>;
}

export interface SshdOptions {
  port?: number;
  /** the host key to serve (OpenSSH private key and its public line); default: a fresh Ed25519 pair */
  hostKey?: KeyPair;
  /** the key authorised for root; default: a fresh Ed25519 pair */
  client?: KeyPair;
  /** sshd's AcceptEnv patterns (none by default, as in Debian's sshd_config apart from LANG/LC_*) */
  acceptEnv?: string[];
}

export async function startSshd(internet: LocalInternet, host: NetHost, opts: SshdOptions = {}): Promise<SshServer> {
  if (!fs.existsSync("/usr/sbin/sshd")) throw new Error('startSshd: /usr/sbin/sshd not found; install the Debian package "openssh-server"');
  const port = opts.port ?? 22;
  const dir = fs.mkdtempSync(path.join(internet.workDir, "sshd-"));
  let hostKey: KeyPair;
  if (opts.hostKey) {
    hostKey = opts.hostKey;
    fs.writeFileSync(path.join(dir, "ssh_host_ed25519_key"), opts.hostKey.privateKey, { mode: 0o600 });
  } else hostKey = await ed25519KeyPair(dir, "ssh_host_ed25519_key");
  const client = opts.client ?? (await ed25519KeyPair(dir, "deployer"));
  fs.chmodSync(path.join(dir, "ssh_host_ed25519_key"), 0o600);
  fs.writeFileSync(path.join(dir, "authorized_keys"), client.publicKey + "\n", { mode: 0o600 });
  const config = path.join(dir, "sshd_config");
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${host.ipv4}`,
      `HostKey ${path.join(dir, "ssh_host_ed25519_key")}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      // The box's own settings (cloud-init's drop-in): keys only.
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      // Without systemd and PAM, with keys under /tmp (notes: local-internet.md).
      "UsePAM no",
      "StrictModes no",
      "PidFile none",
      "Subsystem sftp internal-sftp",
      "LogLevel ERROR",
      ...(opts.acceptEnv && opts.acceptEnv.length > 0 ? [`AcceptEnv ${opts.acceptEnv.join(" ")}`] : []),
      "",
    ].join("\n"),
  );
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const check = await host.run(["/usr/sbin/sshd", "-t", "-f", config]);
  if (check.code !== 0) throw new Error(`sshd rejects its configuration: ${check.stderr}`);
  const child = host.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", config], { logFile: path.join(dir, "sshd.log") });
  await waitForPort(host.ipv4, port, "sshd", 10_000, () => child.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}: ${fs.readFileSync(path.join(dir, "sshd.log"), "utf8")}`);
  });
  return {
    host,
    port,
    hostKey: hostKey.publicKey.trim().split(/\s+/).slice(0, 2).join(" "),
    client,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once("close", () => r()));
      process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /** pinned host key, `ssh-ed25519 AAAA...`: any other key is refused before authentication */
  hostKey: string;
}

export class HostKeyMismatch extends Error {}

/** Opens a connection that refuses any host key but the pinned one (ssh2 hostVerifier). */
export async function connectPinned(target: SshTarget): Promise<Client> {
  const pinned = Buffer.from(target.hostKey.trim().split(/\s+/)[1] ?? "", "base64");
  const { conn } = await connectCheckingHostKey(
    { host: target.host, port: target.port, username: target.user, privateKey: target.privateKey, readyTimeout: 15_000 },
    {
      accepts: (key) => key.equals(pinned),
      refused: (key) =>
        new HostKeyMismatch(`host key mismatch: ${target.host} presented ssh-ed25519 ${key.toString("base64")}, pinned ${target.hostKey}`),
    },
  );
  return conn;
}

export { exec };
export type { ExecResult } from "../../components/shared/ssh-session";

/** Writes `content` to `remotePath` over SFTP, creating parent directories (as CopyToRemote does). */
export async function copyToRemote(conn: Client, content: string | Buffer, remotePath: string): Promise<void> {
  const mk = await exec(conn, `mkdir -p '${path.posix.dirname(remotePath).replace(/'/g, `'\\''`)}'`);
  if (mk.code !== 0) throw new Error(`mkdir for ${remotePath} failed: ${mk.stderr}`);
  await new Promise<void>((resolve, reject) => {
    conn.sftp((err, sftp) => {
      if (err) return reject(err);
      sftp.writeFile(remotePath, content, (e) => {
        sftp.end();
        if (e) reject(e);
        else resolve();
      });
    });
  });
}
