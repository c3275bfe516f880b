// Benchmark: the backup job on a mailbox of 10,000 messages, to the Storage Box stand-in over the
// same path the box uses (SSH on 23, `rclone serve restic --append-only`), with the real job
// (server-bootstrap/backup/, bundled) run in the box's namespace:
//   1. the first backup (every message new), 2. a second one after 100 more messages arrived and
//   100 were flagged, 3. a restore of the whole data directory onto an empty one (the install
//   step's restore), 4. the repository's size on the target, against the mailbox's.
// `sudo npm run bench:backup` (root: network namespaces). Knobs: BENCH_MESSAGES (10000).
//
// The messages: header fields of a real mail, a text body of 1-30 KiB of words, and every tenth
// a base64 attachment of 20-200 KiB of random bytes (which compresses and deduplicates not at all),
// so the mailbox looks like mail rather than like repeated text.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet } from "../../infra/local-internet/netns";
import { ed25519KeyPair } from "../../infra/local-internet/sshd";
import { startStorageBox } from "../../infra/local-internet/storage-box";
import { storageBoxAuthorizedKeys } from "../../components/backup/authorized-keys";
import { bundleBackupJob } from "../../server-bootstrap/install/daemon-bundle";
import { BACKUP_SETTINGS_VERSION, secretPaths, SSH_TARGET_ALIAS, type BackupSettings } from "../../server-bootstrap/backup/settings";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 10_000);
const NODE = path.resolve(__dirname, "../../node_modules/node/bin/node");
const WORDS =
  "mail server backup restic snapshot storage box volume message folder flag maildir queue dovecot imap smtp the a of and to in is that for on with as".split(
    " ",
  );

let seed = 42;
/** A small deterministic generator, so two runs measure the same mailbox. */
function random(): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}

function message(i: number): string {
  const bodyBytes = 1024 + Math.floor(random() * 30 * 1024);
  const words: string[] = [];
  for (let n = 0; n < bodyBytes; n += 7) words.push(WORDS[Math.floor(random() * WORDS.length)]);
  const text = words.join(" ").replace(/(.{1,72})( |$)/g, "$1\r\n");
  const head =
    `Return-Path: <sender${i % 97}@example.net>\r\nReceived: from mx.example.net by mail.example.org (maild) id ${i};\r\n\tMon, 1 Sep 2026 12:00:00 +0000\r\n` +
    `From: Sender ${i % 97} <sender${i % 97}@example.net>\r\nTo: alice@example.org\r\nSubject: message ${i}\r\nMessage-ID: <${i}.bench@example.net>\r\n` +
    `Date: Mon, 1 Sep 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n`;
  if (i % 10 !== 0) return `${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${text}`;
  const attachment = crypto
    .randomBytes(20 * 1024 + Math.floor(random() * 180 * 1024))
    .toString("base64")
    .replace(/(.{76})/g, "$1\r\n");
  return (
    `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--b\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--b--\r\n`
  );
}

function deliver(maildir: string, from: number, to: number): number {
  let bytes = 0;
  for (let i = from; i < to; i++) {
    const m = message(i);
    bytes += Buffer.byteLength(m);
    const sub = i % 3 === 0 ? "new" : "cur";
    const name = `${1_790_000_000 + i}.M${i.toString(16).padStart(24, "0")}.mail.example.org,S=${Buffer.byteLength(m)}${sub === "cur" ? ":2,S" : ""}`;
    fs.writeFileSync(path.join(maildir, sub, name), m, { mode: 0o600 });
  }
  return bytes;
}

function du(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return total;
}

