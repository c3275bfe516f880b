// End to end in the local internet: a Postfix peer (DKIM-signing with opendkim) finds our MX in
// knot and delivers over STARTTLS to maild, which runs as the mail user and stores into Maildir;
// Dovecot (the box's generated configuration) serves the message over IMAPS to imapflow.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { ImapFlow } from "imapflow";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { startDovecot } from "../../infra/local-internet/dovecot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { startPostfix } from "../../infra/local-internet/postfix";
import { startMaild } from "../harness/maild";
import { argon2idHash } from "../../components/shared/argon2id";
import { txtContent } from "../../components/records/txt";
import { maildConfig } from "../fixtures/maild-config";

const MAIL_UID = 65534;
const PASSWORD = "correct horse battery staple";

let internet: LocalInternet | undefined;
after(async () => {
  await internet?.destroy();
});

test("mail from a Postfix peer arrives once in the user's IMAP inbox with spf=pass dkim=pass dmarc=pass", async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  const mx = await internet.addHost("mx");
  const peer = await internet.addHost("peer");
  const dkim = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await startKnot(internet, dns, [
    {
      origin: "example.org.",
      lines: [`example.org. MX 10 mx.example.org.`, `mx.example.org. A ${mx.ipv4}`, `mx.example.org. AAAA ${mx.ipv6}`],
    },
    {
      origin: "peer.test.",
      lines: [
        `peer.test. TXT "v=spf1 ip4:${peer.ipv4} ip6:${peer.ipv6} -all"`,
        `mail.peer.test. A ${peer.ipv4}`,
        `s1._domainkey.peer.test. TXT ${txtContent(`v=DKIM1; k=rsa; p=${dkim.publicKey.export({ type: "spki", format: "der" }).toString("base64")}`)}`,
        `_dmarc.peer.test. TXT "v=DMARC1; p=reject"`,
      ],
    },
  ]);
  await internet.setResolver(dns.ipv4);

  const tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org"], "mx");
  fs.chownSync(tlsFiles.keyPath, MAIL_UID, MAIL_UID);
  const dataDir = path.join(internet.workDir, "data");
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.chownSync(dataDir, MAIL_UID, MAIL_UID);
  const users = [{ address: "alice@example.org", passwordHash: argon2idHash(PASSWORD) }];

  await startMaild(internet, mx, maildConfig(mx, { dataDir, tls: tlsFiles }, { users }), { user: { uid: MAIL_UID, gid: MAIL_UID } });
  const dovecot = await startDovecot(internet, mx, { dataDir, users, tls: tlsFiles, uid: MAIL_UID, gid: MAIL_UID });
  const postfix = await startPostfix(internet, peer, {
    myhostname: "mail.peer.test",
    mydomain: "peer.test",
    trustCaPem: tlsFiles.caPem,
    dkim: { domain: "peer.test", selector: "s1", privateKeyPem: dkim.privateKey.export({ type: "pkcs8", format: "pem" }).toString() },
  });

  try {
    const id = `e2e-${randomBytes(6).toString("hex")}@peer.test`;
    const subject = `end to end ${id}`;
    await postfix.sendmail(
      "ann@peer.test",
      ["alice@example.org"],
      `From: Ann <ann@peer.test>\nTo: alice@example.org\nSubject: ${subject}\nMessage-ID: <${id}>\n\nHello Alice.\n`,
    );
    await postfix.waitForEmptyQueue(30_000);
    assert.match(postfix.log(), /to=<alice@example\.org>, relay=mx\.example\.org\[[^\]]+\]:25, .*status=sent \(250 /);

    const imap = new ImapFlow({
      host: mx.ipv4,
      port: 993,
      secure: true,
      servername: "mx.example.org",
      tls: { ca: tlsFiles.caPem } as never,
      auth: { user: "alice@example.org", pass: PASSWORD },
      logger: false,
    });
    try {
      await imap.connect();
      const lock = await imap.getMailboxLock("INBOX");
      const sources: string[] = [];
      try {
        for await (const m of imap.fetch("1:*", { source: true, envelope: true })) {
          if (m.envelope?.messageId === `<${id}>`) sources.push(m.source!.toString("latin1"));
        }
      } finally {
        lock.release();
      }
      assert.equal(sources.length, 1, `exactly one copy in INBOX\n${dovecot.log()}`);
      const header = sources[0].slice(0, sources[0].indexOf("\r\n\r\n")).replace(/\r\n[ \t]+/g, " ");
      const ar = header.split("\r\n").find((l) => l.startsWith("Authentication-Results: mx.example.org;"));
      assert.ok(ar, header);
      const verdicts = Object.fromEntries([...ar.matchAll(/;\s*(spf|dkim|dmarc)=(\w+)/g)].map((m) => [m[1], m[2]]));
      assert.deepEqual(verdicts, { dkim: "pass", spf: "pass", dmarc: "pass" });
      assert.match(
        header,
        /^Received: from mail\.peer\.test \(\[(198\.51\.100\.\d+|IPv6:2001:db8:1::[0-9a-f]+)\]\) by mx\.example\.org \(maild\) with ESMTPS \(TLSv1\.[23] /m,
      );
      assert.match(sources[0], /\r\n\r\nHello Alice\.\r\n$/);
    } finally {
      await imap.logout().catch(() => undefined);
    }
  } finally {
    await postfix.stop();
  }
});
