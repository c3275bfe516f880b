// Mail in the daemon's Maildir tree is read through Dovecot (the box's generated configuration)
// over IMAPS 993 and 143+STARTTLS, with the user's argon2id password.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import * as net from "node:net";
import { ImapFlow, type ImapFlowOptions } from "imapflow";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { argon2idHash } from "../../components/shared/argon2id";

const MAIL_UID = 65534;
const PASSWORD = "correct horse battery staple";
const ADDRESS = "alice@example.test";
const SUBJECT = `IMAP test ${randomBytes(4).toString("hex")}`;

/** Put one message into <dataDir>/mail/<domain>/<local>/Maildir/new the way a Maildir writer does (tmp, then rename). */
function deliverIntoMaildir(dataDir: string, address: string, message: string): void {
  const [local, domain] = address.split("@");
  const maildir = path.join(dataDir, "mail", domain, local, "Maildir");
  for (const sub of ["tmp", "new", "cur"]) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
  const name = `${Date.now()}.M${randomBytes(4).toString("hex")}.test`;
  fs.writeFileSync(path.join(maildir, "tmp", name), message);
  fs.renameSync(path.join(maildir, "tmp", name), path.join(maildir, "new", name));
  for (let dir = maildir; dir.startsWith(dataDir) && dir !== dataDir; dir = path.dirname(dir)) fs.chownSync(dir, MAIL_UID, MAIL_UID);
  fs.chownSync(dataDir, MAIL_UID, MAIL_UID);
  for (const sub of ["tmp", "new", "cur"]) {
    fs.chownSync(path.join(maildir, sub), MAIL_UID, MAIL_UID);
    for (const f of fs.readdirSync(path.join(maildir, sub))) fs.chownSync(path.join(maildir, sub, f), MAIL_UID, MAIL_UID);
  }
}

/** Read one tagged response line (after the greeting) from a raw IMAP connection. */
function rawImap(socket: net.Socket | tls.TLSSocket) {
  let buffer = "";
  const waiters: (() => void)[] = [];
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => {
    buffer += d;
    waiters.splice(0).forEach((w) => w());
  });
  const until = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} from the server; got: ${buffer}`)), 5000);
      const check = () => {
        const m = re.exec(buffer);
        if (m) {
          clearTimeout(timer);
          const upTo = m.index + m[0].length;
          const out = buffer.slice(0, upTo);
          buffer = buffer.slice(upTo);
          resolve(out);
        } else waiters.push(check);
      };
      check();
    });
  return { until, send: (line: string) => socket.write(line + "\r\n") };
}

describe("IMAP through Dovecot with the box's configuration", () => {
  let internet: LocalInternet;
  let imapHost: NetHost;
  let certs: TestTls;
  let dovecot: DovecotServer;

  before(async () => {
    internet = await LocalInternet.create();
    imapHost = await internet.addHost("imap");
    certs = await makeTestTls(path.join(internet.workDir, "tls"), ["mail.example.test", imapHost.ipv4], "imap");
    const dataDir = path.join(internet.workDir, "data");
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    deliverIntoMaildir(
      dataDir,
      ADDRESS,
      `From: Bob <bob@example.net>\r\nTo: ${ADDRESS}\r\nSubject: ${SUBJECT}\r\nMessage-ID: <${randomBytes(6).toString("hex")}@example.net>\r\nDate: ${new Date().toUTCString()}\r\n\r\nHello over IMAP.\r\n`,
    );
    dovecot = await startDovecot(internet, imapHost, {
      dataDir,
      users: [{ address: ADDRESS, passwordHash: argon2idHash(PASSWORD) }],
      tls: certs,
      uid: MAIL_UID,
      gid: MAIL_UID,
    });
  });

  after(async () => {
    await dovecot?.stop();
    await internet?.destroy();
  });

  const client = (over: Partial<ImapFlowOptions>) =>
    new ImapFlow({
      host: imapHost.ipv4,
      port: 993,
      secure: true,
      servername: "mail.example.test",
      tls: { ca: certs.caPem },
      auth: { user: ADDRESS, pass: PASSWORD },
      logger: false,
      ...over,
    });

  async function readInbox(c: ImapFlow): Promise<{ subject: string | undefined; body: string }> {
    await c.connect();
    try {
      const lock = await c.getMailboxLock("INBOX");
      try {
        const msg = await c.fetchOne("*", { envelope: true, source: true });
        assert.ok(msg, `INBOX is empty; dovecot log:\n${dovecot.log()}`);
        return { subject: msg.envelope?.subject, body: msg.source?.toString("utf8") ?? "" };
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  }

  test("reads the delivered message over IMAPS on 993 with the argon2id password", async () => {
    const { subject, body } = await readInbox(client({}));
    assert.equal(subject, SUBJECT);
    assert.match(body, /Hello over IMAP\./);
  });

  test("reads the delivered message over 143 after STARTTLS", async () => {
    const c = client({ port: 143, secure: false, doSTARTTLS: true });
    const { subject } = await readInbox(c);
    assert.equal(subject, SUBJECT);
  });

  test("accepts the login name in any case", async () => {
    const { subject } = await readInbox(client({ auth: { user: ADDRESS.toUpperCase(), pass: PASSWORD } }));
    assert.equal(subject, SUBJECT);
  });

  test("refuses a wrong password", async () => {
    const c = client({ auth: { user: ADDRESS, pass: "wrong password" } });
    await assert.rejects(c.connect(), (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    c.close();
  });

  test("refuses an unknown user", async () => {
    const c = client({ auth: { user: "mallory@example.test", pass: PASSWORD } });
    await assert.rejects(c.connect(), (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    c.close();
  });

  test("on 143, advertises LOGINDISABLED and refuses LOGIN before STARTTLS", async () => {
    const socket = net.connect({ host: imapHost.ipv4, port: 143 });
    try {
      const io = rawImap(socket);
      const greeting = await io.until(/\r\n/);
      assert.match(greeting, /^\* OK .*LOGINDISABLED/);
      io.send(`a1 LOGIN ${ADDRESS} "${PASSWORD}"`);
      const reply = await io.until(/a1 [A-Z]+ [^\r\n]*\r\n/);
      assert.match(reply, /a1 (NO|BAD) /);
      io.send("a2 AUTHENTICATE PLAIN " + Buffer.from(`\0${ADDRESS}\0${PASSWORD}`).toString("base64"));
      const reply2 = await io.until(/a2 [A-Z]+ [^\r\n]*\r\n/);
      assert.match(reply2, /a2 (NO|BAD) /);
    } finally {
      socket.destroy();
    }
  });
});
