// maild receiving mail in the local internet: knot serves the senders' SPF, DKIM and DMARC
// records, swaks and raw sockets send from their own namespaces, and the Maildir shows the result.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { dkimSign, sealMessage } from "mailauth";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { startMaild, RawSmtp, type MaildProcess } from "../harness/maild";
import { txtContent } from "../../components/records/txt";
import { maildConfig } from "../fixtures/maild-config";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

const HASH = TEST_PASSWORD_HASH;

let internet: LocalInternet;
let mx: NetHost, sender: NetHost, rogue: NetHost, flood: NetHost;
let maild: MaildProcess;
let config: Record<string, any>;
let dataDir: string;
let certDir: string;
const dkimKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
const dkimPem = dkimKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const wrongKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const arcKey = generateKeyPairSync("ed25519");
const arcPem = arcKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString();

function spkiB64(key: import("node:crypto").KeyObject): string {
  return key.export({ type: "spki", format: "der" }).toString("base64");
}

function message(opts: { from: string; to: string; subject: string; id: string; extra?: string }): string {
  return (
    `From: ${opts.from}\r\nTo: ${opts.to}\r\nSubject: ${opts.subject}\r\nDate: Sat, 21 Nov 2026 05:00:00 +0000\r\n` +
    `Message-ID: <${opts.id}>\r\n${opts.extra ?? ""}MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello from ${opts.from}.\r\n`
  );
}

async function signed(msg: string, domain: string, pem: string): Promise<string> {
  const res = await dkimSign(msg, { signatureData: [{ signingDomain: domain, selector: "s1", privateKey: pem }] } as never);
  assert.deepEqual(res.errors, []);
  return res.signatures + msg;
}

