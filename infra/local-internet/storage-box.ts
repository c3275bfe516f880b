/**
 * A stand-in for a Hetzner Storage Box sub-account: OpenSSH's sshd in a namespace host, on port 23
 * (Hetzner's "extended SSH service", the port that runs rclone and accepts OpenSSH-format keys), with
 * one chrooted account whose directory is all it sees.
 *
 * What it reproduces, and where the real behaviour is described:
 * - a sub-account sees only its own directory (docs.hetzner.com/robot/storage-box/general, "Sub-accounts
 *   have access to their own sub-directory only"): sshd's ChrootDirectory, the account's home at `/home`
 *   inside it, so relative paths land there as they do on a Storage Box;
 * - keys come from `.ssh/authorized_keys` in that directory, one file per sub-account
 *   (docs.hetzner.com/robot/storage-box/backup-space-ssh-keys), and the account's password is always
 *   accepted over SSH besides them (gist mildsunrise/743b17d3, third-party);
 * - `command="rclone serve restic --stdio ..."` in that file is honoured, so a key can be confined to an
 *   append-only restic server (third-party reports: git.sr.ht/~fluix/fluix.one commit 32ac46e0,
 *   forum.restic.net/t/5943; Hetzner does not document it). Debian's rclone runs inside the chroot from
 *   read-only bind mounts of /usr;
 * - SFTP through sshd's internal-sftp, as the Storage Box serves it on 22 and 23.
 * What it leaves out: Hetzner's restricted shell of other whitelisted commands, SMB/WebDAV, quotas,
 * and the Storage Box's own ZFS snapshots (`snapshot()` stands in for one: a copy outside the chroot).
 *
 * The account exists only inside the namespace: `ip netns exec` bind-mounts /etc/netns/<ns>/passwd,
 * group and shadow over /etc's (ip-netns(8)), so sshd finds it and the machine's own databases stay
 * untouched.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, mustRun, runCommand, type NetHost } from "./netns";
import { ed25519KeyPair, type KeyPair } from "./sshd";
import { waitForPort } from "./wait-for-port";

/** Where stand-ins keep their files (root-owned all the way up, as ChrootDirectory requires). */
const STATE_ROOT = "/var/lib/mailstack-test";

export interface StorageBoxOptions {
  /** the sub-account's user name; default `u100000-sub1` (Hetzner's pattern) */
  user?: string;
  /** its password (always accepted over SSH, as on a Storage Box) */
  password: string;
  /** default 23 */
  port?: number;
  /** numeric id the account's files are owned by; default 40023 */
  uid?: number;
}

export interface StorageBox {
  host: NetHost;
  port: number;
  user: string;
  password: string;
  /** the server's host key, `ssh-ed25519 AAAA...` */
  hostKey: string;
  /** this machine's path of the sub-account's directory (what the account sees as its home) */
  home: string;
  /**
   * Copies the sub-account's directory, as it is now, outside the account's reach (the way a Storage
   * Box snapshot sits outside it); returns the copy's path.
   */
  snapshot(name: string): Promise<string>;
  /** the sshd log so far */
  log(): string;
  stop(): Promise<void>;
}

