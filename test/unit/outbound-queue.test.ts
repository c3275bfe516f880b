// The outbound queue's delivery logic with a scripted transport and a clock moved by hand.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import type { DeliveryAttempt } from "../../server-bootstrap/maild/outbound/types";
import { HOUR, MINUTE, T0, deferred, delivered, failed, parseDsn, queueHarness, type QueueHarness } from "./outbound-fixtures";
import { UndeliverableNotice } from "../../server-bootstrap/maild/outbound/queue";
import { MAX_RETURNED_HEADER } from "../../server-bootstrap/maild/outbound/spool";

function domainsCalled(h: QueueHarness): [string, string[]][] {
  return h.calls.map((c) => [c.attempt.domain, c.attempt.recipients]);
}

/** Moves the clock and runs what is due then. */
async function at(h: QueueHarness, t: number): Promise<void> {
  h.clock.t = t;
  await h.queue.runDue();
}

describe("outbound queue: commit gating", () => {
  test("nothing is sent before commit(id); after it, the message goes at once", async () => {
    const h = await queueHarness();
    const id = await h.submit({ recipients: ["bob@remote.test"], commit: false });
    await at(h, T0 + 10 * HOUR);
    assert.equal(h.calls.length, 0, "uncommitted: not sent, however long it waits");
    h.queue.commit(id);
    await h.queue.runDue();
    assert.equal(h.calls.length, 1);
    const { attempt, data } = h.calls[0];
    assert.deepEqual(
      { ...attempt, messagePath: undefined },
      {
        id,
        domain: "remote.test",
        sender: "alice@example.org",
        recipients: ["bob@remote.test"],
        messagePath: undefined,
        size: Buffer.byteLength(data),
      },
    );
    assert.match(data, /^From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: test\r\n\r\nbody of test\r\n$/);
    assert.equal(h.queue.size(), 0);
    assert.deepEqual(h.files(), [], "a delivered message leaves nothing on disk");
    assert.equal(h.dsns.length, 0);
    await h.queue.stop();
  });
});

describe("outbound queue: retries", () => {
  test("a deferred recipient is retried after retryBase * 2^(n-1) (capped, less at most 10% jitter) until delivered", async () => {
    const h = await queueHarness({ retryBaseSeconds: 60, retryMaxSeconds: 200 });
    h.respond = (a, n) => a.recipients.map((r) => (n <= 3 ? deferred(r) : delivered(r)));
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    assert.equal(h.calls.length, 1);
    let last = T0;
    for (const delay of [60_000, 120_000, 200_000]) {
      const env = h.envelope(id);
      assert.ok(
        env.nextAttempt > last + delay * 0.9 - 1 && env.nextAttempt <= last + delay,
        `next attempt ${env.nextAttempt - last} ms after, expected about ${delay}`,
      );
      const calls: number = h.calls.length;
      await at(h, last + delay * 0.9 - 1);
      assert.equal(h.calls.length, calls, "not before the backoff");
      await at(h, last + delay);
      assert.equal(h.calls.length, calls + 1, "retried once the backoff has passed");
      last = h.clock.t;
    }
    assert.equal(h.calls.length, 4);
    assert.equal(h.queue.size(), 0);
    assert.equal(h.dsns.length, 0, "a message delivered in the end bounces nothing");
    assert.deepEqual(h.events("queue.done"), [{ id, attempts: 4, delivered: 1, failed: 0 }]);
    await h.queue.stop();
  });

  test("the deferral is recorded per recipient: attempts, last result and when", async () => {
    const h = await queueHarness();
    h.respond = (a) => a.recipients.map((r) => deferred(r, "451 4.7.1 Greylisted, come back later", "mx2.remote.test"));
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    const env = h.envelope(id);
    assert.equal(env.attempts, 1);
    assert.deepEqual(env.recipients, [
      {
        address: "bob@remote.test",
        state: "pending",
        inFlight: false,
        reported: false,
        expired: false,
        last: {
          recipient: "bob@remote.test",
          status: "deferred",
          enhancedCode: "4.7.1",
          diagnostic: "451 4.7.1 Greylisted, come back later",
          remoteReply: true,
          remoteMta: "mx2.remote.test",
          at: T0,
        },
      },
    ]);
    await h.queue.stop();
  });
});

