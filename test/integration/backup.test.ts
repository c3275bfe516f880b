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
import { argon2idHash } from "../../components/shared/argon2id";
import { deploy, freshRoot, maildPid, selfSignedCert, stopDeployment, type Deployment } from "../harness/box-deploy";
import { startSpamFilter, type SpamFilter } from "../../infra/local-internet/spam-filter";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";
import { runBackupCommand } from "../../infra/cli/backup";

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
  let spamFilter: SpamFilter | undefined;
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
    // maild asks the box's rspamd about every message; without systemd the install only reports it,
    // so one runs in the box for every deployment of this test (no DNS here: the box's resolver is 127.0.0.1)
    spamFilter = await startSpamFilter(internet, box, { upstreamDns: "none" });
    const input: DeployInput = {
      hostname: "mail.example.test",
      domains: [{ name: "example.test", dkim: [] }],
      users: [{ address: ADDRESS, passwordHash: argon2idHash(PASSWORD) }],
      aliases: [{ address: "postmaster@example.test", to: [ADDRESS] }],
      tls: tlsCert,
      spam: TEST_DEPLOY_SPAM,
      maild: {
        listen: {
          smtp: [{ host: box.ipv4, port: 25 }],
          http: [
            { host: box.ipv4, port: 80 },
            { host: "127.0.0.1", port: 80 },
          ],
          // /metrics is served over HTTPS to loopback clients only (maild/web/routes.ts).
          https: [{ host: "127.0.0.1", port: 443 }],
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
    await spamFilter?.stop().catch(() => undefined);
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
      assert.match(
        r.summary,
        /actions=sieve:compile,metadata-guard:apply,maild:start,unbound:restart-skipped,redis-server:restart-skipped,rspamd:restart-skipped,dovecot:restart-skipped,backup:timers-skipped$/,
      );
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
      const channel = Duplex.from({ readable: ssh.stdout, writable: ssh.stdin });
      // Closing the session writes to an ssh that is going away (EPIPE): not the test's concern.
      channel.on("error", () => undefined);
      const session = http2.connect("http://rclone", { createConnection: () => channel as unknown as net.Socket });
      session.on("error", () => undefined);
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
      assert.match(r.summary, /actions=backup:restore,sieve:compile,metadata-guard:apply,maild:start,/);
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

      // The sender retries on its own schedule; a flush asks it to retry now.
      const flush = await peerHost.run(["/usr/sbin/postqueue", "-c", peer.configDir, "-f"]);
      assert.equal(flush.code, 0, flush.stderr);
      await peer.waitForEmptyQueue(60_000);
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

  /** The stack outputs `mailstack backup` reads, as `pulumi stack output --json --show-secrets` would print them. */
  function outputsFile(): string {
    const file = path.join(work, "outputs.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        hostname: "mail.example.test",
        ipv4: box.ipv4,
        hostKey: sshd.hostKey,
        deployerPrivateKey: sshd.client.privateKey,
        backup: {
          target: "storageBox",
          repository: { kind: "rclone", host: storageHost.ipv4, port: storage.port, user: storage.user, path: REPO_PATH },
          appendOnly: true,
          hostKey: storage.hostKey,
          boxPublicKey: boxKey.publicKey,
          adminPublicKey: adminKey.publicKey,
          intervalMinutes: 60,
          retention: backupInput().settings.retention,
          restoreFrom: "latest",
        },
        backupRepositoryPassword: "repository password of the test",
        backupAdminPrivateKey: adminKey.privateKey,
      }),
      { mode: 0o600 },
    );
    return file;
  }

  /** maild's /metrics, scraped from the box's own loopback as a local agent would. */
  async function scrape(): Promise<{ stdout: string; stderr: string }> {
    const get = `require("node:https").get({ host: "127.0.0.1", path: "/metrics", rejectUnauthorized: false }, (r) => r.pipe(process.stdout)).on("error", (e) => { console.error(e.message); process.exit(1); })`;
    return box.run([process.execPath, "-e", get]);
  }

  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const code = await runBackupCommand([...args, "--outputs", outputsFile()], {
      layout: current.layout,
      sshPort: sshd.port,
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
    });
    return { code, out, err };
  }

  test(
    "mailstack backup restore-mailbox brings back a deleted folder whole and an expunged message, and changes nothing else",
    { timeout: 180_000 },
    async () => {
      const client = await imap();
      let before: ImapState;
      try {
        await client.mailboxDelete("Archive");
        const lock = await client.getMailboxLock("INBOX");
        try {
          const uids: number[] = [];
          for await (const m of client.fetch("1:*", { uid: true, envelope: true }))
            if (m.envelope?.subject === "m1 flagged in INBOX") uids.push(m.uid);
          await client.messageDelete(uids.join(","), { uid: true });
          // A flag changed since the backup stays as it is now.
          const m4: number[] = [];
          for await (const m of client.fetch("1:*", { uid: true, envelope: true }))
            if (m.envelope?.subject === "m4 seen after the first backup") m4.push(m.uid);
          await client.messageFlagsAdd(m4.join(","), ["\\Flagged"], { uid: true });
        } finally {
          lock.release();
        }
        before = await imapState(client);
      } finally {
        await client.logout();
      }
      assert.ok(!before.folders.some((f) => f.path === "Archive"));

      const folder = await cli(["restore-mailbox", ADDRESS, "--folder", "Archive"]);
      assert.equal(folder.code, 0, folder.err);
      assert.match(folder.out, /^restored from [0-9a-f]{8}: 0 messages added, 0 already there, folders restored whole: Archive$/m);
      const afterFolder = await (async () => {
        const c = await imap();
        try {
          return await imapState(c);
        } finally {
          await c.logout();
        }
      })();
      const archive = expected.folders.find((f) => f.path === "Archive")!;
      assert.deepEqual(
        afterFolder.folders.find((f) => f.path === "Archive"),
        archive,
        "back with its UIDVALIDITY and subscription",
      );
      assert.deepEqual(
        afterFolder.messages.filter((m) => m.folder === "Archive"),
        expected.messages.filter((m) => m.folder === "Archive"),
        "its message back with its UID and flags",
      );
      assert.deepEqual(
        afterFolder.messages.filter((m) => m.folder !== "Archive"),
        before.messages.filter((m) => m.folder !== "Archive"),
        "the INBOX untouched: the expunged message stays expunged",
      );

      const mailbox = await cli(["restore-mailbox", ADDRESS]);
      assert.equal(mailbox.code, 0, mailbox.err);
      assert.match(mailbox.out, /^restored from [0-9a-f]{8}: 1 messages added, \d+ already there$/m);
      const c = await imap();
      try {
        const after = await imapState(c);
        const inbox = after.messages.filter((m) => m.folder === "INBOX");
        const m1 = inbox.filter((m) => m.subject === "m1 flagged in INBOX");
        assert.equal(m1.length, 1, "the expunged message is back once");
        assert.deepEqual(m1[0].flags, ["\\Flagged", "\\Seen"]);
        assert.ok(m1[0].uid > Math.max(...before.messages.filter((m) => m.folder === "INBOX").map((m) => m.uid)), "with a new UID");
        assert.deepEqual(
          inbox.find((m) => m.subject === "m4 seen after the first backup")!.flags,
          ["\\Flagged", "\\Seen"],
          "a message present keeps its current flags",
        );
        assert.equal(after.messages.length, afterFolder.messages.length + 1);
      } finally {
        await c.logout();
      }
    },
  );

  test(
    "mailstack backup status shows the last snapshot, its age and size, and the target; maild's /metrics has the age",
    { timeout: 180_000 },
    async () => {
      const r = await runUnit(current.layout.backupServiceFile);
      assert.equal(r.code, 0, r.stderr);
      const done = r.log.find((l) => l.event === "backup.done")!;
      const status = await cli(["status"]);
      assert.equal(status.code, 0, status.err);
      assert.match(
        status.out,
        new RegExp(
          `^last backup +\\S+ \\(\\d+ s ago\\), snapshot ${String(done.snapshot)}, ${String(done.files)} files, [0-9.]+ MiB$`,
          "m",
        ),
      );
      assert.match(
        status.out,
        new RegExp(
          `^target +${storage.user}@${storageHost.ipv4.replace(/\./g, "\\.")}:23 mailstack-restic \\(rclone serve restic, append-only\\)$`,
          "m",
        ),
      );
      assert.match(status.out, /^overdue +no$/m);
      const json = await cli(["status", "--json"]);
      assert.equal((JSON.parse(json.out) as { lastSuccess: { snapshot: string } }).lastSuccess.snapshot, done.snapshot);
      const snaps = await cli(["snapshots"]);
      assert.equal(snaps.code, 0, snaps.err);
      assert.equal(snaps.out.trim().split("\n").length, 3, snaps.out);
      const metrics = await scrape();
      assert.match(metrics.stdout, /^mailstack_backup_age_seconds \d+$/m);
      assert.match(metrics.stdout, /^mailstack_backup_last_attempt_ok 1$/m);
      assert.match(metrics.stdout, /^mailstack_backup_overdue 0$/m);
    },
  );

  test("the weekly check reads the data back; a damaged pack fails it, logged and in the status", { timeout: 180_000 }, async () => {
    const ok = await runUnit(current.layout.backupCheckServiceFile);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(
      ok.log.map((l) => l.event),
      ["backup.check_start", "backup.check_done"],
    );
    const dataDirOnBox = path.join(storage.home, REPO_PATH, "data");
    const pack = fs.readdirSync(dataDirOnBox).map((d) => path.join(dataDirOnBox, d, fs.readdirSync(path.join(dataDirOnBox, d))[0]))[0];
    const original = fs.readFileSync(pack);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    fs.writeFileSync(pack, damaged);
    try {
      const bad = await runUnit(current.layout.backupCheckServiceFile);
      assert.equal(bad.code, 1);
      const failed = bad.log.find((l) => l.event === "backup.check_failed")!;
      assert.equal(failed.level, "error");
      const status = readStatus(workPaths(dataDir).status)!;
      assert.equal(status.lastCheck?.ok, false);
    } finally {
      fs.writeFileSync(pack, original);
    }
  });

  test(
    "a backup that cannot reach the target fails the unit, is logged as an error and shows in the status and the metrics",
    { timeout: 180_000 },
    async () => {
      const keys = path.join(storage.home, ".ssh", "authorized_keys");
      const saved = fs.readFileSync(keys);
      fs.writeFileSync(keys, "");
      try {
        const r = await runUnit(current.layout.backupServiceFile);
        assert.equal(r.code, 1);
        const failed = r.log.find((l) => l.event === "backup.failed")!;
        assert.equal(failed.level, "error");
        assert.match(String(failed.error), /restic cannot reach the repository/);
        const status = await cli(["status"]);
        assert.equal(status.code, 1);
        assert.match(status.err, /^mailstack backup status: the last backup failed: restic cannot reach the repository/);
        assert.match(status.out, /^last attempt +FAILED at /m);
        const metrics = await scrape();
        assert.match(metrics.stdout, /^mailstack_backup_last_attempt_ok 0$/m);
      } finally {
        fs.writeFileSync(keys, saved);
      }
      assert.equal((await runUnit(current.layout.backupServiceFile)).code, 0);
    },
  );

  test(
    "the retention policy is applied from the operator's machine with the admin key: the box only counts what is due",
    { timeout: 180_000 },
    async () => {
      const due = readStatus(workPaths(dataDir).status)!.beyondRetention!;
      const before = JSON.parse((await cli(["snapshots", "--direct", "--json"])).out) as unknown[];
      assert.ok(due > 0 && due === before.length - 1, `due ${due} of ${before.length}`);
      const prune = await cli(["prune"]);
      assert.equal(prune.code, 0, prune.err);
      const after = JSON.parse((await cli(["snapshots", "--direct", "--json"])).out) as { id: string }[];
      assert.equal(after.length, 1, "hourly 1 and daily 1 keep the newest of this hour");
      assert.equal(after[0].id, (before as { id: string }[]).at(-1)!.id);
      const check = await adminRestic(["check"]);
      assert.equal(check.code, 0, check.stderr);
    },
  );

  test(
    "a stack without a backup removes the job from the box: no settings, no key, no password, no units",
    { timeout: 180_000 },
    async () => {
      current.input = { ...current.input, backup: undefined };
      const r = await deploy(target, current, maildBundle);
      assert.match(r.summary, /actions=backup:removed(,|$)/);
      for (const f of [
        current.layout.backupJs,
        path.dirname(current.layout.backupSettings),
        current.layout.backupServiceFile,
        current.layout.backupTimerFile,
        current.layout.backupCheckServiceFile,
        current.layout.backupCheckTimerFile,
      ]) {
        assert.equal(fs.existsSync(f), false, f);
      }
      assert.equal((await deploy(target, current, maildBundle)).summary, "mailstack-install: changed=none actions=none");
    },
  );
});
