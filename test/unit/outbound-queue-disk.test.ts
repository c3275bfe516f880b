// The outbound queue's state on disk: enqueue, discard, restart, leftovers of crashes, stop.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DeliveryAttempt, RecipientResult } from "../../server-bootstrap/maild/outbound/types";
import { OutboundQueue } from "../../server-bootstrap/maild/outbound/queue";
import {
  HOUR,
  MINUTE,
  T0,
  deferred,
  delivered,
  failed,
  outboundConfig,
  queueHarness,
  tempDir,
  type QueueHarness,
} from "./outbound-fixtures";

async function at(h: QueueHarness, t: number): Promise<void> {
  h.clock.t = t;
  await h.queue.runDue();
}

describe("outbound queue on disk: enqueue and discard", () => {
  test("enqueue resolves with the message hard-linked and the envelope written, all recipients pending", async () => {
    const h = await queueHarness();
    const id = await h.submit({ recipients: ["bob@remote.test", "carol@other.test", "bob@remote.test"], commit: false });
    assert.deepEqual(h.files(), [`${id}.eml`, `${id}.json`]);
    const source = join(h.dataDir, `${id}.incoming`);
    assert.equal(statSync(join(h.dataDir, "queue", `${id}.eml`)).ino, statSync(source).ino, "a hard link, not a copy");
    const env = h.envelope(id);
    assert.deepEqual(
      env,
      {
        version: 1,
        id,
        sender: "alice@example.org",
        size: statSync(source).size,
        arrival: T0,
        attempts: 0,
        nextAttempt: T0,
        delayNoticeSent: false,
        recipients: ["bob@remote.test", "carol@other.test"].map((address) => ({
          address,
          state: "pending",
          inFlight: false,
          reported: false,
          expired: false,
        })),
      },
      "a recipient given twice is queued once",
    );
    assert.equal(h.queue.size(), 1);
    await h.queue.stop();
  });

  test("a message on another file system is copied in (EXDEV), complete and without leftovers", async () => {
    const h = await queueHarness();
    const other = mkdtempSync("/dev/shm/maild-queue-src-");
    assert.notEqual(statSync(other).dev, statSync(h.dataDir).dev, "the test needs /dev/shm on another file system than the temp dir");
    const source = join(other, "m.eml");
    const content = "From: alice@example.org\r\nSubject: far\r\n\r\nbody\r\n";
    writeFileSync(source, content);
    await h.queue.enqueue({
      id: "1736164800.M0000000000000000000000aa",
      messagePath: source,
      sender: "alice@example.org",
      recipients: ["bob@remote.test"],
    });
    assert.deepEqual(h.files(), ["1736164800.M0000000000000000000000aa.eml", "1736164800.M0000000000000000000000aa.json"]);
    assert.equal(readFileSync(join(h.dataDir, "queue", "1736164800.M0000000000000000000000aa.eml"), "utf8"), content);
    await h.queue.stop();
    rmSync(other, { recursive: true });
  });

  test("an enqueue that fails leaves nothing behind", async () => {
    const h = await queueHarness();
    await assert.rejects(
      h.queue.enqueue({
        id: "1736164800.M0000000000000000000000bb",
        messagePath: join(h.dataDir, "missing"),
        sender: "a@example.org",
        recipients: ["b@remote.test"],
      }),
      /ENOENT/,
    );
    await assert.rejects(
      h.queue.enqueue({ id: "../escape", messagePath: join(h.dataDir, "missing"), sender: "a@example.org", recipients: ["b@remote.test"] }),
      /not a plain file name/,
    );
    assert.deepEqual(h.files(), []);
    assert.equal(h.queue.size(), 0);
    await h.queue.stop();
  });

  test("enqueueMessage writes the message into the queue itself with its envelope, and leaves no temporary file", async () => {
    const h = await queueHarness();
    const id = "1736164800.M0000000000000000000000a1";
    const message = Buffer.from("Received: from x\r\nFrom: alice@example.org\r\nSubject: fwd\r\n\r\nbody\r\n", "latin1");
    await h.queue.enqueueMessage({ id, sender: "alice@example.org", recipients: ["bob@remote.test", "bob@remote.test"] }, message);
    assert.deepEqual(h.files(), [`${id}.eml`, `${id}.json`]);
    assert.deepEqual(readFileSync(join(h.dataDir, "queue", `${id}.eml`)), message);
    const env = h.envelope(id);
    assert.equal(env.size, message.length);
    assert.deepEqual(
      env.recipients.map((r) => [r.address, r.state, r.inFlight]),
      [["bob@remote.test", "pending", false]],
      "a recipient given twice is queued once",
    );
    assert.equal(h.calls.length, 0, "nothing is sent before commit");
    h.queue.commit(id);
    await h.queue.runDue();
    assert.deepEqual(
      h.calls.map((c) => [c.attempt.recipients, c.data]),
      [[["bob@remote.test"], message.toString("latin1")]],
    );
    assert.deepEqual(h.files(), []);
    await h.queue.stop();
  });

  test("an entry enqueueMessage made is found and sent after a restart: its existence was the commit", async () => {
    const a = await queueHarness();
    const id = "1736164800.M0000000000000000000000a2";
    await a.queue.enqueueMessage(
      { id, sender: "alice@example.org", recipients: ["bob@remote.test"] },
      Buffer.from("Subject: x\r\n\r\nb\r\n"),
    );
    await a.queue.stop();
    const b = await a.restart();
    await b.queue.runDue();
    assert.deepEqual(
      b.calls.map((c) => c.attempt.recipients),
      [["bob@remote.test"]],
    );
    assert.deepEqual(b.files(), []);
    await b.queue.stop();
  });

  test("a crash inside enqueueMessage before the envelope's rename leaves nothing that a restart sends", async () => {
    const a = await queueHarness();
    await a.queue.stop();
    const q = join(a.dataDir, "queue");
    const id = "1736164800.M0000000000000000000000a3";
    // the message written (perhaps in part) and the envelope still under its temporary name
    writeFileSync(join(q, `${id}.eml`), "Subject: x\r\n\r\ncut sh");
    writeFileSync(join(q, `${id}.json.0123456789ab.tmp`), '{"version":1,');
    const b = await a.restart();
    await b.queue.runDue();
    assert.equal(b.calls.length, 0);
    assert.deepEqual(b.events("queue.orphan_message"), [{ id, action: "deleted" }]);
    assert.deepEqual(b.files(), []);
    await b.queue.stop();
  });

  test("enqueueMessage with an id whose message file exists fails and leaves that file alone", async () => {
    const h = await queueHarness();
    const id = "1736164800.M0000000000000000000000a4";
    const other = join(h.dataDir, "queue", `${id}.eml`);
    writeFileSync(other, "someone else's\r\n");
    await assert.rejects(
      h.queue.enqueueMessage({ id, sender: "alice@example.org", recipients: ["bob@remote.test"] }, Buffer.from("mine\r\n")),
      /EEXIST/,
    );
    assert.deepEqual(h.files(), [`${id}.eml`], "no envelope, no temporary file");
    assert.equal(readFileSync(other, "utf8"), "someone else's\r\n");
    assert.equal(h.queue.size(), 0);
    await h.queue.stop();
  });

  test("discard removes an uncommitted entry entirely; a commit after it sends nothing", async () => {
    const h = await queueHarness();
    const id = await h.submit({ recipients: ["bob@remote.test"], commit: false });
    await h.queue.discard(id);
    assert.deepEqual(h.files(), []);
    assert.equal(h.queue.size(), 0);
    h.queue.commit(id);
    await h.queue.runDue();
    assert.equal(h.calls.length, 0);
    assert.deepEqual(h.events("queue.commit_unknown"), [{ id }]);
    await h.queue.stop();
  });

  test("a committed entry cannot be discarded", async () => {
    const h = await queueHarness();
    h.respond = (a) => a.recipients.map((r) => deferred(r));
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    await assert.rejects(h.queue.discard(id), /committed/);
    assert.equal(h.queue.size(), 1);
    await h.queue.stop();
  });

  test("recovery can discard before start: the entry is not loaded", async () => {
    const a = await queueHarness();
    const kept = await a.submit({ recipients: ["bob@remote.test"], commit: false });
    const rolledBack = await a.submit({ recipients: ["carol@remote.test"], commit: false });
    // the process dies here; at the next start recovery discards what never committed
    const b = new OutboundQueue({
      dataDir: a.dataDir,
      config: () => {
        throw new Error("not needed to discard");
      },
      transport: { deliver: async () => [] },
      log: { log() {}, info() {}, warn() {}, error() {} },
      bounce: async () => undefined,
    });
    await b.discard(rolledBack);
    assert.deepEqual(a.files(), [`${kept}.eml`, `${kept}.json`]);
    const c = await a.restart();
    assert.equal(c.queue.size(), 1);
    await c.queue.runDue();
    assert.deepEqual(
      c.calls.map((x) => x.attempt.recipients),
      [["bob@remote.test"]],
      "what is on disk at start is committed",
    );
    await c.queue.stop();
  });

  test("enqueue is refused before start and after stop", async () => {
    const fresh = new OutboundQueue({
      dataDir: tempDir(),
      config: () => outboundConfig(),
      transport: { deliver: async () => [] },
      log: { log() {}, info() {}, warn() {}, error() {} },
      bounce: async () => undefined,
    });
    assert.equal(fresh.accepting, false);
    await assert.rejects(
      fresh.enqueue({ id: "1736164800.M0000000000000000000000dd", messagePath: "/nonexistent", sender: "", recipients: ["b@remote.test"] }),
      /not accepting \(not started\)/,
    );
    const h = await queueHarness();
    assert.equal(h.queue.accepting, true);
    await h.queue.stop();
    assert.equal(h.queue.accepting, false);
    await assert.rejects(h.submit({ recipients: ["bob@remote.test"] }), /not accepting \(stopping\)/);
  });
});

