/**
 * Dovecot for tests: the box's own generated configuration (server-bootstrap/dovecot/) run with
 * `dovecot -F -c <conf>` inside a namespace host, with base_dir/state_dir in a temp directory.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, mustRun, type NetHost } from "./netns";
import { waitForPort } from "./wait-for-port";
import { dovecotAuthPolicySecrets, dovecotConf } from "../../server-bootstrap/dovecot/dovecot-conf";
import { passwdFile, type PasswdFileUser } from "../../server-bootstrap/dovecot/passwd-file";
import { MAIL_PORTS } from "../../components/shared/mail-ports";
import { LEARN_HAM_FILE, LEARN_HAM_SIEVE, LEARN_SPAM_FILE, LEARN_SPAM_SIEVE, learnerScript } from "../../server-bootstrap/spam/learn";

export interface DovecotServer {
  host: NetHost;
  confPath: string;
  passwdPath: string;
  logPath: string;
  /** the log so far, for failure messages */
  log(): string;
  stop(): Promise<void>;
}

export interface DovecotOptions {
  /** the daemon's data directory (mail under <dataDir>/mail/<domain>/<local>/Maildir) */
  dataDir: string;
  users: PasswdFileUser[];
  tls: { certPath: string; keyPath: string };
  /** the account Dovecot's mail processes run as (the mail group's); default nobody/nogroup (65534) */
  uid?: number;
  gid?: number;
  ports?: { imap: number; imaps: number };
  /**
   * Learning from moves into and out of Junk, as on the box: the Sieve scripts (compiled with
   * sievec, as the install script does), the learner and Dovecot's learn services.
   */
  learning?: { learnSocket: string; rspamdUser: string; mailUser: string };
  /** maild's auth policy endpoint (http://127.0.0.1:<port>/) and its key, as a deploy writes them */
  authPolicy?: { url: string; apiKey: string; nonce: string };
}

export async function startDovecot(internet: LocalInternet, host: NetHost, opts: DovecotOptions): Promise<DovecotServer> {
  for (const bin of ["/usr/sbin/dovecot", "/usr/lib/dovecot/imap-login"]) {
    if (!fs.existsSync(bin)) throw new Error(`startDovecot: ${bin} not found; install the Debian package "dovecot-imapd"`);
  }
  const uid = opts.uid ?? 65534;
  const gid = opts.gid ?? 65534;
  // Dovecot's unprivileged processes (dovenull, dovecot, the mail uid) must traverse to their files.
  fs.chmodSync(internet.workDir, 0o711);
  const dir = fs.mkdtempSync(path.join(internet.workDir, `dovecot-${host.name}-`));
  fs.chmodSync(dir, 0o755);
  const confPath = path.join(dir, "dovecot.conf");
  const passwdPath = path.join(dir, "passwd");
  const logPath = path.join(dir, "dovecot.log");
  fs.writeFileSync(passwdPath, passwdFile(opts.users, { dataDir: opts.dataDir, uid, gid }), { mode: 0o644 });
  let learning;
  if (opts.learning) {
    if (!fs.existsSync("/usr/bin/sievec"))
      throw new Error('startDovecot: /usr/bin/sievec not found; install the Debian package "dovecot-sieve"');
    const sieveDir = path.join(dir, "sieve");
    fs.mkdirSync(sieveDir, { mode: 0o755 });
    fs.writeFileSync(path.join(sieveDir, LEARN_SPAM_FILE), LEARN_SPAM_SIEVE);
    fs.writeFileSync(path.join(sieveDir, LEARN_HAM_FILE), LEARN_HAM_SIEVE);
    const learner = path.join(dir, "rspamd-learn");
    fs.writeFileSync(learner, learnerScript({ learnSocket: opts.learning.learnSocket }), { mode: 0o755 });
    learning = { sieveDir, learner, rspamdUser: opts.learning.rspamdUser, mailUser: opts.learning.mailUser };
  }
  fs.writeFileSync(
    confPath,
    dovecotConf({
      dataDir: opts.dataDir,
      passwdFilePath: passwdPath,
      tls: opts.tls,
      uid,
      gid,
      listen: [host.ipv4, host.ipv6],
      ports: opts.ports,
      ...(opts.authPolicy ? { authPolicy: { url: opts.authPolicy.url, secretsPath: path.join(dir, "auth-policy.conf") } } : {}),
      baseDir: path.join(dir, "run"),
      stateDir: path.join(dir, "state"),
      logPath,
      ...(learning ? { learning } : {}),
    }),
  );
  if (opts.authPolicy) {
    fs.writeFileSync(path.join(dir, "auth-policy.conf"), dovecotAuthPolicySecrets(opts.authPolicy.apiKey, opts.authPolicy.nonce), {
      mode: 0o600,
    });
  }
  if (learning) {
    // sievec needs the configuration's Sieve plugins: it reads the same dovecot.conf.
    for (const f of [LEARN_SPAM_FILE, LEARN_HAM_FILE]) await mustRun(["/usr/bin/sievec", "-c", confPath, path.join(learning.sieveDir, f)]);
  }
  fs.mkdirSync(path.join(dir, "state"), { recursive: true });
  const child: ChildProcess = host.spawn(["/usr/sbin/dovecot", "-F", "-c", confPath], { logFile: path.join(dir, "stdout.log") });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const readLog = () => [logPath, path.join(dir, "stdout.log")].map((f) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "")).join("");
  try {
    await waitForPort(host.ipv4, opts.ports?.imaps ?? MAIL_PORTS.imaps.port, "dovecot", 10_000, alive);
    await waitForPort(host.ipv4, opts.ports?.imap ?? MAIL_PORTS.imap.port, "dovecot", 10_000, alive);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${readLog()}`);
  }
  return {
    host,
    confPath,
    passwdPath,
    logPath,
    log: readLog,
    stop: () => LocalInternet.stopProcess(child),
  };
}