describe("outbound queue: domains", () => {
  test("one transport call per domain per attempt, in parallel; later attempts only for what is pending", async () => {
    const h = await queueHarness();
    let running = 0;
    let most = 0;
    h.respond = async (a: DeliveryAttempt) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      running--;
      const first = h.calls.length <= 3;
      return a.recipients.map((r) => {
        if (r.startsWith("bob@")) return delivered(r, "mx.a.test");
        if (r.startsWith("carol@")) return failed(r, undefined, "mx.b.test");
        return first ? deferred(r, undefined, r.endsWith("b.test") ? "mx.b.test" : "mx.c.test") : delivered(r);
      });
    };
    const id = await h.submit({ recipients: ["bob@a.test", "carol@b.test", "dave@B.test", "erin@c.test"] });
    await h.queue.runDue();
    assert.deepEqual(domainsCalled(h).sort(), [
      ["a.test", ["bob@a.test"]],
      ["b.test", ["carol@b.test", "dave@B.test"]],
      ["c.test", ["erin@c.test"]],
    ]);
    assert.equal(most, 3, "the three domains were tried at the same time");
    assert.deepEqual(
      h.envelope(id).recipients.map((r) => [r.address, r.state]),
      [
        ["bob@a.test", "delivered"],
        ["carol@b.test", "failed"],
        ["dave@B.test", "pending"],
        ["erin@c.test", "pending"],
      ],
    );

    assert.equal(h.dsns.length, 1, "the permanent failure is reported at once, not after the others finish");
    const dsn = await parseDsn(h.dsns[0].message);
    assert.deepEqual(
      dsn.perRecipient.map((g) => [g.get("final-recipient"), g.get("action")]),
      [["rfc822; carol@b.test", "failed"]],
    );

    await at(h, T0 + MINUTE);
    assert.deepEqual(domainsCalled(h).slice(3).sort(), [
      ["b.test", ["dave@B.test"]],
      ["c.test", ["erin@c.test"]],
    ]);
    assert.equal(h.queue.size(), 0);
    assert.equal(h.dsns.length, 1, "no further DSN: the others were delivered");
    await h.queue.stop();
  });
});

