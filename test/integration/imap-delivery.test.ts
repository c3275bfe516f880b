// End to end: a Postfix peer relays by MX (knot) over verified STARTTLS to the real maild, which
// stores into the Maildir tree; Dovecot, with the box's generated configuration, serves it over
// IMAPS to imapflow. maild and Dovecot run as the same unprivileged user, as on the box.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ImapFlow } from "imapflow";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { argon2idHash } from "../../components/shared/argon2id";
import { bundleMaild } from "../harness/maild";
import { startSpamFilter } from "../../infra/local-internet/spam-filter";

const MAIL_UID = 65534;
const DOMAIN = "example.test";
const ADDRESS = `alice@${DOMAIN}`;
const PASSWORD = "imap end to end";
const SUBJECT = `end to end ${randomBytes(4).toString("hex")}`;

describe("Postfix -> maild -> Maildir -> Dovecot -> IMAP", () => {
  let internet: LocalInternet;
  let mx: NetHost;
  let knot: KnotServer;
  let certs: TestTls;
  let maild: ChildProcess;
  let maildLog: string;
  let dovecot: DovecotServer;
  let peer: PostfixPeer;

  before(async () => {
    internet = await LocalInternet.create();
    const dns = await internet.addHost("dns");
    mx = await internet.addHost("mx");
    const sender = await internet.addHost("sender");
    knot = await startKnot(internet, dns, [
      { origin: `${DOMAIN}.`, lines: [`${DOMAIN}. 300 IN MX 10 mail.${DOMAIN}.`, `mail.${DOMAIN}. 300 IN A ${mx.ipv4}`] },
      { origin: "example.net.", lines: [`example.net. 300 IN TXT "v=spf1 ip4:${sender.ipv4} -all"`] },
    ]);
    await internet.setResolver(dns.ipv4);

    fs.chmodSync(internet.workDir, 0o711);
    const dir = path.join(internet.workDir, "maild");
    fs.mkdirSync(dir, { mode: 0o755 });
    certs = await makeTestTls(path.join(dir, "tls"), [`mail.${DOMAIN}`], "mx");
    fs.chmodSync(path.dirname(certs.keyPath), 0o755);
    fs.chmodSync(certs.keyPath, 0o644);
    const dataDir = path.join(dir, "data");
    fs.mkdirSync(dataDir, { mode: 0o755 });
    fs.chownSync(dataDir, MAIL_UID, MAIL_UID);
    const users = [{ address: ADDRESS, passwordHash: argon2idHash(PASSWORD) }];
    const configPath = path.join(dir, "maild.json");
    fs.writeFileSync(
      configPath,
      JSON.stringify({
        hostname: `mail.${DOMAIN}`,
        domains: [{ name: DOMAIN, dkim: [] }],
        users,
        aliases: [],
        tls: { certPath: certs.certPath, keyPath: certs.keyPath },
        dataDir,
        listen: { smtp: [{ host: mx.ipv4, port: 25 }], http: [{ host: mx.ipv4, port: 80 }], https: [{ host: mx.ipv4, port: 443 }] },
        dnsServers: [dns.ipv4],
      }),
    );
    fs.chmodSync(configPath, 0o644);
    // maild asks the box's rspamd about every message.
    await startSpamFilter(internet, mx);
    // The box runs maild as one bundled file; so does the test, as the mail user.
    const bundle = await bundleMaild();
    maildLog = path.join(dir, "maild.log");
    maild = mx.spawn(
      ["setpriv", `--reuid=${MAIL_UID}`, `--regid=${MAIL_UID}`, "--clear-groups", process.execPath, bundle, "--config", configPath],
      { logFile: maildLog },
    );
    await waitForPort(mx.ipv4, 25, "maild", 20_000, () => maild.exitCode === null).catch((e: Error) => {
      throw new Error(`${e.message}\n${fs.readFileSync(maildLog, "utf8").slice(-3000)}`);
    });
    dovecot = await startDovecot(internet, mx, { dataDir, users, tls: certs, uid: MAIL_UID, gid: MAIL_UID });
    peer = await startPostfix(internet, sender, {
      myhostname: "sender.example.net",
      mydomain: "example.net",
      trustCaPem: certs.caPem,
      tlsSecurityLevel: "verify",
    });
  });

  after(async () => {
    await peer?.stop();
    await dovecot?.stop();
    if (maild) await LocalInternet.stopProcess(maild);
    await knot?.stop();
    await internet?.destroy();
  });

  test("a message relayed by the Postfix peer over verified TLS is read once through IMAPS", async () => {
    await peer.sendmail(
      "bob@example.net",
      [ADDRESS],
      `From: Bob <bob@example.net>\r\nTo: ${ADDRESS}\r\nSubject: ${SUBJECT}\r\n\r\nRelayed by Postfix.\r\n`,
    );
    await peer.waitForEmptyQueue(30_000).catch((e: Error) => {
      throw new Error(`${e.message}\nmaild log:\n${fs.readFileSync(maildLog, "utf8").slice(-3000)}`);
    });
    assert.match(peer.log(), /Verified TLS connection established to mail\.example\.test/);
    const client = new ImapFlow({
      host: mx.ipv4,
      port: 993,
      secure: true,
      servername: `mail.${DOMAIN}`,
      tls: { ca: certs.caPem },
      auth: { user: ADDRESS, pass: PASSWORD },
      logger: false,
    });
    await client.connect();
    try {
      const lock = await client.getMailboxLock("INBOX");
      try {
        const found = await client.search({ subject: SUBJECT });
        assert.equal(Array.isArray(found) ? found.length : 0, 1, `expected one message "${SUBJECT}"; dovecot log:\n${dovecot.log()}`);
        const msg = await client.fetchOne(String((found as number[])[0]), { source: true });
        assert.ok(msg);
        assert.match(msg.source!.toString("utf8"), /Relayed by Postfix\./);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  });
});
