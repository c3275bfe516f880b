// The spam filter in the local internet, with Debian's rspamd, Redis and unbound on the box
// (infra/local-internet/spam-filter.ts, on the files a deployment writes): GTUBE, a DNSBL zone
// served by knot, a suspicious message filed into Junk and read over IMAP, greylisting of a real
// Postfix peer, learning from moves into and out of Junk through Dovecot's IMAPSieve, the per-user
// rate limit of submissions, and what happens while rspamd is down.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { dkimSign } from "mailauth";
import { ImapFlow } from "imapflow";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { DEFAULT_SPAM_SETTINGS, type SpamSettings } from "../../components/shared/spam-settings";
import { blocklistSymbol } from "../../server-bootstrap/spam/rspamd-conf";
import { startMaild, RawSmtp, type MaildProcess } from "../harness/maild";
import { argon2idHash } from "../../components/shared/argon2id";
import { txtContent } from "../../components/records/txt";
import { maildConfig } from "../fixtures/maild-config";

const MAIL_UID = 65534;
const PASSWORD = "alice's long passphrase";
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/** The product's thresholds; a short greylisting delay, a blocklist zone of the local internet, a small outbound limit. */
const SETTINGS: SpamSettings = {
  ...DEFAULT_SPAM_SETTINGS,
  greylist: { enabled: true, minScore: DEFAULT_SPAM_SETTINGS.greylist.minScore, delaySeconds: 2 },
  blocklists: [{ zone: "bl.test", checks: "ip", score: 20 }],
  outbound: { burst: 2, perHour: 1 },
};

let internet: LocalInternet;
let mx: NetHost, sender: NetHost, listed: NetHost, shady: NetHost, peer: NetHost;
let maild: MaildProcess;
let tlsFiles: TestTls;
let dataDir: string;
let postfix: PostfixPeer;
let dovecot: DovecotServer;
const dkimKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
const dkimPem = dkimKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const wrongPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const spki = dkimKey.publicKey.export({ type: "spki", format: "der" }).toString("base64");

function message(o: { from: string; subject: string; id: string; body?: string }): string {
  return (
    `From: ${o.from}\r\nTo: alice@example.org\r\nSubject: ${o.subject}\r\nDate: ${new Date().toUTCString().replace("GMT", "+0000")}\r\n` +
    `Message-ID: <${o.id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${o.body ?? `Hello from ${o.from}.`}\r\n`
  );
}

async function signed(msg: string, domain: string, pem: string): Promise<string> {
  const res = await dkimSign(msg, { signatureData: [{ signingDomain: domain, selector: "s1", privateKey: pem }] } as never);
  return res.signatures + msg;
}

async function swaks(from: NetHost, envelopeFrom: string, data: string): Promise<{ code: number; out: string }> {
  const file = path.join(internet.workDir, `msg-${randomBytes(4).toString("hex")}.eml`);
  fs.writeFileSync(file, data);
  const r = await from.run(
    [
      "swaks",
      "--server",
      mx.ipv4,
      "--port",
      "25",
      "--helo",
      `mail.${from.name}.test`,
      "--from",
      envelopeFrom,
      "--to",
      "alice@example.org",
      "--data",
      `@${file}`,
    ],
    { timeoutMs: 30_000 },
  );
  return { code: r.code, out: r.stdout + r.stderr };
}

/** The reply swaks got to the end of DATA (the line after ` -> .`, `<-` or `<**` when refused; `~` inside TLS). */
function dataReply(out: string): string {
  const lines = out.split("\n");
  const dot = lines.findLastIndex((l) => /^ *[-~]> \.$/.test(l));
  const reply = lines.slice(dot + 1).find((l) => /^<[-~*]* +\d{3} /.test(l));
  return reply ? reply.replace(/^<[-~*]* +/, "").trim() : `(no reply after DATA in ${out})`;
}

