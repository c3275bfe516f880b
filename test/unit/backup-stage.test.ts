// The backup's staging tree (server-bootstrap/backup/stage.ts): what it holds and leaves out, and
// that messages Dovecot renames while it is built are in it exactly once.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maildirBase, stageDataDir } from "../../server-bootstrap/backup/stage";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function temp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "backup-stage-"));
  dirs.push(d);
  return d;
}

function put(root: string, rel: string, content = rel, mode = 0o600): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), content, { mode });
}

function files(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

const MAILDIR = "mail/example.org/alice/Maildir";

describe("the staging tree", () => {
  test("holds mail, Dovecot's UID and keyword files, the queue, committed-or-not spool entries, reports and the certificate; leaves out drafts, caches, keys and locks", async () => {
    const data = temp();
    for (const rel of [
      `${MAILDIR}/new/1.M1.host,S=10`,
      `${MAILDIR}/cur/2.M2.host,S=10:2,FS`,
      `${MAILDIR}/dovecot-uidlist`,
      `${MAILDIR}/dovecot-keywords`,
      `${MAILDIR}/subscriptions`,
      `${MAILDIR}/.Archive/cur/3.M3.host,S=10:2,Sa`,
      `${MAILDIR}/.Archive/new/.keep`,
      `${MAILDIR}/.Archive/maildirfolder`,
      `${MAILDIR}/.Archive/dovecot-uidlist`,
      "queue/1.M9.json",
      "queue/1.M9.eml",
      "queue/mta-sts/example.net.json",
      "spool/incoming/1.M8.eml",
      "reports/tlsrpt/2026-09-01.json",
      "tls/cert.pem",
      "redis/dump.rdb",
    ])
      put(data, rel);
    const left = [
      `${MAILDIR}/tmp/4.M4.maild`,
      `${MAILDIR}/.Archive/tmp/5.M5.host`,
      `${MAILDIR}/dovecot.index`,
      `${MAILDIR}/dovecot.index.log`,
      `${MAILDIR}/dovecot.index.cache`,
      `${MAILDIR}/dovecot.list.index.log`,
      `${MAILDIR}/dovecot-uidlist.lock`,
      "queue/1.M7.json.abc.tmp",
      "spool/incoming/1.M6.raw",
      "tls/key.pem",
      "dkim/example.org/s1-rsa.pem",
      "lost+found/#123",
      ".mailstack-backup/status.json",
      "something-else/file",
    ];
    for (const rel of left) put(data, rel);
    const stage = path.join(data, ".mailstack-backup", "stage");
    const report = await stageDataDir(data, stage);
    assert.deepEqual(files(stage), [
      `${MAILDIR}/.Archive/cur/3.M3.host,S=10:2,Sa`,
      `${MAILDIR}/.Archive/dovecot-uidlist`,
      `${MAILDIR}/.Archive/maildirfolder`,
      `${MAILDIR}/.Archive/new/.keep`,
      `${MAILDIR}/cur/2.M2.host,S=10:2,FS`,
      `${MAILDIR}/dovecot-keywords`,
      `${MAILDIR}/dovecot-uidlist`,
      `${MAILDIR}/new/1.M1.host,S=10`,
      `${MAILDIR}/subscriptions`,
      "queue/1.M9.eml",
      "queue/1.M9.json",
      "queue/mta-sts/example.net.json",
      "redis/dump.rdb",
      "reports/tlsrpt/2026-09-01.json",
      "spool/incoming/1.M8.eml",
      "tls/cert.pem",
    ]);
    assert.deepEqual([report.files, report.vanished], [16, 0]);
    // Links, not copies: the staged file is the mailbox's own inode.
    assert.equal(
      fs.statSync(path.join(stage, `${MAILDIR}/new/1.M1.host,S=10`)).ino,
      fs.statSync(path.join(data, `${MAILDIR}/new/1.M1.host,S=10`)).ino,
    );
  });

  test("directories keep their owner, mode and mtime; a second staging replaces the first", async () => {
    const data = temp();
    put(data, `${MAILDIR}/new/1.M1.host,S=10`);
    fs.chmodSync(path.join(data, MAILDIR), 0o700);
    fs.chownSync(path.join(data, MAILDIR), 2525, 2525);
    fs.utimesSync(path.join(data, MAILDIR), new Date("2026-01-02T03:04:05Z"), new Date("2026-01-02T03:04:05Z"));
    const stage = path.join(data, ".mailstack-backup", "stage");
    await stageDataDir(data, stage);
    fs.unlinkSync(path.join(data, `${MAILDIR}/new/1.M1.host,S=10`));
    put(data, `${MAILDIR}/new/2.M2.host,S=10`);
    await stageDataDir(data, stage);
    const st = fs.statSync(path.join(stage, MAILDIR));
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid, st.mtime.toISOString()], [0o700, 2525, 2525, "2026-01-02T03:04:05.000Z"]);
    assert.deepEqual(files(path.join(stage, MAILDIR)), ["new/2.M2.host,S=10"]);
  });

  test("maildirBase: the part before the info separator", () => {
    assert.equal(maildirBase("1.M1.host,S=10:2,FS"), "1.M1.host,S=10");
    assert.equal(maildirBase("1.M1.host,S=10"), "1.M1.host,S=10");
  });

  test("messages Dovecot moves from new/ to cur/ and renames for flags while the tree is built are in it exactly once each", async () => {
    const data = temp();
    const maildir = path.join(data, MAILDIR);
    const count = 3000;
    for (const sub of ["new", "cur", "tmp"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    for (let i = 0; i < count; i++) fs.writeFileSync(path.join(maildir, "new", `${i}.M${i}.host,S=1`), "x");
    // Another process plays Dovecot: each message moves to cur/ and then flips a flag, again and
    // again, reporting how many renames it made, until it is stopped.
    const mover = spawn(
      process.execPath,
      [
        "-e",
        `const fs = require("fs"), p = require("path"); const d = process.argv[1]; let n = 0;
         for (;;) for (let i = 0; i < ${count}; i++) {
           const base = i + ".M" + i + ".host,S=1";
           for (const [from, to] of [["new/" + base, "cur/" + base + ":2,S"], ["cur/" + base + ":2,S", "cur/" + base + ":2,FS"], ["cur/" + base + ":2,FS", "cur/" + base + ":2,S"]]) {
             try { fs.renameSync(p.join(d, from), p.join(d, to)); if (++n % 500 === 0) process.stdout.write(n + "\\n"); } catch {}
           } }`,
        maildir,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let renames = 0;
    mover.stdout.on("data", (d: Buffer) => (renames = Number(d.toString().trim().split("\n").pop())));
    await new Promise<void>((r) => mover.stdout.once("data", () => r()));
    const stage = path.join(data, ".mailstack-backup", "stage");
    const reports = [];
    try {
      for (let i = 0; i < 4; i++) {
        const before = renames;
        reports.push(await stageDataDir(data, stage));
        const staged = [...fs.readdirSync(path.join(stage, MAILDIR, "new")), ...fs.readdirSync(path.join(stage, MAILDIR, "cur"))].map(
          maildirBase,
        );
        assert.equal(staged.length, count, `round ${i}: ${staged.length} staged`);
        assert.equal(new Set(staged).size, count, `round ${i}: a message staged twice`);
        // Give the mover's reports a moment to arrive, then check it really ran during this round.
        await new Promise((r) => setTimeout(r, 20));
        assert.ok(renames > before, `round ${i}: no rename happened while staging (${before} -> ${renames})`);
      }
    } finally {
      mover.kill("SIGKILL");
    }
    assert.ok(reports.every((r) => r.vanished === 0));
  });
});
