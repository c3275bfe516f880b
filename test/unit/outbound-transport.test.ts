// SmtpTransport against scripted SMTP servers on loopback, with a fake resolver: the protocol
// paths that well-behaved peers (test/integration/outbound-transport.test.ts) never take, and
// how connections are reused (the cache's own rules: outbound-connection-cache.test.ts).
import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { validateMaildConfig, type MaildConfig, type OutboundConfig } from "../../server-bootstrap/maild/config";
import { createLogger } from "../../server-bootstrap/maild/log";
import { connectionKey, SmtpTransport } from "../../server-bootstrap/maild/outbound/transport";
import type { StsPolicy } from "../../server-bootstrap/maild/outbound/mta-sts";
import type { HostPolicy } from "../../server-bootstrap/maild/outbound/tls-policy";
import { TlsReport } from "../../server-bootstrap/maild/outbound/tls-report";
import type { DnsLookup } from "../../server-bootstrap/maild/outbound/mx";
import type { DeliveryAttempt, RecipientResult } from "../../server-bootstrap/maild/outbound/types";

/** What a scripted server answers to one command line (undefined: the default, a plain 250). */
type Script = (line: string, session: Session) => string | "close" | undefined;

interface Session {
  /** 1 for the first connection, 2 for the second, ... */
  n: number;
  /** set by a script: answer whatever arrives next (the TLS ClientHello) with plaintext garbage */
  garbage?: boolean;
}

interface FakeServer {
  /** every command line received, per connection */
  sessions: string[][];
  /** message contents received after DATA */
  messages: string[];
  /** the client address of each connection */
  remotes: string[];
  close(): void;
}

/** A line-based SMTP server on ip:port that follows `script` (greeting is asked with line "CONNECT"). */
async function fakeSmtp(ip: string, port: number, script: Script): Promise<FakeServer> {
  const server: FakeServer & { srv?: net.Server } = { sessions: [], messages: [], remotes: [], close: () => server.srv?.close() };
  let count = 0;
  const srv = net.createServer((socket) => {
    const session: Session = { n: ++count };
    const lines: string[] = [];
    server.sessions.push(lines);
    server.remotes.push(socket.remoteAddress ?? "");
    let buf = "";
    let data: string[] | undefined;
    const reply = (line: string, fallback: string) => {
      const r = script(line, session) ?? fallback;
      if (r === "close") socket.destroy();
      else socket.write(r.endsWith("\r\n") ? r : `${r}\r\n`);
    };
    socket.on("error", () => undefined);
    reply("CONNECT", "220 fake ESMTP");
    socket.on("data", (chunk) => {
      if (session.garbage) {
        socket.end("this is not TLS\r\n");
        return;
      }
      buf += chunk.toString("latin1");
      let i: number;
      while ((i = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (data) {
          if (line === ".") {
            server.messages.push(data.join("\r\n"));
            data = undefined;
            reply("END-OF-DATA", "250 2.0.0 accepted");
          } else data.push(line);
          continue;
        }
        lines.push(line);
        const verb = line.split(" ")[0].toUpperCase();
        if (verb === "EHLO") reply(line, "250-fake\r\n250 8BITMIME");
        else if (verb === "DATA") {
          const r = script(line, session) ?? "354 go ahead";
          if (r === "close") socket.destroy();
          else {
            socket.write(`${r}\r\n`);
            if (r.startsWith("354")) data = [];
          }
        } else if (verb === "QUIT") {
          socket.end("221 bye\r\n");
        } else reply(line, "250 ok");
      }
    });
  });
  server.srv = srv;
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, ip, resolve);
  });
  return server;
}