/** Stored copies with this Message-ID, by folder ("INBOX" or "Junk"). */
function stored(id: string): { folder: string; text: string }[] {
  const maildir = path.join(dataDir, "mail", "example.org", "alice", "Maildir");
  const out: { folder: string; text: string }[] = [];
  for (const [folder, dir] of [
    ["INBOX", maildir],
    ["Junk", path.join(maildir, ".Junk")],
  ]) {
    for (const sub of ["new", "cur"]) {
      const d = path.join(dir, sub);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) {
        const text = fs.readFileSync(path.join(d, f), "latin1");
        if (text.includes(`Message-ID: <${id}>`)) out.push({ folder, text });
      }
    }
  }
  return out;
}

function lastVerdict(from: string): Record<string, unknown> {
  const v = maild
    .logs()
    .filter((l) => l.event === "smtp.spam_verdict" && l.from === from)
    .pop();
  assert.ok(v, `a spam_verdict log line for ${from}`);
  return v;
}

async function imap(): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: mx.ipv4,
    port: 993,
    secure: true,
    servername: "mx.example.org",
    tls: { ca: tlsFiles.caPem } as never,
    auth: { user: "alice@example.org", pass: PASSWORD },
    logger: false,
  });
  await c.connect();
  return c;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  mx = await internet.addHost("mx");
  sender = await internet.addHost("sender");
  listed = await internet.addHost("listed");
  shady = await internet.addHost("shady");
  peer = await internet.addHost("peer");
  const reversed = (ip: string) => ip.split(".").reverse().join(".");
  await startKnot(internet, dns, [
    {
      origin: "example.org.",
      lines: [`example.org. MX 10 mx.example.org.`, `mx.example.org. A ${mx.ipv4}`, `mx.example.org. AAAA ${mx.ipv6}`],
    },
    {
      origin: "sender.test.",
      lines: [
        `sender.test. TXT "v=spf1 ip4:${sender.ipv4} ip6:${sender.ipv6} -all"`,
        `s1._domainkey.sender.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${spki}`)}`,
        `_dmarc.sender.test. TXT "v=DMARC1; p=reject"`,
      ],
    },
    {
      origin: "lax.test.",
      lines: [
        `lax.test. TXT "v=spf1 ip4:${sender.ipv4} -all"`,
        `s1._domainkey.lax.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${spki}`)}`,
        `_dmarc.lax.test. TXT "v=DMARC1; p=none"`,
      ],
    },
    {
      origin: "peer.test.",
      lines: [
        `peer.test. TXT "v=spf1 ip4:${peer.ipv4} ip6:${peer.ipv6} -all"`,
        `mail.peer.test. A ${peer.ipv4}`,
        `_dmarc.peer.test. TXT "v=DMARC1; p=none"`,
      ],
    },
    {
      // RFC 5782 2.1: the listed address's octets reversed under the zone, 127.0.0.2 and a reason
      origin: "bl.test.",
      lines: [`${reversed(listed.ipv4)}.bl.test. A 127.0.0.2`, `${reversed(listed.ipv4)}.bl.test. TXT "listed for the test"`],
    },
  ]);
  await internet.setResolver(dns.ipv4);

  tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org"], "mx");
  fs.chownSync(tlsFiles.keyPath, MAIL_UID, MAIL_UID);
  dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.chownSync(dataDir, MAIL_UID, MAIL_UID);
  const users = [{ address: "alice@example.org", passwordHash: argon2idHash(PASSWORD) }];
  maild = await startMaild(
    internet,
    mx,
    maildConfig(
      mx,
      { dataDir, tls: tlsFiles },
      {
        users,
        listen: {
          smtp: [
            { host: mx.ipv4, port: 25 },
            { host: mx.ipv6, port: 25 },
          ],
          submission: [{ host: mx.ipv4, port: 587 }],
          submissions: [],
          http: [],
          https: [{ host: "127.0.0.1", port: 8443 }],
        },
        dnsServers: [dns.ipv4],
      },
    ),
    { user: { uid: MAIL_UID, gid: MAIL_UID }, spamOptions: { settings: SETTINGS } },
  );
  dovecot = await startDovecot(internet, mx, {
    dataDir,
    users,
    tls: tlsFiles,
    uid: MAIL_UID,
    gid: MAIL_UID,
    learning: { learnSocket: maild.spam.learnSocket, rspamdUser: maild.spam.rspamdUser, mailUser: "nobody" },
  });
  postfix = await startPostfix(internet, peer, { myhostname: "mail.peer.test", mydomain: "peer.test", trustCaPem: tlsFiles.caPem });
});

