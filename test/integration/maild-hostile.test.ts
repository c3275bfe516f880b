// maild on port 25 against hostile clients, in the local internet: raw sockets, swaks and
// openssl s_client, each finding of issue 15 that belongs to the SMTP surface checked against the
// running daemon. Deadlines are configured short (their allowed minimum, 10 s) so the slow
// clients are cut within the test.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startMaild, RawSmtp, type MaildProcess } from "../harness/maild";
import { maildConfig } from "../fixtures/maild-config";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

const NODE = path.resolve(__dirname, "../../node_modules/.bin/node");
const DATA_TIMEOUT = 10;
const SESSION_TIMEOUT = 15;
const HEADER_CAP = 1_200_000;

let internet: LocalInternet;
let mx: NetHost, client: NetHost;
let maild: MaildProcess;
let dataDir: string;
let tlsFiles: TestTls;

function message(opts: { id: string; to?: string; extra?: string; body?: string }): string {
  return (
    `From: ann@sender.test\r\nTo: ${opts.to ?? "alice@example.org"}\r\nSubject: hostile\r\nDate: Sat, 21 Nov 2026 05:00:00 +0000\r\n` +
    `Message-ID: <${opts.id}>\r\n${opts.extra ?? ""}\r\n${opts.body ?? "Hello.\r\n"}`
  );
}

function newId(tag: string): string {
  return `${tag}-${randomBytes(6).toString("hex")}@sender.test`;
}

/** Every delivered copy whose Message-ID is `id`, by mailbox. */
function delivered(id: string): { mailbox: string; text: string }[] {
  const out: { mailbox: string; text: string }[] = [];
  const root = path.join(dataDir, "mail");
  if (!fs.existsSync(root)) return out;
  for (const domain of fs.readdirSync(root)) {
    for (const user of fs.readdirSync(path.join(root, domain))) {
      const dir = path.join(root, domain, user, "Maildir", "new");
      if (!fs.existsSync(dir)) continue;
      for (const f of fs.readdirSync(dir)) {
        const text = fs.readFileSync(path.join(dir, f), "latin1");
        if (text.includes(`Message-ID: <${id}>`)) out.push({ mailbox: `${user}@${domain}`, text });
      }
    }
  }
  return out;
}

async function session(): Promise<RawSmtp> {
  const c = await RawSmtp.connect(mx.ipv4, 25);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.command("EHLO hostile.test")).code, 250);
  return c;
}

/** MAIL, RCPT for each recipient (all must be accepted), DATA; returns the reply to the final dot. */
async function send(c: RawSmtp, rcpts: string[], data: string, from = "ann@sender.test"): Promise<{ code: number; text: string }> {
  assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
  for (const r of rcpts) assert.equal((await c.command(`RCPT TO:<${r}>`)).code, 250, r);
  assert.equal((await c.command("DATA")).code, 354);
  c.write(data + ".\r\n");
  return c.reply(60_000);
}