let dir = "";
let messagePath = "";
let port = 0;
const servers: FakeServer[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "transport-test-"));
  messagePath = path.join(dir, "message.eml");
  fs.writeFileSync(messagePath, "Subject: hello\r\n\r\nbody\r\n");
  // a port free on 127.0.0.1 (and, in practice, on 127.0.0.2 too)
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
});
afterEach(() => {
  servers.forEach((s) => s.close());
  servers.length = 0;
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function nodata(): Promise<never> {
  return Promise.reject(Object.assign(new Error("nodata"), { code: "ENODATA" }));
}

/** MX records: domain -> [host, ip][] in preference order. */
function resolver(mx: Record<string, [string, string][]>, broken = false): DnsLookup {
  const addresses = new Map(Object.values(mx).flat());
  return {
    resolveMx: async (n) => {
      if (broken) throw Object.assign(new Error("servfail"), { code: "ESERVFAIL" });
      const hosts = mx[n];
      if (!hosts) throw Object.assign(new Error("nxdomain"), { code: "ENOTFOUND" });
      return hosts.map(([exchange], i) => ({ exchange, priority: 10 * (i + 1) }));
    },
    resolve4: async (n) => (addresses.has(n) ? [addresses.get(n)!] : nodata()),
    resolve6: () => nodata(),
    resolveTxt: () => nodata(),
  };
}

const transports: SmtpTransport[] = [];
after(() => Promise.all(transports.map((t) => t.close())));

function setup(
  mx: Record<string, [string, string][]>,
  opts: { broken?: boolean; sourceIpv4?: string; outbound?: Partial<OutboundConfig>; log?: (line: string) => void } = {},
) {
  const cfg: MaildConfig = validateMaildConfig({
    hostname: "mail.sender.example",
    dataDir: dir,
    tls: { certPath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem" },
    domains: [{ name: "sender.example" }],
    users: [],
    aliases: [],
    outbound: { port, timeoutMs: 2000, ipv6: false, ...(opts.sourceIpv4 ? { sourceIpv4: opts.sourceIpv4 } : {}), ...opts.outbound },
  });
  // A report directory per transport: an earlier test's report still writing the same day's
  // file must not overwrite this one's counts.
  const reportDir = fs.mkdtempSync(path.join(dir, "report-"));
  const report = new TlsReport({ dataDir: () => reportDir, now: () => new Date("2025-06-01T12:00:00Z") });
  const transport = new SmtpTransport({
    config: () => cfg,
    log: createLogger(opts.log ?? (() => undefined)),
    tlsReport: report,
    resolver: resolver(mx, opts.broken),
    adQuery: async () => ({ rcode: 0, authenticated: false, truncated: false, answers: [] }),
  });
  transports.push(transport);
  return { transport, report, cfg };
}

function attempt(domain: string, recipients: string[], file = messagePath): DeliveryAttempt {
  return { id: "u1", domain, sender: "ann@sender.example", recipients, messagePath: file, size: 24 };
}

function byRecipient(results: RecipientResult[]): Record<string, Pick<RecipientResult, "status" | "enhancedCode" | "diagnostic">> {
  return Object.fromEntries(
    results.map((r) => [r.recipient, { status: r.status, enhancedCode: r.enhancedCode, diagnostic: r.diagnostic }]),
  );
}

describe("SMTP transport protocol paths", () => {
  test("EHLO carries the configured hostname, the connection leaves from sourceIpv4, the envelope is the attempt's", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, () => undefined);
    servers.push(fake);
    const { transport } = setup({ "ok.example": [["mx.ok.example", "127.0.0.1"]] }, { sourceIpv4: "127.0.0.3" });
    const [r] = await transport.deliver(attempt("ok.example", ["a@ok.example"]));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.deepEqual(fake.remotes, ["127.0.0.3"]);
    assert.deepEqual(fake.sessions[0].slice(0, 4), [
      "EHLO mail.sender.example",
      "MAIL FROM:<ann@sender.example> BODY=8BITMIME",
      "RCPT TO:<a@ok.example>",
      "DATA",
    ]);
    assert.deepEqual(fake.messages, ["Subject: hello\r\n\r\nbody"]);
  });

  test("the null sender of a DSN is sent as MAIL FROM:<>", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, () => undefined);
    servers.push(fake);
    const { transport } = setup({ "ok.example": [["mx.ok.example", "127.0.0.1"]] });
    const [r] = await transport.deliver({ ...attempt("ok.example", ["a@ok.example"]), sender: "" });
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(fake.sessions[0][1], "MAIL FROM:<> BODY=8BITMIME");
  });

  test("a 554 greeting moves on to the next MX host, which delivers", async () => {
    servers.push(await fakeSmtp("127.0.0.1", port, (line) => (line === "CONNECT" ? "554 5.7.1 no service for you" : undefined)));
    const good = await fakeSmtp("127.0.0.2", port, () => undefined);
    servers.push(good);
    const { transport } = setup({
      "greet.example": [
        ["mx1.greet.example", "127.0.0.1"],
        ["mx2.greet.example", "127.0.0.2"],
      ],
    });
    const [r] = await transport.deliver(attempt("greet.example", ["a@greet.example"]));
    assert.deepEqual([r.status, r.remoteMta, r.diagnostic], ["delivered", "mx2.greet.example", "250 2.0.0 accepted"]);
    assert.equal(good.messages.length, 1);
  });

  test("every MX host refusing the session defers with the last refusal", async () => {
    servers.push(await fakeSmtp("127.0.0.1", port, (line) => (line === "CONNECT" ? "421 4.3.2 busy" : undefined)));
    const { transport } = setup({ "busy.example": [["mx1.busy.example", "127.0.0.1"]] });
    const [r] = await transport.deliver(attempt("busy.example", ["a@busy.example"]));
    assert.deepEqual([r.status, r.enhancedCode, r.remoteMta], ["deferred", "4.4.2", "mx1.busy.example"]);
    assert.match(r.diagnostic, /421 4\.3\.2 busy/);
  });

  test("MAIL FROM refused with 451 under PIPELINING: every recipient gets the 451, not the 503s that follow it", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, (line) => {
      if (line.startsWith("EHLO")) return "250-fake\r\n250 PIPELINING";
      if (line.startsWith("MAIL")) return "451 4.7.1 greylisted, come back later";
      if (line.startsWith("RCPT")) return "503 5.5.1 need MAIL first";
      if (line === "DATA") return "503 5.5.1 no valid recipients";
      return undefined;
    });
    servers.push(fake);
    const { transport } = setup({ "grey.example": [["mx.grey.example", "127.0.0.1"]] });
    const results = await transport.deliver(attempt("grey.example", ["a@grey.example", "b@grey.example"]));
    const grey = { status: "deferred", enhancedCode: "4.7.1", diagnostic: "451 4.7.1 greylisted, come back later" };
    assert.deepEqual(byRecipient(results), { "a@grey.example": grey, "b@grey.example": grey });
    assert.equal(fake.messages.length, 0);
  });

  test("per recipient: RCPT 550 fails, RCPT 451 defers, and a 552 after DATA fails the accepted one", async () => {
    servers.push(
      await fakeSmtp("127.0.0.1", port, (line) => {
        if (line.startsWith("RCPT TO:<gone@")) return "550 5.1.1 gone";
        if (line.startsWith("RCPT TO:<later@")) return "451 4.2.1 mailbox busy";
        if (line === "END-OF-DATA") return "552 5.3.4 too big for this mailbox";
        return undefined;
      }),
    );
    const { transport } = setup({ "mixed.example": [["mx.mixed.example", "127.0.0.1"]] });
    const results = await transport.deliver(attempt("mixed.example", ["gone@mixed.example", "later@mixed.example", "ok@mixed.example"]));
    assert.deepEqual(byRecipient(results), {
      "gone@mixed.example": { status: "failed", enhancedCode: "5.1.1", diagnostic: "550 5.1.1 gone" },
      "later@mixed.example": { status: "deferred", enhancedCode: "4.2.1", diagnostic: "451 4.2.1 mailbox busy" },
      "ok@mixed.example": { status: "failed", enhancedCode: "5.3.4", diagnostic: "552 5.3.4 too big for this mailbox" },
    });
  });

  test("a connection lost before the reply to the message defers", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, (line) => (line === "END-OF-DATA" ? "close" : undefined));
    servers.push(fake);
    const { transport } = setup({ "lost.example": [["mx.lost.example", "127.0.0.1"]] });
    const [r] = await transport.deliver(attempt("lost.example", ["a@lost.example"]));
    assert.deepEqual([r.status, r.enhancedCode, r.remoteReply], ["deferred", "4.4.2", false]);
    assert.equal(fake.messages.length, 1);
  });

  test("a STARTTLS handshake that fails is retried in plaintext when no policy requires TLS (RFC 7435), and counted", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, (line, session) => {
      if (line.startsWith("EHLO")) return "250-fake\r\n250 STARTTLS";
      // the first connection answers the TLS ClientHello with plaintext garbage
      if (line === "STARTTLS" && session.n === 1) {
        session.garbage = true;
        return "220 go ahead";
      }
      return undefined;
    });
    servers.push(fake);
    const { transport, report } = setup({ "broken-tls.example": [["mx.broken-tls.example", "127.0.0.1"]] });
    const [r] = await transport.deliver(attempt("broken-tls.example", ["a@broken-tls.example"]));
    assert.equal(r.status, "delivered", r.diagnostic);
    assert.equal(fake.sessions.length, 2);
    assert.ok(!fake.sessions[1].includes("STARTTLS"), "the second session stays in plaintext");
    const day = await report.readDay("2025-06-01");
    const p = day?.policies.find((x) => x.policy["policy-domain"] === "broken-tls.example");
    assert.equal(p?.policy["policy-type"], "no-policy-found");
    assert.deepEqual(
      p?.["failure-details"].map((f) => [f["result-type"], f["failure-reason-code"]]),
      [["validation-failure", "tls-handshake-failed: ERR_SSL_WRONG_VERSION_NUMBER"]],
    );
    assert.deepEqual(p?.summary, { "total-successful-session-count": 0, "total-failure-session-count": 1 });
  });

  test("a temporary DNS failure defers with 4.4.3, and a message file that cannot be read defers with 4.3.0", async () => {
    const { transport: broken } = setup({}, { broken: true });
    const [dns] = await broken.deliver(attempt("any.example", ["a@any.example"]));
    assert.deepEqual([dns.status, dns.enhancedCode], ["deferred", "4.4.3"]);

    servers.push(await fakeSmtp("127.0.0.1", port, () => undefined));
    const { transport } = setup({ "ok.example": [["mx.ok.example", "127.0.0.1"]] });
    const [missing] = await transport.deliver(attempt("ok.example", ["a@ok.example"], path.join(dir, "no-such-message.eml")));
    assert.deepEqual([missing.status, missing.enhancedCode], ["deferred", "4.3.0"]);
  });
});

