/**
 * A local internet of network namespaces for integration tests (root only).
 *
 * Topology of one LocalInternet:
 *   - one bridge `br0` inside its own namespace `<prefix>-net`;
 *   - one namespace per host (`<prefix>-<name>`), joined to the bridge by a veth whose host end is
 *     renamed `eth0`; no default route, so nothing can leave the test net;
 *   - one veth from the test process's own (root) namespace into the bridge, so the test process
 *     reaches every host directly (ACME client -> pebble, SSH client -> sshd, ...).
 *
 * Several instances may run at once (several test files, several developers): each takes a slot
 * 0..7 (a lock file under /run/mailstack-netns holding the owner's pid) and with it its own /27
 * of 198.51.100.0/24 and /120 of 2001:db8:1::/64. The root side is `.1` of the slot
 * (`localIpv4`/`localIpv6`); hosts get `.2`, `.3`, ... in the order they are added.
 * Slots whose owner died (SIGKILL) are cleaned up by the next create().
 *
 * Set MAILSTACK_TEST_VERBOSE=1 to see the commands run and the output of spawned processes on stderr;
 * otherwise spawned processes log into files under workDir (kept only while the instance lives).
 */
import { spawn as spawnChild, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
}
export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile?: string;
}

export interface NetHost {
  /** logical name given to addHost, e.g. "dns", "mx", "peer" */
  name: string;
  /** the namespace name */
  ns: string;
  ipv4: string;
  ipv6: string;
  /** run argv inside the namespace (ip netns exec), collect output; rejects only on spawn failure */
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** start a long-running process inside the namespace; the LocalInternet kills it on destroy() */
  spawn(argv: string[], opts?: SpawnOptions): ChildProcess;
}

export const verbose = process.env.MAILSTACK_TEST_VERBOSE === "1";

export function log(message: string): void {
  if (verbose) process.stderr.write(`[harness] ${message}\n`);
}

const SLOT_DIR = "/run/mailstack-netns";
const SLOTS = 8;
const HOSTS_PER_SLOT = 29; // .2 .. .30 of a /27