async function swaks(host: NetHost, args: string[], data?: string): Promise<{ code: number; out: string }> {
  const argv = ["swaks", "--server", mx.ipv4, "--port", "25", "--helo", `mail.${host.name}.test`, ...args];
  if (data !== undefined) {
    const file = path.join(internet.workDir, `msg-${randomBytes(4).toString("hex")}.eml`);
    fs.writeFileSync(file, data);
    argv.push("--data", file);
  }
  const r = await host.run(argv, { timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

function mailbox(local: string, domain = "example.org"): string {
  return path.join(dataDir, "mail", domain, local, "Maildir", "new");
}

/** Every delivered copy (in any user's new/) whose Message-ID is `id`. */
function findDelivered(id: string): { file: string; text: string }[] {
  const root = path.join(dataDir, "mail");
  const out: { file: string; text: string }[] = [];
  if (!fs.existsSync(root)) return out;
  for (const domain of fs.readdirSync(root)) {
    for (const user of fs.readdirSync(path.join(root, domain))) {
      const dir = path.join(root, domain, user, "Maildir", "new");
      if (!fs.existsSync(dir)) continue;
      for (const f of fs.readdirSync(dir)) {
        const text = fs.readFileSync(path.join(dir, f), "latin1");
        if (text.includes(`Message-ID: <${id}>`)) out.push({ file: path.join(dir, f), text });
      }
    }
  }
  return out;
}

/** The verdicts in our Authentication-Results field (RFC 8601), method -> result. */
function verdicts(text: string): Record<string, string> {
  const header = text.slice(0, text.indexOf("\r\n\r\n")).replace(/\r\n[ \t]+/g, " ");
  const ar = header.split("\r\n").filter((l) => /^Authentication-Results: mx\.example\.org;/i.test(l));
  assert.equal(ar.length, 1, `exactly one Authentication-Results from us in:\n${header}`);
  const out: Record<string, string> = {};
  for (const m of ar[0].matchAll(/;\s*(spf|dkim|dmarc|arc)=(\w+)/g)) out[m[1]] = m[2];
  return out;
}

async function rawSession(): Promise<RawSmtp> {
  const c = await RawSmtp.connect(mx.ipv4, 25);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.command("EHLO raw.test")).code, 250);
  return c;
}

before(async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  mx = await internet.addHost("mx");
  sender = await internet.addHost("sender");
  rogue = await internet.addHost("rogue");
  flood = await internet.addHost("flood");
  await startKnot(internet, dns, [
    {
      origin: "sender.test.",
      lines: [
        `sender.test. TXT "v=spf1 ip4:${sender.ipv4} ip6:${sender.ipv6} -all"`,
        `s1._domainkey.sender.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${spkiB64(dkimKey.publicKey)}`)}`,
        `_dmarc.sender.test. TXT "v=DMARC1; p=reject; adkim=s; aspf=s"`,
      ],
    },
    {
      origin: "lax.test.",
      lines: [
        `lax.test. TXT "v=spf1 ip4:${sender.ipv4} -all"`,
        `s1._domainkey.lax.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${spkiB64(dkimKey.publicKey)}`)}`,
        `_dmarc.lax.test. TXT "v=DMARC1; p=none"`,
      ],
    },
    {
      origin: "list.test.",
      lines: [
        `list.test. TXT "v=spf1 ip4:${rogue.ipv4} -all"`,
        `arc1._domainkey.list.test. TXT "v=DKIM1; k=ed25519; p=${spkiB64(arcKey.publicKey).slice(-44)}"`,
      ],
    },
  ]);
  await internet.setResolver(dns.ipv4);
  certDir = path.join(internet.workDir, "tls");
  const tlsFiles = await makeTestTls(certDir, ["mx.example.org"], "mx");
  dataDir = path.join(internet.workDir, "data");
  config = maildConfig(
    mx,
    { dataDir, tls: tlsFiles },
    {
      domains: [{ name: "example.org" }, { name: "example.net" }],
      users: [
        { address: "alice@example.org", passwordHash: HASH },
        { address: "bob@example.net", passwordHash: HASH },
      ],
      aliases: [
        { address: "postmaster@example.org", to: ["alice@example.org"] },
        { address: "@example.net", to: ["bob@example.net"] },
      ],
      listen: {
        smtp: [
          { host: mx.ipv4, port: 25 },
          { host: mx.ipv6, port: 25 },
        ],
        http: [{ host: mx.ipv4, port: 80 }],
        https: [{ host: mx.ipv4, port: 443 }],
      },
      dnsServers: [dns.ipv4],
      limits: { maxMessageBytes: 100_000, maxConnectionsPerIp: 5, maxMessagesPerIpPerMinute: 40 },
      shutdownTimeoutMs: 10_000,
    },
  );
  maild = await startMaild(internet, mx, config);
});

after(async () => {
  if (process.env.MAILD_TEST_KEEP_LOG) fs.copyFileSync(maild.logPath, process.env.MAILD_TEST_KEEP_LOG);
  await internet?.destroy();
});