describe("outbound queue on disk: restart", () => {
  test("a restart in the middle keeps every recipient's state, the attempt count, the backoff and the notice sent", async () => {
    const a = await queueHarness({ retryBaseSeconds: 1800, retryMaxSeconds: 7200, delayNoticeAfterSeconds: 3600 });
    a.respond = (att) => att.recipients.map((r) => (att.domain === "a.test" ? delivered(r) : deferred(r)));
    const id = await a.submit({ recipients: ["bob@a.test", "carol@b.test"] });
    await a.queue.runDue();
    await at(a, T0 + 30 * MINUTE);
    await at(a, T0 + HOUR);
    assert.equal(a.dsns.length, 1, "the delay notice");
    await a.queue.stop();
    const onDisk = a.envelope(id);

    const b = await a.restart();
    assert.equal(b.queue.size(), 1);
    await b.queue.runDue();
    assert.equal(b.calls.length, 0, "not due yet: the backoff survived the restart");
    assert.equal(b.dsns.length, 0, "the delay notice is not sent again");
    b.respond = (att) => att.recipients.map((r) => delivered(r));
    await at(b, onDisk.nextAttempt);
    assert.deepEqual(
      b.calls.map((c) => [c.attempt.domain, c.attempt.recipients]),
      [["b.test", ["carol@b.test"]]],
      "only what was pending",
    );
    assert.deepEqual(b.events("queue.done"), [{ id, attempts: 3, delivered: 2, failed: 0 }]);
    assert.deepEqual(b.files(), []);
    await b.queue.stop();
  });

  test("a crash during an attempt: the recipients still in flight are logged as possible duplicates and retried at once", async () => {
    const a = await queueHarness();
    let hung: (d: DeliveryAttempt) => void = () => undefined;
    const hanging = new Promise<DeliveryAttempt>((r) => (hung = r));
    a.respond = (att): RecipientResult[] | Promise<RecipientResult[]> => {
      if (att.domain === "a.test") return att.recipients.map((r) => delivered(r));
      hung(att);
      return new Promise(() => undefined);
    };
    const id = await a.submit({ recipients: ["bob@a.test", "carol@b.test", "dave@b.test"] });
    void a.queue.runDue();
    await hanging;
    // let a.test's result reach the disk, then "kill" queue a: it is never touched again
    for (let i = 0; i < 50 && a.envelope(id).recipients[0].state !== "delivered"; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(
      a.envelope(id).recipients.map((r) => [r.address, r.state, r.inFlight]),
      [
        ["bob@a.test", "delivered", false],
        ["carol@b.test", "pending", true],
        ["dave@b.test", "pending", true],
      ],
    );

    const b = await a.restart();
    assert.deepEqual(b.events("queue.possible_duplicate"), [{ id, recipients: ["carol@b.test", "dave@b.test"], attempt: 1 }]);
    assert.deepEqual(b.events("queue.loaded"), [{ messages: 1, pending: 2, possibleDuplicates: 2 }]);
    await b.queue.runDue();
    assert.deepEqual(
      b.calls.map((c) => [c.attempt.domain, c.attempt.recipients]),
      [["b.test", ["carol@b.test", "dave@b.test"]]],
    );
    assert.equal(b.queue.size(), 0);
    await b.queue.stop();
  });

  test("a message whose last result was recorded but which was not yet removed is removed at start, not sent again", async () => {
    const a = await queueHarness();
    a.respond = (att) => att.recipients.map((r) => deferred(r));
    const id = await a.submit({ recipients: ["bob@remote.test"] });
    await a.queue.runDue();
    await a.queue.stop();
    // as if the process died right after recording the 250, before the removal (spool Q4)
    const env = a.envelope(id);
    env.recipients[0].state = "delivered";
    writeFileSync(join(a.dataDir, "queue", `${id}.json`), JSON.stringify(env));
    const b = await a.restart();
    await b.queue.runDue();
    assert.equal(b.calls.length, 0);
    assert.deepEqual(b.files(), []);
    assert.equal(b.queue.size(), 0);
    await b.queue.stop();
  });

  test("start deletes leftovers of crashed writes and logs what does not fit the protocol", async () => {
    const a = await queueHarness();
    a.respond = (att) => att.recipients.map((r) => deferred(r));
    const good = await a.submit({ recipients: ["bob@remote.test"] });
    const bad = await a.submit({ recipients: ["carol@remote.test"] });
    const lost = await a.submit({ recipients: ["dave@remote.test"] });
    await a.queue.runDue();
    await a.queue.stop();
    const q = join(a.dataDir, "queue");
    writeFileSync(join(q, "1736164800.M0000000000000000000000cc.eml"), "From: x\r\n\r\nenqueue died before its envelope\r\n");
    writeFileSync(join(q, `${good}.json.tmp`), '{"version":1,');
    writeFileSync(join(q, `${bad}.json`), '{"version": 7}');
    unlinkSync(join(q, `${lost}.eml`));

    const b = await a.restart();
    assert.deepEqual(b.events("queue.orphan_message"), [{ id: "1736164800.M0000000000000000000000cc", action: "deleted" }]);
    assert.deepEqual(b.events("queue.message_missing"), [{ id: lost, action: "envelope deleted" }]);
    assert.deepEqual(b.events("queue.envelope_unreadable"), [
      { id: bad, error: `${bad}.json is not a version 1 queue envelope for ${bad}`, action: "left in place" },
    ]);
    assert.equal(b.queue.size(), 1);
    assert.deepEqual(b.files(), [`${bad}.eml`, `${bad}.json`, `${good}.eml`, `${good}.json`].sort());
    await b.queue.stop();
  });
});

describe("outbound queue on disk: failed writes", () => {
  // A directory at I.json makes the rename of the next envelope write fail (EISDIR); the envelope
  // on disk is kept aside meanwhile and put back by mendWrites.
  const breakWrites = (h: QueueHarness, id: string): void => {
    const envelope = join(h.dataDir, "queue", `${id}.json`);
    renameSync(envelope, `${envelope}.kept`);
    mkdirSync(envelope);
  };
  const mendWrites = (h: QueueHarness, id: string): void => {
    const envelope = join(h.dataDir, "queue", `${id}.json`);
    rmdirSync(envelope);
    renameSync(`${envelope}.kept`, envelope);
  };

  test("no attempt marker on disk, no attempt: the transport is not called, and the message is tried later", async () => {
    const h = await queueHarness({ retryBaseSeconds: 60 });
    const id = await h.submit({ recipients: ["bob@remote.test"], commit: false });
    breakWrites(h, id);
    h.queue.commit(id);
    await h.queue.runDue();
    assert.equal(h.calls.length, 0);
    assert.equal(h.events("queue.error").length, 1);
    mendWrites(h, id);
    await at(h, T0 + 30_000);
    assert.equal(h.calls.length, 0, "not in a tight loop");
    await at(h, T0 + 60_000);
    assert.equal(h.calls.length, 1);
    assert.equal(h.queue.size(), 0);
    await h.queue.stop();
  });

  test("a failure is reported only once its record is on disk", async () => {
    const h = await queueHarness({ retryBaseSeconds: 60 });
    let id = "";
    h.respond = (a) => {
      breakWrites(h, id);
      return a.recipients.map((r) => failed(r));
    };
    id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    assert.equal(h.dsns.length, 0, "the result could not be recorded: no DSN yet");
    mendWrites(h, id);
    assert.equal(h.envelope(id).recipients[0].inFlight, true, "the disk still says in flight");
    await at(h, T0 + 60_000);
    assert.equal(h.calls.length, 1, "the recipient is not tried again: its result is known");
    assert.equal(h.dsns.length, 1);
    assert.equal(h.queue.size(), 0);
    await h.queue.stop();
  });
});

describe("outbound queue: stop", () => {
  test("stop waits for the attempts under way, whose results are recorded", async () => {
    const h = await queueHarness();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let started: () => void = () => undefined;
    const inTransport = new Promise<void>((r) => (started = r));
    h.respond = async (att) => {
      started();
      await gate;
      return att.recipients.map((r) => delivered(r));
    };
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await inTransport;
    let stopped = false;
    const stopping = h.queue.stop(60_000).then((ended) => {
      stopped = true;
      return ended;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(stopped, false, "still waiting for the attempt");
    release();
    assert.equal(await stopping, true);
    assert.deepEqual(
      h.events("queue.done").map((f) => f.id),
      [id],
    );
  });

  test("stop gives up after its timeout and says how many attempts it left in flight", async () => {
    const h = await queueHarness();
    h.respond = () => new Promise(() => undefined);
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await new Promise((r) => setImmediate(r));
    assert.equal(await h.queue.stop(20), false);
    assert.deepEqual(h.events("queue.stop_timeout"), [{ inFlight: 1, timeoutMs: 20 }]);
    assert.equal(h.envelope(id).recipients[0].inFlight, true, "left marked in flight for the next start");
  });
});