const mib = (b: number) => (b / 1048576).toFixed(1);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench:backup needs root (network namespaces)");
  const internet = await LocalInternet.create();
  let storage: Awaited<ReturnType<typeof startStorageBox>> | undefined;
  try {
    const box = await internet.addHost("box");
    const storageHost = await internet.addHost("storage");
    storage = await startStorageBox(internet, storageHost, { password: "Ms1-bench-password" });
    const work = fs.mkdtempSync(path.join(internet.workDir, "bench-"));
    const boxKey = await ed25519KeyPair(work, "box-key");
    const adminKey = await ed25519KeyPair(work, "admin-key");
    fs.writeFileSync(
      path.join(storage.home, ".ssh", "authorized_keys"),
      storageBoxAuthorizedKeys({ boxPublicKey: boxKey.publicKey, adminPublicKey: adminKey.publicKey, repositoryPath: "mailstack-restic" }),
    );
    const job = bundleBackupJob(path.join(work, "backup.js"));
    const dataDir = path.join(work, "data");
    const settingsFile = path.join(work, "etc", "settings.json");
    fs.mkdirSync(path.dirname(settingsFile), { recursive: true, mode: 0o700 });
    const settings: BackupSettings = {
      version: BACKUP_SETTINGS_VERSION,
      hostname: "mail.example.org",
      dataDir,
      repository: { kind: "rclone", host: storageHost.ipv4, port: storage.port, user: storage.user, path: "mailstack-restic" },
      prune: false,
      retention: { hourly: 24, daily: 7, weekly: 4, monthly: 6 },
      checkSubset: "5%",
      restoreFrom: "latest",
      overdueAfterSeconds: 9000,
      cacheDir: path.join(work, "cache"),
    };
    fs.writeFileSync(settingsFile, JSON.stringify(settings));
    const secrets = secretPaths(settingsFile);
    fs.writeFileSync(secrets.password, "bench repository password\n", { mode: 0o600 });
    fs.writeFileSync(secrets.sshKey, boxKey.privateKey, { mode: 0o600 });
    fs.writeFileSync(secrets.knownHosts, `${SSH_TARGET_ALIAS} ${storage.hostKey}\n`);

    const maildir = path.join(dataDir, "mail", "example.org", "alice", "Maildir");
    for (const sub of ["new", "cur", "tmp"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    process.stderr.write(`writing ${MESSAGES} messages...\n`);
    const mailboxBytes = deliver(maildir, 0, MESSAGES);

    const timed = async (what: string, args: string[]) => {
      const started = process.hrtime.bigint();
      const r = await box.run([NODE, job, ...args, "--settings", settingsFile], { timeoutMs: 3_600_000 });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}\n${r.stdout}`);
      const done = [...r.stdout.split("\n"), ...r.stderr.split("\n")]
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.event === "backup.done" || l.event === "restore.done");
      return { seconds, done };
    };

    const first = await timed("first backup", ["run"]);
    const repoAfterFirst = du(path.join(storage.home, "mailstack-restic"));
    const added = deliver(maildir, MESSAGES, MESSAGES + 100);
    const cur = fs.readdirSync(path.join(maildir, "cur")).slice(0, 100);
    for (const name of cur) fs.renameSync(path.join(maildir, "cur", name), path.join(maildir, "cur", name.replace(/:2,S$/, ":2,FS")));
    const second = await timed("second backup", ["run"]);
    const repoAfterSecond = du(path.join(storage.home, "mailstack-restic"));
    const check = await timed("check 5%", ["check"]);

    for (const e of fs.readdirSync(dataDir))
      if (e !== ".mailstack-backup") fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });
    fs.rmSync(settings.cacheDir, { recursive: true, force: true });
    const restore = await timed("restore", ["restore-volume"]);
    const restoredFiles = fs.readdirSync(path.join(maildir, "cur")).length + fs.readdirSync(path.join(maildir, "new")).length;
    if (restoredFiles !== MESSAGES + 100) throw new Error(`restored ${restoredFiles} messages, expected ${MESSAGES + 100}`);

    const rows: [string, string][] = [
      ["messages", `${MESSAGES} (+100 for the second backup)`],
      ["mailbox", `${mib(mailboxBytes)} MiB (+${mib(added)} MiB)`],
      [
        "first backup",
        `${first.seconds.toFixed(1)} s (staged ${String(first.done?.files)} files, added ${mib(Number(first.done?.dataAdded))} MiB)`,
      ],
      [
        "second backup",
        `${second.seconds.toFixed(1)} s (${String(second.done?.filesNew)} new, ${String(second.done?.filesUnmodified)} unmodified, added ${mib(Number(second.done?.dataAdded))} MiB)`,
      ],
      ["check (5% of the data)", `${check.seconds.toFixed(1)} s`],
      ["restore of the whole volume (empty cache)", `${restore.seconds.toFixed(1)} s`],
      [
        "repository after the first backup",
        `${mib(repoAfterFirst)} MiB (${((repoAfterFirst / mailboxBytes) * 100).toFixed(0)}% of the mailbox)`,
      ],
      ["repository after the second backup", `${mib(repoAfterSecond)} MiB`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n");
  } finally {
    await storage?.stop().catch(() => undefined);
    await internet.destroy();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench:backup: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