after(async () => {
  await postfix?.stop().catch(() => undefined);
  await internet?.destroy();
});

describe("rspamd decides at the end of DATA", () => {
  test("GTUBE is refused with 550 5.7.1 at the end of DATA and not stored", async () => {
    const id = `gtube-${randomBytes(6).toString("hex")}@sender.test`;
    const r = await swaks(
      sender,
      "ann@sender.test",
      await signed(message({ from: "ann@sender.test", subject: "gtube", id, body: GTUBE }), "sender.test", dkimPem),
    );
    assert.notEqual(r.code, 0);
    assert.equal(dataReply(r.out), "550 5.7.1 Message refused as spam: Gtube pattern");
    assert.deepEqual(stored(id), []);
    const v = lastVerdict("ann@sender.test");
    assert.deepEqual([v.action, v.outcome, v.reason], ["reject", "reject", "spam"]);
  });

  test("a client whose address is listed in a DNSBL zone (served by knot, asked through the box's unbound) is refused with 550", async () => {
    const id = `listed-${randomBytes(6).toString("hex")}@lax.test`;
    const r = await swaks(listed, "bo@lax.test", message({ from: "bo@lax.test", subject: "hello", id }));
    assert.notEqual(r.code, 0);
    assert.match(dataReply(r.out), /^550 5\.7\.1 Message refused as spam: /);
    assert.deepEqual(stored(id), []);
    const v = lastVerdict("bo@lax.test");
    assert.equal(v.action, "reject");
    assert.ok((v.symbols as string[]).includes(blocklistSymbol("bl.test")), JSON.stringify(v.symbols));
  });

  test("a mildly suspicious message (SPF and DKIM fail, DMARC p=none) is greylisted, then filed into Junk and readable there over IMAP", async () => {
    const id = `junk-${randomBytes(6).toString("hex")}@lax.test`;
    const msg = await signed(message({ from: "cy@lax.test", subject: "an offer", id }), "lax.test", wrongPem);
    const first = await swaks(shady, "cy@lax.test", msg);
    assert.match(dataReply(first.out), /^451 4\.7\.1 Greylisted: /);
    assert.deepEqual(stored(id), []);
    await new Promise((r) => setTimeout(r, (SETTINGS.greylist.delaySeconds + 1) * 1000));
    const retry = await swaks(shady, "cy@lax.test", msg);
    assert.equal(retry.code, 0, retry.out);
    const v = lastVerdict("cy@lax.test");
    assert.deepEqual([v.action, v.outcome, v.spf, v.dkim, v.dmarc], ["add header", "junk", "fail", "fail", "fail"]);
    assert.ok((v.score as number) >= SETTINGS.junkScore && (v.score as number) < SETTINGS.rejectScore, String(v.score));
    assert.deepEqual(
      stored(id).map((c) => c.folder),
      ["Junk"],
    );

    const c = await imap();
    try {
      const found: string[] = [];
      const lock = await c.getMailboxLock("Junk");
      try {
        for await (const m of c.fetch("1:*", { source: true, envelope: true }))
          if (m.envelope?.messageId === `<${id}>`) found.push(m.source!.toString("latin1"));
      } finally {
        lock.release();
      }
      assert.equal(found.length, 1);
      assert.match(found[0], /^X-Spam-Status: Yes, score=\d+\.\d+$/m);
      assert.match(found[0], /^Authentication-Results: mx\.example\.org;/m);
      const junk = await c.status("Junk", { messages: true });
      assert.equal(junk && junk.messages, 1);
    } finally {
      await c.logout().catch(() => undefined);
    }
  });

  test("a first-time sender is greylisted with 451 4.7.1 and a real Postfix peer's retry is accepted", async () => {
    const id = `grey-${randomBytes(6).toString("hex")}@peer.test`;
    await postfix.sendmail(
      "dee@peer.test",
      ["alice@example.org"],
      `From: Dee <dee@peer.test>\nTo: alice@example.org\nSubject: first contact\nMessage-ID: <${id}>\n\nHello Alice, we have not met.\n`,
    );
    await postfix.waitForEmptyQueue(60_000);
    const log = postfix.log();
    assert.match(
      log,
      /to=<alice@example\.org>, relay=mx\.example\.org\[[^\]]+\]:25, .*status=deferred \(host mx\.example\.org\[[^\]]+\] said: 451 4\.7\.1 Greylisted: Try again later/,
    );
    assert.match(log, /to=<alice@example\.org>, relay=mx\.example\.org\[[^\]]+\]:25, .*status=sent \(250 /);
    assert.equal(stored(id).length, 1);
  });
});