describe("outbound queue: failure DSNs", () => {
  test("a permanent failure sends one failed DSN to the sender with the remote reply, then the message is gone", async () => {
    const h = await queueHarness();
    h.clock.t = T0 + 5000;
    const reply = "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown in virtual mailbox table";
    h.respond = (a) => a.recipients.map((r) => failed(r, reply, "mx1.remote.test"));
    const id = await h.submit({ recipients: ["bob@remote.test"], subject: "lunch" });
    h.clock.t = T0 + 7000;
    await h.queue.runDue();
    assert.equal(h.dsns.length, 1);
    assert.equal(h.dsns[0].recipient, "alice@example.org");
    const d = await parseDsn(h.dsns[0].message);
    assert.equal(d.to, "alice@example.org");
    assert.equal(d.from, `"Mail Delivery System" <MAILER-DAEMON@mx.example.org>`);
    assert.equal(d.subject, "Undelivered Mail Returned to Sender");
    assert.equal(d.date.getTime(), T0 + 7000);
    assert.equal(d.headers.get("auto-submitted"), "auto-replied");
    assert.deepEqual(
      [...d.perMessage],
      [
        ["reporting-mta", "dns; mx.example.org"],
        ["arrival-date", "Mon, 6 Jan 2025 12:00:05 +0000"],
      ],
    );
    assert.deepEqual(
      [...d.perRecipient[0]],
      [
        ["final-recipient", "rfc822; bob@remote.test"],
        ["action", "failed"],
        ["status", "5.1.1"],
        ["remote-mta", "dns; mx1.remote.test"],
        ["diagnostic-code", `smtp; ${reply}`],
        ["last-attempt-date", "Mon, 6 Jan 2025 12:00:07 +0000"],
      ],
    );
    assert.equal(d.returnedHeader, "From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: lunch\r\n");
    assert.ok(d.text.includes(`<bob@remote.test>: host mx1.remote.test said: ${reply}`));
    assert.ok(d.text.includes(`queue id ${id}`));
    assert.equal(h.queue.size(), 0);
    assert.deepEqual(h.files(), []);
    await at(h, T0 + 10 * 86_400_000);
    assert.equal(h.dsns.length, 1, "once only");
    assert.deepEqual(
      h.events("queue.dsn_sent").map((f) => [f.id, f.failed, f.delayed]),
      [[id, ["bob@remote.test"], []]],
    );
    await h.queue.stop();
  });

  test("a local reason (no remote reply) gives no Diagnostic-Code or Remote-MTA", async () => {
    const h = await queueHarness();
    h.respond = (a) =>
      a.recipients.map((r) => ({
        recipient: r,
        status: "failed",
        enhancedCode: "5.1.10",
        diagnostic: "remote.test has a null MX (RFC 7505): it accepts no mail",
        remoteReply: false,
      }));
    await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    const d = await parseDsn(h.dsns[0].message);
    assert.deepEqual([...d.perRecipient[0].keys()], ["final-recipient", "action", "status", "last-attempt-date"]);
    assert.equal(d.perRecipient[0].get("status"), "5.1.10");
    assert.ok(d.text.includes("<bob@remote.test>: remote.test has a null MX (RFC 7505): it accepts no mail"));
    await h.queue.stop();
  });

  test("expiry fails what is still pending with one failed DSN (4.4.7, the last reply kept) and no further attempt", async () => {
    const h = await queueHarness({
      retryBaseSeconds: 7200,
      retryMaxSeconds: 7200,
      delayNoticeAfterSeconds: 0,
      expireAfterSeconds: 3 * 3600,
    });
    h.respond = (a) => a.recipients.map((r) => deferred(r, "421 4.4.2 mx.remote.test connection timed out", "mx.remote.test"));
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    await at(h, T0 + 2 * HOUR);
    assert.equal(h.calls.length, 2);
    assert.equal(h.dsns.length, 0);
    await at(h, T0 + 3 * HOUR - 1);
    assert.equal(h.dsns.length, 0, "not expired a moment before");
    await at(h, T0 + 3 * HOUR);
    assert.equal(h.calls.length, 2, "an expired message is not tried again");
    assert.equal(h.dsns.length, 1);
    const d = await parseDsn(h.dsns[0].message);
    assert.equal(d.subject, "Undelivered Mail Returned to Sender");
    assert.deepEqual(
      [...d.perRecipient[0]],
      [
        ["final-recipient", "rfc822; bob@remote.test"],
        ["action", "failed"],
        ["status", "4.4.7"],
        ["remote-mta", "dns; mx.remote.test"],
        ["diagnostic-code", "smtp; 421 4.4.2 mx.remote.test connection timed out"],
        ["last-attempt-date", "Mon, 6 Jan 2025 14:00:00 +0000"],
      ],
    );
    assert.ok(
      d.text.includes(
        "<bob@remote.test>: gave up after 3 hours of trying; last error: host mx.remote.test said: 421 4.4.2 mx.remote.test connection timed out",
      ),
    );
    assert.deepEqual(h.events("queue.expired"), [{ id, recipients: ["bob@remote.test"], attempts: 2 }]);
    assert.equal(h.queue.size(), 0);
    await h.queue.stop();
  });

  test("a bounce that fails is tried again later, and the message stays until it succeeds", async () => {
    const h = await queueHarness({ retryBaseSeconds: 60 });
    h.respond = (a) => a.recipients.map((r) => failed(r));
    h.bounceError = new Error("local delivery failed: disk full");
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    assert.equal(h.dsns.length, 0);
    assert.equal(h.queue.size(), 1);
    assert.deepEqual(h.events("queue.dsn_failed"), [
      { id, to: "alice@example.org", failed: ["bob@remote.test"], delayed: [], error: "local delivery failed: disk full" },
    ]);
    h.bounceError = undefined;
    await at(h, T0 + 30_000);
    assert.equal(h.dsns.length, 0, "not in a tight loop");
    await at(h, T0 + 60_000);
    assert.equal(h.dsns.length, 1);
    assert.equal(h.calls.length, 1, "the recipient is not tried again");
    assert.equal(h.queue.size(), 0);
    await h.queue.stop();
  });
});

