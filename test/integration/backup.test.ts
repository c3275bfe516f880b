// Backups and disaster recovery end to end, in a local internet:
// - `storage`: a Hetzner Storage Box sub-account stand-in (infra/local-internet/storage-box.ts:
//   sshd on 23, chrooted account, the box's key bound to `rclone serve restic --append-only`);
// - `box`: the mail server, deployed with MailDaemon's exact commands into a fresh root
//   (--no-systemctl), with maild and Dovecot running the deployed configuration;
// - `peer`: a Postfix that keeps sending while the box is down.
// The backup job runs as its timer would start it (the unit's ExecStart). Flags and folders are
// set over IMAP through Dovecot before the last backup and read back after the restore.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import { Duplex } from "node:stream";
import nodemailer from "nodemailer";
import { ImapFlow } from "imapflow";
import { LocalInternet, runCommand, type NetHost } from "../../infra/local-internet/netns";
import { ed25519KeyPair, startSshd, type KeyPair, type SshServer, type SshTarget } from "../../infra/local-internet/sshd";
import { startStorageBox, type StorageBox } from "../../infra/local-internet/storage-box";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { boxLayout, MAILD_GID, MAILD_UID } from "../../server-bootstrap/install/layout";
import type { DeployBackup, DeployInput } from "../../server-bootstrap/install/deploy-files";
import { bundleBackupJob, bundleDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { secretPaths, SSH_TARGET_ALIAS, workPaths } from "../../server-bootstrap/backup/settings";
import { sshConfig } from "../../server-bootstrap/backup/restic";
import { readStatus } from "../../server-bootstrap/backup/status";
import { storageBoxAuthorizedKeys } from "../../components/backup/authorized-keys";
import { argon2idHash } from "../../components/config/password-hash";
import { deploy, freshRoot, maildPid, selfSignedCert, stopDeployment, type Deployment } from "../harness/box-deploy";

const PASSWORD = "alice secret";
const ADDRESS = "alice@example.test";
const REPO_PATH = "mailstack-restic";

interface ImapMessage {
  folder: string;
  uid: number;
  subject: string;
  flags: string[];
}

interface ImapState {
  folders: { path: string; subscribed: boolean; uidValidity: string }[];
  messages: ImapMessage[];
}

/** Every folder (with subscription and UIDVALIDITY) and every message (UID, subject, flags). */
async function imapState(client: ImapFlow): Promise<ImapState> {
  const folders: ImapState["folders"] = [];
  const messages: ImapMessage[] = [];
  for (const box of (await client.list()).sort((a, b) => a.path.localeCompare(b.path))) {
    // A level that only holds others ("Lists" of "Lists/Debian") cannot be selected.
    if (box.flags.has("\\Noselect") || box.flags.has("\\NonExistent")) {
      folders.push({ path: box.path, subscribed: box.subscribed === true, uidValidity: "" });
      continue;
    }
    const status = await client.status(box.path, { uidValidity: true });
    folders.push({ path: box.path, subscribed: box.subscribed === true, uidValidity: String(status && status.uidValidity) });
    const lock = await client.getMailboxLock(box.path);
    try {
      if ((client.mailbox && client.mailbox.exists) === 0) continue;
      for await (const m of client.fetch("1:*", { uid: true, flags: true, envelope: true })) {
        // \Recent belongs to a session (RFC 3501 2.3.2; gone in RFC 9051), not to the message.
        const flags = [...(m.flags ?? [])].filter((f) => f !== "\\Recent").sort();
        messages.push({ folder: box.path, uid: m.uid, subject: m.envelope?.subject ?? "", flags });
      }
    } finally {
      lock.release();
    }
  }
  messages.sort((a, b) => a.folder.localeCompare(b.folder) || a.uid - b.uid);
  return { folders, messages };
}

/** sha256 of every file under dir (relative path -> digest), `locks/` left out (restic removes its own). */
function treeDigest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (rel === "locks" || rel.startsWith("locks/")) continue;
      if (e.isDirectory()) walk(p);
      else out[rel] = crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

function parseJsonLines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("backups: to a Storage Box stand-in, restored by the install step", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let storageHost: NetHost;
  let peerHost: NetHost;
  let sshd: SshServer;
  let target: SshTarget;
  let storage: StorageBox;
  let dovecot: DovecotServer | undefined;
  let peer: PostfixPeer | undefined;
  let maildBundle: string;
  let work: string;
  let dataDir: string;
  let boxKey: KeyPair;
  let adminKey: KeyPair;
  let current: Deployment;
  let tlsCert: { certificatePem: string; privateKeyPem: string };
  const snapshots: string[] = [];
  let expected: ImapState;

  /** The backup job as its timer starts it: the service's ExecStart, as root in the box's namespace. */
  async function runUnit(unitFile: string): Promise<{ code: number; log: Record<string, unknown>[]; stderr: string }> {
    const execStart = fs
      .readFileSync(unitFile, "utf8")
      .match(/^ExecStart=(.*)$/m)![1]
      .split(" ");
    const r = await box.run(execStart, { timeoutMs: 120_000 });
    return { code: r.code, log: parseJsonLines(r.stdout), stderr: r.stderr };
  }

  async function imap(): Promise<ImapFlow> {
    const client = new ImapFlow({
      host: box.ipv4,
      port: 993,
      secure: true,
      servername: "mail.example.test",
      tls: { rejectUnauthorized: false },
      auth: { user: ADDRESS, pass: PASSWORD },
      logger: false,
    });
    await client.connect();
    return client;
  }

  async function send(subject: string): Promise<void> {
    const t = nodemailer.createTransport({ host: box.ipv4, port: 25, secure: false, ignoreTLS: true, name: "peer.example.net" });
    await t.sendMail({ from: "bob@example.net", to: ADDRESS, subject, text: `body of ${subject}` });
  }

  async function startImap(): Promise<void> {
    dovecot = await startDovecot(internet, box, {
      dataDir,
      users: [{ address: ADDRESS, passwordHash: argon2idHash(PASSWORD) }],
      tls: { certPath: current.layout.tlsCert, keyPath: current.layout.tlsKey },
      uid: MAILD_UID,
      gid: MAILD_GID,
    });
  }

  /** The repository as the admin key sees it (full SFTP access, from outside the box). */
  async function adminRestic(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const dir = fs.mkdtempSync(path.join(work, "admin-"));
    fs.writeFileSync(path.join(dir, "key"), adminKey.privateKey, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, "known_hosts"), `${SSH_TARGET_ALIAS} ${storage.hostKey}\n`);
    fs.writeFileSync(
      path.join(dir, "ssh_config"),
      sshConfig({ host: storageHost.ipv4, port: storage.port, user: storage.user }, path.join(dir, "key"), path.join(dir, "known_hosts")),
    );
    fs.writeFileSync(path.join(dir, "password"), "repository password of the test\n");
    return runCommand(
      [
        "restic",
        "--repo",
        `sftp:${SSH_TARGET_ALIAS}:${REPO_PATH}`,
        "--option",
        `sftp.command=ssh -F ${path.join(dir, "ssh_config")} ${SSH_TARGET_ALIAS} -s sftp`,
        "--password-file",
        path.join(dir, "password"),
        "--cache-dir",
        path.join(dir, "cache"),
        ...args,
      ],
      { timeoutMs: 120_000 },
    );
  }

  function backupInput(restoreFrom = "latest"): DeployBackup {
    return {
      settings: {
        repository: { kind: "rclone", host: storageHost.ipv4, port: storage.port, user: storage.user, path: REPO_PATH },
        prune: false,
        retention: { hourly: 1, daily: 1, weekly: 0, monthly: 0 },
        checkSubset: "100%",
        restoreFrom,
      },
      intervalMinutes: 60,
      jobJs: fs.readFileSync(path.join(work, "bundle", "backup.js"), "utf8"),
      repositoryPassword: "repository password of the test",
      sshPrivateKey: boxKey.privateKey,
      targetHostKey: storage.hostKey,
    };
  }

  function deployment(rootName: string, input: DeployInput): Deployment {
    const root = freshRoot(work, rootName);
    return { layout: boxLayout({ root, dataDir }), stageDir: path.join(root, "root/.mailstack-deploy"), input };
  }

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("backup tests need root (network namespaces, sshd, chown)");
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    storageHost = await internet.addHost("storage");
    peerHost = await internet.addHost("peer");
    sshd = await startSshd(internet, box);
    target = { host: box.ipv4, port: sshd.port, user: "root", privateKey: sshd.client.privateKey, hostKey: sshd.hostKey };
    storage = await startStorageBox(internet, storageHost, { password: "Storage-box-password-1" });
    // maild (uid 2525) and Dovecot's processes reach their files through it.
    fs.chmodSync(internet.workDir, 0o711);
    work = fs.mkdtempSync(path.join(internet.workDir, "backup-"));
    fs.chmodSync(work, 0o755);
    boxKey = await ed25519KeyPair(work, "box-backup-key");
    adminKey = await ed25519KeyPair(work, "backup-admin-key");
    fs.writeFileSync(
      path.join(storage.home, ".ssh", "authorized_keys"),
      storageBoxAuthorizedKeys({ boxPublicKey: boxKey.publicKey, adminPublicKey: adminKey.publicKey, repositoryPath: REPO_PATH }),
    );
    maildBundle = bundleDaemon(path.join(work, "bundle", "maild.js"));
    bundleBackupJob(path.join(work, "bundle", "backup.js"));
    dataDir = path.join(work, "data");
    fs.mkdirSync(dataDir);
    tlsCert = await selfSignedCert(work, "mail.example.test", [box.ipv4]);
    const input: DeployInput = {
      hostname: "mail.example.test",
      domains: [{ name: "example.test", dkim: [] }],
      users: [{ address: ADDRESS, passwordHash: argon2idHash(PASSWORD) }],
      aliases: [{ address: "postmaster@example.test", to: [ADDRESS] }],
      tls: tlsCert,
      maild: {
        listen: {
          smtp: [{ host: box.ipv4, port: 25 }],
          http: [
            { host: box.ipv4, port: 80 },
            { host: "127.0.0.1", port: 80 },
          ],
          https: [],
        },
        dnsServers: ["127.0.0.1"],
        shutdownTimeoutMs: 2000,
      },
      backup: undefined,
    };
    current = deployment("root1", { ...input, backup: backupInput() });
  });

  after(async () => {
    await dovecot?.stop().catch(() => undefined);
    await peer?.stop().catch(() => undefined);
    const pid = current && maildPid(current.layout);
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await storage?.stop().catch(() => undefined);
    await internet?.destroy();
  });

  test(
    "a first deploy installs the job, its secrets closed to all but root, and finds nothing to restore on a new target",
    { timeout: 180_000 },
    async () => {
      const r = await deploy(target, current, maildBundle);
      assert.match(r.summary, /actions=metadata-guard:apply,maild:start,dovecot:restart-skipped,backup:timers-skipped$/);
      assert.match(r.stderr, /mailstack-install: restore=no-repository/);
      const secrets = secretPaths(current.layout.backupSettings);
      for (const f of [current.layout.backupSettings, secrets.password, secrets.sshKey]) {
        assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
        assert.equal(fs.statSync(f).uid, 0, f);
      }
      assert.equal(fs.readFileSync(secrets.knownHosts, "utf8"), `${SSH_TARGET_ALIAS} ${storage.hostKey}\n`);
      assert.ok(!fs.existsSync(secrets.s3Credentials));
      await startImap();
    },
  );

  test("the timer's job creates the repository and takes a snapshot; every step is a JSON log line", { timeout: 180_000 }, async () => {
    await send("m1 flagged in INBOX");
    await send("m2 answered in Archive");
    await send("m3 important in Lists/Debian");
    const client = await imap();
    try {
      await client.mailboxCreate("Archive");
      await client.mailboxCreate(["Lists", "Debian"]);
      await client.mailboxSubscribe("Archive");
      await client.mailboxSubscribe("Lists/Debian");
      const lock = await client.getMailboxLock("INBOX");
      try {
        const byUid = new Map<string, number>();
        for await (const m of client.fetch("1:*", { uid: true, envelope: true })) byUid.set(m.envelope!.subject!, m.uid);
        await client.messageFlagsAdd(String(byUid.get("m1 flagged in INBOX")), ["\\Seen", "\\Flagged"], { uid: true });
        await client.messageFlagsAdd(String(byUid.get("m2 answered in Archive")), ["\\Seen", "\\Answered"], { uid: true });
        await client.messageFlagsAdd(String(byUid.get("m3 important in Lists/Debian")), ["$Important"], { uid: true });
        await client.messageMove(String(byUid.get("m2 answered in Archive")), "Archive", { uid: true });
        await client.messageMove(String(byUid.get("m3 important in Lists/Debian")), "Lists/Debian", { uid: true });
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
    const r = await runUnit(current.layout.backupServiceFile);
    assert.equal(r.code, 0, r.stderr);
    const events = r.log.map((l) => l.event);
    assert.deepEqual(events, ["backup.start", "backup.repository_created", "backup.staged", "backup.done"]);
    for (const line of r.log) assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T/);
    const done = r.log.find((l) => l.event === "backup.done")!;
    snapshots.push(String(done.snapshot));
    const status = readStatus(workPaths(dataDir).status)!;
    assert.equal(status.lastSuccess?.snapshot, done.snapshot);
    assert.equal(status.appendOnly, true);
    const listed = await adminRestic(["snapshots", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { short_id: string; hostname: string; tags: string[] }[]).map((s) => [s.short_id, s.hostname, s.tags]),
      [[done.snapshot, "mail.example.test", ["mailstack"]]],
    );
  });

  test("mail arrives, flags change, and the next run adds a second snapshot holding only what changed", { timeout: 180_000 }, async () => {
    await send("m4 seen after the first backup");
    await send("m5 after the first backup");
    const client = await imap();
    try {
      const lock = await client.getMailboxLock("INBOX");
      try {
        // No other command may run inside a FETCH loop (imapflow): collect, then store.
        const uids: number[] = [];
        for await (const m of client.fetch("1:*", { uid: true, envelope: true })) {
          if (m.envelope?.subject === "m4 seen after the first backup") uids.push(m.uid);
        }
        await client.messageFlagsAdd(uids.join(","), ["\\Seen"], { uid: true });
      } finally {
        lock.release();
      }
      expected = await imapState(client);
    } finally {
      await client.logout();
    }
    assert.deepEqual(
      expected.messages.map((m) => [m.folder, m.subject, m.flags]).sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`)),
      [
        ["Archive", "m2 answered in Archive", ["\\Answered", "\\Seen"]],
        ["INBOX", "m1 flagged in INBOX", ["\\Flagged", "\\Seen"]],
        ["INBOX", "m4 seen after the first backup", ["\\Seen"]],
        ["INBOX", "m5 after the first backup", []],
        ["Lists/Debian", "m3 important in Lists/Debian", ["$Important"]],
      ],
    );
    const r = await runUnit(current.layout.backupServiceFile);
    assert.equal(r.code, 0, r.stderr);
    const done = r.log.find((l) => l.event === "backup.done")!;
    assert.notEqual(done.snapshot, snapshots[0]);
    snapshots.push(String(done.snapshot));
    // Incremental: the three messages already backed up and unchanged since are not read again
    // (the staging links keep their inode and mtime; --ignore-ctime), m4 was renamed for its flag.
    assert.ok(Number(done.filesUnmodified) >= 3, `unmodified: ${String(done.filesUnmodified)}, new: ${String(done.filesNew)}`);
  });

  test(
    "the box's key can neither delete nor overwrite a snapshot, nor reach the files over SFTP or a shell",
    { timeout: 180_000 },
    async () => {
      const before = treeDigest(path.join(storage.home, REPO_PATH));
      const secrets = secretPaths(current.layout.backupSettings);
      const cfg = path.join(work, "box-ssh_config");
      fs.writeFileSync(
        cfg,
        sshConfig({ host: storageHost.ipv4, port: storage.port, user: storage.user }, secrets.sshKey, secrets.knownHosts),
      );
      // The restic REST protocol over the key's forced command, spoken directly (HTTP/2 on the SSH channel).
      const ssh = spawn("ip", ["netns", "exec", box.ns, "ssh", "-F", cfg, SSH_TARGET_ALIAS], { stdio: ["pipe", "pipe", "pipe"] });
      let sshErr = "";
      ssh.stderr.on("data", (d: Buffer) => (sshErr += d.toString()));
      // Closing the session writes to an ssh that is going away.
      ssh.stdin.on("error", () => undefined);
      const session = http2.connect("http://rclone", {
        createConnection: () => Duplex.from({ readable: ssh.stdout, writable: ssh.stdin }) as unknown as net.Socket,
      });
      const request = (method: string, p: string, body?: string) =>
        new Promise<number>((resolve, reject) => {
          const req = session.request({ ":method": method, ":path": p, accept: "application/vnd.x.restic.rest.v2" });
          req.on("response", (h) => resolve(Number(h[":status"])));
          req.on("error", reject);
          req.resume();
          req.end(body);
        });
      try {
        const full = (await adminRestic(["snapshots", "--json"])).stdout;
        const ids = (JSON.parse(full) as { id: string }[]).map((s) => s.id);
        const keys = fs.readdirSync(path.join(storage.home, REPO_PATH, "keys"));
        const pack = fs
          .readdirSync(path.join(storage.home, REPO_PATH, "data"))
          .flatMap((d) => fs.readdirSync(path.join(storage.home, REPO_PATH, "data", d)))[0];
        assert.equal(await request("GET", "/snapshots/"), 200, `the channel itself works: ${sshErr}`);
        assert.equal(await request("DELETE", `/snapshots/${ids[0]}`), 403);
        assert.equal(await request("POST", `/snapshots/${ids[0]}`, "{}"), 403);
        assert.equal(await request("DELETE", `/data/${pack}`), 403);
        assert.equal(await request("POST", `/data/${pack}`, "garbage"), 403);
        assert.equal(await request("DELETE", `/keys/${keys[0]}`), 403);
        assert.equal(await request("DELETE", "/config"), 403);
        assert.equal(await request("POST", "/config", "garbage"), 403);
      } finally {
        session.close();
        ssh.kill();
      }
      const sftp = await box.run(["sftp", "-F", cfg, "-b", "-", SSH_TARGET_ALIAS], {
        input: `rm ${REPO_PATH}/config\n`,
        timeoutMs: 20_000,
      });
      assert.notEqual(sftp.code, 0, "SFTP with the box's key");
      const shell = await box.run(["ssh", "-F", cfg, SSH_TARGET_ALIAS, "rm", "-rf", REPO_PATH], { timeoutMs: 20_000 });
      assert.doesNotMatch(shell.stderr, /Permission denied \(publickey/);
      assert.deepEqual(treeDigest(path.join(storage.home, REPO_PATH)), before);
      const check = await adminRestic(["check"]);
      assert.equal(check.code, 0, check.stderr);
      assert.match(storage.log(), /forced-command \(key-option\) 'rclone serve restic --stdio --append-only mailstack-restic'/);
    },
  );

  test(
    "a wiped volume is restored by the install step before maild starts; mail sent meanwhile is deferred, then delivered",
    { timeout: 180_000 },
    async () => {
      // The old machine goes (its delete step stops maild), the volume comes back empty.
      await stopDeployment(target, current);
      await dovecot!.stop();
      dovecot = undefined;
      for (const e of fs.readdirSync(dataDir)) fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });

      // A sending server tries while nothing answers on port 25.
      peer = await startPostfix(internet, peerHost, {
        myhostname: "mx.peer.test",
        mydomain: "peer.test",
        tlsSecurityLevel: "none",
        extraMain: { relayhost: `[${box.ipv4}]:25` },
      });
      await peer.sendmail(
        "carol@peer.test",
        [ADDRESS],
        `From: carol@peer.test\r\nTo: ${ADDRESS}\r\nSubject: m6 sent during the restore\r\n\r\nhello\r\n`,
      );
      const deadline = Date.now() + 20_000;
      while (!/status=deferred .*Connection refused/.test(peer.log())) {
        assert.ok(Date.now() < deadline, `no deferral logged:\n${peer.log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }

      // A new machine (fresh root), the same stack: the install step restores, then starts maild.
      current = deployment("root2", current.input);
      const r = await deploy(target, current, maildBundle);
      assert.match(r.summary, /actions=backup:restore,metadata-guard:apply,maild:start,/);
      assert.match(r.stderr, new RegExp(`mailstack-install: restore=restored snapshot=${snapshots[1]}`));
      const restoreLog = parseJsonLines(
        r.stderr
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .join("\n"),
      );
      assert.deepEqual(
        restoreLog.map((l) => l.event),
        ["restore.start", "restore.done"],
      );

      await peer.waitForEmptyQueue(30_000);
      assert.doesNotMatch(peer.log(), /status=bounced/);
      assert.match(peer.log(), /status=sent/);

      await startImap();
      const client = await imap();
      try {
        const after = await imapState(client);
        assert.deepEqual(after.folders, expected.folders, "folders, subscriptions and UIDVALIDITY");
        const m6 = after.messages.filter((m) => m.subject === "m6 sent during the restore");
        assert.equal(m6.length, 1, "the message sent during the restore arrived once");
        assert.deepEqual(
          after.messages.filter((m) => m.subject !== "m6 sent during the restore"),
          expected.messages,
          "every message of the last backup, with its UID and flags, in its folder",
        );
      } finally {
        await client.logout();
      }
    },
  );

  test("an install onto a volume that holds mail restores nothing, though restoreFrom asks for it", { timeout: 180_000 }, async () => {
    const countBefore = fs.readdirSync(path.join(dataDir, "mail/example.test/alice/Maildir/new")).length;
    const r = await deploy(target, current, maildBundle);
    assert.equal(r.summary, "mailstack-install: changed=none actions=none");
    assert.doesNotMatch(r.stderr, /restore=/);
    assert.equal(fs.readdirSync(path.join(dataDir, "mail/example.test/alice/Maildir/new")).length, countBefore);
  });
});
