/**
 * A Postfix peer MTA for the local internet: Debian's postfix 3.7 run as `postfix -c DIR start-fg`
 * inside a namespace host, with its own main.cf/master.cf (no chroot), queue and log file.
 *
 * It relays every message it is handed by MX lookup through the namespace's resolver (knot), with
 * opportunistic or required TLS trusting a given CA. Optional milters on the same host:
 * opendkim (signs the peer's own mail and verifies incoming signatures) and opendmarc (SPF and DMARC
 * of incoming mail). With `receive`, it is also the final destination for its domains: every
 * recipient there lands in one Maildir (Postfix's virtual delivery agent), which `received()` reads.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, mustRun, type NetHost, type RunResult } from "./netns";
import { waitForPort } from "./wait-for-port";

export interface PostfixDkimOptions {
  /** signing domain (d=) */
  domain: string;
  selector: string;
  /** PEM private key (RSA or Ed25519) */
  privateKeyPem: string;
}

export interface PostfixOptions {
  myhostname: string;
  mydomain: string;
  /** PEM of a CA the SMTP client trusts for STARTTLS (e.g. the one that signed the daemon's certificate) */
  trustCaPem?: string;
  /** smtp_tls_security_level; default "may" (opportunistic, RFC 7435) */
  tlsSecurityLevel?: "none" | "may" | "encrypt" | "verify" | "secure";
  /** networks allowed to relay through this peer's smtpd, besides loopback and the host itself */
  relayFrom?: string[];
  /** port for the peer's own smtpd (mail submitted to it is relayed); default 25 */
  smtpdPort?: number;
  dkim?: PostfixDkimOptions;
  /** run opendmarc as a milter (adds Authentication-Results with dmarc=) */
  dmarc?: boolean;
  /** accept mail for these domains and store it (any local part) in one Maildir */
  receive?: { domains: string[] };
  /** certificate and key (PEM) for STARTTLS offered by the peer's smtpd */
  smtpdTls?: { certPem: string; keyPem: string };
  /** extra main.cf lines, `name = value` */
  extraMain?: Record<string, string>;
}

export interface PostfixPeer {
  host: NetHost;
  configDir: string;
  /** the maillog so far */
  log(): string;
  /** hand a message to the peer as its local sendmail would (it then relays by MX) */
  sendmail(from: string, to: string[], message: string): Promise<void>;
  /** resolve when the queue is empty (everything delivered or bounced); reject after timeoutMs */
  waitForEmptyQueue(timeoutMs?: number): Promise<void>;
  /** the messages delivered locally (with `receive`), oldest first, as stored (LF line ends) */
  received(): string[];
  /** `postqueue -j` records of what is still queued */
  queue(): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
  /** start again after stop(), same configuration and queue */
  start(): Promise<void>;
}