export async function startStorageBox(internet: LocalInternet, host: NetHost, opts: StorageBoxOptions): Promise<StorageBox> {
  for (const [bin, pkg] of [
    ["/usr/sbin/sshd", "openssh-server"],
    ["/usr/bin/rclone", "rclone"],
  ] as const) {
    if (!fs.existsSync(bin)) throw new Error(`startStorageBox: ${bin} not found; install the Debian package "${pkg}"`);
  }
  const user = opts.user ?? "u100000-sub1";
  const port = opts.port ?? 23;
  const uid = opts.uid ?? 40023;
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(user)) throw new Error(`startStorageBox: user ${JSON.stringify(user)} is not a plain account name`);

  // sshd refuses a chroot any component of which is writable by others (so not under /tmp): a
  // directory of root's own, removed by stop().
  fs.mkdirSync(STATE_ROOT, { recursive: true, mode: 0o755 });
  const dir = fs.mkdtempSync(path.join(STATE_ROOT, `${host.ns}-`));
  fs.chmodSync(dir, 0o755);
  // Outside the LocalInternet's work directory, so its teardown does not reach it: gone at exit too.
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
  process.once("exit", removeDir);
  const chroot = path.join(dir, "chroot");
  const home = path.join(chroot, "home");
  for (const d of [chroot, path.join(chroot, "usr"), path.join(chroot, "dev"), path.join(chroot, "etc")]) fs.mkdirSync(d, { mode: 0o755 });
  fs.mkdirSync(path.join(chroot, "tmp"), { mode: 0o1777 });
  fs.chmodSync(path.join(chroot, "tmp"), 0o1777);
  for (const link of ["bin", "lib", "lib64", "sbin"]) {
    if (fs.existsSync(`/${link}`)) fs.symlinkSync(fs.readlinkSync(`/${link}`), path.join(chroot, link));
  }
  fs.writeFileSync(path.join(chroot, "dev", "null"), "");
  fs.mkdirSync(path.join(home, ".ssh"), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(home, ".ssh", "authorized_keys"), "", { mode: 0o600 });
  for (const p of [home, path.join(home, ".ssh"), path.join(home, ".ssh", "authorized_keys")]) fs.chownSync(p, uid, uid);

  // The account, seen only inside this namespace (see the header).
  const netnsEtc = `/etc/netns/${host.ns}`;
  fs.mkdirSync(netnsEtc, { recursive: true });
  const hash = (await mustRun(["openssl", "passwd", "-6", "-stdin"], { input: opts.password })).trim();
  fs.writeFileSync(
    path.join(netnsEtc, "passwd"),
    fs.readFileSync("/etc/passwd", "utf8") + `${user}:x:${uid}:${uid}:storage box:/home:/bin/sh\n`,
  );
  fs.writeFileSync(path.join(netnsEtc, "group"), fs.readFileSync("/etc/group", "utf8") + `${user}:x:${uid}:\n`);
  fs.writeFileSync(path.join(netnsEtc, "shadow"), fs.readFileSync("/etc/shadow", "utf8") + `${user}:${hash}:19000:0:99999:7:::\n`, {
    mode: 0o640,
  });

  const hostKeyPair: KeyPair = await ed25519KeyPair(dir, "ssh_host_ed25519_key");
  fs.chmodSync(path.join(dir, "ssh_host_ed25519_key"), 0o600);
  const config = path.join(dir, "sshd_config");
  const logPath = path.join(dir, "sshd.log");
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${host.ipv4}`,
      `ListenAddress ${host.ipv6}`,
      `HostKey ${path.join(dir, "ssh_host_ed25519_key")}`,
      "PermitRootLogin no",
      `AllowUsers ${user}`,
      // The password is always accepted (see the header), keys from the account's own file.
      "PasswordAuthentication yes",
      "KbdInteractiveAuthentication no",
      `AuthorizedKeysFile ${path.join(home, ".ssh", "authorized_keys")}`,
      `ChrootDirectory ${chroot}`,
      "Subsystem sftp internal-sftp",
      "UsePAM no",
      "StrictModes no",
      "PidFile none",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const check = await host.run(["/usr/sbin/sshd", "-t", "-f", config]);
  if (check.code !== 0) throw new Error(`storage box sshd rejects its configuration: ${check.stderr}`);
  // rclone (and the loader it needs) inside the chroot, read-only, for this sshd's mount namespace only.
  const bind = [
    `mount --bind /usr ${chroot}/usr`,
    `mount -o remount,bind,ro ${chroot}/usr`,
    `mount --bind /dev/null ${chroot}/dev/null`,
    `exec /usr/sbin/sshd -D -e -f ${config}`,
  ].join(" && ");
  const child: ChildProcess = host.spawn(["/bin/bash", "-c", bind], { logFile: logPath });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const readLog = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8") : "");
  try {
    await waitForPort(host.ipv4, port, "storage box sshd", 10_000, alive);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${readLog()}`);
  }
  return {
    host,
    port,
    user,
    password: opts.password,
    hostKey: hostKeyPair.publicKey.trim().split(/\s+/).slice(0, 2).join(" "),
    home,
    async snapshot(name: string) {
      if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`snapshot name ${JSON.stringify(name)}: use a-z, 0-9, -`);
      const target = path.join(dir, "snapshots", name);
      fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      const r = await runCommand(["cp", "-a", home, target]);
      if (r.code !== 0) throw new Error(`snapshot ${name}: ${r.stderr}`);
      return target;
    },
    log: readLog,
    async stop() {
      await LocalInternet.stopProcess(child);
      removeDir();
      process.off("exit", removeDir);
    },
  };
}
