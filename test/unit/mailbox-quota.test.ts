// Mailbox quotas in Maildir++'s maildirsize (server-bootstrap/maild/mailbox-quota.ts) and the SMTP
// answers maild gives when storage runs short (storage-policy.ts). The same file against the real
// Dovecot quota plugin: test/integration/maild-abuse.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addToMaildirsize, mailboxUsage } from "../../server-bootstrap/maild/mailbox-quota";
import { StoragePolicy } from "../../server-bootstrap/maild/storage-policy";
import { DEFAULT_STORAGE } from "../../server-bootstrap/maild/config";
import type { Logger } from "../../server-bootstrap/maild/log";

const quiet: Logger = { log: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function maildir(): string {
  const root = mkdtempSync(join(tmpdir(), "maild-quota-"));
  process.once("exit", () => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "Maildir");
  for (const sub of ["tmp", "new", "cur", ".Sent/new", ".Sent/cur", ".Sent/tmp"]) mkdirSync(join(dir, sub), { recursive: true });
  return dir;
}

function put(dir: string, sub: string, name: string, bytes: number): void {
  writeFileSync(join(dir, sub, name), "x".repeat(bytes));
}

describe("maildirsize (Maildir++ quota)", () => {
  test("without the file, every folder's new/ and cur/ is counted (S= from the name, else the file size) and the file written", async () => {
    const dir = maildir();
    put(dir, "new", "1.M1.host,S=1000", 10);
    put(dir, "cur", "2.M2.host,S=2000:2,S", 10);
    put(dir, ".Sent/cur", "3.M3.host:2,S", 300);
    put(dir, "tmp", "4.M4.host,S=99999", 10);
    assert.deepEqual(await mailboxUsage(dir, 10_000), { bytes: 3300, count: 3 });
    assert.equal(readFileSync(join(dir, "maildirsize"), "utf8"), "10000S\n3300 3\n");
    assert.equal(statSync(join(dir, "maildirsize")).mode & 0o777, 0o660, "the mail group (Dovecot) appends to it");
  });

  test("temporary maildirsize files an earlier (killed) process left in tmp/ are removed by the first write; this process's and other files stay", async () => {
    const dir = maildir();
    put(dir, "tmp", "maildirsize.0251309f768a", 20);
    put(dir, "tmp", "maildirsize.1c66a59fe026", 20);
    put(dir, "tmp", "4.M4.host,S=10", 10);
    const past = new Date(Date.now() - 3_600_000 - process.uptime() * 1000);
    for (const f of ["maildirsize.0251309f768a", "4.M4.host,S=10"]) utimesSync(join(dir, "tmp", f), past, past);
    await mailboxUsage(dir, 10_000);
    assert.deepEqual(readdirSync(join(dir, "tmp")).sort(), ["4.M4.host,S=10", "maildirsize.1c66a59fe026"]);
  });

  test("appended lines are summed, as every writer appends one per change", async () => {
    const dir = maildir();
    writeFileSync(join(dir, "maildirsize"), "10000S\n3300 3\n");
    await addToMaildirsize(dir, 500);
    writeFileSync(join(dir, "maildirsize"), "-300 -1\n", { flag: "a" });
    assert.equal(readFileSync(join(dir, "maildirsize"), "utf8"), "10000S\n3300 3\n500 1\n-300 -1\n");
    assert.deepEqual(await mailboxUsage(dir, 10_000), { bytes: 3500, count: 3 });
  });

  test("a last line still being written (no LF yet) is left out", async () => {
    const dir = maildir();
    writeFileSync(join(dir, "maildirsize"), "10000S\n3300 3\n12");
    assert.deepEqual(await mailboxUsage(dir, 10_000), { bytes: 3300, count: 3 });
  });

  test("a file written for another limit is recalculated and rewritten with ours", async () => {
    const dir = maildir();
    put(dir, "new", "1.M1.host,S=700", 1);
    writeFileSync(join(dir, "maildirsize"), "5000S\n123456 99\n");
    assert.deepEqual(await mailboxUsage(dir, 10_000), { bytes: 700, count: 1 });
    assert.equal(readFileSync(join(dir, "maildirsize"), "utf8"), "10000S\n700 1\n");
  });

  test("an over-quota sum is trusted only from a fresh two-line file", async () => {
    const dir = maildir();
    put(dir, "new", "1.M1.host,S=700", 1);
    writeFileSync(join(dir, "maildirsize"), "1000S\n2000 2\n");
    assert.deepEqual(await mailboxUsage(dir, 1000), { bytes: 2000, count: 2 }, "fresh, one line: trusted");
    const old = Date.now() / 1000 - 16 * 60;
    utimesSync(join(dir, "maildirsize"), old, old);
    assert.deepEqual(await mailboxUsage(dir, 1000), { bytes: 700, count: 1 }, "older than 15 minutes: counted again");
    writeFileSync(join(dir, "maildirsize"), "1000S\n700 1\n1500 1\n");
    assert.deepEqual(await mailboxUsage(dir, 1000), { bytes: 700, count: 1 }, "several lines over quota: counted again");
  });

  test("a file past 5120 bytes, or one that does not parse, is recalculated", async () => {
    const dir = maildir();
    put(dir, "cur", "1.M1.host,S=42:2,", 1);
    writeFileSync(join(dir, "maildirsize"), "10000S\n" + "1 1\n".repeat(1300));
    assert.deepEqual(await mailboxUsage(dir, 10_000), { bytes: 42, count: 1 });
    writeFileSync(join(dir, "maildirsize"), "10000S\nnot numbers\n");
    assert.deepEqual(await mailboxUsage(dir, 10_000), { bytes: 42, count: 1 });
  });

  test("appending to a mailbox without the file does nothing: the next reader counts", async () => {
    const dir = maildir();
    await addToMaildirsize(dir, 500);
    assert.throws(() => statSync(join(dir, "maildirsize")), /ENOENT/);
  });
});

describe("storage answers in SMTP terms", () => {
  function policy(opts: { free?: number; quota?: number; reserve?: number; own?: number } = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), "maild-storage-"));
    process.once("exit", () => rmSync(dataDir, { recursive: true, force: true }));
    const users = [{ address: "alice@example.org", passwordHash: "x", ...(opts.own !== undefined ? { quotaBytes: opts.own } : {}) }];
    const cfg = { dataDir, users, storage: { ...DEFAULT_STORAGE, quotaBytes: opts.quota ?? 10_000, reserveBytes: opts.reserve ?? 1000 } };
    const storage = new StoragePolicy(
      () => cfg,
      quiet,
      async () => opts.free ?? 1e12,
    );
    const md = join(dataDir, "mail", "example.org", "alice", "Maildir");
    for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(md, sub), { recursive: true });
    return { storage, md };
  }
  const alice = { local: "alice", domain: "example.org" };

  test("free space below the reserve plus the message: 452 4.3.1", async () => {
    const { storage } = policy({ free: 5000, reserve: 1000 });
    assert.equal(await storage.roomFor(3000), undefined);
    assert.deepEqual(await storage.roomFor(4500), {
      code: 452,
      text: "4.3.1 Insufficient system storage, try again later",
      reason: "disk-reserve",
    });
  });

  test("a mailbox at its quota: 452 4.2.2 at RCPT; under it: accepted", async () => {
    const { storage, md } = policy({ quota: 10_000 });
    put(md, "new", "1.M1.host,S=9999", 1);
    assert.equal(await storage.rcpt([alice], undefined), undefined);
    put(md, "new", "2.M2.host,S=1", 1);
    writeFileSync(join(md, "maildirsize"), "", { flag: "w" });
    assert.deepEqual(await storage.rcpt([alice], undefined), {
      code: 452,
      text: "4.2.2 Mailbox full: alice@example.org is over its quota, try again later",
      reason: "mailbox-full",
    });
  });

  test("a message larger than the whole quota: 552 5.2.2, at RCPT from SIZE or after DATA", async () => {
    const { storage } = policy({ quota: 10_000 });
    const expected = {
      code: 552,
      text: "5.2.2 Message larger than the quota of alice@example.org (10000 bytes)",
      reason: "too-big-for-mailbox",
    };
    assert.deepEqual(await storage.rcpt([alice], 10_001), expected);
    assert.equal(await storage.rcpt([alice], 10_000), undefined);
    assert.deepEqual(storage.afterData([alice], 10_001), expected);
    assert.equal(storage.afterData([alice], 9_000), undefined);
  });

  test("a user's own quota wins over the default; 0 is none", async () => {
    assert.equal(policy({ quota: 10, own: 1_000_000 }).storage.limitOf(alice), 1_000_000);
    const none = policy({ quota: 10, own: 0 }).storage;
    assert.equal(none.limitOf(alice), 0);
    assert.equal(await none.rcpt([alice], 1e9), undefined);
  });

  test("a delivery is counted in maildirsize", async () => {
    const { storage, md } = policy({ quota: 10_000 });
    await storage.rcpt([alice], undefined);
    storage.delivered([alice], 1234);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(join(md, "maildirsize"), "utf8"), "10000S\n0 0\n1234 1\n");
  });
});