function masterCf(smtpdPort: number): string {
  // service type private unpriv chroot wakeup maxproc command
  const rows = [
    [String(smtpdPort), "inet", "n", "-", "n", "-", "-", "smtpd"],
    ["pickup", "unix", "n", "-", "n", "60", "1", "pickup"],
    ["cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"],
    ["qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"],
    ["tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"],
    ["rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"],
    ["bounce", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["defer", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["trace", "unix", "-", "-", "n", "-", "0", "bounce"],
    ["verify", "unix", "-", "-", "n", "-", "1", "verify"],
    ["flush", "unix", "n", "-", "n", "1000?", "0", "flush"],
    ["proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"],
    ["proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"],
    ["smtp", "unix", "-", "-", "n", "-", "-", "smtp"],
    ["relay", "unix", "-", "-", "n", "-", "-", "smtp"],
    ["showq", "unix", "n", "-", "n", "-", "-", "showq"],
    ["error", "unix", "-", "-", "n", "-", "-", "error"],
    ["retry", "unix", "-", "-", "n", "-", "-", "error"],
    ["discard", "unix", "-", "-", "n", "-", "-", "discard"],
    ["local", "unix", "-", "n", "n", "-", "-", "local"],
    ["virtual", "unix", "-", "n", "n", "-", "-", "virtual"],
    ["anvil", "unix", "-", "-", "n", "-", "1", "anvil"],
    ["scache", "unix", "-", "-", "n", "-", "1", "scache"],
    ["postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"],
  ];
  return rows.map((r) => r.join("\t")).join("\n") + "\n";
}

export function postfixMainCf(host: NetHost, dir: string, opts: PostfixOptions, milters: string[]): string {
  const settings: Record<string, string> = {
    compatibility_level: "3.6",
    queue_directory: path.join(dir, "queue"),
    data_directory: path.join(dir, "data"),
    mail_owner: "postfix",
    myhostname: opts.myhostname,
    mydomain: opts.mydomain,
    myorigin: "$mydomain",
    // Nothing is local: every message is relayed by MX.
    mydestination: "",
    local_recipient_maps: "",
    alias_maps: "",
    alias_database: "",
    inet_interfaces: `127.0.0.1, ${host.ipv4}, ${host.ipv6}`,
    inet_protocols: "all",
    mynetworks: ["127.0.0.0/8", "[::1]/128", `${host.ipv4}/32`, `[${host.ipv6}]/128`, ...(opts.relayFrom ?? [])].join(" "),
    smtpd_relay_restrictions: "permit_mynetworks, reject_unauth_destination",
    relayhost: "",
    maillog_file: path.join(dir, "maillog"),
    maillog_file_prefixes: dir,
    smtp_tls_security_level: opts.tlsSecurityLevel ?? "may",
    smtp_tls_loglevel: "1",
    smtp_tls_CAfile: opts.trustCaPem ? path.join(dir, "trusted-ca.pem") : "",
    biff: "no",
    append_dot_mydomain: "no",
    // Tests see a deferral retried within seconds, not the default minutes. A deferred queue file
    // is due once its time stamp is at most a second ahead (src/qmgr/qmgr_active.c,
    // qmgr_active_feed); with a backoff of 1 s the next scan may find it still locked by the
    // delivery that deferred it, and such a file is set 60 s ahead in the incoming queue
    // (qmgr_active_defer(..., MAIL_QUEUE_INCOMING, 60)), which is scanned again only for new mail
    // or qmgr's wakeup (300 s in master.cf): a backoff of 3 s or more avoids that.
    queue_run_delay: "1s",
    minimal_backoff_time: "3s",
    maximal_backoff_time: "4s",
    smtpd_milters: milters.join(", "),
    non_smtpd_milters: milters.join(", "),
    milter_default_action: "tempfail",
    ...(opts.receive
      ? {
          virtual_mailbox_domains: opts.receive.domains.join(" "),
          virtual_mailbox_base: path.join(dir, "vmail"),
          // every address of those domains -> one Maildir (the trailing slash selects Maildir)
          virtual_mailbox_maps: "static:inbox/",
          virtual_uid_maps: "static:65534",
          virtual_gid_maps: "static:65534",
          virtual_minimum_uid: "1",
        }
      : {}),
    ...(opts.smtpdTls
      ? {
          smtpd_tls_security_level: "may",
          smtpd_tls_cert_file: path.join(dir, "smtpd-cert.pem"),
          smtpd_tls_key_file: path.join(dir, "smtpd-key.pem"),
          smtpd_tls_loglevel: "1",
        }
      : {}),
    ...opts.extraMain,
  };
  return (
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join("\n") + "\n"
  );
}

async function startOpendkim(host: NetHost, dir: string, dkim: PostfixDkimOptions, resolver: string): Promise<void> {
  if (!fs.existsSync("/usr/sbin/opendkim"))
    throw new Error('startPostfix: /usr/sbin/opendkim not found; install the Debian package "opendkim"');
  const keyPath = path.join(dir, "dkim.key");
  fs.writeFileSync(keyPath, dkim.privateKeyPem, { mode: 0o600 });
  // libunbound would answer test. and the documentation reverse zones NXDOMAIN itself.
  fs.writeFileSync(
    path.join(dir, "unbound.conf"),
    `server:\n  local-zone: "test." nodefault\n  local-zone: "100.51.198.in-addr.arpa." nodefault\n  do-not-query-localhost: no\nforward-zone:\n  name: "."\n  forward-addr: ${resolver}\n`,
  );
  fs.writeFileSync(
    path.join(dir, "opendkim.conf"),
    [
      "Syslog no",
      "Mode sv",
      `Domain ${dkim.domain}`,
      `Selector ${dkim.selector}`,
      `KeyFile ${keyPath}`,
      "Canonicalization relaxed/relaxed",
      "Socket inet:8891@127.0.0.1",
      `PidFile ${path.join(dir, "opendkim.pid")}`,
      "RequireSafeKeys no",
      "AlwaysAddARHeader yes",
      `AuthservID ${host.name}`,
      `ResolverConfiguration ${path.join(dir, "unbound.conf")}`,
      "",
    ].join("\n"),
  );
  const child = host.spawn(["/usr/sbin/opendkim", "-f", "-x", path.join(dir, "opendkim.conf")], {
    logFile: path.join(dir, "opendkim.log"),
  });
  await probeInside(host, 8891, "opendkim", child);
}

async function startOpendmarc(host: NetHost, dir: string): Promise<void> {
  if (!fs.existsSync("/usr/sbin/opendmarc"))
    throw new Error('startPostfix: /usr/sbin/opendmarc not found; install the Debian package "opendmarc"');
  fs.writeFileSync(
    path.join(dir, "opendmarc.conf"),
    [
      "Socket inet:8893@127.0.0.1",
      `PidFile ${path.join(dir, "opendmarc.pid")}`,
      `AuthservID ${host.name}`,
      "Syslog false",
      "SPFSelfValidate true",
      "IgnoreAuthenticatedClients true",
      "RejectFailures false",
      "",
    ].join("\n"),
  );
  const child = host.spawn(["/usr/sbin/opendmarc", "-f", "-c", path.join(dir, "opendmarc.conf")], {
    logFile: path.join(dir, "opendmarc.log"),
  });
  await probeInside(host, 8893, "opendmarc", child);
}

/** Probe a port on the namespace's own loopback (unreachable from the test process). */
async function probeInside(host: NetHost, port: number, what: string, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await host.run(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
    if (r.code === 0) return;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before listening on 127.0.0.1:${port}`);
    if (Date.now() > deadline) throw new Error(`${what}: nothing listening on 127.0.0.1:${port} in ${host.name} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

export async function startPostfix(internet: LocalInternet, host: NetHost, opts: PostfixOptions): Promise<PostfixPeer> {
  for (const [bin, pkg] of [
    ["/usr/sbin/postfix", "postfix"],
    ["/usr/lib/postfix/sbin/master", "postfix"],
  ]) {
    if (!fs.existsSync(bin)) throw new Error(`startPostfix: ${bin} not found; install the Debian package "${pkg}"`);
  }
  fs.chmodSync(internet.workDir, 0o711);
  const dir = fs.mkdtempSync(path.join(internet.workDir, `postfix-${host.name}-`));
  fs.chmodSync(dir, 0o755);
  const resolver = fs.readFileSync(`/etc/netns/${host.ns}/resolv.conf`, "utf8").match(/nameserver\s+(\S+)/)?.[1] ?? "127.0.0.1";
  const milters: string[] = [];
  if (opts.dkim) {
    await startOpendkim(host, dir, opts.dkim, resolver);
    milters.push("inet:127.0.0.1:8891");
  }
  if (opts.dmarc) {
    await startOpendmarc(host, dir);
    milters.push("inet:127.0.0.1:8893");
  }
  if (opts.trustCaPem) fs.writeFileSync(path.join(dir, "trusted-ca.pem"), opts.trustCaPem);
  if (opts.smtpdTls) {
    fs.writeFileSync(path.join(dir, "smtpd-cert.pem"), opts.smtpdTls.certPem);
    fs.writeFileSync(path.join(dir, "smtpd-key.pem"), opts.smtpdTls.keyPem, { mode: 0o600 });
  }
  const inbox = path.join(dir, "vmail", "inbox");
  if (opts.receive) {
    fs.mkdirSync(path.join(dir, "vmail"), { mode: 0o755 });
    await mustRun(["chown", "65534:65534", path.join(dir, "vmail")]);
  }
  fs.writeFileSync(path.join(dir, "main.cf"), postfixMainCf(host, dir, opts, milters));
  fs.writeFileSync(path.join(dir, "master.cf"), masterCf(opts.smtpdPort ?? 25));
  const logPath = path.join(dir, "maillog");
  const readLog = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8") : "");

  // `postfix check` creates the queue directories; run inside the namespace like the server.
  fs.mkdirSync(path.join(dir, "queue"), { mode: 0o755 });
  fs.mkdirSync(path.join(dir, "data"), { mode: 0o755 });
  await mustRun(["chown", "postfix:postfix", path.join(dir, "data")]);
  // Without syslog, postfix prints its complaints only to a terminal: give it one with script(1).
  const check = await host.run(["script", "-qec", `/usr/sbin/postfix -c ${dir} check`, "/dev/null"]);
  if (check.code !== 0) throw new Error(`postfix check -c ${dir} failed: ${check.stderr || check.stdout}\n${readLog()}`);
  let child: ChildProcess;
  const launch = async () => {
    child = host.spawn(["/usr/sbin/postfix", "-c", dir, "start-fg"], { logFile: path.join(dir, "start-fg.log") });
    try {
      await waitForPort(host.ipv4, opts.smtpdPort ?? 25, "postfix", 15_000, () => child.exitCode === null && child.signalCode === null);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${readLog()}\n${fs.readFileSync(path.join(dir, "start-fg.log"), "utf8")}`);
    }
  };
  await launch();

  const run = (argv: string[], input?: string): Promise<RunResult> => host.run(argv, { input, env: { ...process.env, MAIL_CONFIG: dir } });
  const queue = async () => {
    const r = await run(["/usr/sbin/postqueue", "-c", dir, "-j"]);
    if (r.code !== 0) throw new Error(`postqueue -j: ${r.stderr}`);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return {
    host,
    configDir: dir,
    log: readLog,
    async sendmail(from, to, message) {
      const r = await run(["/usr/sbin/sendmail", "-C", dir, "-i", "-f", from, "--", ...to], message);
      if (r.code !== 0) throw new Error(`sendmail via ${host.name}: exit ${r.code}: ${r.stderr}`);
    },
    received() {
      const out: { name: string; text: string }[] = [];
      for (const sub of ["new", "cur"]) {
        const d = path.join(inbox, sub);
        if (!fs.existsSync(d)) continue;
        for (const name of fs.readdirSync(d)) out.push({ name, text: fs.readFileSync(path.join(d, name), "latin1") });
      }
      // Maildir names start with the delivery time in seconds, then a sequence: sort by them
      return out.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true })).map((m) => m.text);
    },
    queue,
    async waitForEmptyQueue(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const q = await queue();
        if (q.length === 0) return;
        if (Date.now() > deadline)
          throw new Error(`postfix on ${host.name}: queue not empty after ${timeoutMs} ms: ${JSON.stringify(q)}\n${readLog()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      await run(["/usr/sbin/postfix", "-c", dir, "stop"]);
      await LocalInternet.stopProcess(child);
    },
    start: launch,
  };
}