/** Runs a CommonJS script inside `host` with Node; returns its stdout parsed as JSON. */
async function runScript(host: NetHost, name: string, source: string): Promise<unknown> {
  const file = path.join(internet.workDir, name);
  fs.writeFileSync(file, source);
  const r = await host.run([NODE, file], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

before(async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  mx = await internet.addHost("mx");
  client = await internet.addHost("client");
  await startKnot(internet, dns, [{ origin: "sender.test.", lines: [`sender.test. TXT "v=spf1 -all"`] }]);
  await internet.setResolver(dns.ipv4);
  tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org"], "mx");
  dataDir = path.join(internet.workDir, "data");
  const config = maildConfig(
    mx,
    { dataDir, tls: tlsFiles },
    {
      domains: [{ name: "example.org" }],
      users: [
        { address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH },
        { address: "bob@example.org", passwordHash: TEST_PASSWORD_HASH },
      ],
      aliases: [{ address: "postmaster@example.org", to: ["bob@example.org"] }],
      listen: {
        smtp: [
          { host: mx.ipv4, port: 25 },
          { host: mx.ipv6, port: 25 },
        ],
        submission: [{ host: mx.ipv4, port: 587 }],
        submissions: [{ host: mx.ipv4, port: 465 }],
        http: [],
        https: [{ host: mx.ipv4, port: 443 }],
      },
      dnsServers: [dns.ipv4],
      limits: {
        maxHeaderBytes: HEADER_CAP,
        maxConnectionsPerIp: 3,
        dataTimeoutSeconds: DATA_TIMEOUT,
        sessionTimeoutSeconds: SESSION_TIMEOUT,
      },
    },
  );
  maild = await startMaild(internet, mx, config as unknown as Record<string, unknown>);
});

after(async () => {
  if (process.env.MAILD_TEST_KEEP_LOG) fs.copyFileSync(maild.logPath, process.env.MAILD_TEST_KEEP_LOG);
  await internet?.destroy();
});

describe("the header section and trace fields", () => {
  test("a 5 MB header section is refused with 552 5.3.4 after the final dot, nothing is stored, and the session goes on", async () => {
    const c = await session();
    const id = newId("big-header");
    const pad = "X-Pad: " + "p".repeat(990) + "\r\n";
    const reply = await send(c, ["alice@example.org"], message({ id, extra: pad.repeat(5 * 1024) }));
    assert.deepEqual(reply, { code: 552, text: `5.3.4 Message header section exceeds the limit of ${HEADER_CAP} bytes` });
    assert.equal(delivered(id).length, 0);
    assert.deepEqual(fs.readdirSync(path.join(dataDir, "spool", "incoming")), [], "no spool file left");
    const ok = newId("after-big-header");
    assert.equal((await send(c, ["alice@example.org"], message({ id: ok }))).code, 250);
    assert.equal(delivered(ok).length, 1);
    c.close();
  });

  test("forged Authentication-Results are removed after 1.1 MiB of header fields and behind a comment; another host's stay", async () => {
    const c = await session();
    const id = newId("forged");
    const pad = "X-Pad: " + "p".repeat(990) + "\r\n";
    const extra =
      pad.repeat(1150) +
      "Authentication-Results: mx.example.org; dkim=pass header.d=bank.test\r\n" +
      "Authentication-Results: (looks harmless)\r\n mx.example.org; dmarc=pass header.from=bank.test\r\n" +
      "Authentication-Results: mx.elsewhere.test; spf=pass\r\n";
    assert.equal((await send(c, ["alice@example.org"], message({ id, extra }))).code, 250);
    const [copy] = delivered(id);
    const header = copy.text.slice(0, copy.text.indexOf("\r\n\r\n"));
    assert.ok(header.length > 1024 * 1024);
    assert.ok(!copy.text.includes("bank.test"), "both forged fields are gone");
    assert.ok(copy.text.includes("Authentication-Results: mx.elsewhere.test; spf=pass\r\n"));
    assert.equal(header.match(/^Authentication-Results: mx\.example\.org;/gm)?.length, 1, "ours is the only one with our name");
    c.close();
  });

  test("a delivered copy starts with Return-Path and its own Delivered-To; a Return-Path that came with it is gone", async () => {
    const c = await session();
    const id = newId("trace");
    const reply = await send(
      c,
      ["alice@example.org", "bob@example.org"],
      message({ id, extra: "Return-Path: <forged@bank.test>\r\n" }),
      "ann@sender.test",
    );
    assert.equal(reply.code, 250);
    const copies = delivered(id).sort((a, b) => a.mailbox.localeCompare(b.mailbox));
    assert.deepEqual(
      copies.map((x) => x.mailbox),
      ["alice@example.org", "bob@example.org"],
    );
    for (const copy of copies) {
      assert.ok(copy.text.startsWith(`Return-Path: <ann@sender.test>\r\nDelivered-To: ${copy.mailbox}\r\n`), copy.text.slice(0, 200));
      assert.ok(!copy.text.includes("forged@bank.test"));
    }
    c.close();
  });

  test("the null sender is recorded as Return-Path: <>", async () => {
    const c = await session();
    const id = newId("null-sender");
    assert.equal((await send(c, ["alice@example.org"], message({ id }), "")).code, 250);
    assert.ok(delivered(id)[0].text.startsWith("Return-Path: <>\r\nDelivered-To: alice@example.org\r\n"));
    c.close();
  });

  test("100 Received fields are accepted; 101 are a mail loop, refused with 554 5.4.6 (RFC 5321 6.3)", async () => {
    const c = await session();
    const hop = (i: number) => `Received: from hop${i}.test by hop${i + 1}.test; Sat, 21 Nov 2026 05:00:00 +0000\r\n`;
    const at100 = newId("hops-100");
    const hops = (n: number) => Array.from({ length: n }, (_, i) => hop(i)).join("");
    assert.equal((await send(c, ["alice@example.org"], message({ id: at100, extra: hops(100) }))).code, 250);
    const at101 = newId("hops-101");
    assert.deepEqual(await send(c, ["alice@example.org"], message({ id: at101, extra: hops(101) })), {
      code: 554,
      text: "5.4.6 Too many hops (101 Received header fields): mail loop",
    });
    assert.equal(delivered(at100).length, 1);
    assert.equal(delivered(at101).length, 0);
    c.close();
  });

  test("a message that already carries our Delivered-To for its mailbox came back: refused as a loop with 554 5.4.6", async () => {
    const c = await session();
    const id = newId("delivered-to-loop");
    const reply = await send(c, ["alice@example.org"], message({ id, extra: "Delivered-To: Alice@Example.org\r\n" }));
    assert.deepEqual(reply, { code: 554, text: "5.4.6 Mail forwarding loop for alice@example.org" });
    assert.equal(delivered(id).length, 0);
    const other = newId("delivered-to-other");
    assert.equal((await send(c, ["alice@example.org"], message({ id: other, extra: "Delivered-To: carol@elsewhere.test\r\n" }))).code, 250);
    c.close();
  });
});

describe("recipients", () => {
  test("RCPT TO:<postmaster> without a domain is accepted (RFC 5321 4.5.1) and reaches the postmaster", async () => {
    const id = newId("postmaster");
    const file = path.join(internet.workDir, "postmaster.eml");
    fs.writeFileSync(file, message({ id, to: "postmaster" }));
    const r = await client.run(
      [
        "swaks",
        "--server",
        mx.ipv4,
        "--port",
        "25",
        "--helo",
        "client.test",
        "--from",
        "ann@sender.test",
        "--to",
        "postmaster",
        "--data",
        file,
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ -> RCPT TO:<postmaster>\n<- {2}250 /m);
    assert.deepEqual(
      delivered(id).map((x) => x.mailbox),
      ["bob@example.org"],
    );
  });

  test("a quoted local part that needs no quotes is the same mailbox; one that needs them is unknown", async () => {
    const c = await session();
    assert.equal((await c.command("MAIL FROM:<ann@sender.test>")).code, 250);
    assert.equal((await c.command('RCPT TO:<"alice"@example.org>')).code, 250);
    assert.deepEqual(await c.command('RCPT TO:<"bob.x"@example.org>'), {
      code: 550,
      text: "5.1.1 Recipient address rejected: user unknown",
    });
    assert.equal((await c.command("DATA")).code, 354);
    const id = newId("quoted");
    c.write(message({ id }) + ".\r\n");
    assert.equal((await c.reply()).code, 250);
    assert.deepEqual(
      delivered(id).map((x) => x.mailbox),
      ["alice@example.org"],
    );
    c.close();
  });

  test("20 refused recipients are answered; the 21st ends the session with 421 (address harvesting)", async () => {
    const c = await session();
    assert.equal((await c.command("MAIL FROM:<ann@sender.test>")).code, 250);
    for (let i = 0; i < 20; i++) assert.equal((await c.command(`RCPT TO:<guess${i}@example.org>`)).code, 550, `guess ${i}`);
    assert.deepEqual(await c.command("RCPT TO:<guess20@example.org>"), {
      code: 421,
      text: "4.7.0 Too many refused recipients, closing connection",
    });
    await assert.rejects(c.reply(5000), /connection closed/);
  });

  test("an accepted message starts the refused-recipient count afresh", async () => {
    const c = await session();
    assert.equal((await c.command("MAIL FROM:<ann@sender.test>")).code, 250);
    for (let i = 0; i < 15; i++) assert.equal((await c.command(`RCPT TO:<typo${i}@example.org>`)).code, 550);
    assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    c.write(message({ id: newId("reset") }) + ".\r\n");
    assert.equal((await c.reply()).code, 250);
    assert.equal((await c.command("MAIL FROM:<ann@sender.test>")).code, 250);
    for (let i = 0; i < 15; i++) assert.equal((await c.command(`RCPT TO:<typo${i}@example.org>`)).code, 550);
    c.close();
  });
});

describe("deadlines", () => {
  test(`a trickled DATA is cut after ${DATA_TIMEOUT} s, a NOOP-a-second session after ${SESSION_TIMEOUT} s, and a DATA under way at the session deadline finishes first`, async () => {
    const trickle = (c: RawSmtp, stop: () => boolean) =>
      (async () => {
        while (!stop() && !c.isClosed) {
          c.write("X");
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
    const started = Date.now();

    // 1. DATA that never ends: one byte a second keeps the idle timer happy, the DATA deadline does not
    const slowData = (async () => {
      const c = await session();
      assert.equal((await c.command("MAIL FROM:<ann@sender.test>")).code, 250);
      assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
      assert.equal((await c.command("DATA")).code, 354);
      const t0 = Date.now();
      c.write("Subject: slow\r\n\r\n");
      const writing = trickle(c, () => false);
      const reply = await c.reply(30_000);
      await writing;
      return { reply, seconds: (Date.now() - t0) / 1000 };
    })();

    // 2. a session kept busy with NOOPs
    const busy = (async () => {
      const c = await session();
      const t0 = Date.now();
      for (;;) {
        const r = await c.command("NOOP");
        if (r.code !== 250) return { reply: r, seconds: (Date.now() - t0) / 1000 };
        await new Promise((res) => setTimeout(res, 1000));
      }
    })();

    // 3. a message started 9 s in, trickled past the session deadline, ended before its own
    const finishing = (async () => {
      const c = await session();
      await new Promise((r) => setTimeout(r, 9000));
      assert.equal((await c.command("MAIL FROM:<ann@sender.test>")).code, 250);
      assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
      assert.equal((await c.command("DATA")).code, 354);
      const id = newId("finishing");
      c.write(message({ id }).replace("Hello.\r\n", ""));
      let stop = false;
      const writing = trickle(c, () => stop);
      await new Promise((r) => setTimeout(r, (SESSION_TIMEOUT - 9 + 2) * 1000));
      stop = true;
      await writing;
      c.write("\r\n.\r\n");
      const accepted = await c.reply(30_000);
      const closing = await c.reply(5000);
      return { id, accepted, closing, at: (Date.now() - started) / 1000 };
    })();

    const data = await slowData;
    assert.deepEqual(data.reply, { code: 421, text: `4.4.2 Message not received within ${DATA_TIMEOUT} seconds, closing connection` });
    assert.ok(data.seconds >= DATA_TIMEOUT - 0.5 && data.seconds < DATA_TIMEOUT + 3, `cut after ${data.seconds} s`);

    const noop = await busy;
    assert.deepEqual(noop.reply, {
      code: 421,
      text: `4.4.2 Session time limit of ${SESSION_TIMEOUT} seconds exceeded, closing connection`,
    });
    assert.ok(noop.seconds >= SESSION_TIMEOUT - 1 && noop.seconds < SESSION_TIMEOUT + 3, `cut after ${noop.seconds} s`);

    const fin = await finishing;
    assert.equal(fin.accepted.code, 250, "the message under way at the session deadline is accepted");
    assert.deepEqual(fin.closing, { code: 421, text: "4.4.2 Session time limit exceeded, closing connection" });
    assert.ok(fin.at > SESSION_TIMEOUT, `finished at ${fin.at} s`);
    assert.equal(delivered(fin.id).length, 1);
  });
});

describe("per-client limits", () => {
  test("addresses of one IPv6 /64 share one connection limit; the same host's IPv4 address is another client", async () => {
    // four addresses of the local internet's /64 on the client host, as one host with a /64 would have
    const base = client.ipv6.replace(/[0-9a-f]+$/, "");
    const extra = [0xf1, 0xf2, 0xf3].map((n) => `${base}${((parseInt(client.ipv6.split(":").pop()!, 16) & 0xff00) | n).toString(16)}`);
    for (const a of extra) {
      const r = await client.run(["ip", "-6", "addr", "add", `${a}/120`, "dev", "eth0", "nodad"]);
      assert.equal(r.code, 0, r.stderr);
    }
    const from = [client.ipv6, ...extra];
    const result = (await runScript(
      client,
      "per-64.js",
      `
      const net = require("node:net");
      const greet = (host, localAddress) => new Promise((resolve) => {
        const s = net.connect({ host, port: 25, localAddress });
        s.setEncoding("latin1");
        let buf = "";
        s.on("data", (d) => { buf += d; const m = /^(\\d{3}) ([^\\r\\n]*)\\r\\n/.exec(buf); if (m) resolve({ s, line: m[0].trim() }); });
        s.on("error", (e) => resolve({ s, line: "error " + e.message }));
      });
      (async () => {
        const out = [];
        const open = [];
        for (const a of ${JSON.stringify(from)}) { const g = await greet(${JSON.stringify(mx.ipv6)}, a); out.push(g.line); open.push(g.s); }
        const v4 = await greet(${JSON.stringify(mx.ipv4)}, ${JSON.stringify(client.ipv4)});
        out.push(v4.line); open.push(v4.s);
        for (const s of open) s.destroy();
        console.log(JSON.stringify(out));
      })();
    `,
    )) as string[];
    assert.equal(result.length, 5);
    for (const line of result.slice(0, 3)) assert.match(line, /^220 /);
    assert.equal(
      result[3],
      "421 4.7.0 Too many connections, try again later",
      "the fourth address of the /64 is over maxConnectionsPerIp (3)",
    );
    assert.match(result[4], /^220 /, "IPv4 is counted by address");
  });
});

describe("TLS on 25, 587, 465 and 443 (openssl s_client)", () => {
  const endpoints = () => [
    { port: 25, starttls: ["-starttls", "smtp"] },
    { port: 587, starttls: ["-starttls", "smtp"] },
    { port: 465, starttls: [] },
    { port: 443, starttls: [] },
  ];

  async function sClient(port: number, extra: string[], input = "QUIT\n") {
    return client.run(["openssl", "s_client", "-connect", `${mx.ipv4}:${port}`, "-servername", "mx.example.org", ...extra], {
      input,
      timeoutMs: 20_000,
    });
  }

  test("TLS 1.2 and 1.3 are accepted; TLS 1.0 and 1.1 are refused even by a client willing to use them", async () => {
    for (const { port, starttls } of endpoints()) {
      for (const version of ["-tls1_2", "-tls1_3"]) {
        const r = await sClient(port, [...starttls, version]);
        assert.match(r.stdout, /^New, TLSv1\.[23], Cipher is /m, `${port} ${version}: ${r.stdout.slice(-400)}${r.stderr}`);
      }
      for (const version of ["-tls1", "-tls1_1"]) {
        const r = await sClient(port, [...starttls, version, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert.notEqual(r.code, 0, `${port} ${version}`);
        assert.match(
          r.stdout + r.stderr,
          /alert protocol version|unsupported protocol|no protocols available/,
          `${port} ${version}: ${r.stderr}`,
        );
        assert.doesNotMatch(r.stdout, /^New, TLSv1(\.1)?, Cipher is /m);
      }
    }
  });

  test("a client's renegotiation is refused on every port", async () => {
    for (const { port, starttls } of endpoints()) {
      // s_client renegotiates when a line holds only "R" (interactive mode: no -quiet, no -ign_eof)
      const r = await sClient(port, [...starttls, "-tls1_2"], "R\n");
      assert.match(r.stdout + r.stderr, /RENEGOTIATING/, `${port}: s_client tried`);
      assert.match(r.stdout + r.stderr, /no renegotiation|renegotiation.*(fail|refus)/i, `${port}: ${r.stdout.slice(-600)}${r.stderr}`);
    }
  });
});
