/**
 * Outbound benchmark: the forwarding path under load. Each server receives messages for a local
 * alias that forwards to an external address, queues them durably and delivers them by MX to
 * another host; measured is the time until that host has every message, and the servers' memory
 * and CPU on the way. maild (with its rspamd, as on the box) beside Postfix with rspamd as a milter
 * (the stack a user would otherwise run, daemon-peers.ts), and plain Postfix (Debian) and Haraka
 * (npm) as the speed references, on the same run.
 *
 *   node_modules/.bin/node --import tsx test/bench/outbound.bench.ts     (root; Debian packages
 *                                         from infra/local-internet/install-packages.sh)
 *   BENCH_MESSAGES=5000 BENCH_SESSIONS=20 BENCH_CONCURRENCY=20 node_modules/.bin/node --import tsx test/bench/outbound.bench.ts
 *
 * A local internet: knot serves the zones; `sink` runs Postfix's `smtp-sink` as the MX of
 * sink.test; `load` runs `smtp-source -d -s SESSIONS -m MESSAGES -l SIZE` with every message to
 * fwd@example.org, an alias for x@sink.test on each server. The servers run one after another,
 * each alone in its own namespace host, each against a freshly started sink:
 *   - maild: a config alias; its durable outbound queue (outbound/queue.ts) and SmtpTransport
 *     (MX lookup through knot, MTA-STS and DANE lookups as configured by default, STARTTLS when
 *     offered: smtp-sink offers none) deliver it. Every message it receives is scanned by its
 *     rspamd (spam-filter.ts: rspamd, Redis and unbound in maild's host, as on the box and in
 *     daemon.bench.ts), which verifies SPF, DKIM, DMARC and ARC: without an answer from rspamd
 *     maild accepts nothing (451).
 *   - Postfix + rspamd milter: daemon-peers.ts's docker-mailserver-style stack (rspamd on maild's
 *     rspamd configuration, as a milter), with the same forwarding alias as plain Postfix.
 *   - Postfix: virtual_alias_maps rewrites the recipient, the smtp client delivers by MX; queue
 *     files fsynced before 250 (Postfix's default), as in daemon.bench.ts.
 *   - Haraka: haraka-plugin-aliases rewrites the recipient; outbound-haraka-forward.js accepts it
 *     and hands the message to Haraka's outbound queue (fsynced file and directory before 250),
 *     which delivers it by MX.
 * Timing: from the start of smtp-source until smtp-sink's running counter (`-c`) reaches
 * MESSAGES; afterwards every message the sink dumped (`-d`) is checked: recipient x@sink.test,
 * smtp-source's Message-Id, no duplicates. Memory: PSS and RSS summed over the server's
 * processes (the namespace), highest 100 ms sample from the first message to the last delivery.
 */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { startPostfix } from "../../infra/local-internet/postfix";
import { startSpamFilter } from "../../infra/local-internet/spam-filter";
import {
  benchZones,
  ensureHaraka,
  idleMb,
  initHaraka,
  keepLog,
  namespaceCpuSplit,
  namespaceMemoryMb,
  namespacePssMb,
  progress,
  report,
  requirePrograms,
  sleep,
  smtpSource,
  startListening,
} from "./daemon.bench";
import { argon2idHash } from "../../components/shared/argon2id";
import { bundleMaild } from "../harness/maild";
import { startPostfixRspamd, stopWithin } from "./daemon-peers";
import { MAILD_NODE_FLAGS as SHIPPED_NODE_FLAGS } from "../../server-bootstrap/maild/node-flags";

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10);
const SIZE = Number(process.env.BENCH_SIZE ?? 4096);
/**
 * Connections per destination. Unset: each server's own default (maild
 * outbound.maxConnectionsPerDomain 5; Postfix default_destination_concurrency_limit 20, starting
 * at 5; Haraka outbound concurrency_max 10000 in total, no per-destination limit). A number sets
 * all three to it (Haraka's total limit is per destination here: there is only one).
 */
