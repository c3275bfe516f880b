import { test, describe, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { SMTPServer } from "smtp-server";
import { PregreetPassCache, PREGREET_REFUSAL } from "../../server-bootstrap/maild/greeting-gate";
import { SmtpListeners } from "../../server-bootstrap/maild/smtp-listener";
import { DEFAULT_LIMITS, type LimitsConfig } from "../../server-bootstrap/maild/config";
import { createLogger } from "../../server-bootstrap/maild/log";

describe("maild pregreet pass cache", () => {
  test("a pass lasts greetPassSeconds from the test and is gone from then on", () => {
    let now = 1_000_000;
    const cache = new PregreetPassCache(
      () => ({ ttlMs: 10_000, maxClients: 10 }),
      () => now,
    );
    cache.pass("198.51.100.7");
    now += 9_999;
    assert.equal(cache.passed("198.51.100.7"), true);
    now += 1;
    assert.equal(cache.passed("198.51.100.7"), false);
    assert.equal(cache.size, 0);
  });

  test("past maxClients the oldest pass is forgotten first; passing again makes a pass the newest", () => {
    const cache = new PregreetPassCache(() => ({ ttlMs: 60_000, maxClients: 3 }));
    for (const ip of ["a", "b", "c"]) cache.pass(ip);
    cache.pass("a");
    cache.pass("d");
    assert.equal(cache.size, 3);
    assert.deepEqual(
      ["a", "b", "c", "d"].map((ip) => cache.passed(ip)),
      [true, false, true, true],
    );
  });

  test("a flood of addresses never holds more than maxClients passes", () => {
    const cache = new PregreetPassCache(() => ({ ttlMs: 60_000, maxClients: 100 }));
    for (let i = 0; i < 10_000; i++) cache.pass(`2001:db8::${i.toString(16)}`);
    assert.equal(cache.size, 100);
    assert.equal(cache.passed("2001:db8::270f"), true);
    assert.equal(cache.passed("2001:db8::0"), false);
  });

  test("with maxClients or greetPassSeconds 0 nothing is kept", () => {
    const none = new PregreetPassCache(() => ({ ttlMs: 60_000, maxClients: 0 }));
    none.pass("a");
    const instant = new PregreetPassCache(() => ({ ttlMs: 0, maxClients: 10 }));
    instant.pass("a");
    assert.deepEqual([none.passed("a"), instant.passed("a")], [false, false]);
  });
});

/** What a raw client receives: every byte, and whether the server closed. */
function rawClient(port: number, localAddress: string) {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  let received = "";
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  socket.on("data", (d: Buffer) => {
    received += d.toString("latin1");
    wake();
  });
  socket.on("close", () => {
    closed = true;
    wake();
  });
  socket.on("error", () => undefined);
  return {
    socket,
    get received() {
      return received;
    },
    connected: new Promise<void>((resolve) => socket.once("connect", () => resolve())),
    /** resolves once `done` holds (checked after every read and at close) */
    async until(done: () => boolean): Promise<void> {
      while (!done()) {
        if (closed) throw new Error(`connection closed, received ${JSON.stringify(received)}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    async closedNow(): Promise<string> {
      while (!closed) await new Promise<void>((r) => waiters.push(r));
      return received;
    },
  };
}

/** Turns of the event loop (setImmediate is not mocked), for I/O to arrive. */
async function ioTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

describe("maild pregreet test on port 25", () => {
  const open: { close(): Promise<void>; settled(): Promise<void> }[] = [];
  afterEach(async () => {
    // Every session ends under the clock it started with: one that closed later would clear its
    // timers in the next test's mocked clock.
    for (const o of open.splice(0)) {
      await o.settled();
      await o.close();
    }
    mock.timers.reset();
  });

  async function start(limits: Partial<LimitsConfig> = {}) {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger((l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const listeners = new SmtpListeners(
      "smtp",
      log,
      // STARTTLS is off in these servers; the listeners ask for TLS material only on a reload
      () => {
        throw new Error("no TLS in this test");
      },
      () => ({ ...DEFAULT_LIMITS, ...limits }),
    );
    const [bound] = await listeners.listen(
      [{ host: "127.0.0.1", port: 0 }],
      () =>
        new SMTPServer({
          name: "mx.example.org",
          logger: false,
          disabledCommands: ["AUTH", "STARTTLS"],
          authOptional: true,
          onConnect: (session, cb) => listeners.onConnect(session, cb),
          onClose: (session) => listeners.onClose(session),
        }),
      true,
    );
    const count = (event: string) => lines.filter((l) => l.event === event).length;
    const handle = {
      close: () => listeners.close(1000),
      /** until every session the test opened has closed on the server's side */
      settled: async () => {
        while (count("smtp.connect") !== count("smtp.close") || listeners.gate!.waitingCount > 0) await ioTurns(1);
      },
    };
    open.push(handle);
    const gate = listeners.gate!;
    /** until the server has accepted `n` sockets into their wait */
    const waiting = async (n: number) => {
      while (gate.waitingCount !== n) await ioTurns(1);
    };
    return { port: bound.port, lines, gate, waiting };
  }

  test("a first-time client that talks before its greeting gets 521 5.5.1, is logged and gets no session", async () => {
    mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const mx = await start({ greetWaitMs: 6000 });
    const c = rawClient(mx.port, "127.0.0.2");
    await c.connected;
    await mx.waiting(1);
    c.socket.write("EHLO bot.example\r\n");
    assert.equal(await c.closedNow(), PREGREET_REFUSAL);
    const pregreet = mx.lines.filter((l) => l.event === "smtp.pregreet");
    assert.deepEqual(
      pregreet.map((l) => [l.ip, l.bytes, l.text]),
      [["127.0.0.2", 18, "EHLO bot.example\r\n"]],
    );
    assert.equal(
      mx.lines.some((l) => l.event === "smtp.connect"),
      false,
    );
    // no pass: the same client waits again on its next connection
    const again = rawClient(mx.port, "127.0.0.2");
    await again.connected;
    await mx.waiting(1);
    assert.equal(mx.gate.passes.passed("127.0.0.2"), false);
    again.socket.destroy();
  });

  test("a first-time client is greeted only after the wait; once it waited, it is greeted with no timer running", async () => {
    mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const mx = await start({ greetWaitMs: 6000 });
    const first = rawClient(mx.port, "127.0.0.3");
    await first.connected;
    await mx.waiting(1);
    await ioTurns(20);
    assert.equal(first.received, "", "nothing before the wait is over");
    mock.timers.tick(6000);
    await first.until(() => first.received.includes("\r\n"));
    assert.equal(first.received, "220 mx.example.org ESMTP\r\n");

    // time stands still from here on: smtp-server's own 100 ms timer cannot fire, so a greeting
    // now is one that waited for no timer at all
    const second = rawClient(mx.port, "127.0.0.3");
    await second.until(() => second.received.includes("\r\n"));
    assert.equal(second.received, "220 mx.example.org ESMTP\r\n");
    second.socket.write("EHLO relay.example\r\n");
    await second.until(() => /\r\n250 [^\r\n]*\r\n$/.test(second.received));
    assert.equal(mx.gate.waitingCount, 0);

    // another address has no pass of its own
    const other = rawClient(mx.port, "127.0.0.4");
    await other.connected;
    await mx.waiting(1);
    assert.equal(other.received, "");
    for (const c of [first, second, other]) c.socket.destroy();
  });

  test("after greetPassSeconds the pass is gone and the client waits again", async () => {
    mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const mx = await start({ greetWaitMs: 500, greetPassSeconds: 3600 });
    const first = rawClient(mx.port, "127.0.0.5");
    await mx.waiting(1);
    mock.timers.tick(500);
    await first.until(() => first.received.includes("\r\n"));
    first.socket.destroy();

    mock.timers.tick(3600 * 1000);
    const later = rawClient(mx.port, "127.0.0.5");
    await later.connected;
    await mx.waiting(1);
    await ioTurns(20);
    assert.equal(later.received, "");
    later.socket.write("QUIT\r\n");
    assert.equal(await later.closedNow(), PREGREET_REFUSAL);
  });

  test("with greetWaitMs 0 there is no test: a first-time client is greeted at once", async () => {
    mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const mx = await start({ greetWaitMs: 0 });
    const c = rawClient(mx.port, "127.0.0.6");
    await c.until(() => c.received.includes("\r\n"));
    assert.equal(c.received, "220 mx.example.org ESMTP\r\n");
    assert.equal(mx.gate.passes.size, 0);
    c.socket.destroy();
  });
});