describe("maild receives mail on port 25", () => {
  test("mail from an SPF-authorized host, DKIM-signed, aligned with a DMARC domain gets spf=pass dkim=pass dmarc=pass", async () => {
    const id = `pass-${randomBytes(6).toString("hex")}@sender.test`;
    const msg = await signed(message({ from: "ann@sender.test", to: "alice@example.org", subject: "pass", id }), "sender.test", dkimPem);
    const r = await swaks(sender, ["--from", "ann@sender.test", "--to", "alice@example.org", "--tls"], msg);
    assert.equal(r.code, 0, r.out);
    const copies = findDelivered(id);
    assert.equal(copies.length, 1);
    assert.deepEqual(verdicts(copies[0].text), { dkim: "pass", spf: "pass", dmarc: "pass" });
    assert.match(
      copies[0].text,
      /^Received: from mail\.sender\.test \(\[198\.51\.100\.\d+\]\)\r\n\tby mx\.example\.org \(maild\) with ESMTPS \(TLSv1\.3 /m,
    );
  });

  test("mail from an unauthorized host with a broken signature, From a p=none domain, is delivered with spf=fail dkim=fail dmarc=fail", async () => {
    const id = `fail-${randomBytes(6).toString("hex")}@lax.test`;
    const msg = await signed(message({ from: "ann@lax.test", to: "alice@example.org", subject: "fail", id }), "lax.test", wrongKey);
    const r = await swaks(rogue, ["--from", "ann@lax.test", "--to", "alice@example.org"], msg);
    assert.equal(r.code, 0, r.out);
    const copies = findDelivered(id);
    assert.equal(copies.length, 1);
    assert.deepEqual(verdicts(copies[0].text), { dkim: "fail", spf: "fail", dmarc: "fail" });
  });

  test("a spoofed From of a p=reject domain is refused with 550 5.7.1 at the end of DATA and not delivered", async () => {
    const id = `spoof-${randomBytes(6).toString("hex")}@sender.test`;
    const msg = message({ from: "ceo@sender.test", to: "alice@example.org", subject: "wire the money", id });
    const r = await swaks(rogue, ["--from", "ceo@sender.test", "--to", "alice@example.org"], msg);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /<\*\* +550 5\.7\.1 Message refused: DMARC policy of sender\.test is reject/);
    assert.equal(findDelivered(id).length, 0);
  });

  test("a message forwarded with a valid ARC seal is verified as arc=pass", async () => {
    const id = `arc-${randomBytes(6).toString("hex")}@lax.test`;
    const original = await signed(message({ from: "ann@lax.test", to: "list@list.test", subject: "arc", id }), "lax.test", dkimPem);
    const seal = await sealMessage(Buffer.from(original), {
      signingDomain: "list.test",
      selector: "arc1",
      privateKey: arcPem,
      cv: "none",
      authResults: "list.test; dkim=pass header.d=lax.test; spf=pass smtp.mailfrom=lax.test",
    } as never);
    const r = await swaks(rogue, ["--from", "list-bounces@list.test", "--to", "alice@example.org"], seal.toString() + original);
    assert.equal(r.code, 0, r.out);
    const copies = findDelivered(id);
    assert.equal(copies.length, 1);
    assert.equal(verdicts(copies[0].text).arc, "pass");
  });

  test("an Authentication-Results field forged with our authserv-id is removed; others are kept", async () => {
    const id = `forged-${randomBytes(6).toString("hex")}@lax.test`;
    const extra =
      "Authentication-Results: mx.example.org; dkim=pass header.d=bank.test; dmarc=pass\r\nAuthentication-Results: mx.elsewhere.test; spf=pass\r\n";
    const r = await swaks(
      rogue,
      ["--from", "x@lax.test", "--to", "alice@example.org"],
      message({ from: "x@lax.test", to: "alice@example.org", subject: "forged", id, extra }),
    );
    assert.equal(r.code, 0, r.out);
    const [copy] = findDelivered(id);
    assert.deepEqual(verdicts(copy.text), { dkim: "none", spf: "fail", dmarc: "fail" });
    assert.ok(!copy.text.includes("header.d=bank.test"), "the forged field is gone");
    assert.ok(copy.text.includes("Authentication-Results: mx.elsewhere.test; spf=pass\r\n"), "another host's field stays");
  });

  test("plus-addressing, aliases and the catch-all each deliver to the right mailbox", async () => {
    const cases: [string, string, string][] = [
      ["alice+news@example.org", "alice", "example.org"],
      ["postmaster@example.org", "alice", "example.org"],
      ["whoever@example.net", "bob", "example.net"],
    ];
    for (const [rcpt, local, domain] of cases) {
      const id = `route-${randomBytes(6).toString("hex")}@lax.test`;
      const r = await swaks(
        sender,
        ["--from", "ann@lax.test", "--to", rcpt],
        message({ from: "ann@lax.test", to: rcpt, subject: "route", id }),
      );
      assert.equal(r.code, 0, r.out);
      const copies = findDelivered(id);
      assert.deepEqual(
        copies.map((c) => path.dirname(c.file)),
        [mailbox(local, domain)],
        rcpt,
      );
    }
  });

  test("a message to an alias and its target user in one transaction is stored once", async () => {
    const id = `dedupe-${randomBytes(6).toString("hex")}@lax.test`;
    const r = await swaks(
      sender,
      ["--from", "ann@lax.test", "--to", "alice@example.org,postmaster@example.org,alice+x@example.org"],
      message({ from: "ann@lax.test", to: "alice@example.org", subject: "dedupe", id }),
    );
    assert.equal(r.code, 0, r.out);
    assert.equal(findDelivered(id).length, 1);
  });

  test("an unknown recipient in our domain is refused at RCPT with 550 5.1.1", async () => {
    const c = await rawSession();
    assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
    assert.deepEqual(await c.command("RCPT TO:<nobody@example.org>"), {
      code: 550,
      text: "5.1.1 Recipient address rejected: user unknown",
    });
    c.close();
  });

  test("relaying to another domain is refused at RCPT with 554 5.7.1, also with a local sender and over TLS", async () => {
    const c = await rawSession();
    await c.starttls("mx.example.org", "raw.test");
    assert.equal((await c.command("MAIL FROM:<alice@example.org>")).code, 250);
    assert.deepEqual(await c.command("RCPT TO:<victim@elsewhere.test>"), { code: 554, text: "5.7.1 Relay access denied" });
    // the percent hack (RFC 1123 5.2.16 forwarding) is relaying too
    assert.deepEqual(await c.command("RCPT TO:<alice%example.org@elsewhere.test>"), { code: 554, text: "5.7.1 Relay access denied" });
    c.close();
  });

  test("port 25 offers no AUTH", async () => {
    const c = await RawSmtp.connect(mx.ipv4, 25);
    await c.reply();
    const ehlo = await c.command("EHLO raw.test");
    assert.ok(!/^AUTH/m.test(ehlo.text), ehlo.text);
    await c.starttls("mx.example.org", "raw.test");
    assert.notEqual((await c.command("AUTH PLAIN AGFsaWNlAHNlY3JldA==")).code, 235);
    c.close();
  });

  test("STARTTLS presents the configured certificate", async () => {
    const c = await rawSession();
    const cert = await c.starttls("mx.example.org", "raw.test");
    const expected = new X509Certificate(fs.readFileSync(config.tls.certPath));
    assert.equal(cert.fingerprint256, expected.fingerprint256);
    c.close();
  });

  test("a message over the size limit is refused: SIZE= at MAIL with 552, and oversized DATA with 552 5.3.4", async () => {
    const c = await rawSession();
    assert.match((await c.command("EHLO raw.test")).text, /^SIZE 100000$/m);
    assert.equal((await c.command("MAIL FROM:<ann@lax.test> SIZE=200000")).code, 552);
    assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    const id = `big-${randomBytes(6).toString("hex")}@lax.test`;
    c.write(
      message({ from: "ann@lax.test", to: "alice@example.org", subject: "big", id }) + ("x".repeat(998) + "\r\n").repeat(150) + ".\r\n",
    );
    assert.deepEqual(await c.reply(), { code: 552, text: "5.3.4 Message exceeds the size limit of 100000 bytes" });
    assert.equal(findDelivered(id).length, 0);
    c.close();
  });
});