describe("outbound queue: delay notices", () => {
  test("one delay notice once the message is delayNoticeAfter old, at that time, however many retries follow", async () => {
    const h = await queueHarness({
      retryBaseSeconds: 600,
      retryMaxSeconds: 5400,
      delayNoticeAfterSeconds: 3600,
      expireAfterSeconds: 86_400,
    });
    h.respond = (a) =>
      a.recipients.map((r) =>
        r.startsWith("bob") ? deferred(r, "421 4.4.1 Connection refused", "mx.remote.test") : delivered(r, "mx.other.test"),
      );
    const id = await h.submit({ recipients: ["bob@remote.test", "carol@other.test"] });
    await h.queue.runDue();
    await at(h, T0 + 10 * MINUTE);
    await at(h, T0 + 30 * MINUTE);
    assert.equal(h.dsns.length, 0, "not before delayNoticeAfter");
    const calls = h.calls.length;
    await at(h, T0 + HOUR);
    assert.equal(h.calls.length, calls, "the notice came due between two attempts");
    assert.equal(h.dsns.length, 1);
    const d = await parseDsn(h.dsns[0].message);
    assert.equal(d.subject, "Delayed Mail (still being retried)");
    assert.equal(d.perRecipient.length, 1, "only the recipient still pending");
    assert.deepEqual(
      [...d.perRecipient[0]],
      [
        ["final-recipient", "rfc822; bob@remote.test"],
        ["action", "delayed"],
        ["status", "4.4.1"],
        ["remote-mta", "dns; mx.remote.test"],
        ["diagnostic-code", "smtp; 421 4.4.1 Connection refused"],
        ["last-attempt-date", "Mon, 6 Jan 2025 12:30:00 +0000"],
        ["will-retry-until", "Tue, 7 Jan 2025 12:00:00 +0000"],
      ],
    );
    assert.equal(h.envelope(id).delayNoticeSent, true);
    for (let t = T0 + HOUR; t < T0 + 23 * HOUR; t += 30 * MINUTE) await at(h, t);
    assert.ok(h.calls.length > calls + 5, "retries went on");
    assert.equal(h.dsns.length, 1, "still one notice");
    await at(h, T0 + 24 * HOUR);
    assert.equal(h.dsns.length, 2, "then the failure");
    const f = await parseDsn(h.dsns[1].message);
    assert.deepEqual(
      f.perRecipient.map((g) => [g.get("final-recipient"), g.get("action"), g.get("status")]),
      [["rfc822; bob@remote.test", "failed", "4.4.7"]],
    );
    await h.queue.stop();
  });

  test("delayNoticeAfterSeconds 0 sends no delay notice", async () => {
    const h = await queueHarness({ delayNoticeAfterSeconds: 0 });
    h.respond = (a) => a.recipients.map((r) => deferred(r));
    await h.submit({ recipients: ["bob@remote.test"] });
    for (let t = T0; t < T0 + 24 * HOUR; t += HOUR) await at(h, t);
    assert.equal(h.dsns.length, 0);
    await h.queue.stop();
  });
});

describe("outbound queue: the null sender", () => {
  test("a bounce (null sender) that fails or expires creates no DSN: logged and dropped", async () => {
    const h = await queueHarness({ retryBaseSeconds: 3600, delayNoticeAfterSeconds: 1800, expireAfterSeconds: 4 * 3600 });
    h.respond = (a) => a.recipients.map((r) => (r.startsWith("bob") ? failed(r) : deferred(r)));
    const id = await h.submit({ sender: "", recipients: ["bob@remote.test", "carol@slow.test"] });
    await h.queue.runDue();
    assert.deepEqual(h.events("queue.dsn_suppressed"), [
      { id, sender: "", recipients: ["bob@remote.test"], reason: "null sender (RFC 5321 6.1)" },
    ]);
    for (let t = T0; t <= T0 + 4 * HOUR; t += 30 * MINUTE) await at(h, t);
    assert.equal(h.dsns.length, 0, "no failure, delay or expiry DSN to the null sender");
    assert.deepEqual(
      h.events("queue.dsn_suppressed").map((f) => f.recipients),
      [["bob@remote.test"], ["carol@slow.test"]],
    );
    assert.equal(h.queue.size(), 0);
    assert.deepEqual(h.files(), []);
    await h.queue.stop();
  });
});

