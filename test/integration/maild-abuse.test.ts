// An MX that holds under hostile traffic (issue 15), with real clients in the local internet:
// maild runs as its own account (2525, in the mail group 2526) on a small tmpfs volume, Dovecot's
// mail processes as vmail (2526) with the deployed configuration (quota plugin, maild's auth
// policy endpoint), a Postfix peer (peer.test) sends, forwards' destinations and bounces, swaks and
// curl log in from other hosts, imapflow from the test process.
//   - Dovecot's account reaches the mail, not the keys, the configuration, the queue or the login state;
//   - SRS: forwarded mail leaves with an SRS0 address SPF passes for; Postfix's bounce to it comes back
//     to the original sender; forged, expired and non-bounce uses are refused;
//   - DSNs only to verified senders, and a notice that can never be delivered is dropped;
//   - quotas that maild and Dovecot agree on, and the free-space reserve, both without losing mail;
//   - one login throttle for IMAP and SMTP AUTH, kept across a restart, that never locks out the owner;
//   - a login flood is refused beyond a bounded queue while mail is still accepted at once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ImapFlow } from "imapflow";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import { LocalInternet, mustRun, runCommand, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { startDovecot, type DovecotServer } from "../../infra/local-internet/dovecot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { startMaild, RawSmtp, type MaildProcess } from "../harness/maild";
import { argon2idHash } from "../../components/shared/argon2id";
import { Srs } from "../../server-bootstrap/maild/srs";
import type { MaildConfigFile } from "../../server-bootstrap/maild/config";
import { deployFiles } from "../../server-bootstrap/install/deploy-files";
import type { ManifestFile } from "../../server-bootstrap/install/file-manifest";
import {
  AUTH_POLICY_PORT as POLICY_PORT,
  MAIL_GID,
  MAIL_UID as VMAIL_UID,
  MAILD_GID,
  MAILD_UID,
  boxLayout,
  dkimKeyPath,
  type BoxLayout,
} from "../../server-bootstrap/install/layout";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const DOMAIN = "example.test";
const HOSTNAME = `mail.${DOMAIN}`;
const ALICE = `alice@${DOMAIN}`;
const CAROL = `carol@${DOMAIN}`;
const ALICE_PASSWORD = "alice's long passphrase";
const CAROL_PASSWORD = "carol's long passphrase";
const SRS_SECRET = randomBytes(32).toString("hex");
const POLICY_KEY = randomBytes(32).toString("hex");
const POLICY_NONCE = randomBytes(32).toString("hex");
const CAROL_QUOTA = 64 * 1024;
const VOLUME_MIB = 64;
const RESERVE_BYTES = 24 * 1024 * 1024;

async function until<T>(
  what: string | (() => string),
  timeoutMs: number,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function message(from: string, to: string, subject: string, body = "Hello.\r\n"): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(8).toString("hex")}@test>\r\n\r\n${body}`;
}

/** The header section of a stored message (LF or CRLF line ends). */
function headerOf(text: string): string {
  const i = text.search(/\r?\n\r?\n/);
  return i < 0 ? text : text.slice(0, i);
}

/**
 * The files a deploy writes for this box (deploy-files.ts), with the box's system paths under
 * `root`: their modes and owners are what keeps Dovecot's mail processes from maild's secrets.
 */
function deployedFiles(
  root: string,
  users: { address: string; passwordHash: string }[],
  certs: TestTls,
): { layout: BoxLayout; files: Map<string, ManifestFile> } {
  const pem = (k: { privateKey: { export(o: { type: "pkcs8"; format: "pem" }): string | Buffer } }) =>
    String(k.privateKey.export({ type: "pkcs8", format: "pem" }));
  const layout = boxLayout({ root, dataDir: path.join(root, "volume") });
  const files = deployFiles(layout, {
    hostname: HOSTNAME,
    domains: [{ name: DOMAIN, dkim: [{ selector: "s1", algorithm: "ed25519", privateKeyPem: pem(generateKeyPairSync("ed25519")) }] }],
    users,
    aliases: [],
    tls: { certificatePem: fs.readFileSync(certs.certPath, "utf8"), privateKeyPem: fs.readFileSync(certs.keyPath, "utf8") },
    spam: TEST_DEPLOY_SPAM,
    acme: {
      directoryUrl: "https://acme.test/directory",
      accountKeyPem: pem(generateKeyPairSync("ec", { namedCurve: "P-256" })),
      names: [HOSTNAME],
    },
    secrets: { srs: SRS_SECRET, authPolicyKey: POLICY_KEY, authPolicyNonce: POLICY_NONCE },
  });
  return { layout, files: new Map(files.map((f) => [f.path, f])) };
}

/** Gives `file` the mode and owner a deploy gives `as` (owners may be names, e.g. root:dovecot). */
async function ownAsDeployed(file: string, as: ManifestFile): Promise<void> {
  await mustRun(["chown", as.owner, file]);
  await mustRun(["chmod", as.mode, file]);
}

/** One SMTP exchange from raw lines, returning each reply's code (stops at the first refusal unless told). */
async function smtpCodes(host: string, lines: string[], opts: { localAddress?: string } = {}): Promise<number[]> {
  const c = await RawSmtp.connect(host, 25, opts);
  try {
    const codes = [(await c.reply()).code];
    for (const l of lines) codes.push((await c.command(l)).code);
    return codes;
  } finally {
    c.close();
  }
}

/** SMTP AUTH PLAIN on 587 with swaks from `from`: the reply code to AUTH (235, 535, 454). */
async function swaksAuth(from: NetHost, mx: NetHost, user: string, password: string): Promise<number> {
  const r = await from.run(
    [
      "swaks",
      "--server",
      mx.ipv4,
      "--port",
      "587",
      "--tls",
      "--auth",
      "PLAIN",
      "--auth-user",
      user,
      "--auth-password",
      password,
      "--quit-after",
      "AUTH",
    ],
    { timeoutMs: 30_000 },
  );
  const codes = [...r.stdout.matchAll(/^<~\*? (\d{3}) /gm)].map((m) => Number(m[1]));
  const code = codes.find((c) => c === 235 || c === 535 || c === 454);
  if (code === undefined) throw new Error(`swaks from ${from.name}: no AUTH reply\n${r.stdout}\n${r.stderr}`);
  return code;
}

/** IMAP login over 993 with curl from `from`: true if Dovecot let it in. */
async function curlImapLogin(from: NetHost, mx: NetHost, user: string, password: string): Promise<boolean> {
  // Dovecot's own per-address auth penalty (up to 15 s, doubling per failure) comes on top of maild's answer
  const r = await from.run(["curl", "-s", "--insecure", "--max-time", "40", "-u", `${user}:${password}`, `imaps://${mx.ipv4}/`], {
    timeoutMs: 50_000,
  });
  if (r.code === 0) return true;
  if (r.code === 67) return false; // CURLE_LOGIN_DENIED
  throw new Error(`curl imaps from ${from.name}: exit ${r.code}: ${r.stderr}`);
}