describe("maild refuses SMTP smuggling (bare CR/LF in DATA), like smtpd_forbid_bare_newline", () => {
  const payloads: [string, string][] = [
    ["<LF>.<LF>", "\n.\n"],
    ["<LF>.<CR><LF>", "\n.\r\n"],
    ["<CR>.<CR>", "\r.\r"],
    ["<CR><LF>.<LF>", "\r\n.\n"],
  ];
  for (const [name, terminator] of payloads) {
    test(`a smuggled second message after ${name} is neither accepted nor delivered, and the session stays usable`, async () => {
      const tag = randomBytes(6).toString("hex");
      const first = `smuggle-a-${tag}@lax.test`;
      const second = `smuggle-b-${tag}@lax.test`;
      const c = await rawSession();
      assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
      assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
      assert.equal((await c.command("DATA")).code, 354);
      c.write(
        message({ from: "ann@lax.test", to: "alice@example.org", subject: "first", id: first }) +
          "text" +
          terminator +
          "MAIL FROM:<ceo@sender.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n" +
          message({ from: "ceo@sender.test", to: "alice@example.org", subject: "smuggled", id: second }) +
          ".\r\n",
      );
      const reply = await c.reply();
      assert.equal(reply.code, 550);
      assert.match(reply.text, /^5\.5\.2 Message refused: bare <(LF|CR)> received/);
      // the session is in a clean state: a proper message goes through
      const ok = `smuggle-ok-${tag}@lax.test`;
      assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
      assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
      assert.equal((await c.command("DATA")).code, 354);
      c.write(message({ from: "ann@lax.test", to: "alice@example.org", subject: "ok", id: ok }) + ".\r\n");
      assert.equal((await c.reply()).code, 250);
      assert.equal((await c.command("QUIT")).code, 221);
      assert.equal(findDelivered(first).length, 0);
      assert.equal(findDelivered(second).length, 0);
      assert.equal(findDelivered(ok).length, 1);
    });
  }

  test("a bare CR inside a header is refused", async () => {
    const id = `barecr-${randomBytes(6).toString("hex")}@lax.test`;
    const c = await rawSession();
    await c.command("MAIL FROM:<ann@lax.test>");
    await c.command("RCPT TO:<alice@example.org>");
    assert.equal((await c.command("DATA")).code, 354);
    c.write(message({ from: "ann@lax.test", to: "alice@example.org", subject: "a\rBcc: x@y.test", id }) + ".\r\n");
    const reply = await c.reply();
    assert.equal(reply.code, 550);
    assert.match(reply.text, /bare <CR> received/);
    assert.equal(findDelivered(id).length, 0);
    c.close();
  });
});

