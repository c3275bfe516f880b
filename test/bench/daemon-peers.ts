/**
 * The stacks a user would otherwise run instead of maild, for the daemon benchmark: Postfix doing
 * the same verification maild does (SPF, DKIM and DMARC on every message), in the two ways
 * self-hosted mail servers wire it up. Both run on the local internet's harnesses (postfix.ts,
 * spam-filter.ts) inside one namespace host each, so the host's PSS and CPU are the whole stack's.
 *
 * - Postfix + rspamd as a milter, as docker-mailserver does it (target/rspamd/local.d/
 *   worker-proxy.inc and worker-normal.inc at docker-mailserver 9d612c2: the proxy worker in milter
 *   mode scans the message itself, `self_scan`, two of them; no normal worker), mailcow alike. rspamd
 *   runs on exactly maild's rspamd configuration (server-bootstrap/spam/rspamd-conf.ts through the
 *   spam-filter harness: same modules, Redis, unbound as its resolver), with only the workers
 *   changed, so the difference measured is the MTA and how it talks to rspamd.
 * - Postfix + OpenDKIM + OpenDMARC + postfix-policyd-spf-python, the Debian packages Mail-in-a-Box
 *   and most how-tos use (Mail-in-a-Box itself lets OpenDMARC check SPF, `SPFSelfValidate`;
 *   here the policy service checks it at RCPT and OpenDMARC reads its Received-SPF header, so SPF
 *   is checked once, as maild has rspamd check it once). A local unbound caches DNS for all three
 *   (Mail-in-a-Box runs a local caching resolver too), as maild's rspamd asks its local unbound.
 *
 * Both log, through Postfix's header checks, the verification results the filters added to each
 * message, so the benchmark can count the messages whose SPF, DKIM and DMARC all passed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes, generateKeyPairSync } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, mustRun, type NetHost } from "../../infra/local-internet/netns";
import { startPostfix, type PostfixPeer } from "../../infra/local-internet/postfix";
import { PERMISSIVE_SPAM_SETTINGS, startDeployedSpamFilter, type SpamFilter } from "../../infra/local-internet/spam-filter";
import { rspamdLocalFiles } from "../../server-bootstrap/spam/rspamd-conf";
import { redisConf } from "../../server-bootstrap/spam/redis-conf";
import { unboundConf } from "../../server-bootstrap/spam/unbound-conf";
import { rspamdPasswordHash, RSPAMD_SALT_BYTES } from "../../components/rspamd-password";

/** Postfix as the benchmark's receiving MX: delivery to `discard:` after the queue file is fsynced. */
export function benchPostfixMain(domain: string): Record<string, string> {
  return {
    relay_domains: domain,
    relay_transport: "discard:",
    default_transport: "discard:",
    // All the load comes from one address (a busy MX sees many): no per-client limits from anvil
    // (connections at once, default 50; new connections and messages per minute), as maild's
    // limits are raised for the benchmark. 0 turns each off (postconf(5)).
    smtpd_client_connection_count_limit: "0",
    smtpd_client_connection_rate_limit: "0",
    smtpd_client_message_rate_limit: "0",
  };
}

export interface RunningPeer {
  /** messages Postfix accepted and delivered to discard: (each was fsynced in its queue first) */
  stored(): number;
  /** messages whose SPF, DKIM and DMARC all passed, by the results the filters added */
  verified(): number;
  /** the logs worth keeping (BENCH_KEEP_LOGS) */
  logFiles(): string[];
  stop(): Promise<void>;
}

/**
 * Header checks that log each filter's verdict (regexp_table(5): nested if/endif; cleanup logs a
 * WARN with the queue id and the text after WARN). The logged header itself is cut at 200
 * characters (cleanup_act_log), so the tag says what matched.
 */
const VERDICT_CHECKS = `if /^Authentication-Results:/
if /dkim=pass/
if /spf=pass/
/dmarc=pass/ WARN bench-all-pass
endif
endif
/dkim=pass/ WARN bench-dkim-pass
/dmarc=pass/ WARN bench-dmarc-pass
endif
/^Received-SPF: Pass/ WARN bench-spf-pass
`;

/**
 * Messages with every result passed (one header with all three, or one of each kind), from the
 * verdict tags the header checks logged. A queue id names one message from cleanup until qmgr logs
 * it "removed"; Postfix may give the same id to a later message (it is made of the time and the
 * queue file's inode), so each message's tags are judged when it is removed.
 */
