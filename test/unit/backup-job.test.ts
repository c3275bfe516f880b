// The backup run's decisions (server-bootstrap/backup/job.ts) with restic replaced by a recorder
// that answers as restic 0.14 does: what it asks restic for, when it prunes, what it refuses, and
// what lands in the status file and the log.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runBackup, ensureRepository } from "../../server-bootstrap/backup/job";
import { Restic, type ResticResult } from "../../server-bootstrap/backup/restic";
import { workPaths, type BackupSettings } from "../../server-bootstrap/backup/settings";
import { readStatus } from "../../server-bootstrap/backup/status";
import { createLogger } from "../../server-bootstrap/maild/log";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function dataDir(withMail: boolean): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "backup-job-"));
  dirs.push(d);
  if (withMail) {
    fs.mkdirSync(path.join(d, "mail/example.org/alice/Maildir/new"), { recursive: true });
    fs.writeFileSync(path.join(d, "mail/example.org/alice/Maildir/new/1.M1.h,S=1"), "x");
  }
  fs.mkdirSync(path.join(d, "lost+found"));
  return d;
}

function settings(dir: string, prune: boolean): BackupSettings {
  return {
    version: 1,
    hostname: "mail.example.org",
    dataDir: dir,
    repository: prune
      ? { kind: "sftp", host: "backup.example.net", port: 22, user: "u", path: "r" }
      : { kind: "rclone", host: "u1-sub1.your-storagebox.de", port: 23, user: "u1-sub1", path: "r" },
    prune,
    retention: { hourly: 24, daily: 7, weekly: 0, monthly: 0 },
    checkSubset: "5%",
    restoreFrom: "latest",
    overdueAfterSeconds: 8460,
    cacheDir: path.join(dir, "cache"),
  };
}

const SUMMARY = JSON.stringify({
  message_type: "summary",
  files_new: 1,
  files_changed: 0,
  files_unmodified: 0,
  data_added: 100,
  total_files_processed: 1,
  total_bytes_processed: 1,
  snapshot_id: "abcd1234",
});

/** Answers restic's commands from a table (first word of the arguments), recording every call. */
function recorder(answers: Record<string, Partial<ResticResult>>): { restic: Restic; calls: string[][] } {
  const calls: string[][] = [];
  class Recording extends Restic {
    override async run(args: string[]): Promise<ResticResult> {
      calls.push(args);
      const a = answers[args[0]] ?? {};
      return { code: a.code ?? 0, stdout: a.stdout ?? "", stderr: a.stderr ?? "" };
    }
  }
  return { restic: new Recording({ args: [], env: {}, dispose: () => undefined }), calls };
}

function logs(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger((l) => lines.push(JSON.parse(l) as Record<string, unknown>)), lines };
}