describe("maild per-client limits", () => {
  test("a client address gets at most maxConnectionsPerIp concurrent connections (421 beyond)", async () => {
    const open: RawSmtp[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await RawSmtp.connect(mx.ipv4, 25);
      assert.equal((await c.reply()).code, 220);
      open.push(c);
    }
    const sixth = await RawSmtp.connect(mx.ipv4, 25);
    const r = await sixth.reply();
    assert.equal(r.code, 421);
    assert.match(r.text, /Too many connections/);
    for (const c of open) c.close();
    sixth.close();
  });

  test("a client that starts more than maxMessagesPerIpPerMinute transactions is deferred with 450 4.7.1; another client is not", async () => {
    const probe = path.join(internet.workDir, "flood.ts");
    // The flood runs from its own namespace so only its address is limited.
    fs.writeFileSync(
      probe,
      `
      const net = require("node:net");
      const s = net.connect(25, ${JSON.stringify(mx.ipv4)});
      let buf = "", replies = [];
      s.on("data", (d) => { buf += d; let m; while ((m = /^(\\d{3}) [^\\r\\n]*\\r\\n/m.exec(buf))) { replies.push(m[0].trim()); buf = buf.slice(m.index + m[0].length); } });
      const cmds = ["EHLO flood.test"]; for (let i = 0; i < 60; i++) cmds.push("MAIL FROM:<f@lax.test>", "RSET"); cmds.push("QUIT");
      const started = Date.now();
      let i = 0; const next = () => { if (i < cmds.length) s.write(cmds[i++] + "\\r\\n"); };
      let seen = 0; setInterval(() => { if (replies.length > seen) { seen = replies.length; next(); } }, 5);
      s.on("close", () => { console.log(JSON.stringify({ replies, elapsedMs: Date.now() - started })); process.exit(0); });
      s.once("data", () => next());
    `,
    );
    const node = path.resolve(__dirname, "../../node_modules/.bin/node");
    const r = await flood.run([node, probe], { timeoutMs: 30_000 });
    const { replies, elapsedMs } = JSON.parse(r.stdout) as { replies: string[]; elapsedMs: number };
    const mailReplies = replies.filter((_, i) => i >= 2 && i % 2 === 0).slice(0, 60);
    // A token bucket: 40 at once, then one more every 60/40 s; a slow machine earns those back.
    const refilled = Math.ceil((elapsedMs * 40) / 60_000);
    const accepted = mailReplies.findIndex((x) => !x.startsWith("250"));
    assert.ok(accepted >= 40 && accepted <= 40 + refilled, `${accepted} accepted in ${elapsedMs} ms: ${mailReplies.join(" | ")}`);
    assert.equal(mailReplies[accepted], "450 4.7.1 Too many messages from your address, try again later");
    const c = await rawSession();
    assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
    c.close();
  });
});

