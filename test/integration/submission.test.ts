// Sending mail, end to end in the local internet: users submit to maild on 587 (STARTTLS) and 465
// (implicit TLS); maild signs with both DKIM keys, queues durably and delivers by MX to a Postfix
// peer whose milters (opendkim, opendmarc) judge the result; dkimpy's dkimverify checks both
// signatures again. Also: what submission must refuse, a peer that is down, a permanent failure
// that bounces back to the sender as a DSN, and an MTA-STS enforce domain without valid TLS.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as https from "node:https";
import * as net from "node:net";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { simpleParser } from "mailparser";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { startMaild, RawSmtp, type MaildProcess } from "../harness/maild";
import { argon2idHash } from "../../components/shared/argon2id";
import { txtContent } from "../../components/records/txt";
import { maildConfig } from "../fixtures/maild-config";

const MAIL_UID = 65534;
const ALICE_PASSWORD = "alice's long passphrase";
const BOB_PASSWORD = "bob's long passphrase";

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface SubmitOptions {
  port: 587 | 465;
  user?: string;
  password?: string;
  from: string;
  to: string[];
  message: string;
}

/** One SMTP submission with nodemailer's client; resolves with the server's last reply or rejects with it. */
async function submit(host: NetHost, ca: string, o: SubmitOptions): Promise<string> {
  const conn = new SMTPConnection({
    host: host.ipv4,
    port: o.port,
    secure: o.port === 465,
    requireTLS: o.port === 587,
    name: "client.example",
    servername: "mx.example.org",
    tls: { ca },
    connectionTimeout: 10_000,
    socketTimeout: 20_000,
  });
  await new Promise<void>((resolve, reject) => {
    conn.once("error", reject);
    conn.connect(() => resolve());
  });
  try {
    if (o.user) {
      await new Promise<void>((resolve, reject) =>
        conn.login({ user: o.user!, pass: o.password ?? "" }, (err) => (err ? reject(err) : resolve())),
      );
    }
    return await new Promise<string>((resolve, reject) =>
      conn.send({ from: o.from, to: o.to }, o.message, (err, info) => (err ? reject(err) : resolve(info.response))),
    );
  } finally {
    conn.quit();
  }
}

function message(from: string, to: string, subject: string, body = "Hello from maild.\r\n"): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;
}

/** Header fields of a stored message, unfolded, for pattern checks. */
function headerOf(text: string): string {
  const crlf = text.replace(/\r?\n/g, "\r\n");
  return crlf.slice(0, crlf.indexOf("\r\n\r\n")).replace(/\r\n[ \t]+/g, " ");
}

function maildirMessages(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ["new", "cur"]) {
    const d = path.join(dir, sub);
    if (fs.existsSync(d)) for (const f of fs.readdirSync(d).sort()) out.push(fs.readFileSync(path.join(d, f), "latin1"));
  }
  return out;
}

let internet: LocalInternet;
let dns: NetHost, mx: NetHost, peerHost: NetHost;
let tlsFiles: TestTls;
let peer: PostfixPeer;
let maild: MaildProcess;
let dataDir: string;
let stsServer: https.Server | undefined;