export function countVerified(maillog: string): number {
  const open = new Map<string, Set<string>>();
  let n = 0;
  const judge = (tags: Set<string> | undefined) => {
    if (tags && (tags.has("all") || (tags.has("dkim") && tags.has("dmarc") && tags.has("spf")))) n++;
  };
  for (const line of maillog.split("\n")) {
    // cleanup logs "<id>: warning: header ..." for header_checks, "<id>: milter-header-warning: header ..." for milter_header_checks
    const tag = / ([0-9A-F]{6,}): (?:milter-header-)?warning: header .*: bench-([a-z]+)-pass$/.exec(line);
    if (tag) {
      const tags = open.get(tag[1]) ?? new Set<string>();
      tags.add(tag[2]);
      open.set(tag[1], tags);
      continue;
    }
    const removed = / ([0-9A-F]{6,}): removed$/.exec(line);
    if (removed) {
      judge(open.get(removed[1]));
      open.delete(removed[1]);
    }
  }
  for (const tags of open.values()) judge(tags);
  return n;
}

function countSent(peer: PostfixPeer): number {
  return (peer.log().match(/ status=sent \(/g) ?? []).length;
}

/**
 * Runs `stop` (a server's own shutdown); if it has not finished after `ms`, ends every process
 * of the host (emptyNamespace), which also ends a shutdown that waits on one of them.
 */
export async function stopWithin(host: NetHost, stop: () => Promise<void>, ms = 20_000): Promise<void> {
  const stopping = stop();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([stopping.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
  await emptyNamespace(host);
  await stopping;
}

/** Every process still in the namespace once the servers were asked to stop: SIGTERM, then SIGKILL, each by its pid. */
export async function emptyNamespace(host: NetHost, graceMs = 5000): Promise<void> {
  const pids = async () => {
    const out = await mustRun(["ip", "netns", "pids", host.ns]);
    return out.split("\n").filter(Boolean).map(Number);
  };
  const deadline = Date.now() + graceMs;
  let signal: NodeJS.Signals = "SIGTERM";
  for (let left = await pids(); left.length > 0; left = await pids()) {
    if (Date.now() > deadline) signal = "SIGKILL";
    for (const pid of left) {
      try {
        process.kill(pid, signal);
      } catch {
        /* gone meanwhile */
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** rspamd's files as maild's spam filter has them (startSpamFilter), with the workers docker-mailserver runs. */
async function startRspamdMilter(net: LocalInternet, host: NetHost, dnsServer: string): Promise<SpamFilter> {
  fs.chmodSync(net.workDir, 0o711);
  const dir = fs.mkdtempSync(path.join(net.workDir, `rspamd-milter-${host.name}-`));
  fs.chmodSync(dir, 0o755);
  const files = {
    rspamdConfDir: path.join(dir, "etc"),
    redisConf: path.join(dir, "redis.conf"),
    redisDataDir: path.join(dir, "redis"),
    unboundConf: path.join(dir, "unbound-mailstack.conf"),
    learnSocket: path.join(dir, "run", "learn.sock"),
    rspamdDbDir: path.join(dir, "db"),
    rspamdLogDir: path.join(dir, "log"),
  };
  const controllerPassword = randomBytes(18).toString("base64url");
  const local = rspamdLocalFiles({
    settings: PERMISSIVE_SPAM_SETTINGS,
    controllerPasswordHash: rspamdPasswordHash(controllerPassword, randomBytes(RSPAMD_SALT_BYTES)),
    learnSocket: files.learnSocket,
    controllerTcp: "localhost:11334",
    rspamdUser: "_rspamd",
    redis: "127.0.0.1:6379",
    dnsServer: "127.0.0.1:53",
    maxMessageBytes: 50 * 1024 * 1024,
  });
  // docker-mailserver's workers (see the header). The proxy takes 127.0.0.1:11333, the normal
  // worker's port, because that is where the spam-filter harness waits for rspamd to answer.
  local["local.d/worker-normal.inc"] = "enabled = false;\n";
  local["local.d/worker-proxy.inc"] = `bind_socket = "127.0.0.1:11333";
milter = yes;
timeout = 120s;
upstream "local" {
  default = yes;
  self_scan = yes;
}
count = 2;
max_retries = 5;
discard_on_reject = false;
quarantine_on_reject = false;
spam_header = "X-Spam";
`;
  for (const [rel, content] of Object.entries(local)) {
    fs.mkdirSync(path.dirname(path.join(files.rspamdConfDir, rel)), { recursive: true });
    fs.writeFileSync(path.join(files.rspamdConfDir, rel), content);
  }
  fs.writeFileSync(path.join(dir, "redis-base.conf"), "# stands in for Debian's /etc/redis/redis.conf\n");
  fs.writeFileSync(files.redisConf, redisConf({ dir: files.redisDataDir, dataDir: dir, debianConf: path.join(dir, "redis-base.conf") }));
  fs.writeFileSync(files.unboundConf, unboundConf());
  return startDeployedSpamFilter(net, host, files, { settings: PERMISSIVE_SPAM_SETTINGS, controllerPassword, upstreamDns: dnsServer });
}

/**
 * Postfix with rspamd as its milter (docker-mailserver's Postfix settings for it: target/postfix/main.cf).
 * `main` replaces the receiving-MX settings (benchPostfixMain), e.g. with a forwarding alias.
 */
export async function startPostfixRspamd(
  net: LocalInternet,
  host: NetHost,
  o: { domain: string; dnsServer: string; main?: Record<string, string> },
): Promise<RunningPeer> {
  const spam = await startRspamdMilter(net, host, o.dnsServer);
  const checksFile = path.join(spam.dir, "verdict-checks.regexp");
  fs.writeFileSync(checksFile, VERDICT_CHECKS);
  const peer = await startPostfix(net, host, {
    myhostname: `postfix.${o.domain}`,
    mydomain: o.domain,
    extraMain: {
      ...(o.main ?? benchPostfixMain(o.domain)),
      smtpd_milters: "inet:127.0.0.1:11333",
      milter_protocol: "6",
      milter_mail_macros: "i {mail_addr} {client_addr} {client_name} {auth_authen}",
      milter_header_checks: `regexp:${checksFile}`,
    },
  });
  return {
    stored: () => countSent(peer),
    verified: () => countVerified(peer.log()),
    logFiles: () => [path.join(peer.configDir, "maillog"), path.join(spam.dir, "log", "rspamd.log")],
    async stop() {
      await stopWithin(host, async () => {
        await peer.stop();
        await spam.stop();
      });
    },
  };
}

/**
 * unbound as the host's own caching resolver (the box's settings, forwarding to the local internet's
 * DNS), on loopback and on the host's address (for OpenDKIM: see startOpendkim).
 */
async function startLocalResolver(net: LocalInternet, host: NetHost, dnsServer: string): Promise<ChildProcess> {
  const dir = fs.mkdtempSync(path.join(net.workDir, `unbound-${host.name}-`));
  fs.chmodSync(dir, 0o755);
  const conf = path.join(dir, "unbound.conf");
  fs.writeFileSync(path.join(dir, "unbound-mailstack.conf"), unboundConf());
  // As spam-filter.ts runs it: no root to resolve from, unsigned test zones, no daemon of its own.
  fs.writeFileSync(
    conf,
    `server:
  directory: "${dir}"
  username: ""
  chroot: ""
  pidfile: ""
  do-daemonize: no
  use-syslog: no
  logfile: ""
  module-config: "iterator"
  do-not-query-localhost: no
  local-zone: "test." nodefault
  local-zone: "100.51.198.in-addr.arpa." nodefault
  interface: ${host.ipv4}
  access-control: ${host.ipv4}/32 allow
include: "${path.join(dir, "unbound-mailstack.conf")}"
forward-zone:
  name: "."
  forward-addr: ${dnsServer}
remote-control:
  control-enable: no
`,
  );
  await mustRun(["unbound-checkconf", conf]);
  const child = host.spawn(["/usr/sbin/unbound", "-d", "-c", conf], { logFile: path.join(dir, "unbound.log") });
  const deadline = Date.now() + 10_000;
  while ((await host.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53"])).code !== 0) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`unbound in ${host.name} did not start: see ${dir}/unbound.log`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The stub resolver of every program in this host (libresolv in Postfix and OpenDMARC, the
  // DNS library of policyd-spf) asks it.
  fs.writeFileSync(`/etc/netns/${host.ns}/resolv.conf`, "nameserver 127.0.0.1\n");
  return child;
}

/**
 * OpenDKIM as Mail-in-a-Box configures it (setup/dkim.sh and setup/mail-dkim.sh over Debian's
 * /etc/opendkim.conf): verifies every message, signs mail from inside with our own key, adds
 * Authentication-Results even where no signature is expected.
 *
 * Not postfix.ts's opendkim: that one names an unbound configuration file (ResolverConfiguration),
 * and Debian's OpenDKIM, built with VBR, opens a resolver for every message and reads that file
 * again (opendkim.c, mlfi_eom: vbr_dns_config), from several milter threads at once; libunbound's
 * configuration parser is not thread-safe, so under concurrent load some messages fail with parse
 * errors and a 451. `Nameservers` (set per message by vbr_dns_nslist) has no such file. It names the
 * host's own unbound by the host's address: libunbound does not query localhost by default.
 * No TrustAnchorFile (Debian's default names the root's): the test zones are unsigned.
 */
async function startOpendkim(net: LocalInternet, host: NetHost, domain: string): Promise<{ child: ChildProcess; dir: string }> {
  if (!fs.existsSync("/usr/sbin/opendkim")) throw new Error('/usr/sbin/opendkim not found: install the Debian package "opendkim"');
  const dir = fs.mkdtempSync(path.join(net.workDir, `opendkim-${host.name}-`));
  const keyFile = path.join(dir, "mail.private");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  fs.writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  const conf = path.join(dir, "opendkim.conf");
  fs.writeFileSync(
    conf,
    [
      "Syslog no",
      "Mode sv",
      "Canonicalization relaxed/simple",
      "OversignHeaders From",
      `Domain ${domain}`,
      "Selector mail",
      `KeyFile ${keyFile}`,
      "InternalHosts 127.0.0.1",
      "MinimumKeyBits 1024",
      "RequireSafeKeys false",
      "AlwaysAddARHeader yes",
      `AuthservID ${host.name}`,
      "Socket inet:8891@127.0.0.1",
      `PidFile ${path.join(dir, "opendkim.pid")}`,
      `Nameservers ${host.ipv4}`,
      "",
    ].join("\n"),
  );
  const child = host.spawn(["/usr/sbin/opendkim", "-f", "-x", conf], { logFile: path.join(dir, "opendkim.log") });
  const deadline = Date.now() + 10_000;
  while ((await host.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8891"])).code !== 0) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`opendkim in ${host.name} did not start: ${fs.readFileSync(path.join(dir, "opendkim.log"), "utf8")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, dir };
}

/**
 * Postfix with OpenDKIM (startOpendkim) and OpenDMARC (postfix.ts starts it, with `SPFSelfValidate`
 * only as a fallback: it takes SPF from the Received-SPF header) as milters, in that order as in
 * Mail-in-a-Box, and postfix-policyd-spf-python as a policy service at RCPT (its man page's
 * master.cf line and `policyd-spf_time_limit`; Debian's /etc/postfix-policyd-spf-python/policyd-spf.conf).
 */
export async function startPostfixMilters(
  net: LocalInternet,
  host: NetHost,
  o: { domain: string; dnsServer: string },
): Promise<RunningPeer> {
  if (!fs.existsSync("/usr/bin/policyd-spf"))
    throw new Error(
      '/usr/bin/policyd-spf not found: install the Debian package "postfix-policyd-spf-python" (infra/local-internet/install-packages.sh)',
    );
  const unbound = await startLocalResolver(net, host, o.dnsServer);
  const opendkim = await startOpendkim(net, host, o.domain);
  const peer = await startPostfix(net, host, {
    myhostname: `postfix.${o.domain}`,
    mydomain: o.domain,
    dmarc: true,
    extraMain: {
      ...benchPostfixMain(o.domain),
      smtpd_milters: "inet:127.0.0.1:8891, inet:127.0.0.1:8893",
    },
  });
  const checksFile = path.join(peer.configDir, "verdict-checks.regexp");
  fs.writeFileSync(checksFile, VERDICT_CHECKS);
  const postconf = async (args: string[]) => {
    const r = await host.run(["/usr/sbin/postconf", "-c", peer.configDir, ...args]);
    if (r.code !== 0) throw new Error(`postconf ${args.join(" ")}: ${r.stderr}`);
  };
  // postfix.ts writes a fixed master.cf: the policy service is added the way postconf(1) edits one.
  await postconf(["-M", "policyd-spf/unix=policyd-spf unix - n n - 0 spawn user=policyd-spf argv=/usr/bin/policyd-spf"]);
  await postconf([
    "-e",
    "smtpd_recipient_restrictions=reject_unauth_destination, check_policy_service unix:private/policyd-spf",
    "policyd-spf_time_limit=3600",
    `header_checks=regexp:${checksFile}`,
    `milter_header_checks=regexp:${checksFile}`,
  ]);
  const reloads = () => (peer.log().match(/ reload -- version /g) ?? []).length;
  const before = reloads();
  const reload = await host.run(["/usr/sbin/postfix", "-c", peer.configDir, "reload"]);
  if (reload.code !== 0) throw new Error(`postfix reload: ${reload.stderr}`);
  // master logs "reload -- version" once it has re-read main.cf and master.cf
  const deadline = Date.now() + 10_000;
  while (reloads() === before) {
    if (Date.now() > deadline) throw new Error(`postfix in ${host.name} did not reload in 10 s:\n${peer.log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    stored: () => countSent(peer),
    verified: () => countVerified(peer.log()),
    logFiles: () => [
      path.join(peer.configDir, "maillog"),
      path.join(peer.configDir, "opendmarc.log"),
      path.join(opendkim.dir, "opendkim.log"),
    ],
    async stop() {
      await stopWithin(host, async () => {
        await peer.stop();
        await LocalInternet.stopProcess(opendkim.child);
        await LocalInternet.stopProcess(unbound);
      });
    },
  };
}