describe("outbound queue: no notice to an unverified sender, none that never ends", () => {
  test("a sender nobody verified gets no failure or delay DSN: logged, dropped, and the message goes", async () => {
    const h = await queueHarness({ retryBaseSeconds: 3600, delayNoticeAfterSeconds: 1800, expireAfterSeconds: 4 * 3600 });
    h.respond = (a) => a.recipients.map((r) => (r.startsWith("bob") ? failed(r) : deferred(r)));
    const id = await h.submit({ sender: "forged@victim.test", recipients: ["bob@remote.test", "carol@slow.test"], notifySender: false });
    assert.equal(h.envelope(id).notify, false, "recorded with the entry, so a restart keeps it");
    await h.queue.runDue();
    for (let t = T0; t <= T0 + 4 * HOUR; t += 30 * MINUTE) await at(h, t);
    assert.equal(h.dsns.length, 0);
    assert.deepEqual(h.events("queue.dsn_suppressed"), [
      {
        id,
        sender: "forged@victim.test",
        recipients: ["bob@remote.test"],
        reason: "sender not verified (no SPF or DKIM pass for its domain)",
      },
      {
        id,
        sender: "forged@victim.test",
        recipients: ["carol@slow.test"],
        reason: "sender not verified (no SPF or DKIM pass for its domain)",
      },
    ]);
    assert.equal(h.queue.size(), 0);
    assert.deepEqual(h.files(), []);
    await h.queue.stop();
  });

  test("a notice bounce refuses for good (no such local address) is dropped and logged at once", async () => {
    const h = await queueHarness();
    h.respond = (a) => a.recipients.map((r) => failed(r));
    h.bounceError = new UndeliverableNotice("no route to gone@example.org: unknown-user");
    const id = await h.submit({ sender: "gone@example.org", recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    assert.deepEqual(h.events("queue.dsn_dropped"), [
      {
        id,
        to: "gone@example.org",
        failed: ["bob@remote.test"],
        delayed: [],
        error: "no route to gone@example.org: unknown-user",
        reason: "undeliverable",
      },
    ]);
    assert.deepEqual(h.events("queue.dsn_failed"), []);
    assert.equal(h.queue.size(), 0);
    assert.deepEqual(h.files(), []);
    await h.queue.stop();
  });

  test("a notice bounce keeps failing to take is retried, then dropped a day after the first failure, across a restart", async () => {
    const h = await queueHarness({ retryBaseSeconds: 600, retryMaxSeconds: 3600 });
    h.respond = (a) => a.recipients.map((r) => failed(r));
    h.bounceError = new Error("disk full");
    const id = await h.submit({ recipients: ["bob@remote.test"] });
    await h.queue.runDue();
    assert.equal(h.envelope(id).noticeFailingSince, T0, "the first failure is on disk");
    await h.queue.stop();
    const again = await h.restart();
    again.bounceError = new Error("disk full");
    for (let t = T0 + HOUR; t < T0 + 24 * HOUR; t += HOUR) await at(again, t);
    assert.equal(again.queue.size(), 1, "kept while it may still work");
    assert.ok(again.events("queue.dsn_failed").length >= 20, "tried again every hour or so");
    await at(again, T0 + 24 * HOUR);
    assert.deepEqual(
      again.events("queue.dsn_dropped").map((f) => [f.id, f.reason]),
      [[id, `failing since ${new Date(T0).toISOString()}`]],
    );
    assert.equal(again.queue.size(), 0);
    assert.deepEqual(again.files(), []);
    await again.queue.stop();
  });

  test("a DSN returns the original header in whole lines, at most 32 KiB of it, never the body", async () => {
    const h = await queueHarness();
    h.respond = (a) => a.recipients.map((r) => failed(r));
    const filler = Array.from({ length: 2000 }, (_, i) => `X-Filler-${i}: ${"x".repeat(60)}\r\n`).join("");
    await h.submit({ recipients: ["bob@remote.test"], header: filler });
    await h.queue.runDue();
    assert.equal(h.dsns.length, 1);
    const text = h.dsns[0].message.toString("latin1");
    const returned = text.slice(text.indexOf("Content-Type: text/rfc822-headers"));
    const part = returned.slice(returned.indexOf("\r\n\r\n") + 4, returned.lastIndexOf("\r\n--"));
    assert.ok(part.length <= MAX_RETURNED_HEADER, `${part.length} bytes returned`);
    assert.ok(part.length > MAX_RETURNED_HEADER - 100, "as much as fits");
    assert.match(part, /^From: alice@example\.org\r\n/);
    assert.ok(/X-Filler-\d+: x{60}\r\n\r?\n?$/.test(part), "ends with a whole line");
    assert.ok(!text.includes("body of test"), "the body is not returned");
    await h.queue.stop();
  });
});