const CONCURRENCY = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
/** the Node flags maild ships with, then BENCH_MAILD_NODE_FLAGS, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof (as in daemon.bench.ts) */
const MAILD_NODE_FLAGS = [...SHIPPED_NODE_FLAGS, ...(process.env.BENCH_MAILD_NODE_FLAGS ?? "").split(" ").filter(Boolean)];
/** which servers to run, comma-separated ids (default all): postfix, postfix-rspamd, maild, haraka */
const SERVERS = (process.env.BENCH_SERVERS ?? "postfix,postfix-rspamd,maild,haraka").split(",").map((s) => s.trim().toLowerCase());
/** give up on a server when the sink has received nothing new for this long after the load ended */
const STALL_MS = Number(process.env.BENCH_STALL_MS ?? 60_000);
const DOMAIN = "example.org";
const ALIAS = `fwd@${DOMAIN}`;
const TARGET = "x@sink.test";
const SENDER = "load@example.net";
const NOBODY = 65534;
const MAILD = "maild + rspamd";

interface Result {
  name: string;
  /** smtp-source start until the server had accepted (250) every message */
  acceptSeconds: number;
  /** smtp-source start until the sink had received every message */
  seconds: number;
  /** distinct messages at the sink with the forwarded recipient */
  delivered: number;
  idleMb: number;
  peakPssMb: number;
  peakRssMb: number;
  cpuSeconds: number;
  /** the part of cpuSeconds spent by filters (rspamd, Redis, unbound) */
  filterCpuSeconds: number;
  concurrency: string;
  note?: string;
}

/** smtp-sink as the MX of sink.test: counts messages from its `-c` output, dumps each one (`-d`). */
class Sink {
  private count = 0;
  private lastChange = Date.now();
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(
    readonly dumpDir: string,
    private readonly child: ChildProcess,
  ) {
    let pending = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      // `-c` rewrites one status line with \r after every session end, QUIT and "."
      pending += chunk.toString("latin1");
      const lines = pending.split(/[\r\n]/);
      pending = lines.pop()!;
      for (const line of lines) {
        const m = /\bmesg=(\d+)/.exec(line);
        if (m && Number(m[1]) !== this.count) {
          this.count = Number(m[1]);
          this.lastChange = Date.now();
        }
      }
      this.waiters = this.waiters.filter((w) => (this.count >= w.n ? (w.resolve(), false) : true));
    });
  }

  static async start(host: NetHost, dir: string): Promise<Sink> {
    const dumpDir = path.join(dir, "dump");
    fs.mkdirSync(dumpDir, { recursive: true });
    fs.chownSync(dumpDir, NOBODY, NOBODY);
    // -u: smtp-sink refuses to run as root; -m: sessions at once (Haraka opens many)
    const child = host.spawn(
      [
        "/usr/sbin/smtp-sink",
        "-u",
        "nobody",
        "-c",
        "-h",
        "mx.sink.test",
        "-m",
        "2000",
        "-d",
        path.join(dumpDir, "m."),
        `${host.ipv4}:25`,
        "4096",
      ],
      { logFile: path.join(dir, "smtp-sink.log") },
    );
    await waitForPort(host.ipv4, 25, "smtp-sink", 10_000, () => child.exitCode === null);
    // smtp-sink counts the probe's connection as a session, not as a message
    return new Sink(dumpDir, child);
  }

  /** resolves when the counter reaches n; rejects when it has not moved for stallMs after `since` */
  async waitFor(n: number, since: () => number | undefined, stallMs: number): Promise<void> {
    if (this.count >= n) return;
    const reached = new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
    for (;;) {
      const done = await Promise.race([reached.then(() => true), sleep(500).then(() => false)]);
      if (done) return;
      const t = since();
      if (t !== undefined && Date.now() - Math.max(t, this.lastChange) > stallMs) {
        throw new Error(`the sink received ${this.count} of ${n} messages and nothing more for ${stallMs / 1000} s`);
      }
    }
  }

  /** distinct smtp-source messages dumped with the forwarded recipient, and what else was there */
  check(): { delivered: number; problems: string[] } {
    const ids = new Set<string>();
    const problems: string[] = [];
    let duplicates = 0;
    for (const name of fs.readdirSync(this.dumpDir)) {
      const text = fs.readFileSync(path.join(this.dumpDir, name), "latin1");
      const rcpts = [...text.matchAll(/^X-Rcpt-Args: <([^>]*)>/gm)].map((m) => m[1]);
      const id = /^Message-Id: (<[^>]+>)/im.exec(text)?.[1];
      if (rcpts.length !== 1 || rcpts[0] !== TARGET || id === undefined) {
        if (problems.length < 5) problems.push(`${name}: recipients ${rcpts.join(",") || "none"}, Message-Id ${id ?? "none"}`);
        continue;
      }
      if (ids.has(id)) duplicates++;
      ids.add(id);
    }
    if (duplicates > 0) problems.push(`${duplicates} duplicate deliveries`);
    return { delivered: ids.size, problems };
  }

  async stop(): Promise<void> {
    await LocalInternet.stopProcess(this.child);
  }
}