describe("SMTP transport connection reuse", () => {
  const ok = { "ok.example": [["mx.ok.example", "127.0.0.1"]] as [string, string][] };
  const MAIL = "MAIL FROM:<ann@sender.example> BODY=8BITMIME";

  test("messages to one domain one after another share a connection, probed with RSET after waiting idle; the TLS report counts one session", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, () => undefined);
    servers.push(fake);
    const lines: string[] = [];
    const { transport, report } = setup(ok, { log: (l) => lines.push(l) });
    for (const r of ["a", "b", "c"]) {
      const [res] = await transport.deliver(attempt("ok.example", [`${r}@ok.example`]));
      assert.equal(res.status, "delivered", res.diagnostic);
    }
    assert.equal(fake.sessions.length, 1);
    assert.deepEqual(fake.sessions[0], [
      "EHLO mail.sender.example",
      MAIL,
      "RCPT TO:<a@ok.example>",
      "DATA",
      "RSET",
      MAIL,
      "RCPT TO:<b@ok.example>",
      "DATA",
      "RSET",
      MAIL,
      "RCPT TO:<c@ok.example>",
      "DATA",
    ]);
    assert.equal(fake.messages.length, 3);
    const deliveries = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "outbound.delivery");
    assert.deepEqual(
      deliveries.map((l) => l.transaction),
      [1, 2, 3],
    );
    const day = await report.readDay("2025-06-01");
    const p = day?.policies.find((x) => x.policy["policy-domain"] === "ok.example");
    // a plaintext session (the fake offers no STARTTLS): one failure, for the one session
    assert.deepEqual(p?.summary, { "total-successful-session-count": 0, "total-failure-session-count": 1 });
    assert.deepEqual(transport.connections(), { open: 1, idle: 1 });
    await transport.close();
    assert.equal(fake.sessions[0].at(-1), "QUIT");
    assert.deepEqual(transport.connections(), { open: 0, idle: 0 });
  });

  test("messages sent at once take the domain's connection in turn, straight after each successful DATA: MAIL without RSET", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, () => undefined);
    servers.push(fake);
    const { transport } = setup(ok, { outbound: { maxConnectionsPerDomain: 1 } });
    const all = await Promise.all([1, 2, 3, 4].map((i) => transport.deliver(attempt("ok.example", [`m${i}@ok.example`]))));
    assert.deepEqual(
      all.map(([r]) => r.status),
      ["delivered", "delivered", "delivered", "delivered"],
    );
    assert.equal(fake.sessions.length, 1);
    assert.deepEqual(
      fake.sessions[0].map((l) => l.split(":")[0]),
      ["EHLO mail.sender.example", ...Array<string[]>(4).fill(["MAIL FROM", "RCPT TO", "DATA"]).flat()],
      "RFC 5321 4.1.4: MAIL may follow a successful DATA",
    );
    assert.equal(fake.messages.length, 4);
  });

  test("a transaction that did not end with a successful DATA is reset before the next one, even when handed straight over", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, (line) => (line.startsWith("RCPT TO:<gone@") ? "550 5.1.1 gone" : undefined));
    servers.push(fake);
    const { transport } = setup(ok, { outbound: { maxConnectionsPerDomain: 1 } });
    const [gone, fine] = await Promise.all(["gone", "fine"].map((r) => transport.deliver(attempt("ok.example", [`${r}@ok.example`]))));
    assert.deepEqual([gone[0].status, fine[0].status], ["failed", "delivered"]);
    assert.deepEqual(fake.sessions, [
      ["EHLO mail.sender.example", MAIL, "RCPT TO:<gone@ok.example>", "RSET", MAIL, "RCPT TO:<fine@ok.example>", "DATA"],
    ]);
  });

  test("a cached connection that fails its RSET probe is closed, and the message goes over a fresh connection once", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, (line, session) => (line === "RSET" && session.n === 1 ? "close" : undefined));
    servers.push(fake);
    const { transport } = setup(ok);
    const [first] = await transport.deliver(attempt("ok.example", ["a@ok.example"]));
    const [second] = await transport.deliver(attempt("ok.example", ["b@ok.example"]));
    assert.deepEqual([first.status, second.status], ["delivered", "delivered"]);
    assert.equal(fake.sessions.length, 2);
    assert.deepEqual(fake.sessions[1].slice(0, 3), ["EHLO mail.sender.example", MAIL, "RCPT TO:<b@ok.example>"]);
    assert.equal(fake.messages.length, 2, "each message arrived once");
  });

  for (const [what, answer] of [
    ["drops the connection", "close"],
    ["answers 421 (closing)", "421 4.7.0 too many messages in this session"],
  ] as const) {
    test(`a cached connection whose server ${what} at MAIL, before any of the message went out, is replaced by a fresh one`, async () => {
      const mails = new Map<number, number>();
      const fake = await fakeSmtp("127.0.0.1", port, (line, session) => {
        if (!line.startsWith("MAIL")) return undefined;
        mails.set(session.n, (mails.get(session.n) ?? 0) + 1);
        return session.n === 1 && mails.get(1) === 2 ? answer : undefined;
      });
      servers.push(fake);
      const { transport } = setup(ok);
      await transport.deliver(attempt("ok.example", ["a@ok.example"]));
      const [second] = await transport.deliver(attempt("ok.example", ["b@ok.example"]));
      assert.equal(second.status, "delivered", second.diagnostic);
      assert.equal(fake.sessions.length, 2);
      assert.equal(fake.messages.length, 2, "each message arrived once");
    });
  }

  test("a connection lost after the message went out is not retried at once: deferred, and the server has it once", async () => {
    let ends = 0;
    const fake = await fakeSmtp("127.0.0.1", port, (line) => (line === "END-OF-DATA" && ++ends === 2 ? "close" : undefined));
    servers.push(fake);
    const { transport } = setup(ok);
    await transport.deliver(attempt("ok.example", ["a@ok.example"]));
    const [second] = await transport.deliver(attempt("ok.example", ["b@ok.example"]));
    assert.deepEqual([second.status, second.enhancedCode, second.remoteReply], ["deferred", "4.4.2", false]);
    assert.equal(fake.sessions.length, 1, "no fresh connection: the server may have taken it (RFC 1047)");
    assert.equal(fake.messages.length, 2);
  });

  test("refused transactions do not poison the next one on the connection (PIPELINING offered and used)", async () => {
    let valid = 0;
    let rcpt = "";
    const fake = await fakeSmtp("127.0.0.1", port, (line) => {
      if (line.startsWith("EHLO")) return "250-fake\r\n250-PIPELINING\r\n250 8BITMIME";
      if (line.startsWith("MAIL") || line === "RSET") valid = 0;
      if (line.startsWith("RCPT")) {
        rcpt = line;
        if (line.includes("<gone@")) return "550 5.1.1 gone";
        valid++;
      }
      if (line === "DATA" && valid === 0) return "554 5.5.1 no valid recipients";
      if (line === "END-OF-DATA" && rcpt.includes("<big@")) return "552 5.3.4 too big for this mailbox";
      return undefined;
    });
    servers.push(fake);
    const { transport } = setup(ok);
    const results = [];
    for (const r of ["gone", "big", "fine"]) results.push((await transport.deliver(attempt("ok.example", [`${r}@ok.example`])))[0]);
    assert.deepEqual(
      results.map((r) => [r.status, r.enhancedCode]),
      [
        ["failed", "5.1.1"],
        ["failed", "5.3.4"],
        ["delivered", "2.0.0"],
      ],
    );
    assert.equal(fake.sessions.length, 1);
    assert.deepEqual(fake.sessions[0], [
      "EHLO mail.sender.example",
      // MAIL, RCPT and DATA in one write (RFC 2920); DATA refused for want of a recipient
      MAIL,
      "RCPT TO:<gone@ok.example>",
      "DATA",
      "RSET",
      MAIL,
      "RCPT TO:<big@ok.example>",
      "DATA",
      "RSET",
      MAIL,
      "RCPT TO:<fine@ok.example>",
      "DATA",
    ]);
    assert.equal(fake.messages.length, 2, "the refused message and the delivered one");
  });

  test("idleConnectionSeconds 0: each message gets its own connection, ended with QUIT", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, () => undefined);
    servers.push(fake);
    const { transport } = setup(ok, { outbound: { idleConnectionSeconds: 0 } });
    await transport.deliver(attempt("ok.example", ["a@ok.example"]));
    await transport.deliver(attempt("ok.example", ["b@ok.example"]));
    await transport.close();
    assert.deepEqual(
      fake.sessions.map((s) => [s.filter((l) => l.startsWith("MAIL")).length, s.at(-1)]),
      [
        [1, "QUIT"],
        [1, "QUIT"],
      ],
    );
  });

  test("maxMessagesPerConnection 2: a connection carries two messages, the third opens another", async () => {
    const fake = await fakeSmtp("127.0.0.1", port, () => undefined);
    servers.push(fake);
    const { transport } = setup(ok, { outbound: { maxMessagesPerConnection: 2 } });
    for (const r of ["a", "b", "c"]) await transport.deliver(attempt("ok.example", [`${r}@ok.example`]));
    await transport.close();
    assert.deepEqual(
      fake.sessions.map((s) => [s.filter((l) => l.startsWith("MAIL")).length, s.at(-1)]),
      [
        [2, "QUIT"],
        [1, "QUIT"],
      ],
    );
  });

  test("the cache key: same domain, MX, TLS policy and local settings share; any difference does not", () => {
    const { cfg } = setup(ok);
    const sts = (over: Partial<StsPolicy> = {}): HostPolicy => ({
      type: "sts",
      policy: { id: "20250101", mode: "enforce", mx: ["mx.ok.example"], maxAge: 86400, text: "", fetchedAt: 1, ...over },
      enforce: (over.mode ?? "enforce") === "enforce",
      mxAllowed: true,
    });
    const tlsa = (byte: number): HostPolicy => ({
      type: "tlsa",
      records: [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, byte) }],
    });
    const key = (policy: HostPolicy, domain = "ok.example", mx = "mx.ok.example", c = cfg) => connectionKey(c, domain, mx, policy);
    assert.equal(key(sts()), key(sts({ fetchedAt: 2, text: "refetched" })), "the same policy fetched again");
    assert.equal(key(tlsa(1)), key(tlsa(1)));
    const different: [string, string][] = [
      ["another domain", key(sts(), "other.example")],
      ["another MX host", key(sts(), "ok.example", "mx2.ok.example")],
      ["another MTA-STS policy id", key(sts({ id: "20250102" }))],
      ["MTA-STS testing instead of enforce", key(sts({ mode: "testing" }))],
      ["DANE", key(tlsa(1))],
      ["other TLSA records", key(tlsa(2))],
      ["no policy", key({ type: "none" })],
      [
        "another source address",
        key(sts(), "ok.example", "mx.ok.example", { ...cfg, outbound: { ...cfg.outbound, sourceIpv4: "127.0.0.9" } }),
      ],
    ];
    for (const [what, k] of different) assert.notEqual(k, key(sts()), what);
    assert.notEqual(key(tlsa(1)), key(tlsa(2)));
  });
});
