// argon2id checks on their own thread (server-bootstrap/maild/password-check.ts): right and wrong
// passwords, the bounded queue, and file system work that does not wait behind a login flood.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { argon2Sync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PasswordCheckBusy, PasswordChecker, type Argon2idParams } from "../../server-bootstrap/maild/password-check";

/** A hash with the cost the box uses (m=19456 KiB, t=2: components/shared/argon2id.ts). */
function hashOf(password: string, memory = 19456, passes = 2): Argon2idParams {
  const salt = randomBytes(16);
  const hash = argon2Sync("argon2id", { message: password, nonce: salt, parallelism: 1, tagLength: 32, memory, passes });
  return { memory, passes, parallelism: 1, salt, hash };
}

describe("password checks on a thread of their own", () => {
  test("the right password matches, a wrong one does not", async () => {
    const checker = new PasswordChecker();
    const p = hashOf("right", 64, 1);
    assert.equal(await checker.verify("right", p), true);
    assert.equal(await checker.verify("wrong", p), false);
    await checker.close();
  });

  test("beyond the queue's bound a check is refused at once, and the queued ones still finish", async () => {
    const checker = new PasswordChecker(3);
    const p = hashOf("right");
    const queued = [checker.verify("right", p), checker.verify("wrong", p), checker.verify("right", p)];
    await assert.rejects(checker.verify("right", p), PasswordCheckBusy);
    assert.deepEqual(await Promise.all(queued), [true, false, true]);
    assert.equal(checker.queued, 0);
    assert.equal(await checker.verify("right", p), true, "room again");
    await checker.close();
  });

  test("during a flood of checks, file reads (libuv's threadpool) do not wait behind them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "maild-pwcheck-"));
    try {
      const file = join(dir, "f");
      writeFileSync(file, "x");
      const checker = new PasswordChecker(32);
      const p = hashOf("right");
      let finished = 0;
      const flood = Array.from({ length: 32 }, () => checker.verify("guess", p).then(() => finished++));
      // 32 file reads, more than libuv's 4 threads could run at once
      await Promise.all(Array.from({ length: 32 }, () => readFile(file)));
      const finishedWhenReadsDone = finished;
      await Promise.all(flood);
      assert.ok(finishedWhenReadsDone < 8, `the reads finished after ${finishedWhenReadsDone} of 32 checks, not behind them`);
      await checker.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