describe("an MX that holds under hostile traffic", () => {
  let internet: LocalInternet;
  let dns: NetHost;
  let mx: NetHost;
  let peerHost: NetHost;
  let attacker1: NetHost;
  let attacker2: NetHost;
  let newcomer: NetHost;
  let knot: KnotServer;
  let certs: TestTls;
  let dataDir: string;
  let maild: MaildProcess;
  let dovecot: DovecotServer;
  let peer: PostfixPeer;
  let config: MaildConfigFile;
  let deployed: ReturnType<typeof deployedFiles>;

  const imapAs = (user: string, pass: string) =>
    new ImapFlow({
      host: mx.ipv4,
      port: 993,
      secure: true,
      servername: HOSTNAME,
      tls: { ca: certs.caPem },
      auth: { user, pass },
      logger: false,
    });
  const events = (name: string) => maild.logs().filter((l) => l.event === name);
  const atPeer = (pred: (m: string) => boolean) => peer.received().filter(pred);
  // Postfix retries deferred mail on its own (queue_run_delay 1s); a flush just stops the test waiting on qmgr's timing.
  const flushPeer = () => peer.host.run(["/usr/sbin/postqueue", "-c", peer.configDir, "-f"]);
  const asVmail = (argv: string[]) => runCommand(["setpriv", `--reuid=${VMAIL_UID}`, `--regid=${MAIL_GID}`, "--clear-groups", ...argv]);

  before(async () => {
    internet = await LocalInternet.create();
    dns = await internet.addHost("dns");
    mx = await internet.addHost("mx");
    peerHost = await internet.addHost("peer");
    attacker1 = await internet.addHost("attacker1");
    attacker2 = await internet.addHost("attacker2");
    newcomer = await internet.addHost("newcomer");
    knot = await startKnot(internet, dns, [
      {
        origin: `${DOMAIN}.`,
        lines: [
          `${DOMAIN}. 300 IN MX 10 ${HOSTNAME}.`,
          `${HOSTNAME}. 300 IN A ${mx.ipv4}`,
          `${DOMAIN}. 300 IN TXT "v=spf1 ip4:${mx.ipv4} -all"`,
        ],
      },
      {
        origin: "peer.test.",
        lines: [
          `peer.test. 300 IN MX 10 mail.peer.test.`,
          `mail.peer.test. 300 IN A ${peerHost.ipv4}`,
          `peer.test. 300 IN TXT "v=spf1 ip4:${peerHost.ipv4} -all"`,
        ],
      },
    ]);
    await internet.setResolver(dns.ipv4);

    fs.chmodSync(internet.workDir, 0o711);
    const dir = path.join(internet.workDir, "box");
    fs.mkdirSync(dir, { mode: 0o755 });
    certs = await makeTestTls(path.join(dir, "tls"), [HOSTNAME], "mx");
    fs.chmodSync(path.dirname(certs.keyPath), 0o755);

    // The data volume: a small tmpfs, so the free-space reserve can be reached. Set up as the
    // install script sets up the box: maild's, passable by others; the mail tree the mail group's.
    dataDir = path.join(dir, "data");
    fs.mkdirSync(dataDir);
    await mustRun(["mount", "-t", "tmpfs", "-o", `size=${VOLUME_MIB}m,mode=0711,uid=${MAILD_UID},gid=${MAILD_GID}`, "tmpfs", dataDir]);
    await mustRun(["install", "-d", "-o", String(MAILD_UID), "-g", String(MAIL_GID), "-m", "2770", path.join(dataDir, "mail")]);

    peer = await startPostfix(internet, peerHost, {
      myhostname: "mail.peer.test",
      mydomain: "peer.test",
      receive: { domains: ["peer.test"] },
      trustCaPem: certs.caPem,
      tlsSecurityLevel: "may",
      dmarc: true,
      extraMain: {
        // a mailbox that does not exist (refused at RCPT); and one Postfix accepts and then fails to
        // deliver (it relays it to maild, which refuses to relay), so Postfix itself bounces it to
        // the envelope sender (an error: transport would be refused at RCPT already)
        smtpd_recipient_restrictions: "check_recipient_access inline:{ { nobody@peer.test = REJECT 5.1.1 no such user here } }, permit",
        transport_maps: `inline:{ { carol-full@peer.test = smtp:[${mx.ipv4}]:25 } }`,
      },
    });

    const users = [
      { address: ALICE, passwordHash: argon2idHash(ALICE_PASSWORD) },
      { address: CAROL, passwordHash: argon2idHash(CAROL_PASSWORD), quotaBytes: CAROL_QUOTA },
    ];
    deployed = deployedFiles(path.join(dir, "deployed"), users, certs);
    // maild's TLS key and configuration with the mode and owner a deploy gives them
    await ownAsDeployed(certs.keyPath, deployed.files.get(deployed.layout.tlsKey)!);
    config = {
      hostname: HOSTNAME,
      domains: [{ name: DOMAIN }],
      users,
      aliases: [
        { address: `fwd@${DOMAIN}`, to: ["carol@peer.test"] },
        { address: `fwd-reject@${DOMAIN}`, to: ["nobody@peer.test"] },
        { address: `fwd-bounce@${DOMAIN}`, to: ["carol-full@peer.test"] },
      ],
      tls: { certPath: certs.certPath, keyPath: certs.keyPath },
      dataDir,
      listen: { smtp: [{ host: mx.ipv4, port: 25 }], submission: [{ host: mx.ipv4, port: 587 }], submissions: [], http: [], https: [] },
      dnsServers: [dns.ipv4],
      outbound: { retryBaseSeconds: 1, retryMaxSeconds: 2, timeoutMs: 10_000, mtaSts: false, dane: false, ipv6: false },
      submission: { maxFailuresPerIp: 3, maxFailuresPerAccount: 4, lockoutSeconds: 300, lockoutMaxSeconds: 600 },
      storage: { quotaBytes: 10 * 1024 * 1024, reserveBytes: RESERVE_BYTES },
      srs: { secrets: [SRS_SECRET] },
      authPolicy: { listen: { host: "127.0.0.1", port: POLICY_PORT }, apiKey: POLICY_KEY },
    };
    maild = await startMaild(internet, mx, config as unknown as Record<string, unknown>, {
      user: { uid: MAILD_UID, gid: MAILD_GID, groups: [MAIL_GID] },
    });
    await ownAsDeployed(maild.configPath, deployed.files.get(deployed.layout.configJson)!);
    dovecot = await startDovecot(internet, mx, {
      dataDir,
      users,
      tls: certs,
      uid: VMAIL_UID,
      gid: MAIL_GID,
      authPolicy: { url: `http://127.0.0.1:${POLICY_PORT}/`, apiKey: POLICY_KEY, nonce: POLICY_NONCE },
    });
  });

  after(async () => {
    await maild?.stop();
    await dovecot?.stop();
    await peer?.stop();
    await knot?.stop();
    if (dataDir) await runCommand(["umount", "-l", dataDir]);
    await internet?.destroy();
  });

  describe("Dovecot under its own account", () => {
    test("IMAP folders and flags work on mail maild delivers, and maild's later deliveries show up", async () => {
      const subjects = ["first", "second", "third"].map((s) => `${s} ${randomBytes(3).toString("hex")}`);
      for (const s of subjects.slice(0, 2)) {
        assert.deepEqual(
          await smtpCodes(mx.ipv4, [
            "EHLO client.test",
            `MAIL FROM:<>`,
            `RCPT TO:<${ALICE}>`,
            "DATA",
            message("x@client.test", ALICE, s) + ".",
          ]),
          [220, 250, 250, 250, 354, 250],
        );
      }
      const imap = imapAs(ALICE, ALICE_PASSWORD);
      await imap.connect();
      try {
        await imap.mailboxCreate("Archive");
        const lock = await imap.getMailboxLock("INBOX");
        try {
          const [first] = (await imap.search({ subject: subjects[0] })) as number[];
          const [second] = (await imap.search({ subject: subjects[1] })) as number[];
          await imap.messageFlagsAdd(String(second), ["\\Seen", "\\Flagged"]);
          await imap.messageMove(String(first), "Archive");
        } finally {
          lock.release();
        }
        await imap.append("Sent", message(ALICE, "x@client.test", "sent copy"), ["\\Seen"]);
      } finally {
        await imap.logout();
      }
      assert.deepEqual(
        await smtpCodes(mx.ipv4, [
          "EHLO client.test",
          `MAIL FROM:<>`,
          `RCPT TO:<${ALICE}>`,
          "DATA",
          message("x@client.test", ALICE, subjects[2]) + ".",
        ]),
        [220, 250, 250, 250, 354, 250],
      );
      const again = imapAs(ALICE, ALICE_PASSWORD);
      await again.connect();
      try {
        const inbox = await again.getMailboxLock("INBOX");
        try {
          const found: Record<string, string[]> = {};
          for await (const m of again.fetch("1:*", { envelope: true, flags: true })) found[m.envelope!.subject!] = [...m.flags!].sort();
          assert.deepEqual(found[subjects[1]], ["\\Flagged", "\\Seen"], "flags kept");
          assert.ok(subjects[2] in found, "a later delivery by maild is visible");
          assert.ok(!(subjects[0] in found), "moved away");
        } finally {
          inbox.release();
        }
        const count = async (box: string) => {
          const st = await again.status(box, { messages: true });
          return st ? st.messages : undefined;
        };
        assert.equal(await count("Archive"), 1);
        assert.equal(await count("Sent"), 1);
      } finally {
        await again.logout();
      }
    });

    test("Dovecot's mail processes write as vmail; vmail reads the mail but not the TLS key, maild's configuration, the queue, the spool or the login state", async () => {
      await until("the login state on disk", 10_000, () => fs.existsSync(path.join(dataDir, "state", "logins.json")) || undefined);
      const maildir = path.join(dataDir, "mail", DOMAIN, "alice", "Maildir");
      assert.equal(fs.statSync(path.join(maildir, "dovecot-uidlist")).uid, VMAIL_UID, "Dovecot's index files are vmail's");
      assert.equal(fs.statSync(path.join(maildir, ".Archive")).gid, MAIL_GID, "folders Dovecot creates stay in the mail group");
      const delivered = fs.readdirSync(path.join(maildir, "cur")).find((n) => n.includes(`.${HOSTNAME},S=`))!;
      assert.equal((await asVmail(["cat", path.join(maildir, "cur", delivered)])).code, 0, "vmail reads what maild delivered");
      for (const secret of [certs.keyPath, maild.configPath, path.join(dataDir, "state", "logins.json")]) {
        const r = await asVmail(["cat", secret]);
        assert.notEqual(r.code, 0, `vmail read ${secret}`);
        assert.match(r.stderr, /Permission denied/, secret);
      }
      for (const dir of [path.join(dataDir, "queue"), path.join(dataDir, "spool")]) {
        const r = await asVmail(["ls", dir]);
        assert.notEqual(r.code, 0, `vmail listed ${dir}`);
        assert.match(r.stderr, /Permission denied/, dir);
      }
    });

    test("a deploy's secret files are read by the accounts that use them and never by vmail: DKIM and ACME keys, TLS key, maild's configuration, Dovecot's passwords and policy key", async () => {
      const { layout, files } = deployed;
      // parent directories open to every account, so each file's own mode and owner are what is tested
      const readers: [string, string][] = [
        [layout.configJson, "maild"],
        [layout.tlsKey, "maild"],
        [dkimKeyPath(layout, DOMAIN, "s1"), "maild"],
        [layout.acmeAccountKey, "maild"],
        [layout.dovecotPasswd, "dovecot"],
        [layout.dovecotAuthPolicy, "dovecot"],
      ];
      for (const [file] of readers) {
        const f = files.get(file);
        assert.ok(f, `a deploy writes ${file}`);
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
        fs.writeFileSync(file, f.content);
        await ownAsDeployed(file, f);
      }
      const asMaild = ["setpriv", `--reuid=${MAILD_UID}`, `--regid=${MAILD_GID}`, `--groups=${MAIL_GID}`];
      // Dovecot's auth process runs as the dovecot account (default_internal_user)
      const asDovecotAuth = ["setpriv", "--reuid=dovecot", "--regid=dovecot", "--init-groups"];
      for (const [file, reader] of readers) {
        const ok = await runCommand([...(reader === "maild" ? asMaild : asDovecotAuth), "cat", file]);
        assert.equal(ok.code, 0, `${reader} reads ${file}: ${ok.stderr}`);
        const r = await asVmail(["cat", file]);
        assert.notEqual(r.code, 0, `vmail read ${file}`);
        assert.match(r.stderr, /Permission denied/, file);
      }
    });
  });

  describe("forwarding with SRS, and bounces", () => {
    test("mail an alias forwards leaves with an SRS0 reverse-path in the alias's domain, and SPF passes for it at the destination", async () => {
      const subject = `forwarded ${randomBytes(3).toString("hex")}`;
      await peer.sendmail("bob@peer.test", [`fwd@${DOMAIN}`], message("bob@peer.test", `fwd@${DOMAIN}`, subject));
      const [got] = await until("the forwarded message at the peer", 30_000, () => {
        const m = atPeer((t) => t.includes(`Subject: ${subject}`));
        return m.length > 0 ? m : undefined;
      });
      const header = headerOf(got);
      const returnPath = /^Return-Path: <([^>]*)>/m.exec(header)?.[1];
      assert.ok(returnPath, header);
      assert.match(returnPath, /^SRS0=[A-Za-z0-9_-]{4}=[A-Z2-7]{2}=peer\.test=bob@example\.test$/);
      assert.deepEqual(new Srs({ secrets: [SRS_SECRET] }).reverse(returnPath), { ok: true, address: "bob@peer.test" });
      // SPF as the destination evaluates it (pyspf, RFC 7208 check_host with the forwarder's address and the SRS reverse-path)
      const sentFrom = /^Received: from \S+ \(\S+ \[([0-9.]+)\]\)\s+by mail\.peer\.test/m.exec(header)?.[1];
      assert.equal(sentFrom, mx.ipv4);
      const spf = await peerHost.run([
        "/usr/bin/python3",
        "-c",
        "import spf, sys; print(spf.check2(i=sys.argv[1], s=sys.argv[2], h=sys.argv[3])[0])",
        sentFrom,
        returnPath,
        HOSTNAME,
      ]);
      assert.equal(spf.stdout.trim(), "pass", spf.stderr);
      const unrewritten = await peerHost.run([
        "/usr/bin/python3",
        "-c",
        "import spf, sys; print(spf.check2(i=sys.argv[1], s=sys.argv[2], h=sys.argv[3])[0])",
        sentFrom,
        "bob@peer.test",
        HOSTNAME,
      ]);
      assert.equal(unrewritten.stdout.trim(), "fail", "without SRS the forward would fail SPF there");
    });

    test("Postfix's bounce to the SRS address is checked and goes on to the original sender with the null reverse-path", async () => {
      const subject = `bounced by postfix ${randomBytes(3).toString("hex")}`;
      await peer.sendmail("bob@peer.test", [`fwd-bounce@${DOMAIN}`], message("bob@peer.test", `fwd-bounce@${DOMAIN}`, subject));
      const [dsn] = await until("Postfix's bounce, back at bob", 40_000, () => {
        const m = atPeer(
          (t) =>
            /^X-Original-To: bob@peer\.test/m.test(headerOf(t)) && t.includes(subject) && /Undelivered Mail Returned to Sender/.test(t),
        );
        return m.length > 0 ? m : undefined;
      });
      assert.match(headerOf(dsn), /^Return-Path: <>/m, "a bounce stays a bounce");
      assert.match(headerOf(dsn), /^From: Mail Delivery System <MAILER-DAEMON@peer\.test>$/m, "Postfix's own bounce");
      assert.match(headerOf(dsn), /^To: SRS0=[A-Za-z0-9_-]{4}=[A-Z2-7]{2}=peer\.test=bob@example\.test$/m, "sent to the SRS address");
      assert.match(dsn, /carol-full@peer\.test/);
      const accepted = events("smtp.accepted").filter((l) => l.from === "");
      assert.ok(
        accepted.some((l) => l.remote === 1),
        `maild took the bounce on port 25 and forwarded it: ${JSON.stringify(accepted)}`,
      );
    });

    test("a forged, expired or non-bounce use of an SRS address is refused at RCPT", async () => {
      const srs = new Srs({ secrets: [SRS_SECRET] });
      const valid = srs.forward("victim@peer.test", DOMAIN);
      const forged = valid.replace(/^SRS0=..../, "SRS0=AAAA");
      const expired = new Srs({ secrets: [SRS_SECRET], now: () => Date.now() - 30 * 86_400_000 }).forward("victim@peer.test", DOMAIN);
      const other = new Srs({ secrets: ["not our secret at all"] }).forward("victim@peer.test", DOMAIN);
      const rcpt = async (from: string, to: string) =>
        (await smtpCodes(mx.ipv4, ["EHLO attacker.test", `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`], { localAddress: undefined })).at(-1);
      assert.equal(await rcpt("", forged), 550);
      assert.equal(await rcpt("", expired), 550);
      assert.equal(await rcpt("", other), 550);
      assert.equal(await rcpt("spammer@attacker.test", valid), 550, "only bounces come back through an SRS address");
      assert.equal(await rcpt("", valid), 250);
      assert.deepEqual(
        events("smtp.bad_srs").map((l) => l.reason),
        ["bad-hash", "expired", "bad-hash"],
      );
      assert.equal(events("smtp.srs_not_bounce").length, 1);
    });

    test("a refused forward of a verified sender comes back to them as maild's DSN, through the SRS address, with the header only", async () => {
      const subject = `refused forward ${randomBytes(3).toString("hex")}`;
      await peer.sendmail(
        "bob@peer.test",
        [`fwd-reject@${DOMAIN}`],
        message("bob@peer.test", `fwd-reject@${DOMAIN}`, subject, "BODY-MUST-NOT-RETURN\r\n"),
      );
      const [dsn] = await until("maild's DSN at bob", 40_000, () => {
        const m = atPeer(
          (t) => /^X-Original-To: bob@peer\.test/m.test(headerOf(t)) && t.includes(subject) && t.includes(`MAILER-DAEMON@${HOSTNAME}`),
        );
        return m.length > 0 ? m : undefined;
      });
      assert.match(dsn, /Final-Recipient: rfc822; nobody@peer\.test/);
      assert.match(dsn, /Status: 5\.1\.1/);
      assert.doesNotMatch(dsn, /BODY-MUST-NOT-RETURN/);
      assert.match(headerOf(dsn), /^Return-Path: <>/m);
    });

    test("a refused forward of a forged sender is logged and dropped: no DSN to the forged address", async () => {
      const subject = `forged sender ${randomBytes(3).toString("hex")}`;
      // from attacker1, whose address peer.test's SPF does not list
      const r = await attacker1.run(
        [
          "swaks",
          "--server",
          mx.ipv4,
          "--from",
          "victim@peer.test",
          "--to",
          `fwd-reject@${DOMAIN}`,
          "--header",
          `Subject: ${subject}`,
          "--body",
          "spam",
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const suppressed = await until("the suppressed notice", 30_000, () =>
        events("queue.dsn_suppressed").find((l) => l.sender !== "" && (l.recipients as string[]).includes("nobody@peer.test")),
      );
      assert.equal(suppressed.reason, "sender not verified (no SPF or DKIM pass for its domain)");
      assert.match(String(suppressed.sender), /^SRS0=.*=peer\.test=victim@example\.test$/);
      await new Promise((res) => setTimeout(res, 2000));
      assert.deepEqual(
        atPeer((t) => /^X-Original-To: victim@peer\.test/m.test(headerOf(t))),
        [],
      );
    });

    test("a DSN to a local address that is neither user nor alias is dropped and logged, and the queue empties", async () => {
      // ghost@example.test is verified by SPF (sent from the MX's own address) but has no mailbox
      const r = await mx.run(["swaks", "--server", mx.ipv4, "--from", `ghost@${DOMAIN}`, "--to", `fwd-reject@${DOMAIN}`, "--body", "x"], {
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const dropped = await until("the dropped notice", 30_000, () => events("queue.dsn_dropped").find((l) => l.to === `ghost@${DOMAIN}`));
      assert.equal(dropped.reason, "undeliverable");
      assert.match(String(dropped.error), /no route to ghost@example\.test: unknown-user/);
      await until("an empty queue", 20_000, () => fs.readdirSync(path.join(dataDir, "queue")).length === 0 || undefined);
    });
  });

  describe("quotas and the free-space reserve", () => {
    test("a full mailbox gets 452 4.2.2 (the peer keeps the mail), one that never fits 552 5.2.2; Dovecot shows and enforces the same figure, and an expunge lets the kept mail in", async () => {
      const filler = "y".repeat(76) + "\r\n";
      const big = filler.repeat(380); // ~29 KiB
      const subjects = [1, 2, 3, 4].map((i) => `quota ${i} ${randomBytes(3).toString("hex")}`);
      // two fit under 64 KiB and the third crosses the line (a mailbox under quota takes a message whole)
      for (const s of subjects.slice(0, 3)) {
        assert.equal(
          (
            await smtpCodes(mx.ipv4, [
              "EHLO c.test",
              "MAIL FROM:<>",
              `RCPT TO:<${CAROL}>`,
              "DATA",
              message("x@c.test", CAROL, s, big) + ".",
            ])
          ).at(-1),
          250,
        );
      }
      const full = await RawSmtp.connect(mx.ipv4, 25);
      await full.reply();
      await full.command("EHLO c.test");
      await full.command("MAIL FROM:<>");
      const refusal = await full.command(`RCPT TO:<${CAROL}>`);
      full.close();
      assert.equal(refusal.code, 452);
      assert.match(refusal.text, /^4\.2\.2 Mailbox full/);
      const tooBig = await RawSmtp.connect(mx.ipv4, 25);
      await tooBig.reply();
      await tooBig.command("EHLO c.test");
      await tooBig.command(`MAIL FROM:<> SIZE=${CAROL_QUOTA + 1}`);
      const never = await tooBig.command(`RCPT TO:<${ALICE}>`);
      const never2 = await tooBig.command(`RCPT TO:<${CAROL}>`);
      tooBig.close();
      assert.equal(never.code, 250, "alice's quota holds it");
      assert.equal(never2.code, 552);
      assert.match(never2.text, /^5\.2\.2 /);

      // the Postfix peer is told 452 and keeps the message
      await peer.sendmail("bob@peer.test", [CAROL], message("bob@peer.test", CAROL, subjects[3], big));
      await until("the peer's deferral", 20_000, () => /said: 452 4\.2\.2 Mailbox full/.test(peer.log()) || undefined);

      const imap = imapAs(CAROL, CAROL_PASSWORD);
      await imap.connect();
      try {
        const quota = await imap.getQuota("INBOX");
        assert.ok(quota && quota.storage, "GETQUOTAROOT answers");
        const maildirsize = fs.readFileSync(path.join(dataDir, "mail", DOMAIN, "carol", "Maildir", "maildirsize"), "utf8");
        const used = maildirsize
          .trim()
          .split("\n")
          .slice(1)
          .reduce((n, l) => n + Number(l.split(" ")[0]), 0);
        assert.equal(quota.storage.limit, CAROL_QUOTA, "Dovecot's limit is maild's");
        // GETQUOTAROOT counts in KiB (RFC 9208 5.1), imapflow multiplies by 1024
        assert.ok(Math.abs((quota.storage.usage ?? 0) - used) < 1024, `Dovecot's usage ${quota.storage.usage} is maild's figure ${used}`);
        assert.ok(used > CAROL_QUOTA);
        await assert.rejects(imap.append("INBOX", message(CAROL, CAROL, "append over quota")), "Dovecot refuses an APPEND over the quota");
        const lock = await imap.getMailboxLock("INBOX");
        try {
          await imap.messageDelete("1:2");
        } finally {
          lock.release();
        }
      } finally {
        await imap.logout();
      }
      // with room again, the peer's next retry is delivered: nothing was lost
      const md = path.join(dataDir, "mail", DOMAIN, "carol", "Maildir");
      const state = () =>
        `maildirsize:\n${fs.readFileSync(path.join(md, "maildirsize"), "utf8")}\nnew: ${fs.readdirSync(path.join(md, "new")).join(" ")}\ncur: ${fs.readdirSync(path.join(md, "cur")).join(" ")}\npeer: ${peer
          .log()
          .split("\n")
          .filter((l) => l.includes("carol@example.test"))
          .slice(-3)
          .join("\n")}\nmaild: ${JSON.stringify(maild.logs().slice(-5))}`;
      await until(
        () => `the kept message in carol's mailbox; ${state()}`,
        40_000,
        async () => {
          await flushPeer();
          const all = ["new", "cur"].flatMap((d) =>
            fs.readdirSync(path.join(md, d)).map((n) => fs.readFileSync(path.join(md, d, n), "latin1")),
          );
          return all.some((t) => t.includes(subjects[3])) || undefined;
        },
      );
      await peer.waitForEmptyQueue(10_000);
    });

    test("below the free-space reserve mail gets 452 4.3.1 and nothing is lost: the peer delivers once space is freed", async () => {
      const fillerPath = path.join(dataDir, "filler");
      const free = () => {
        const s = fs.statfsSync(dataDir);
        return s.bavail * s.bsize;
      };
      // leave less than the reserve free
      fs.writeFileSync(fillerPath, Buffer.alloc(free() - RESERVE_BYTES + 1024 * 1024));
      try {
        const c = await RawSmtp.connect(mx.ipv4, 25);
        await c.reply();
        await c.command("EHLO c.test");
        const r = await c.command("MAIL FROM:<bob@peer.test>");
        c.close();
        assert.equal(r.code, 452);
        assert.match(r.text, /^4\.3\.1 Insufficient system storage/);
        const subject = `while full ${randomBytes(3).toString("hex")}`;
        await peer.sendmail("bob@peer.test", [ALICE], message("bob@peer.test", ALICE, subject));
        await until("the peer's deferral", 20_000, () => /said: 452 4\.3\.1 Insufficient system storage/.test(peer.log()) || undefined);
        fs.unlinkSync(fillerPath);
        await flushPeer();
        await peer.waitForEmptyQueue(30_000);
        const md = path.join(dataDir, "mail", DOMAIN, "alice", "Maildir");
        const all = ["new", "cur"].flatMap((d) =>
          fs.readdirSync(path.join(md, d)).map((n) => fs.readFileSync(path.join(md, d, n), "latin1")),
        );
        assert.equal(all.filter((t) => t.includes(subject)).length, 1, "delivered once");
      } finally {
        fs.rmSync(fillerPath, { force: true });
      }
    });
  });

  describe("one login throttle for IMAP and SMTP AUTH", () => {
    const submitAuth = async (user: string, pass: string): Promise<number> => {
      const conn = new SMTPConnection({
        host: mx.ipv4,
        port: 587,
        requireTLS: true,
        servername: HOSTNAME,
        tls: { ca: certs.caPem },
        connectionTimeout: 10_000,
      });
      await new Promise<void>((resolve, reject) => {
        conn.once("error", reject);
        conn.connect(() => resolve());
      });
      try {
        return await new Promise<number>((resolve) =>
          conn.login({ user, pass }, (err) => resolve(err ? ((err as { responseCode?: number }).responseCode ?? 0) : 235)),
        );
      } finally {
        conn.quit();
      }
    };

    test("failures on IMAP (reported by Dovecot) and on SMTP AUTH add up and block the client on both", async () => {
      const before = events("imap.auth_failed").length;
      assert.equal(await curlImapLogin(attacker1, mx, ALICE, "guess 1"), false);
      assert.equal(await curlImapLogin(attacker1, mx, ALICE, "guess 2"), false);
      await until("Dovecot's two reports", 10_000, () => events("imap.auth_failed").length >= before + 2 || undefined);
      assert.equal(await swaksAuth(attacker1, mx, ALICE, "guess 3"), 535);
      // three failures from this address: blocked, the right password included, on both services
      assert.equal(await swaksAuth(attacker1, mx, ALICE, ALICE_PASSWORD), 454);
      assert.equal(await curlImapLogin(attacker1, mx, ALICE, ALICE_PASSWORD), false);
      assert.ok(events("imap.auth_blocked").some((l) => l.ip === attacker1.ipv4));
    });

    test("with the account under attack, new clients wait, the owner's address (known from IMAP) gets in on IMAP and SMTP", async () => {
      // a fourth failure on the account from a client it never saw: the account is blocked for new clients
      assert.equal(await curlImapLogin(attacker2, mx, ALICE, "guess 4"), false);
      await until("Dovecot's report", 10_000, () => events("imap.auth_failed").some((l) => l.ip === attacker2.ipv4) || undefined);
      assert.equal(await curlImapLogin(newcomer, mx, ALICE, ALICE_PASSWORD), false, "a new client waits");
      assert.ok(
        events("imap.auth_blocked").some((l) => l.ip === newcomer.ipv4 && l.login === ALICE),
        "Dovecot refused the right password because maild's throttle said so",
      );
      assert.equal(await swaksAuth(newcomer, mx, ALICE, ALICE_PASSWORD), 454);
      // the test process logged in over IMAP as alice earlier: its address is known to the account
      const imap = imapAs(ALICE, ALICE_PASSWORD);
      await imap.connect();
      await imap.logout();
      assert.equal(await submitAuth(ALICE, ALICE_PASSWORD), 235, "known from IMAP, let in on SMTP too");
    });

    test("after maild restarts, the owner still gets in and the block still holds", async () => {
      await maild.stop();
      const blockedBefore = events("imap.auth_blocked").length;
      await maild.restart();
      // a fresh throttle would let all three in: only the state on disk blocks them
      assert.equal(await curlImapLogin(newcomer, mx, ALICE, ALICE_PASSWORD), false);
      assert.ok(
        events("imap.auth_blocked")
          .slice(blockedBefore)
          .some((l) => l.ip === newcomer.ipv4),
      );
      assert.equal(await swaksAuth(attacker1, mx, ALICE, ALICE_PASSWORD), 454);
      const imap = imapAs(ALICE, ALICE_PASSWORD);
      await imap.connect();
      await imap.logout();
      assert.equal(await submitAuth(ALICE, ALICE_PASSWORD), 235);
    });
  });
});

describe("a flood of SMTP AUTH attempts", () => {
  let internet: LocalInternet;
  let mx: NetHost;
  let maild: MaildProcess;
  let certs: TestTls;

  before(async () => {
    internet = await LocalInternet.create();
    mx = await internet.addHost("mx");
    fs.chmodSync(internet.workDir, 0o711);
    certs = await makeTestTls(path.join(internet.workDir, "tls"), [HOSTNAME], "mx");
    fs.chmodSync(path.dirname(certs.keyPath), 0o755);
    fs.chmodSync(certs.keyPath, 0o644);
    const dataDir = path.join(internet.workDir, "data");
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.chownSync(dataDir, MAILD_UID, MAILD_GID);
    maild = await startMaild(
      internet,
      mx,
      {
        hostname: HOSTNAME,
        domains: [{ name: DOMAIN }],
        users: [{ address: ALICE, passwordHash: argon2idHash(ALICE_PASSWORD) }],
        aliases: [],
        tls: { certPath: certs.certPath, keyPath: certs.keyPath },
        dataDir,
        listen: { smtp: [{ host: mx.ipv4, port: 25 }], submission: [{ host: mx.ipv4, port: 587 }], submissions: [], http: [], https: [] },
        dnsServers: [mx.ipv4],
        // the password check itself is under test here, not the throttle in front of it
        submission: { maxFailuresPerIp: 100_000, maxFailuresPerAccount: 100_000 },
        limits: { maxConnectionsPerIp: 500 },
      },
      // No DNS in this test (dnsServers is this host, where nothing answers): the spam filter's
      // resolver answers NXDOMAIN at once instead of waiting for an upstream that never replies.
      { user: { uid: MAILD_UID, gid: MAILD_GID }, spamOptions: { upstreamDns: "none" } },
    );
  });

  after(async () => {
    await maild?.stop();
    await internet?.destroy();
  });

  test("beyond a bounded queue of password checks the answer is 454 at once, and mail on port 25 is accepted meanwhile", async (t) => {
    const attempt = async (): Promise<{ code: number; text: string }> => {
      const conn = new SMTPConnection({
        host: mx.ipv4,
        port: 587,
        requireTLS: true,
        servername: HOSTNAME,
        tls: { ca: certs.caPem },
        connectionTimeout: 30_000,
        socketTimeout: 60_000,
      });
      await new Promise<void>((resolve, reject) => {
        conn.once("error", reject);
        conn.connect(() => resolve());
      });
      try {
        return await new Promise((resolve) =>
          conn.login({ user: "nobody@example.test", pass: "guess" }, (err) => {
            const e = err as { responseCode?: number; response?: string } | null;
            resolve({ code: e?.responseCode ?? 235, text: e?.response ?? "" });
          }),
        );
      } finally {
        conn.quit();
      }
    };
    const flood = Promise.all(Array.from({ length: 80 }, attempt));
    // while the flood is being checked: an ordinary message on port 25
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const codes = await smtpCodes(mx.ipv4, [
      "EHLO c.test",
      "MAIL FROM:<>",
      `RCPT TO:<${ALICE}>`,
      "DATA",
      message("x@c.test", ALICE, "during the flood") + ".",
    ]);
    const ms = Date.now() - t0;
    assert.deepEqual(codes, [220, 250, 250, 250, 354, 250]);
    const results = await flood;
    const busy = results.filter((r) => r.code === 454);
    const checked = results.filter((r) => r.code === 535);
    assert.equal(busy.length + checked.length, 80, JSON.stringify(results.filter((r) => r.code !== 454 && r.code !== 535)));
    assert.ok(busy.length > 0, "some attempts found the queue full");
    assert.match(busy[0].text, /^454 4\.7\.0 Temporary authentication failure/);
    assert.ok(checked.length >= 32, `${checked.length} checked`);
    t.diagnostic(`message accepted in ${ms} ms during the flood; ${checked.length} checked, ${busy.length} refused 454`);
    assert.ok(ms < 3000, `the message took ${ms} ms during the flood`);
  });
});
