/**
 * The box's spam filter for tests: Debian's rspamd, Redis and unbound inside a namespace host, run on
 * the files a deployment writes (server-bootstrap/spam/: rspamd's local.d and override.d, the Redis
 * and unbound configuration, the controller password's hash), with their directories in a temp dir.
 *
 * What differs from the box, and why:
 * - unbound forwards every query to the local internet's DNS (the namespace's resolv.conf, i.e.
 *   knot) instead of resolving from the root, and does not validate: the test zones are unsigned
 *   and there is no root to validate from. rspamd still asks it, on 127.0.0.1:53, as on the box.
 * - rspamd keeps its compiled Hyperscan databases in one directory shared by every test run
 *   (HS_CACHE_DIR): compiling them costs about 20 s of CPU on a 2-core machine, once per machine
 *   instead of once per test; the box keeps them in /var/lib/rspamd across restarts the same way.
 * - Redis runs our file (server-bootstrap/spam/redis-conf.ts), logging to standard output and
 *   writing no pid file (Debian's /etc/redis/redis.conf, which it includes, names this computer's
 *   /var/log/redis and /run/redis); files generated here include an empty stand-in instead.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, mustRun, type NetHost } from "./netns";
import { DEFAULT_SPAM_SETTINGS, type SpamSettings } from "../../components/shared/spam-settings";
import { rspamdPasswordHash, RSPAMD_SALT_BYTES } from "../../components/rspamd-password";
import { rspamdLocalFiles } from "../../server-bootstrap/spam/rspamd-conf";
import { unboundConf } from "../../server-bootstrap/spam/unbound-conf";
import { redisConf } from "../../server-bootstrap/spam/redis-conf";
import type { BoxLayout } from "../../server-bootstrap/install/layout";

/** Shared by every run on this machine (see the header). */
export const HS_CACHE_DIR = "/var/tmp/mailstack-test-rspamd-hs";

const RSPAMD_USER = "_rspamd";

/**
 * For tests about other things than the filter: rspamd still verifies SPF, DKIM, DMARC and ARC and
 * enforces DMARC p=reject, but files nothing in Junk, refuses nothing by score and greylists no one,
 * and asks no blocklist (the local internet serves none). Test messages come from hosts without
 * PTR records and carry fixed dates, so under the real thresholds they score like mild spam.
 */
export const PERMISSIVE_SPAM_SETTINGS: SpamSettings = {
  ...DEFAULT_SPAM_SETTINGS,
  rejectScore: 1000,
  junkScore: 999,
  greylist: { ...DEFAULT_SPAM_SETTINGS.greylist, enabled: false },
  blocklists: [],
};

export interface SpamFilterOptions {
  /** default PERMISSIVE_SPAM_SETTINGS */
  settings?: SpamSettings;
  /** largest message maild accepts; default 50 MiB */
  maxMessageBytes?: number;
  /**
   * the local internet's DNS server unbound forwards to; default the host's resolv.conf nameserver.
   * "none": there is no DNS in this test, and unbound answers every name NXDOMAIN at once.
   */
  upstreamDns?: string;
}

export interface SpamFilter {
  host: NetHost;
  dir: string;
  settings: SpamSettings;
  /** the controller's UNIX socket: learning and statistics without a password (rspamd's account and root) */
  learnSocket: string;
  controllerPassword: string;
  /** rspamd's account (the Dovecot learn services run as it) */
  rspamdUser: string;
  /** `GET /stat` of the controller, as JSON */
  stat(): Promise<RspamdStat>;
  /**
   * What Bayes has learned, as rspamd counts it in Redis: the `learns_spam` and `learns_ham`
   * fields of its `RS` key (src/libstat/backends/redis_backend.c, rspamd_redis_learned with
   * new_schema; the statfiles of /stat show them only after rspamd's periodic refresh).
   */
  bayesLearns(): Promise<{ spam: number; ham: number }>;
  /** the rspamd log so far */
  log(): string;
  /** stops rspamd only (Redis and unbound stay) */
  stopRspamd(): Promise<void>;
  startRspamd(): Promise<void>;
  stop(): Promise<void>;
}

export interface RspamdStat {
  scanned: number;
  learned: number;
  statfiles: { symbol: string; revision: number; languages: number; users: number }[];
  actions: Record<string, number>;
}

