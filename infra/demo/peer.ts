// The rest of the internet, in the demo: one mail domain served by Debian's Postfix on the peer
// host (infra/local-internet/postfix.ts), set up the way a careful operator runs it:
// - opendkim signs its own mail and verifies incoming signatures, opendmarc checks SPF (itself)
//   and DMARC; both write Authentication-Results (RFC 8601) into what it receives;
// - postfix-mta-sts-resolver (`mta-sts-daemon`) hands Postfix each destination's MTA-STS policy
//   (RFC 8461), so mail to an `enforce` domain needs a verified certificate for a listed MX;
// - smtpd offers STARTTLS with a certificate of its own (opportunistic, RFC 7435);
// - mail for its domain is delivered locally into one user's Maildir.
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, runCommand, type NetHost } from "../local-internet/netns";
import { startPostfix, type PostfixPeer } from "../local-internet/postfix";
import { makeTestTls } from "../local-internet/test-tls";

export const PEER_DOMAIN = "peer.test";
export const PEER_HOSTNAME = "mx.peer.test";
export const PEER_USER = "carol@peer.test";
export const PEER_DKIM_SELECTOR = "peer1";
/** socketmap table Postfix asks the MTA-STS resolver (its documented default address) */
export const MTA_STS_SOCKETMAP = "socketmap:inet:127.0.0.1:8461:postfix";

/** nobody:nogroup: Postfix's local(8) writes alias file deliveries as default_privs */
const DEFAULT_PRIVS_UID = 65534;

export interface PeerDkimKey {
  selector: string;
  privateKeyPem: string;
  /** base64 SPKI DER, the DKIM record's p= (RFC 6376 3.6.1) */
  publicKeyB64: string;
}

export function peerDkimKey(): PeerDkimKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    selector: PEER_DKIM_SELECTOR,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyB64: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
  };
}

export interface DeliveredMessage {
  file: string;
  source: string;
}

export interface MailPeer {
  host: NetHost;
  domain: string;
  hostname: string;
  /** the peer's mailbox the demo sends to */
  user: string;
  maildir: string;
  postfix: PostfixPeer;
  /** the MTA-STS resolver's log */
  mtaStsLogPath: string;
  /** messages in the user's Maildir */
  delivered(): DeliveredMessage[];
  /** what the MTA-STS resolver tells Postfix for a destination domain ("" for no policy) */
  mtaStsPolicy(domain: string): Promise<string>;
  stop(): Promise<void>;
}

export interface StartPeerOptions {
  dkim: PeerDkimKey;
  /** PEM the peer trusts when a policy asks for a verified certificate (the ACME CA's root) */
  trustRootPem: string;
}

async function waitInside(host: NetHost, port: number, what: string, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await host.run(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
    if (r.code === 0) return;
    const log = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8").slice(-2000) : "");
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited before listening on 127.0.0.1:${port}:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`${what}: nothing listening on 127.0.0.1:${port} in ${host.name} after 15 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPeer(internet: LocalInternet, host: NetHost, opts: StartPeerOptions): Promise<MailPeer> {
  if (!fs.existsSync("/usr/bin/mta-sts-daemon")) {
    throw new Error('/usr/bin/mta-sts-daemon not found; install the Debian package "postfix-mta-sts-resolver"');
  }
  fs.chmodSync(internet.workDir, 0o711);
  const dir = fs.mkdtempSync(path.join(internet.workDir, "peer-"));
  fs.chmodSync(dir, 0o755);

  // The resolver fetches https://mta-sts.<domain>/ with Python's default TLS context, which takes
  // its trust anchors from SSL_CERT_FILE.
  const bundle = path.join(dir, "trusted-roots.pem");
  fs.writeFileSync(bundle, opts.trustRootPem);
  const config = path.join(dir, "mta-sts-daemon.yml");
  fs.writeFileSync(
    config,
    [
      "host: 127.0.0.1",
      "port: 8461",
      "reuse_port: true",
      "shutdown_timeout: 5",
      "cache:",
      "  type: internal",
      "  options:",
      "    cache_size: 1000",
      "default_zone:",
      "  strict_testing: false",
      "  timeout: 4",
      "",
    ].join("\n"),
  );
  const mtaStsLogPath = path.join(dir, "mta-sts-daemon.log");
  const resolver = host.spawn(["/usr/bin/mta-sts-daemon", "-c", config, "-v", "info"], {
    env: { ...process.env, SSL_CERT_FILE: bundle },
    logFile: mtaStsLogPath,
  });
  await waitInside(host, 8461, "mta-sts-daemon", resolver, mtaStsLogPath);

  const local = PEER_USER.split("@")[0];
  const maildir = path.join(dir, "mail", local, "Maildir");
  fs.mkdirSync(path.dirname(maildir), { recursive: true, mode: 0o755 });
  fs.chownSync(path.dirname(maildir), DEFAULT_PRIVS_UID, DEFAULT_PRIVS_UID);
  const tls = await makeTestTls(path.join(dir, "tls"), [PEER_HOSTNAME], "peer");

  const postfix = await startPostfix(internet, host, {
    myhostname: PEER_HOSTNAME,
    mydomain: PEER_DOMAIN,
    trustCaPem: opts.trustRootPem,
    dkim: { domain: PEER_DOMAIN, selector: opts.dkim.selector, privateKeyPem: opts.dkim.privateKeyPem },
    dmarc: true,
    extraMain: {
      // Its own domain is local: the one user's mail goes to a Maildir (a trailing "/" in an
      // alias target means Maildir, local(8)); any other local part is refused at RCPT.
      mydestination: PEER_DOMAIN,
      alias_maps: `inline:{ ${local}=${maildir}/ }`,
      local_recipient_maps: "$alias_maps",
      smtpd_tls_cert_file: tls.certPath,
      smtpd_tls_key_file: tls.keyPath,
      smtpd_tls_security_level: "may",
      smtpd_tls_loglevel: "1",
      smtpd_tls_received_header: "yes",
      smtp_tls_policy_maps: MTA_STS_SOCKETMAP,
    },
  });

  return {
    host,
    domain: PEER_DOMAIN,
    hostname: PEER_HOSTNAME,
    user: PEER_USER,
    maildir,
    postfix,
    mtaStsLogPath,
    delivered() {
      return ["new", "cur"].flatMap((sub) => {
        const d = path.join(maildir, sub);
        if (!fs.existsSync(d)) return [];
        return fs.readdirSync(d).map((f) => ({ file: path.join(d, f), source: fs.readFileSync(path.join(d, f), "latin1") }));
      });
    },
    async mtaStsPolicy(domain) {
      const r = await host.run(["/usr/sbin/postmap", "-c", postfix.configDir, "-q", domain, MTA_STS_SOCKETMAP]);
      // postmap exits 1 when the table has no entry: no policy for that domain
      if (r.code !== 0 && r.code !== 1) throw new Error(`postmap -q ${domain} ${MTA_STS_SOCKETMAP}: ${r.stderr.trim()}`);
      return r.stdout.trim();
    },
    async stop() {
      // Everything on the peer at once: Postfix, the resolver, and the milters the harness started
      // with Postfix (it would stop those only with the namespace; opendkim takes seconds to exit).
      const running = await runCommand(["ip", "netns", "pids", host.ns]);
      for (const pid of running.stdout.split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGTERM");
        } catch {
          /* already gone */
        }
      }
      await Promise.all([postfix.stop(), LocalInternet.stopProcess(resolver)]);
    },
  };
}