describe("learning from the user", () => {
  test("moving a message into Junk over IMAP teaches rspamd spam; moving it back to INBOX teaches ham instead", async () => {
    const learnedBefore = (await maild.spam.stat()).learned;
    const before = await maild.spam.bayesLearns();
    const id = `learn-${randomBytes(6).toString("hex")}@elsewhere.test`;
    const words = "Cheap replica watches with free shipping, limited offer, order today and save on luxury brands for every occasion.";
    const c = await imap();
    const moveById = async (from: string, to: string) => {
      const lock = await c.getMailboxLock(from);
      try {
        const uids = (await c.search({ header: { "message-id": id } }, { uid: true })) as number[];
        assert.equal(uids.length, 1, `the message is in ${from}`);
        await c.messageMove(uids, to, { uid: true });
      } finally {
        lock.release();
      }
    };
    const learnedAs = (what: string, expected: { spam: number; ham: number }) =>
      until(`rspamd to learn the message as ${what}`, 20_000, async () => {
        const now = await maild.spam.bayesLearns();
        return now.spam === expected.spam && now.ham === expected.ham ? now : undefined;
      }).catch((e: Error) => {
        throw new Error(`${e.message}\nDovecot's log:\n${dovecot.log().slice(-3000)}\nrspamd's log:\n${maild.spam.log().slice(-2000)}`);
      });
    try {
      await c.append("INBOX", message({ from: "promo@elsewhere.test", subject: "watches", id, body: words }));
      await moveById("INBOX", "Junk");
      await learnedAs("spam", { spam: before.spam + 1, ham: before.ham });
      assert.equal((await maild.spam.stat()).learned, learnedBefore + 1);
      // rspamd remembers what it learned (learned_ids): the ham lesson replaces the spam one
      await moveById("Junk", "INBOX");
      await learnedAs("ham", { spam: before.spam, ham: before.ham + 1 });
      assert.equal((await maild.spam.stat()).learned, learnedBefore + 2);
    } finally {
      await c.logout().catch(() => undefined);
    }
  });

  test("moving a message from Junk to the Trash teaches nothing", async () => {
    const before = await maild.spam.bayesLearns();
    const learnedBefore = (await maild.spam.stat()).learned;
    const id = `trash-${randomBytes(6).toString("hex")}@elsewhere.test`;
    const c = await imap();
    try {
      await c.append(
        "Junk",
        message({ from: "promo@elsewhere.test", subject: "delete me", id, body: "Nothing to see here, just another offer for you." }),
      );
      const lock = await c.getMailboxLock("Junk");
      try {
        const uids = (await c.search({ header: { "message-id": id } }, { uid: true })) as number[];
        await c.messageMove(uids, "Trash", { uid: true });
      } finally {
        lock.release();
      }
      // a learn would show within a second (the moves above took less); wait three
      await new Promise((r) => setTimeout(r, 3000));
      assert.deepEqual(await maild.spam.bayesLearns(), before);
      assert.equal((await maild.spam.stat()).learned, learnedBefore);
    } finally {
      await c.logout().catch(() => undefined);
    }
  });
});