describe("maild reload and shutdown", () => {
  test("SIGHUP loads new users and a new certificate; an open session continues", async () => {
    const before = await rawSession();
    const tlsFiles = await makeTestTls(path.join(certDir, "next"), ["mx.example.org"], "mx2");
    const next = {
      ...config,
      users: [...config.users, { address: "carol@example.org", passwordHash: HASH }],
      tls: { certPath: tlsFiles.certPath, keyPath: tlsFiles.keyPath },
    };
    fs.writeFileSync(maild.configPath, JSON.stringify(next));
    maild.signal("SIGHUP");
    const deadline = Date.now() + 10_000;
    while (!maild.logs().some((l) => l.event === "config.reloaded")) {
      assert.ok(Date.now() < deadline, "no config.reloaded log line within 10 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    // the session opened before the reload still works, and already sees the new user
    assert.equal((await before.command("MAIL FROM:<ann@lax.test>")).code, 250);
    assert.equal((await before.command("RCPT TO:<carol@example.org>")).code, 250);
    before.close();
    const c = await rawSession();
    const cert = await c.starttls("mx.example.org", "raw.test");
    assert.equal(cert.fingerprint256, new X509Certificate(fs.readFileSync(tlsFiles.certPath)).fingerprint256);
    c.close();
  });

  test("a config with an error is refused on SIGHUP and the running config stays", async () => {
    const good = fs.readFileSync(maild.configPath, "utf8");
    fs.writeFileSync(maild.configPath, JSON.stringify({ ...JSON.parse(good), hostname: "not a hostname" }));
    maild.signal("SIGHUP");
    const deadline = Date.now() + 10_000;
    while (!maild.logs().some((l) => l.event === "config.reload_failed")) {
      assert.ok(Date.now() < deadline, "no config.reload_failed log line within 10 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const failed = maild.logs().find((l) => l.event === "config.reload_failed")!;
    assert.match(String(failed.error), /^hostname: "not a hostname" is not a lowercase domain name/);
    fs.writeFileSync(maild.configPath, good);
    const c = await rawSession();
    assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<carol@example.org>")).code, 250);
    c.close();
  });

  test("logs are one JSON object per line and never contain password hashes or message text", () => {
    const text = fs.readFileSync(maild.logPath, "utf8");
    for (const line of text.split("\n").filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.ok(!text.includes("argon2id"));
    assert.ok(!text.includes("Hello from"));
  });

  test("SIGTERM lets a message already in DATA finish with 250, refuses new connections, then exits 0", async () => {
    const c = await rawSession();
    assert.equal((await c.command("MAIL FROM:<ann@lax.test>")).code, 250);
    assert.equal((await c.command("RCPT TO:<alice@example.org>")).code, 250);
    assert.equal((await c.command("DATA")).code, 354);
    const id = `shutdown-${randomBytes(6).toString("hex")}@lax.test`;
    const msg = message({ from: "ann@lax.test", to: "alice@example.org", subject: "last", id });
    c.write(msg.slice(0, 40));
    const exited = maild.stop();
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(RawSmtp.connect(mx.ipv4, 25), /ECONNREFUSED/);
    c.write(msg.slice(40) + ".\r\n");
    assert.equal((await c.reply()).code, 250);
    assert.equal(await exited, 0);
    assert.equal(findDelivered(id).length, 1);
  });
});