interface Measured {
  acceptSeconds: number;
  seconds: number;
  peakPssMb: number;
  peakRssMb: number;
  cpuSeconds: number;
  filterCpuSeconds: number;
}

/**
 * smtp-source from `load` to server:25, then wait for the sink to have every message; memory
 * sampled throughout.
 */
async function drive(load: NetHost, server: NetHost, sink: Sink): Promise<Measured> {
  const cpuBefore = namespaceCpuSplit(server.ns);
  let peakPssMb = namespacePssMb(server.ns);
  let peakRssMb = namespaceMemoryMb(server.ns, "rss");
  const sampler = setInterval(() => {
    peakPssMb = Math.max(peakPssMb, namespacePssMb(server.ns));
    peakRssMb = Math.max(peakRssMb, namespaceMemoryMb(server.ns, "rss"));
  }, 100);
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
  let loadEnded: number | undefined;
  try {
    const source = load.run(
      smtpSource({
        reuse: true,
        sessions: SESSIONS,
        messages: MESSAGES,
        size: SIZE,
        sender: SENDER,
        recipient: ALIAS,
        target: server.ipv4,
      }),
    );
    const delivered = sink.waitFor(MESSAGES, () => loadEnded, STALL_MS);
    // keep a stall rejection handled while smtp-source is still running
    delivered.catch(() => undefined);
    const r = await source;
    const acceptSeconds = elapsed();
    loadEnded = Date.now();
    if (r.code !== 0)
      throw new Error(`smtp-source against ${server.name}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
    await delivered;
    const seconds = elapsed();
    const cpuAfter = namespaceCpuSplit(server.ns);
    return {
      acceptSeconds,
      seconds,
      peakPssMb,
      peakRssMb,
      cpuSeconds: cpuAfter.total - cpuBefore.total,
      filterCpuSeconds: cpuAfter.filters - cpuBefore.filters,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** Runs one server's benchmark against a fresh sink; failures become a note, not an abort. */
async function measure(
  name: string,
  concurrency: string,
  sinkHost: NetHost,
  load: NetHost,
  server: NetHost,
  dir: string,
  start: () => Promise<{ stop: () => Promise<void>; log: string }>,
): Promise<Result> {
  fs.mkdirSync(dir, { recursive: true });
  const sink = await Sink.start(sinkHost, path.join(dir, "sink"));
  const result: Result = {
    name,
    concurrency,
    acceptSeconds: NaN,
    seconds: NaN,
    delivered: 0,
    idleMb: NaN,
    peakPssMb: NaN,
    peakRssMb: NaN,
    cpuSeconds: NaN,
    filterCpuSeconds: NaN,
  };
  let running: { stop: () => Promise<void>; log: string } | undefined;
  try {
    running = await start();
    result.idleMb = await idleMb(server);
    Object.assign(result, await drive(load, server, sink));
  } catch (e) {
    result.note = (e as Error).message.split("\n")[0];
  } finally {
    // a second after the last one, so that a late duplicate would be seen
    await sleep(1000);
    const { delivered, problems } = sink.check();
    result.delivered = delivered;
    if (problems.length > 0) result.note = [result.note, ...problems].filter(Boolean).join("; ");
    if (running) {
      await running.stop();
      keepLog(running.log, path.basename(dir));
    }
    await sink.stop();
  }
  return result;
}

async function startMaildServer(net: LocalInternet, host: NetHost, knot: KnotServer): Promise<{ stop: () => Promise<void>; log: string }> {
  const dir = path.join(net.workDir, "maild");
  fs.mkdirSync(dir, { recursive: true });
  // rspamd, Redis and unbound in maild's host, as on the box; unbound forwards to knot.
  const spam = await startSpamFilter(net, host, { upstreamDns: knot.host.ipv4 });
  // The box runs a bundle (one JS file) on plain node; so does the benchmark.
  const bundle = await bundleMaild();
  const tls = await makeTestTls(path.join(dir, "tls"), [`mail.${DOMAIN}`], "maild");
  const config = {
    hostname: `mail.${DOMAIN}`,
    domains: [{ name: DOMAIN, dkim: [] }],
    users: [{ address: `postmaster@${DOMAIN}`, passwordHash: argon2idHash("bench") }],
    aliases: [{ address: ALIAS, to: [TARGET] }],
    tls: { certPath: tls.certPath, keyPath: tls.keyPath },
    dataDir: path.join(dir, "data"),
    listen: { smtp: [{ host: host.ipv4, port: 25 }] },
    // MX, MTA-STS and TLSA lookups of the outbound transport go here too
    dnsServers: [knot.host.ipv4],
    limits: { maxConnectionsPerIp: 100000, maxConnections: 100000, maxMessagesPerIpPerMinute: 10000000 },
    outbound: CONCURRENCY ? { maxConnectionsPerDomain: CONCURRENCY } : {},
  };
  const configPath = path.join(dir, "maild.json");
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const log = path.join(dir, "maild.log");
  const child = await startListening(host, "maild", [process.execPath, ...MAILD_NODE_FLAGS, bundle, "--config", configPath], log);
  return {
    stop: () =>
      stopWithin(host, async () => {
        await LocalInternet.stopProcess(child, 10_000);
        await spam.stop();
      }),
    log,
  };
}

/** Postfix's settings for the forwarding alias, with or without rspamd. */
function postfixForwardingMain(): Record<string, string> {
  return {
    // the forwarding alias (virtual(5)); delivery by MX through the default smtp transport
    virtual_alias_domains: DOMAIN,
    virtual_alias_maps: `inline:{ ${ALIAS}=${TARGET} }`,
    smtpd_client_connection_rate_limit: "0",
    smtpd_client_message_rate_limit: "0",
    ...(CONCURRENCY
      ? { default_destination_concurrency_limit: String(CONCURRENCY), initial_destination_concurrency: String(Math.min(5, CONCURRENCY)) }
      : {}),
  };
}

async function startPostfixServer(net: LocalInternet, host: NetHost): Promise<{ stop: () => Promise<void>; log: string }> {
  const peer = await startPostfix(net, host, { myhostname: `postfix.${DOMAIN}`, mydomain: DOMAIN, extraMain: postfixForwardingMain() });
  return {
    stop: async () => {
      const sent = (peer.log().match(/ status=sent \(/g) ?? []).length;
      if (sent !== MESSAGES) progress(`Postfix: its log shows ${sent} deliveries of ${MESSAGES}`);
      await peer.stop();
    },
    log: path.join(peer.configDir, "maillog"),
  };
}

async function startPostfixRspamdServer(
  net: LocalInternet,
  host: NetHost,
  knot: KnotServer,
): Promise<{ stop: () => Promise<void>; log: string }> {
  const peer = await startPostfixRspamd(net, host, { domain: DOMAIN, dnsServer: knot.host.ipv4, main: postfixForwardingMain() });
  const [maillog, ...others] = peer.logFiles();
  return {
    stop: async () => {
      const sent = peer.stored();
      if (sent !== MESSAGES) progress(`Postfix + rspamd milter: its log shows ${sent} deliveries of ${MESSAGES}`);
      for (const file of others) keepLog(file, host.name);
      await peer.stop();
    },
    log: maillog,
  };
}

async function startHarakaServer(net: LocalInternet, host: NetHost): Promise<{ stop: () => Promise<void>; log: string }> {
  const bin = ensureHaraka();
  const dir = path.join(net.workDir, "haraka");
  // aliases must come before every other rcpt plugin (its README)
  const cfg = initHaraka(bin, dir, host, DOMAIN, "aliases\nbench_forward\n", "outbound-haraka-forward.js", "bench_forward");
  cfg("aliases.json", JSON.stringify({ [ALIAS]: { action: "alias", to: TARGET } }) + "\n");
  if (CONCURRENCY) cfg("outbound.ini", `concurrency_max=${CONCURRENCY}\n`);
  const log = path.join(dir, "haraka.log");
  const child = await startListening(host, "haraka", [process.execPath, bin, "-c", dir], log);
  return { stop: () => LocalInternet.stopProcess(child, 10_000), log };
}

/**
 * One row per server; "maild ÷ this" is maild's figure divided by the row's (above 1 for msgs/s:
 * maild is faster; below 1 for CPU and memory: maild uses less), as in daemon.bench.ts.
 */
function table(results: Result[]): string {
  const maild = results.find((r) => r.name === MAILD);
  const rate = (r: Result) => r.delivered / r.seconds;
  const cpu = (r: Result) => (r.cpuSeconds * 1000) / r.delivered;
  const ratio = (v: number | undefined, base: number | undefined) =>
    v !== undefined && base !== undefined && Number.isFinite(v) && Number.isFinite(base) && base !== 0
      ? `${(v / base).toFixed(2)}x`
      : "n/a";
  const mine = (r: Result, v: (r: Result) => number) => (r === maild ? "-" : ratio(maild && v(maild), v(r)));
  const f = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "n/a");
  const lines = [
    "| server | conns/dest | msgs/s (to the sink) | maild ÷ this | all accepted s | all at sink s | CPU ms/msg | maild ÷ this | of it MTA / filters | idle MiB | peak MiB (PSS) | maild ÷ this | peak MiB (RSS sum) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.name} | ${r.concurrency} | ${f(rate(r))} | ${mine(r, rate)} | ${f(r.acceptSeconds, 1)} | ${f(r.seconds, 1)} | ${f(cpu(r), 2)} | ${mine(r, cpu)} | ` +
        `${f(((r.cpuSeconds - r.filterCpuSeconds) * 1000) / r.delivered, 2)} / ${f((r.filterCpuSeconds * 1000) / r.delivered, 2)} | ` +
        `${f(r.idleMb, 1)} | ${f(r.peakPssMb, 1)} | ${mine(r, (x) => x.peakPssMb)} | ${f(r.peakRssMb, 1)} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  requirePrograms(["/usr/sbin/smtp-source", "/usr/sbin/smtp-sink", "/usr/sbin/postfix", "/usr/sbin/knotd"]);
  const net = await LocalInternet.create();
  const results: Result[] = [];
  try {
    // smtp-sink drops to nobody and writes its dumps below workDir
    fs.chmodSync(net.workDir, 0o711);
    const dns = await net.addHost("dns");
    const load = await net.addHost("load");
    const sinkHost = await net.addHost("sink");
    const hosts = {
      maild: await net.addHost("maild"),
      haraka: await net.addHost("haraka"),
      postfix: await net.addHost("postfix"),
      postfixRspamd: await net.addHost("pf-rspamd"),
    };
    const knot = await startKnot(net, dns, [
      ...benchZones(load, DOMAIN),
      // IPv4 only, so every server takes the same path to the sink
      { origin: "sink.test.", lines: ["sink.test. 300 IN MX 10 mx.sink.test.", `mx.sink.test. 300 IN A ${sinkHost.ipv4}`] },
    ]);
    await net.setResolver(dns.ipv4);
    const own = (v: string) => (CONCURRENCY ? String(CONCURRENCY) : v);
    const runs: [string, string, string, NetHost, () => Promise<{ stop: () => Promise<void>; log: string }>][] = [
      ["postfix", "Postfix (no checks)", own("20"), hosts.postfix, () => startPostfixServer(net, hosts.postfix)],
      [
        "postfix-rspamd",
        "Postfix + rspamd milter",
        own("20"),
        hosts.postfixRspamd,
        () => startPostfixRspamdServer(net, hosts.postfixRspamd, knot),
      ],
      ["maild", MAILD, own("5"), hosts.maild, () => startMaildServer(net, hosts.maild, knot)],
      ["haraka", "Haraka (no checks)", own("10000 (total)"), hosts.haraka, () => startHarakaServer(net, hosts.haraka)],
    ];
    for (const [id, name, concurrency, host, start] of runs) {
      if (!SERVERS.includes(id)) continue;
      progress(`${name}: ${MESSAGES} messages of ${SIZE} bytes over ${SESSIONS} sessions, forwarded to ${TARGET} ...`);
      const r = await measure(name, concurrency, sinkHost, load, host, path.join(net.workDir, `run-${id}`), start);
      if (r.note === undefined && r.delivered !== MESSAGES) r.note = `the sink has ${r.delivered} of ${MESSAGES} messages`;
      progress(
        `${name}: ${Number.isFinite(r.seconds) ? `${r.seconds.toFixed(2)} s, ${(r.delivered / r.seconds).toFixed(0)} msgs/s` : ""}${r.note ? ` (${r.note})` : ""}`,
      );
      results.push(r);
    }
    await knot.stop();
  } finally {
    await net.destroy();
  }
  await report(
    `smtp-source -d -s ${SESSIONS} -m ${MESSAGES} -l ${SIZE} -t ${ALIAS} (alias for ${TARGET}, MX smtp-sink); $CPUS CPUs; Node ${process.version}; ` +
      `memory = sum over the server's processes, highest 100 ms sample`,
    table(results),
    results,
  );
}

main().catch((e: Error) => {
  process.stderr.write(`bench:outbound: ${e.stack ?? e.message}\n`);
  process.exit(1);
});