describe("outbound", () => {
  async function submitOne(n: number): Promise<{ code: number; text: string }> {
    const s = await RawSmtp.connect(mx.ipv4, 587);
    try {
      await s.reply();
      await s.command("EHLO client.example");
      await s.starttls("mx.example.org", "client.example");
      const auth = await s.command(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0${PASSWORD}`).toString("base64")}`);
      assert.equal(auth.code, 235, auth.text);
      assert.equal((await s.command("MAIL FROM:<alice@example.org>")).code, 250);
      assert.equal((await s.command("RCPT TO:<alice@example.org>")).code, 250);
      assert.equal((await s.command("DATA")).code, 354);
      s.write(
        message({ from: "alice@example.org", subject: `note ${n}`, id: `out-${n}-${randomBytes(4).toString("hex")}@example.org` }) +
          ".\r\n",
      );
      return await s.reply();
    } finally {
      s.close();
    }
  }

  test("an authenticated user over the rate limit gets 451 4.7.1; the messages within it are accepted", async () => {
    const replies = [];
    for (let n = 1; n <= SETTINGS.outbound.burst + 1; n++) replies.push(await submitOne(n));
    assert.deepEqual(
      replies.slice(0, SETTINGS.outbound.burst).map((r) => r.code),
      Array(SETTINGS.outbound.burst).fill(250),
    );
    assert.deepEqual(replies[SETTINGS.outbound.burst], {
      code: 451,
      text: '4.7.1 Too many messages, try again later (Ratelimit "user_out" exceeded)',
    });
  });
});

describe("while rspamd is down", () => {
  test("messages are answered 451 4.7.1 and kept by the sender; once rspamd is back, each is delivered exactly once", async () => {
    await maild.spam.stopRspamd();
    try {
      const direct = await swaks(
        sender,
        "ann@sender.test",
        await signed(
          message({ from: "ann@sender.test", subject: "down", id: `down-${randomBytes(6).toString("hex")}@sender.test` }),
          "sender.test",
          dkimPem,
        ),
      );
      assert.equal(dataReply(direct.out), "451 4.7.1 Spam filter unavailable, try again later");
      const id = `queued-${randomBytes(6).toString("hex")}@peer.test`;
      await postfix.sendmail(
        "dee@peer.test",
        ["alice@example.org"],
        `From: Dee <dee@peer.test>\nTo: alice@example.org\nSubject: while down\nMessage-ID: <${id}>\n\nStill there?\n`,
      );
      await until("the peer to be told to try again", 30_000, () =>
        /status=deferred \(host mx\.example\.org\[[^\]]+\] said: 451 4\.7\.1 Spam filter unavailable, try again later/.test(postfix.log())
          ? true
          : undefined,
      );
      assert.deepEqual(stored(id), []);
      assert.equal((await postfix.queue()).length, 1);
      await maild.spam.startRspamd();
      await postfix.waitForEmptyQueue(60_000);
      assert.equal(stored(id).length, 1);
      assert.ok(maild.logs().some((l) => l.event === "smtp.spam_unavailable" && l.reason === "unavailable"));
    } finally {
      if (!fs.existsSync(maild.spam.learnSocket)) await maild.spam.startRspamd();
    }
  });

  test("metrics count verdicts by action and outcome, scan errors by reason, and scan latency", async () => {
    const r = await mx.run(["curl", "-sk", "https://127.0.0.1:8443/metrics"]);
    assert.match(r.stdout, /^maild_spam_verdicts_total\{action="reject",outcome="reject",service="smtp"\} [1-9]\d*$/m);
    assert.match(r.stdout, /^maild_spam_verdicts_total\{action="add header",outcome="junk",service="smtp"\} [1-9]\d*$/m);
    assert.match(r.stdout, /^maild_spam_verdicts_total\{action="soft reject",outcome="tempfail",service="submission"\} 1$/m);
    assert.match(r.stdout, /^maild_spam_scan_errors_total\{reason="unavailable",service="smtp"\} [1-9]\d*$/m);
    assert.match(r.stdout, /^maild_spam_scan_seconds_count\{service="smtp"\} [1-9]\d*$/m);
    assert.match(r.stdout, /^maild_rejected_total\{reason="greylist",service="smtp"\} [1-9]\d*$/m);
  });
});