/** Run a command in the current (root) namespace; resolves with its output whatever its exit code. */
export function runCommand(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(argv[0], argv.slice(1), {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
    child.on("error", (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${argv[0]}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

/** Like runCommand, but a non-zero exit is an error that shows the command and its stderr. */
export async function mustRun(argv: string[], opts: RunOptions = {}): Promise<string> {
  log(argv.join(" "));
  const r = await runCommand(argv, opts);
  if (r.code !== 0) {
    throw new Error(`command failed (exit ${r.code}): ${argv.join(" ")}\n${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

function requireTool(file: string, debianPackage: string): void {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`local-internet harness: ${file} not found; install the Debian package "${debianPackage}" (see .ci/run)`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface SlotRecord {
  pid: number;
  prefix: string;
}

/** Synchronous teardown of everything a prefix owns; used on process exit and for stale slots. */
function teardownSync(prefix: string, pids: number[], workDir: string | undefined): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  let namespaces: string[] = [];
  try {
    namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.split(" ")[0])
      .filter((n) => n.startsWith(`${prefix}-`));
  } catch {
    /* ip missing: nothing was created */
  }
  for (const ns of namespaces) {
    try {
      const inside = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean);
      for (const p of inside) {
        try {
          process.kill(Number(p), "SIGKILL");
        } catch {
          /* gone */
        }
      }
    } catch {
      /* namespace vanished */
    }
  }
  try {
    execFileSync("ip", ["link", "del", `${prefix}r`], { stdio: "ignore" });
  } catch {
    /* not there */
  }
  for (const ns of namespaces) {
    try {
      execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    } catch {
      /* gone */
    }
    fs.rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
}

const live = new Set<LocalInternet>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const net of live) net.destroySync();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      for (const net of live) net.destroySync();
      process.kill(process.pid, sig);
    });
  }
}

function slotIpv4(slot: number, n: number): string {
  return `198.51.100.${slot * 32 + n}`;
}

function slotIpv6(slot: number, n: number): string {
  return `2001:db8:1::${((slot << 8) | n).toString(16)}`;
}

export class LocalInternet {
  readonly prefix: string;
  readonly workDir: string;
  /** slot index: this instance's addresses are 198.51.100.<32*slot + n>/27 and 2001:db8:1::<slot*256+n (hex)>/120 */
  readonly slot: number;
  /** the test process's own address on the test net (root side of the bridge) */
  readonly localIpv4: string;
  readonly localIpv6: string;

  private readonly hosts: NetHost[] = [];
  private readonly children = new Set<ChildProcess>();
  private resolver: string;
  private destroyed = false;
  private readonly bridgeNs: string;

  private constructor(prefix: string, slot: number, workDir: string, resolver: string) {
    this.prefix = prefix;
    this.slot = slot;
    this.workDir = workDir;
    this.resolver = resolver;
    this.bridgeNs = `${prefix}-net`;
    this.localIpv4 = slotIpv4(slot, 1);
    this.localIpv6 = slotIpv6(slot, 1);
  }

  static async create(opts: { resolver?: string } = {}): Promise<LocalInternet> {
    if (process.getuid?.() !== 0) {
      throw new Error("local-internet harness: integration tests need root (ip netns); run them as root");
    }
    requireTool("/usr/sbin/ip", "iproute2");
    installExitHooks();
    fs.mkdirSync(SLOT_DIR, { recursive: true });
    const prefix = `ms${randomBytes(2).toString("hex")}`;
    const slot = await LocalInternet.claimSlot(prefix);
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    const net = new LocalInternet(prefix, slot, workDir, opts.resolver ?? "127.0.0.1");
    live.add(net);
    try {
      await net.setUpBridge();
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  /** Claim a free slot with an O_EXCL lock file; reclaim slots whose owner process is gone. */
  private static async claimSlot(prefix: string): Promise<number> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      for (let slot = 0; slot < SLOTS; slot++) {
        const file = path.join(SLOT_DIR, `slot-${slot}`);
        try {
          fs.writeFileSync(file, JSON.stringify({ pid: process.pid, prefix } satisfies SlotRecord), { flag: "wx" });
          return slot;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
        let owner: SlotRecord | undefined;
        try {
          owner = JSON.parse(fs.readFileSync(file, "utf8")) as SlotRecord;
        } catch {
          /* half-written by a racing creator: leave it */
        }
        if (owner && !pidAlive(owner.pid)) {
          log(`reclaiming slot ${slot} from dead pid ${owner.pid} (${owner.prefix})`);
          teardownSync(owner.prefix, [], undefined);
          fs.rmSync(file, { force: true });
          slot--; // retry the same slot
        }
      }
      if (Date.now() > deadline) {
        throw new Error(`local-internet harness: all ${SLOTS} slots in ${SLOT_DIR} are in use by live processes`);
      }
      await sleep(250);
    }
  }

  private async setUpBridge(): Promise<void> {
    const br = this.bridgeNs;
    await mustRun(["ip", "netns", "add", br]);
    await mustRun(["ip", "-n", br, "link", "set", "lo", "up"]);
    await mustRun(["ip", "-n", br, "link", "add", "br0", "type", "bridge"]);
    await mustRun(["ip", "-n", br, "link", "set", "br0", "up"]);
    // The test process's own leg into the bridge.
    const rootEnd = `${this.prefix}r`;
    await mustRun(["ip", "link", "add", rootEnd, "type", "veth", "peer", "name", `${this.prefix}rb`, "netns", br]);
    await mustRun(["ip", "-n", br, "link", "set", `${this.prefix}rb`, "master", "br0", "up"]);
    await mustRun(["ip", "addr", "add", `${this.localIpv4}/27`, "dev", rootEnd]);
    await mustRun(["ip", "-6", "addr", "add", `${this.localIpv6}/120`, "dev", rootEnd, "nodad"]);
    await mustRun(["ip", "link", "set", rootEnd, "up"]);
  }

  private writeResolvConf(ns: string): void {
    const dir = `/etc/netns/${ns}`;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "resolv.conf"), `nameserver ${this.resolver}\noptions timeout:2 attempts:2\n`);
  }

  async addHost(name: string): Promise<NetHost> {
    if (this.destroyed) throw new Error("addHost: this LocalInternet was destroyed");
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(name)) {
      throw new Error(`addHost: host name "${name}" must be 1-31 of a-z, 0-9, "-"`);
    }
    if (this.hosts.some((h) => h.name === name)) throw new Error(`addHost: host "${name}" already exists`);
    if (this.hosts.length >= HOSTS_PER_SLOT) throw new Error(`addHost: at most ${HOSTS_PER_SLOT} hosts per LocalInternet`);
    const n = this.hosts.length + 2;
    const ns = `${this.prefix}-${name}`;
    const ipv4 = slotIpv4(this.slot, n);
    const ipv6 = slotIpv6(this.slot, n);
    const hostEnd = `${this.prefix}h${n}`;
    const bridgeEnd = `${this.prefix}b${n}`;
    this.writeResolvConf(ns);
    await mustRun(["ip", "netns", "add", ns]);
    await mustRun(["ip", "link", "add", hostEnd, "netns", ns, "type", "veth", "peer", "name", bridgeEnd, "netns", this.bridgeNs]);
    await mustRun(["ip", "-n", this.bridgeNs, "link", "set", bridgeEnd, "master", "br0", "up"]);
    await mustRun([
      "ip",
      "netns",
      "exec",
      ns,
      "sysctl",
      "-q",
      "-w",
      "net.ipv4.ip_unprivileged_port_start=0",
      "net.ipv6.conf.all.accept_dad=0",
      "net.ipv6.conf.default.accept_dad=0",
    ]);
    await mustRun(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await mustRun(["ip", "-n", ns, "link", "set", hostEnd, "name", "eth0"]);
    await mustRun(["ip", "-n", ns, "addr", "add", `${ipv4}/27`, "dev", "eth0"]);
    await mustRun(["ip", "-n", ns, "-6", "addr", "add", `${ipv6}/120`, "dev", "eth0", "nodad"]);
    await mustRun(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    const host: NetHost = {
      name,
      ns,
      ipv4,
      ipv6,
      run: (argv, opts) => {
        log(`[${name}] ${argv.join(" ")}`);
        return runCommand(["ip", "netns", "exec", ns, ...argv], opts);
      },
      spawn: (argv, opts) => this.spawnIn(host, argv, opts),
    };
    this.hosts.push(host);
    return host;
  }

  private spawnIn(host: NetHost, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error("spawn: this LocalInternet was destroyed");
    log(`[${host.name}] spawn ${argv.join(" ")}`);
    const logFile = opts.logFile ?? path.join(this.workDir, `${host.name}-${path.basename(argv[0])}-${Date.now()}.log`);
    const out = fs.openSync(logFile, "a");
    // `ip netns exec` execs the command, so the child's pid is the server's pid.
    const child = spawnChild("ip", ["netns", "exec", host.ns, ...argv], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const tee = (chunk: Buffer) => {
      fs.writeSync(out, chunk);
      if (verbose) process.stderr.write(`[${host.name}:${path.basename(argv[0])}] ${chunk.toString()}`);
    };
    child.stdout!.on("data", tee);
    child.stderr!.on("data", tee);
    child.on("error", () => undefined);
    this.children.add(child);
    child.on("close", () => {
      this.children.delete(child);
      try {
        fs.closeSync(out);
      } catch {
        /* closed */
      }
    });
    return child;
  }

  async setResolver(ipv4: string): Promise<void> {
    this.resolver = ipv4;
    for (const h of this.hosts) this.writeResolvConf(h.ns);
  }

  /** Hosts added so far (in order). */
  get allHosts(): readonly NetHost[] {
    return this.hosts;
  }

  /** Stop one spawned process: SIGTERM, then SIGKILL after graceMs. */
  static async stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once("close", () => r()));
    try {
      process.kill(child.pid, "SIGTERM");
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((c) => LocalInternet.stopProcess(c)));
    // Whatever else runs in our namespaces (e.g. daemons started through run()) is ours too.
    for (const ns of [...this.hosts.map((h) => h.ns), this.bridgeNs]) {
      const r = await runCommand(["ip", "netns", "pids", ns]);
      for (const p of r.stdout.split("\n").filter(Boolean)) {
        try {
          process.kill(Number(p), "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
    await runCommand(["ip", "link", "del", `${this.prefix}r`]);
    for (const ns of [...this.hosts.map((h) => h.ns), this.bridgeNs]) {
      await runCommand(["ip", "netns", "del", ns]);
      fs.rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    fs.rmSync(this.workDir, { recursive: true, force: true });
    this.releaseSlot();
    live.delete(this);
  }

  /** @internal exit-hook path: no awaiting possible there. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    teardownSync(this.prefix, [...this.children].map((c) => c.pid!).filter(Boolean), this.workDir);
    // tracked namespaces may include ones created before a crash in addHost
    this.releaseSlot();
    live.delete(this);
  }

  private releaseSlot(): void {
    const file = path.join(SLOT_DIR, `slot-${this.slot}`);
    try {
      const owner = JSON.parse(fs.readFileSync(file, "utf8")) as SlotRecord;
      if (owner.prefix === this.prefix) fs.rmSync(file, { force: true });
    } catch {
      /* already released */
    }
  }
}

/** Create a LocalInternet, run fn, destroy it whatever happens (exit hooks cover crashes). */
export async function withLocalInternet<T>(fn: (net: LocalInternet) => Promise<T>, opts: { resolver?: string } = {}): Promise<T> {
  const net = await LocalInternet.create(opts);
  try {
    return await fn(net);
  } finally {
    await net.destroy();
  }
}