function requireBinary(file: string, pkg: string): void {
  if (!fs.existsSync(file)) throw new Error(`startSpamFilter: ${file} not found; install the Debian package "${pkg}"`);
}

/** Probe a TCP port on the namespace's own loopback (unreachable from the test process). */
async function probeInside(
  host: NetHost,
  port: number,
  what: string,
  alive: () => boolean,
  log: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await host.run(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
    if (r.code === 0) return;
    if (!alive()) throw new Error(`${what} exited before listening on 127.0.0.1:${port} in ${host.name}:\n${log().slice(-3000)}`);
    if (Date.now() > deadline)
      throw new Error(`${what}: nothing on 127.0.0.1:${port} in ${host.name} after ${timeoutMs} ms:\n${log().slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** The files a deployment writes, where they are (paths as the box's layout names them). */
export interface SpamFilterFiles {
  /** rspamd's $LOCAL_CONFDIR (local.d/, override.d/) */
  rspamdConfDir: string;
  /** our Redis configuration (server-bootstrap/spam/redis-conf.ts) and its data directory */
  redisConf: string;
  redisDataDir: string;
  /** our unbound settings (server-bootstrap/spam/unbound-conf.ts) */
  unboundConf: string;
  /** the controller's UNIX socket (in rspamd's RUNDIR) */
  learnSocket: string;
  /** rspamd's DBDIR and LOGDIR */
  rspamdDbDir: string;
  rspamdLogDir: string;
}

/** Starts unbound, Redis and rspamd in `host` on files generated here; resolves when rspamd answers on 127.0.0.1:11333. */
export async function startSpamFilter(internet: LocalInternet, host: NetHost, opts: SpamFilterOptions = {}): Promise<SpamFilter> {
  const settings = opts.settings ?? PERMISSIVE_SPAM_SETTINGS;
  fs.chmodSync(internet.workDir, 0o711);
  const dir = fs.mkdtempSync(path.join(internet.workDir, `spam-${host.name}-`));
  fs.chmodSync(dir, 0o755);
  const files: SpamFilterFiles = {
    rspamdConfDir: path.join(dir, "etc"),
    redisConf: path.join(dir, "redis.conf"),
    redisDataDir: path.join(dir, "redis"),
    unboundConf: path.join(dir, "unbound-mailstack.conf"),
    learnSocket: path.join(dir, "run", "learn.sock"),
    rspamdDbDir: path.join(dir, "db"),
    rspamdLogDir: path.join(dir, "log"),
  };
  const controllerPassword = randomBytes(18).toString("base64url");
  const rspamd = rspamdLocalFiles({
    settings,
    controllerPasswordHash: rspamdPasswordHash(controllerPassword, randomBytes(RSPAMD_SALT_BYTES)),
    learnSocket: files.learnSocket,
    controllerTcp: "localhost:11334",
    rspamdUser: RSPAMD_USER,
    redis: "127.0.0.1:6379",
    dnsServer: "127.0.0.1:53",
    maxMessageBytes: opts.maxMessageBytes ?? 50 * 1024 * 1024,
  });
  for (const [rel, content] of Object.entries(rspamd)) {
    fs.mkdirSync(path.dirname(path.join(files.rspamdConfDir, rel)), { recursive: true });
    fs.writeFileSync(path.join(files.rspamdConfDir, rel), content);
  }
  fs.writeFileSync(path.join(dir, "redis-base.conf"), "# stands in for Debian's /etc/redis/redis.conf\n");
  fs.writeFileSync(files.redisConf, redisConf({ dir: files.redisDataDir, dataDir: dir, debianConf: path.join(dir, "redis-base.conf") }));
  fs.writeFileSync(files.unboundConf, unboundConf());
  return runSpamFilter(internet, host, dir, files, {
    settings,
    controllerPassword,
    ...(opts.upstreamDns ? { upstreamDns: opts.upstreamDns } : {}),
  });
}

/**
 * Where a deployment into `layout` put the spam filter's files, and the directories Debian's
 * packages would have made (rspamd's /var/lib/rspamd and /var/log/rspamd) under the box's root.
 * Our Redis file includes Debian's /etc/redis/redis.conf: a box root that lacks it (a fresh test
 * root) gets an empty stand-in there.
 */
export function deployedSpamFilterFiles(layout: BoxLayout): SpamFilterFiles {
  if (!fs.existsSync(layout.redisDebianConf)) {
    fs.mkdirSync(path.dirname(layout.redisDebianConf), { recursive: true });
    fs.writeFileSync(layout.redisDebianConf, "# stands in for Debian's /etc/redis/redis.conf (infra/local-internet/spam-filter.ts)\n");
  }
  return {
    rspamdConfDir: layout.rspamdConfDir,
    redisConf: layout.redisConf,
    redisDataDir: layout.redisDataDir,
    unboundConf: layout.unboundConf,
    learnSocket: layout.rspamdLearnSocket,
    rspamdDbDir: path.join(layout.root, "var/lib/rspamd"),
    rspamdLogDir: path.join(layout.root, "var/log/rspamd"),
  };
}

/**
 * Starts the spam filter a deployment installed (the install script with --no-systemctl only
 * reports that the services would restart): `files` are where the box's layout put them.
 */
export async function startDeployedSpamFilter(
  internet: LocalInternet,
  host: NetHost,
  files: SpamFilterFiles,
  opts: { settings: SpamSettings; controllerPassword: string; upstreamDns?: string },
): Promise<SpamFilter> {
  const dir = fs.mkdtempSync(path.join(internet.workDir, `spam-${host.name}-`));
  fs.chmodSync(dir, 0o755);
  return runSpamFilter(internet, host, dir, files, opts);
}

async function runSpamFilter(
  internet: LocalInternet,
  host: NetHost,
  dir: string,
  files: SpamFilterFiles,
  opts: { settings: SpamSettings; controllerPassword: string; upstreamDns?: string },
): Promise<SpamFilter> {
  requireBinary("/usr/bin/rspamd", "rspamd");
  requireBinary("/usr/bin/redis-server", "redis-server");
  requireBinary("/usr/sbin/unbound", "unbound");
  fs.chmodSync(internet.workDir, 0o711);
  const runDir = path.dirname(files.learnSocket);
  for (const [d, owner] of [
    [files.rspamdDbDir, RSPAMD_USER],
    [runDir, RSPAMD_USER],
    [files.rspamdLogDir, RSPAMD_USER],
    [files.redisDataDir, "redis"],
  ]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    await mustRun(["chown", `${owner}:${owner}`, d]);
  }
  fs.mkdirSync(HS_CACHE_DIR, { recursive: true, mode: 0o755 });
  await mustRun(["chown", `${RSPAMD_USER}:${RSPAMD_USER}`, HS_CACHE_DIR]);
  // Harness only, beside the deployed files (a deploy neither writes nor compares it).
  const overrideOptions = path.join(files.rspamdConfDir, "override.d", "options.inc");
  fs.mkdirSync(path.dirname(overrideOptions), { recursive: true });
  fs.writeFileSync(overrideOptions, `# test harness only (infra/local-internet/spam-filter.ts)\nhs_cache_dir = "${HS_CACHE_DIR}";\n`);

  // unbound: the box's file, plus forwarding to the local internet's DNS.
  const resolvConf = fs.readFileSync(`/etc/netns/${host.ns}/resolv.conf`, "utf8");
  const upstream = opts.upstreamDns ?? /nameserver\s+(\S+)/.exec(resolvConf)?.[1];
  if (upstream !== "none" && (!upstream || upstream.startsWith("127."))) {
    throw new Error(
      `startSpamFilter: no DNS server of the local internet for ${host.name}'s unbound to forward to: pass upstreamDns or call internet.setResolver(knot) first`,
    );
  }
  const unboundWrapper = path.join(dir, "unbound.conf");
  fs.writeFileSync(
    unboundWrapper,
    `server:
  directory: "${dir}"
  username: ""
  chroot: ""
  pidfile: ""
  do-daemonize: no
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "iterator"
  do-not-query-localhost: no
  local-zone: "test." nodefault
  local-zone: "100.51.198.in-addr.arpa." nodefault
  local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." nodefault
include: "${files.unboundConf}"
${upstream === "none" ? `server:\n  local-zone: "." always_nxdomain\n` : `forward-zone:\n  name: "."\n  forward-addr: ${upstream}\n`}remote-control:
  control-enable: no
`,
  );
  await mustRun(["unbound-checkconf", unboundWrapper]);
  const unboundLog = path.join(dir, "unbound.log");
  const unbound = host.spawn(["/usr/sbin/unbound", "-d", "-c", unboundWrapper], { logFile: unboundLog });

  // Redis runs our file as the box's redis account; it includes Debian's (the box's own file, or a stand-in).
  const redisLog = path.join(dir, "redis.log");
  const redis = host.spawn(
    [
      "setpriv",
      "--reuid=redis",
      "--regid=redis",
      "--clear-groups",
      "/usr/bin/redis-server",
      files.redisConf,
      "--daemonize",
      "no",
      "--logfile",
      "",
      "--pidfile",
      "",
    ],
    { logFile: redisLog },
  );

  const rspamdLog = path.join(files.rspamdLogDir, "rspamd.log");
  const rspamdOut = path.join(dir, "rspamd.stdout.log");
  const readLog = () => (fs.existsSync(rspamdLog) ? fs.readFileSync(rspamdLog, "utf8") : "");
  let rspamd: ChildProcess | undefined;
  const startRspamd = async () => {
    const child = host.spawn(
      [
        "/usr/bin/rspamd",
        "-f",
        "-u",
        RSPAMD_USER,
        "-g",
        RSPAMD_USER,
        "-c",
        "/etc/rspamd/rspamd.conf",
        "--var",
        `LOCAL_CONFDIR=${files.rspamdConfDir}`,
        "--var",
        `DBDIR=${files.rspamdDbDir}`,
        "--var",
        `RUNDIR=${runDir}`,
        "--var",
        `LOGDIR=${files.rspamdLogDir}`,
      ],
      { logFile: rspamdOut },
    );
    rspamd = child;
    const alive = () => child.exitCode === null && child.signalCode === null;
    // A cold Hyperscan cache (the first run on a machine) makes the first start slow.
    await probeInside(host, 11333, "rspamd", alive, () => readLog() + fs.readFileSync(rspamdOut, "utf8"), 180_000);
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(files.learnSocket)) {
      if (Date.now() > deadline)
        throw new Error(`rspamd: no controller socket ${files.learnSocket} after 30 s:\n${readLog().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopRspamd = async () => {
    if (rspamd) await LocalInternet.stopProcess(rspamd, 10_000);
    rspamd = undefined;
    fs.rmSync(files.learnSocket, { force: true });
  };

  await probeInside(
    host,
    53,
    "unbound",
    () => unbound.exitCode === null,
    () => fs.readFileSync(unboundLog, "utf8"),
    10_000,
  );
  await probeInside(
    host,
    6379,
    "redis",
    () => redis.exitCode === null,
    () => fs.readFileSync(redisLog, "utf8"),
    10_000,
  );
  await startRspamd();

  return {
    host,
    dir,
    settings: opts.settings,
    learnSocket: files.learnSocket,
    controllerPassword: opts.controllerPassword,
    rspamdUser: RSPAMD_USER,
    stat: () => controllerStat(files.learnSocket),
    async bayesLearns() {
      const r = await host.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "--no-raw", "HMGET", "RS", "learns_spam", "learns_ham"]);
      if (r.code !== 0) throw new Error(`redis-cli HMGET RS: ${r.stderr || r.stdout}`);
      const [spam, ham] = r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => Number(/"(-?\d+)"/.exec(l)?.[1] ?? 0));
      return { spam, ham };
    },
    log: readLog,
    stopRspamd,
    startRspamd,
    async stop() {
      await stopRspamd();
      await Promise.all([LocalInternet.stopProcess(redis), LocalInternet.stopProcess(unbound)]);
    },
  };
}

/** The controller's /stat over its UNIX socket (rspamd src/controller.c rspamd_controller_handle_stat). */
export function controllerStat(socketPath: string): Promise<RspamdStat> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: "/stat", method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d));
      res.on("end", () => {
        try {
          const j = JSON.parse(body) as {
            scanned: number;
            learned: number;
            actions: Record<string, number>;
            statfiles?: { symbol: string; revision: number; languages: number; users: number }[];
          };
          resolve({ scanned: j.scanned, learned: j.learned, actions: j.actions, statfiles: j.statfiles ?? [] });
        } catch (e) {
          reject(new Error(`rspamd /stat: not JSON: ${body.slice(0, 200)} (${(e as Error).message})`));
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}