describe("a backup run", () => {
  test("append-only: backs up the staging tree, never forgets, counts what the policy would remove", async () => {
    const dir = dataDir(true);
    const { restic, calls } = recorder({
      cat: { code: 0 },
      backup: { stdout: `${SUMMARY}\n` },
      forget: { stdout: '[{"keep":[{}],"remove":[{},{},{}]}]' },
    });
    const { log, lines } = logs();
    const r = await runBackup(settings(dir, false), restic, log);
    assert.equal(r.ok, true);
    assert.deepEqual(
      calls.map((c) => c.join(" ")),
      [
        "cat config --no-lock",
        `backup --json --host mail.example.org --tag mailstack --ignore-ctime --one-file-system ${workPaths(dir).stage}`,
        "forget --json --host mail.example.org --tag mailstack --keep-hourly 24 --keep-daily 7 --dry-run",
      ],
    );
    assert.deepEqual(
      lines.map((l) => l.event),
      ["backup.start", "backup.staged", "backup.done", "backup.prune_due"],
    );
    const status = readStatus(workPaths(dir).status)!;
    assert.deepEqual(
      [status.lastSuccess?.snapshot, status.lastAttempt?.ok, status.beyondRetention, status.appendOnly],
      ["abcd1234", true, 3, true],
    );
    assert.equal(fs.existsSync(workPaths(dir).stage), false, "the staging tree is removed after the run");
  });

  test("a box that may delete prunes once a day, not on every run", async () => {
    const dir = dataDir(true);
    const answers = {
      cat: { code: 0 },
      backup: { stdout: `${SUMMARY}\n` },
      forget: { stdout: '[{"keep":[],"remove":[{}]}]\nprune output\n' },
    };
    let now = Date.parse("2026-09-01T00:00:00Z");
    const first = recorder(answers);
    await runBackup(settings(dir, true), first.restic, logs().log, () => now);
    assert.deepEqual(first.calls.at(-1), [
      "forget",
      "--json",
      "--host",
      "mail.example.org",
      "--tag",
      "mailstack",
      "--keep-hourly",
      "24",
      "--keep-daily",
      "7",
      "--prune",
    ]);
    assert.deepEqual(readStatus(workPaths(dir).status)!.lastPrune, { time: "2026-09-01T00:00:00.000Z", ok: true, removed: 1 });
    now += 3600_000;
    const second = recorder(answers);
    await runBackup(settings(dir, true), second.restic, logs().log, () => now);
    assert.equal(
      second.calls.some((c) => c[0] === "forget"),
      false,
      "an hour later: no prune",
    );
    now += 20 * 3600_000;
    const third = recorder(answers);
    await runBackup(settings(dir, true), third.restic, logs().log, () => now);
    assert.equal(third.calls.at(-1)?.at(-1), "--prune");
  });

  test("an empty data directory is not backed up: its snapshot would become the latest", async () => {
    const dir = dataDir(false);
    const { restic, calls } = recorder({});
    const { log, lines } = logs();
    const r = await runBackup(settings(dir, false), restic, log);
    assert.equal(r.ok, false);
    assert.deepEqual(calls, []);
    assert.match(r.error!, /is empty; not taking a snapshot of nothing/);
    assert.equal(lines.at(-1)?.event, "backup.failed");
    assert.equal(lines.at(-1)?.level, "error");
    assert.equal(readStatus(workPaths(dir).status)!.lastAttempt?.ok, false);
  });

  test("an unreachable repository fails the run, logged as an error with restic's reason; the last success stays in the status", async () => {
    const dir = dataDir(true);
    await runBackup(
      settings(dir, false),
      recorder({ cat: { code: 0 }, backup: { stdout: `${SUMMARY}\n` }, forget: { stdout: "[]" } }).restic,
      logs().log,
    );
    const { restic } = recorder({
      cat: { code: 1, stderr: "Fatal: unable to open repository at rclone:r: error talking HTTP to rclone: unexpected EOF\n" },
    });
    const { log, lines } = logs();
    const r = await runBackup(settings(dir, false), restic, log);
    assert.equal(r.ok, false);
    assert.equal(
      r.error,
      "restic cannot reach the repository: Fatal: unable to open repository at rclone:r: error talking HTTP to rclone: unexpected EOF",
    );
    assert.deepEqual(lines.at(-1), {
      ...lines.at(-1),
      event: "backup.failed",
      level: "error",
      lastSuccess: readStatus(workPaths(dir).status)!.lastSuccess!.time,
    });
    assert.equal(readStatus(workPaths(dir).status)!.lastSuccess?.snapshot, "abcd1234");
  });
});

describe("the repository on first use", () => {
  test("a missing repository is created; one that exists is left alone; an unreachable one is an error, never an init", async () => {
    const missing = recorder({
      cat: {
        code: 1,
        stderr: "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\nrclone:r\n",
      },
    });
    assert.equal(await ensureRepository(missing.restic), true);
    assert.deepEqual(
      missing.calls.map((c) => c[0]),
      ["cat", "init"],
    );
    const present = recorder({ cat: { code: 0 } });
    assert.equal(await ensureRepository(present.restic), false);
    const down = recorder({
      cat: { code: 1, stderr: "Fatal: unable to open repository at rclone:r: ssh: connect to host: Connection refused\n" },
    });
    await assert.rejects(ensureRepository(down.restic), /restic cannot reach the repository: Fatal: unable to open repository/);
    assert.deepEqual(
      down.calls.map((c) => c[0]),
      ["cat"],
    );
  });
});