before(async () => {
  internet = await LocalInternet.create();
  dns = await internet.addHost("dns");
  mx = await internet.addHost("mx");
  peerHost = await internet.addHost("peer");
  tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org", "mail.peer.test", "mta-sts.strict.test"], "mx");
  fs.chownSync(tlsFiles.keyPath, MAIL_UID, MAIL_UID);

  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ed = generateKeyPairSync("ed25519");
  const peerDkim = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyDir = path.join(internet.workDir, "dkim");
  fs.mkdirSync(keyDir, { mode: 0o700 });
  const rsaPath = path.join(keyDir, "g1-rsa.pem");
  const edPath = path.join(keyDir, "g1-ed25519.pem");
  fs.writeFileSync(rsaPath, rsa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  fs.writeFileSync(edPath, ed.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  for (const p of [keyDir, rsaPath, edPath]) fs.chownSync(p, MAIL_UID, MAIL_UID);

  await startKnot(internet, dns, [
    {
      origin: "example.org.",
      lines: [
        `example.org. MX 10 mx.example.org.`,
        `mx.example.org. A ${mx.ipv4}`,
        `mx.example.org. AAAA ${mx.ipv6}`,
        `example.org. TXT "v=spf1 ip4:${mx.ipv4} ip6:${mx.ipv6} -all"`,
        `g1-rsa._domainkey.example.org. TXT ${txtContent(`v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: "spki", format: "der" }).toString("base64")}`)}`,
        `g1-ed25519._domainkey.example.org. TXT "v=DKIM1; k=ed25519; p=${ed.publicKey.export({ type: "spki", format: "der" }).subarray(-32).toString("base64")}"`,
        `_dmarc.example.org. TXT "v=DMARC1; p=reject"`,
      ],
    },
    {
      origin: "peer.test.",
      lines: [
        `peer.test. MX 10 mail.peer.test.`,
        `mail.peer.test. A ${peerHost.ipv4}`,
        `mail.peer.test. AAAA ${peerHost.ipv6}`,
        `peer.test. TXT "v=spf1 ip4:${peerHost.ipv4} ip6:${peerHost.ipv6} -all"`,
        `s1._domainkey.peer.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${peerDkim.publicKey.export({ type: "spki", format: "der" }).toString("base64")}`)}`,
      ],
    },
    // RFC 7505 null MX: this domain accepts no mail
    { origin: "nullmx.test.", lines: [`nullmx.test. MX 0 .`] },
    // MTA-STS enforce, but its MX name is not on the peer's certificate
    {
      origin: "strict.test.",
      lines: [
        `strict.test. MX 10 mx.strict.test.`,
        `mx.strict.test. A ${peerHost.ipv4}`,
        `_mta-sts.strict.test. TXT "v=STSv1; id=20261121"`,
        `mta-sts.strict.test. A ${internet.localIpv4}`,
      ],
    },
  ]);
  await internet.setResolver(dns.ipv4);

  // The MTA-STS policy host for strict.test, served by the test process (root side of the net).
  stsServer = https.createServer({ cert: fs.readFileSync(tlsFiles.certPath), key: fs.readFileSync(tlsFiles.keyPath) }, (req, res) => {
    if (req.url !== "/.well-known/mta-sts.txt") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain" }).end("version: STSv1\r\nmode: enforce\r\nmx: mx.strict.test\r\nmax_age: 86400\r\n");
  });
  await new Promise<void>((r) => stsServer!.listen(443, internet.localIpv4, r));

  peer = await startPostfix(internet, peerHost, {
    myhostname: "mail.peer.test",
    mydomain: "peer.test",
    receive: { domains: ["peer.test", "strict.test"] },
    smtpdTls: { certPem: fs.readFileSync(tlsFiles.certPath, "utf8"), keyPem: fs.readFileSync(tlsFiles.keyPath, "utf8") },
    dkim: { domain: "peer.test", selector: "s1", privateKeyPem: peerDkim.privateKey.export({ type: "pkcs8", format: "pem" }).toString() },
    dmarc: true,
    // a mailbox that does not exist there: a permanent 550 for maild to bounce
    extraMain: {
      smtpd_recipient_restrictions: "check_recipient_access inline:{ { nobody@peer.test = REJECT 5.1.1 no such user here } }, permit",
    },
  });

  dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.chownSync(dataDir, MAIL_UID, MAIL_UID);
  const caPath = path.join(internet.workDir, "ca.pem");
  fs.writeFileSync(caPath, tlsFiles.caPem);
  maild = await startMaild(
    internet,
    mx,
    maildConfig(
      mx,
      { dataDir, tls: tlsFiles },
      {
        domains: [
          {
            name: "example.org",
            dkim: [
              { selector: "g1-rsa", algorithm: "rsa", keyPath: rsaPath },
              { selector: "g1-ed25519", algorithm: "ed25519", keyPath: edPath },
            ],
          },
        ],
        users: [
          { address: "alice@example.org", passwordHash: argon2idHash(ALICE_PASSWORD) },
          { address: "bob@example.org", passwordHash: argon2idHash(BOB_PASSWORD) },
        ],
        aliases: [{ address: "postmaster@example.org", to: ["alice@example.org"] }],
        dnsServers: [dns.ipv4],
        listen: {
          smtp: [
            { host: mx.ipv4, port: 25 },
            { host: mx.ipv6, port: 25 },
          ],
          submission: [{ host: mx.ipv4, port: 587 }],
          submissions: [{ host: mx.ipv4, port: 465 }],
          http: [],
          https: [],
        },
        outbound: { extraCaPath: caPath, retryBaseSeconds: 1, retryMaxSeconds: 2, timeoutMs: 10_000 },
        submission: { maxFailuresPerIp: 4, lockoutSeconds: 1, lockoutMaxSeconds: 2 },
      },
    ),
    { user: { uid: MAIL_UID, gid: MAIL_UID } },
  );
});

after(async () => {
  await maild?.stop();
  await peer?.stop();
  await new Promise<void>((r) => (stsServer ? stsServer.close(() => r()) : r()));
  await internet?.destroy();
});

/** The one message at the peer whose Subject is `subject`. */
function atPeer(subject: string): string | undefined {
  return peer.received().find((m) => headerOf(m).includes(`Subject: ${subject}`));
}

describe("submission and outbound delivery", () => {
  test("587: a message is signed with both keys, delivered over TLS, and the peer's milters and dkimverify say pass", async () => {
    const subject = `via 587 ${randomBytes(4).toString("hex")}`;
    const reply = await submit(mx, tlsFiles.caPem, {
      port: 587,
      user: "alice@example.org",
      password: ALICE_PASSWORD,
      from: "alice@example.org",
      to: ["carl@peer.test"],
      message: message("Alice <alice@example.org>", "carl@peer.test", subject),
    });
    assert.match(reply, /^250 /);
    const received = await until("the message at the peer", 30_000, () => atPeer(subject));
    const header = headerOf(received);
    // opendkim: one result per signature; opendmarc: SPF (self-validated) and DMARC
    // (a comment such as "(2048-bit key; unprotected)" may hold a semicolon)
    const dkim = [...header.matchAll(/dkim=(\w+)(?: \([^)]*\))? header\.d=example\.org [^;]*?header\.s=([\w-]+)/g)]
      .map((m) => `${m[2]}:${m[1]}`)
      .sort();
    assert.deepEqual(
      dkim,
      ["g1-ed25519:pass", "g1-rsa:pass"],
      header
        .split("\r\n")
        .filter((l) => l.startsWith("Authentication-Results"))
        .join("\n"),
    );
    assert.match(header, /spf=pass smtp\.mailfrom=example\.org/, header);
    assert.match(header, /dmarc=pass \(p=reject dis=none\) header\.from=example\.org/, header);
    // Postfix logged a TLS connection from maild
    assert.match(peer.log(), /Trusted TLS connection established from|TLS connection established from/);
    for (const index of [0, 1]) {
      // the message as the peer stored it, minus the peer's own trace fields above our signatures
      const ours = received.slice(received.indexOf("DKIM-Signature:"));
      const r = await peerHost.run(["/usr/bin/dkimverify", "--index", String(index)], { input: ours });
      assert.equal(r.stdout.trim(), "signature ok", `dkimverify --index ${index}: ${r.stdout}${r.stderr}`);
    }
  });

  test("465: one message to a local user and a remote one; both copies signed", async () => {
    const subject = `via 465 ${randomBytes(4).toString("hex")}`;
    await submit(mx, tlsFiles.caPem, {
      port: 465,
      user: "bob@example.org",
      password: BOB_PASSWORD,
      from: "bob@example.org",
      to: ["alice@example.org", "dora@peer.test"],
      message: message("bob@example.org", "alice@example.org, dora@peer.test", subject),
    });
    const remote = await until("the message at the peer", 30_000, () => atPeer(subject));
    assert.match(headerOf(remote), /dkim=pass [^;]*header\.s=g1-ed25519/);
    const local = maildirMessages(path.join(dataDir, "mail", "example.org", "alice", "Maildir")).find((m) =>
      headerOf(m).includes(`Subject: ${subject}`),
    );
    assert.ok(local, "alice has her copy");
    assert.equal([...headerOf(local).matchAll(/^DKIM-Signature:/gm)].length, 2);
    assert.match(headerOf(local), /^Received: from client\.example .* with ESMTPSA/m);
  });

  test("refused: AUTH before TLS, MAIL without AUTH, a wrong password, a foreign envelope sender or From:, the null sender", async () => {
    const base = { from: "alice@example.org", to: ["carl@peer.test"], message: message("alice@example.org", "carl@peer.test", "refused") };
    // 587 without STARTTLS: nodemailer would upgrade on its own, so speak raw SMTP
    const raw = await RawSmtp.connect(mx.ipv4, 587);
    try {
      assert.equal((await raw.reply()).code, 220);
      const plainEhlo = await raw.command("EHLO client.example");
      assert.equal(plainEhlo.code, 250);
      assert.match(plainEhlo.text, /^STARTTLS$/m);
      assert.doesNotMatch(plainEhlo.text, /^AUTH/m, "AUTH is not advertised before STARTTLS (Postfix smtpd_tls_auth_only)");
      const auth = await raw.command(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0${ALICE_PASSWORD}`).toString("base64")}`);
      assert.equal(auth.code, 500, "AUTH before STARTTLS is not accepted");
      assert.deepEqual(await raw.command("MAIL FROM:<alice@example.org>"), {
        code: 530,
        text: "5.7.0 Must issue a STARTTLS command first",
      });
      await raw.starttls("mx.example.org", "client.example");
      assert.match((await raw.command("EHLO client.example")).text, /^AUTH PLAIN LOGIN$/m, "AUTH is advertised inside TLS");
      assert.deepEqual(await raw.command("MAIL FROM:<alice@example.org>"), { code: 530, text: "5.7.0 Authentication required" });
    } finally {
      raw.close();
    }

    await assert.rejects(submit(mx, tlsFiles.caPem, { port: 587, ...base }), (e: { responseCode?: number }) => e.responseCode === 530);
    await assert.rejects(
      submit(mx, tlsFiles.caPem, { port: 465, ...base, user: "alice@example.org", password: "wrong" }),
      (e: { responseCode?: number }) => e.responseCode === 535,
    );
    const login = { user: "alice@example.org", password: ALICE_PASSWORD };
    await assert.rejects(
      submit(mx, tlsFiles.caPem, { port: 587, ...base, ...login, from: "bob@example.org" }),
      (e: { responseCode?: number; response?: string }) => e.responseCode === 553 && /not owned/.test(e.response ?? ""),
    );
    await assert.rejects(
      submit(mx, tlsFiles.caPem, { port: 587, ...base, ...login, message: message("Bob <bob@example.org>", "carl@peer.test", "spoof") }),
      (e: { responseCode?: number; response?: string }) =>
        e.responseCode === 550 && /From: address bob@example\.org is not owned/.test(e.response ?? ""),
    );
    await assert.rejects(
      submit(mx, tlsFiles.caPem, { port: 587, ...base, ...login, from: "" }),
      (e: { responseCode?: number }) => e.responseCode === 550,
    );
    // a From: that a lenient parser reads as alice, with a second address for the reader's screen
    for (const from of [
      "<alice@example.org> <ceo@bank.example>",
      "alice@example.org <ceo@bank.example>",
      "Alice <alice@example.org>, ceo@bank.example",
    ]) {
      await assert.rejects(
        submit(mx, tlsFiles.caPem, { port: 465, ...base, ...login, message: message(from, "carl@peer.test", "two authors") }),
        (e: { responseCode?: number; response?: string }) =>
          e.responseCode === 550 && /^550 5\.6\.0 From: header field must hold exactly one address: unexpected /.test(e.response ?? ""),
        from,
      );
    }
    // an alias that reaches alice is hers to send as
    assert.match(
      await submit(mx, tlsFiles.caPem, {
        port: 587,
        ...base,
        ...login,
        from: "postmaster@example.org",
        message: message("postmaster@example.org", "carl@peer.test", "as alias"),
      }),
      /^250 /,
    );
  });

  test("clients that leave in the middle of the TLS handshake on 465 do not take maild down", async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: mx.ipv4, port: 465 }, () => s.destroy());
        s.on("close", () => resolve());
        s.on("error", () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(maild.child.exitCode, null, "maild still runs");
    assert.match(
      await submit(mx, tlsFiles.caPem, {
        port: 465,
        user: "alice@example.org",
        password: ALICE_PASSWORD,
        from: "alice@example.org",
        to: ["alice@example.org"],
        message: message("alice@example.org", "alice@example.org", "still here"),
      }),
      /^250 /,
    );
  });

  test("repeated wrong passwords block the address for accounts it never logged in to, for a while; the owner's known address is never refused", async () => {
    const base = { from: "bob@example.org", to: ["carl@peer.test"], message: message("bob@example.org", "carl@peer.test", "throttle") };
    const guess = (password: string) => submit(mx, tlsFiles.caPem, { port: 465, ...base, user: "mallory@example.org", password });
    const code = (e: { responseCode?: number }) => e.responseCode;
    // maxFailuresPerIp is 4 in this config; the earlier test spent one (from this same address)
    const codes: (number | undefined)[] = [];
    for (let i = 0; i < 4; i++) codes.push(await guess(`guess ${i}`).then(() => 250, code));
    assert.deepEqual(codes, [535, 535, 535, 454], "the fourth failure from this address blocks it");
    // bob logged in from this address in an earlier test: his account is not locked out by it
    assert.match(await submit(mx, tlsFiles.caPem, { port: 465, ...base, user: "bob@example.org", password: BOB_PASSWORD }), /^250 /);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(await guess("after the block").then(() => 250, code), 535, "the block ended");
  });

  test("a peer that is down gets retries, and the message arrives once it is back", async () => {
    await peer.stop();
    const subject = `while down ${randomBytes(4).toString("hex")}`;
    await submit(mx, tlsFiles.caPem, {
      port: 587,
      user: "alice@example.org",
      password: ALICE_PASSWORD,
      from: "alice@example.org",
      to: ["erin@peer.test"],
      message: message("alice@example.org", "erin@peer.test", subject),
    });
    await until(
      "two deferred attempts",
      20_000,
      () =>
        maild.logs().filter((l) => l.event === "queue.result" && l.recipient === "erin@peer.test" && l.status === "deferred").length >= 2 ||
        undefined,
    );
    await peer.start();
    const got = await until("the message after the peer came back", 30_000, () => atPeer(subject));
    assert.equal(peer.received().filter((m) => headerOf(m).includes(`Subject: ${subject}`)).length, 1, "exactly once");
    assert.ok(got);
  });

  test("a permanent failure and a null MX each come back to the sender as an RFC 3464 DSN", async () => {
    const subject = `to bounce ${randomBytes(4).toString("hex")}`;
    await submit(mx, tlsFiles.caPem, {
      port: 587,
      user: "alice@example.org",
      password: ALICE_PASSWORD,
      from: "alice@example.org",
      to: ["nobody@peer.test", "someone@nullmx.test"],
      message: message("alice@example.org", "nobody@peer.test", subject),
    });
    const inbox = path.join(dataDir, "mail", "example.org", "alice", "Maildir");
    const dsnText = await until("the DSN in alice's mailbox", 30_000, () => {
      const found = maildirMessages(inbox).filter((m) => /multipart\/report/i.test(headerOf(m)) && m.includes(subject));
      // one DSN may list both recipients, or there may be one per recipient
      const all = found.join("\n");
      return all.includes("nobody@peer.test") && all.includes("someone@nullmx.test") ? found : undefined;
    });
    const parsed = await Promise.all(dsnText.map((t) => simpleParser(t)));
    for (const p of parsed)
      assert.match(
        p.headers.get("content-type")
          ? String((p.headers.get("content-type") as { params?: Record<string, string> }).params?.["report-type"])
          : "",
        /delivery-status/,
      );
    const statusText = dsnText.join("\n").replace(/\r\n[ \t]+/g, " ");
    assert.match(statusText, /Final-Recipient: rfc822; ?nobody@peer\.test/i);
    assert.match(statusText, /Action: failed/i);
    assert.match(statusText, /Status: 5\.1\.1/);
    assert.match(statusText, /Diagnostic-Code: smtp; ?5\d\d .*no such user here/i);
    assert.match(statusText, /Remote-MTA: dns; ?mail\.peer\.test/i);
    assert.match(statusText, /Final-Recipient: rfc822; ?someone@nullmx\.test/i);
    assert.match(statusText, /Status: 5\.1\.10/);
    for (const t of dsnText) assert.match(headerOf(t), /^From: .*MAILER-DAEMON@mx\.example\.org/im);
  });

  test("MTA-STS enforce without a valid certificate for the MX: not delivered, deferred and recorded for TLSRPT", async () => {
    const subject = `to strict ${randomBytes(4).toString("hex")}`;
    // one message to the strict domain, one to peer.test for a successful session to count
    await submit(mx, tlsFiles.caPem, {
      port: 587,
      user: "alice@example.org",
      password: ALICE_PASSWORD,
      from: "alice@example.org",
      to: ["fred@strict.test", "gil@peer.test"],
      message: message("alice@example.org", "fred@strict.test, gil@peer.test", subject),
    });
    const tlsrptDir = path.join(dataDir, "reports", "tlsrpt");
    type Policy = { policy: { "policy-domain": string }; summary: Record<string, number>; "failure-details"?: { "result-type": string }[] };
    const policies = await until("a TLS failure for strict.test and a success for peer.test", 30_000, () => {
      if (!fs.existsSync(tlsrptDir)) return undefined;
      const all = fs
        .readdirSync(tlsrptDir)
        .flatMap((f) => (JSON.parse(fs.readFileSync(path.join(tlsrptDir, f), "utf8")) as { policies: Policy[] }).policies);
      const strict = all.find((p) => p.policy["policy-domain"] === "strict.test");
      const ok = all.find((p) => p.policy["policy-domain"] === "peer.test");
      return strict && ok && strict.summary["total-failure-session-count"] >= 1 && ok.summary["total-successful-session-count"] >= 1
        ? { strict, ok }
        : undefined;
    });
    assert.equal(policies.strict.summary["total-successful-session-count"], 0);
    assert.match(policies.strict["failure-details"]!.map((f) => f["result-type"]).join(","), /certificate-host-mismatch/);
    const results = await until("the queue's result for fred@strict.test", 10_000, () => {
      const r = maild.logs().filter((l) => l.event === "queue.result" && l.recipient === "fred@strict.test");
      return r.length > 0 ? r : undefined;
    });
    assert.ok(
      results.every((l) => l.status === "deferred"),
      `deferred, never delivered or failed: ${JSON.stringify(results)}`,
    );
    // gil@peer.test got it; the peer's copy must not have gone to fred@strict.test as well
    const copy = await until("gil's copy at the peer", 30_000, () => atPeer(subject));
    assert.doesNotMatch(peer.log(), /to=<fred@strict\.test>/, "never delivered to the unverified MX");
    assert.ok(copy);
  });
});
