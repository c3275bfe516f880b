/**
 * maild for tests: the daemon bundled once per test process with esbuild (so a restart costs a
 * Node start, not a TypeScript compile), run inside a namespace host; plus a raw SMTP client
 * that sends exactly the bytes a test gives it (smuggling payloads, pipelining, crash load).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { daemonBuildOptions } from "../../server-bootstrap/install/daemon-bundle";
import { MAILD_NODE_FLAGS } from "../../server-bootstrap/maild/node-flags";
import { startSpamFilter, type SpamFilter, type SpamFilterOptions } from "../../infra/local-internet/spam-filter";

const REPO = path.resolve(__dirname, "../..");
const NODE = path.join(REPO, "node_modules/.bin/node");

let bundled: Promise<string> | undefined;

/** Bundles server-bootstrap/maild/main.ts into one CommonJS file (once per process). */
export function bundleMaild(): Promise<string> {
  bundled ??= (async () => {
    const { build } = await import("esbuild");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "maild-bundle-"));
    // readable by the unprivileged user maild may be started as
    fs.chmodSync(dir, 0o755);
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    const out = path.join(dir, "maild.js");
    // the options the box's bundle is built with (minified), so tests run what ships
    await build(daemonBuildOptions(out, REPO));
    return out;
  })();
  return bundled;
}

export interface MaildProcess {
  host: NetHost;
  configPath: string;
  logPath: string;
  child: ChildProcess;
  /** SIGKILL, no cleanup: the crash the durability design is about */
  kill9(): Promise<void>;
  /** start again with the same config; resolves when SMTP accepts connections */
  restart(): Promise<void>;
  /** SIGTERM; resolves with the exit code */
  stop(): Promise<number | null>;
  signal(sig: NodeJS.Signals): void;
  /** the JSON log lines written so far (all runs) */
  logs(): Record<string, unknown>[];
  /** rspamd, Redis and unbound in the same host, as on the box (maild asks rspamd about every message) */
  spam: SpamFilter;
}

export interface StartMaildOptions {
  /** file names under workDir */
  name?: string;
  /** run as this uid/gid (as the box runs it as its own user), with these supplementary groups (the mail group) */
  user?: { uid: number; gid: number; groups?: number[] };
  /** a spam filter already running in `host`; default: one is started there */
  spam?: SpamFilter;
  /** settings for the spam filter started here */
  spamOptions?: SpamFilterOptions;
}

/** Writes `config` to the net's workDir and starts maild in `host`; resolves once SMTP is up. */
export async function startMaild(
  internet: LocalInternet,
  host: NetHost,
  config: Record<string, unknown>,
  opts: StartMaildOptions = {},
): Promise<MaildProcess> {
  const name = opts.name ?? "maild";
  const script = await bundleMaild();
  const configPath = path.join(internet.workDir, `${name}.json`);
  const logPath = path.join(internet.workDir, `${name}.log`);
  // an unprivileged maild must reach its config inside workDir (as dovecot.ts and postfix.ts do)
  if (opts.user) fs.chmodSync(internet.workDir, 0o711);
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const smtp = (config.listen as { smtp: { host: string; port: number }[] }).smtp[0];
  const dnsServers = config.dnsServers as string[] | undefined;
  const spam =
    opts.spam ??
    (await startSpamFilter(internet, host, {
      ...(dnsServers?.[0] ? { upstreamDns: dnsServers[0].replace(/^(\d+\.\d+\.\d+\.\d+):\d+$/, "$1") } : {}),
      ...opts.spamOptions,
    }));

  const proc: MaildProcess = {
    host,
    configPath,
    logPath,
    child: undefined as unknown as ChildProcess,
    spam,
    async kill9() {
      const c = proc.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once("close", () => r()));
      process.kill(c.pid!, "SIGKILL");
      await exited;
    },
    async restart() {
      const groups = opts.user?.groups?.length ? `--groups=${opts.user.groups.join(",")}` : "--clear-groups";
      const drop = opts.user ? ["setpriv", `--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, groups] : [];
      const readyBefore = readyCount(logPath);
      const child = host.spawn([...drop, NODE, ...MAILD_NODE_FLAGS, script, "--config", configPath], { logFile: logPath, cwd: REPO });
      proc.child = child;
      await waitReady(child, smtp.host, smtp.port, logPath);
      // every listener (submission, HTTP) is up once the daemon logs start.ready
      const deadline = Date.now() + 15_000;
      while (readyCount(logPath) === readyBefore && child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
    },
    async stop() {
      const c = proc.child;
      if (c.exitCode !== null || c.signalCode !== null) return c.exitCode;
      const exited = new Promise<number | null>((r) => c.once("close", (code) => r(code)));
      process.kill(c.pid!, "SIGTERM");
      return exited;
    },
    signal(sig) {
      process.kill(proc.child.pid!, sig);
    },
    logs() {
      if (!fs.existsSync(logPath)) return [];
      return fs
        .readFileSync(logPath, "utf8")
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
  await proc.restart();
  return proc;
}

function readyCount(logPath: string): number {
  return fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8").split('"event":"start.ready"').length - 1 : 0;
}

async function waitReady(child: ChildProcess, host: string, port: number, logPath: string): Promise<void> {
  const alive = () => child.exitCode === null && child.signalCode === null;
  try {
    await waitForPort(host, port, "maild", 15_000, alive, 25);
  } catch (err) {
    const log = fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8").slice(-3000) : "";
    throw new Error(`${(err as Error).message}:\n${log}`);
  }
}

export interface SmtpReply {
  code: number;
  /** all lines joined by "\n", without the code prefixes */
  text: string;
}

/** A line-level SMTP client that sends exactly what it is told. */
export class RawSmtp {
  private buf = "";
  private waiters: (() => void)[] = [];
  private closed = false;
  private socket: net.Socket | tls.TLSSocket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  static connect(host: string, port: number, opts: { localAddress?: string } = {}): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      s.once("connect", () => resolve(new RawSmtp(s)));
      s.once("error", reject);
    });
  }

  private attach(s: net.Socket): void {
    s.setEncoding("latin1");
    s.on("data", (d: string) => {
      this.buf += d;
      this.wake();
    });
    s.on("close", () => {
      this.closed = true;
      this.wake();
    });
    s.on("error", () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Reads one complete (possibly multi-line) reply; rejects if the connection closes first. */
  async reply(timeoutMs = 20_000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^((?:\d{3}-[^\r\n]*\r\n)*)(\d{3}) ?([^\r\n]*)\r\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        const lines = m[1]
          .split("\r\n")
          .filter(Boolean)
          .map((l) => l.slice(4));
        lines.push(m[3]);
        return { code: Number(m[2]), text: lines.join("\n") };
      }
      if (this.closed) throw new Error(`connection closed while waiting for a reply (buffer: ${JSON.stringify(this.buf)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SMTP reply within ${timeoutMs} ms (buffer: ${JSON.stringify(this.buf)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  async command(line: string): Promise<SmtpReply> {
    this.write(line + "\r\n");
    return this.reply();
  }

  /** STARTTLS and a new EHLO; returns the server certificate. */
  async starttls(servername: string, ehlo: string): Promise<tls.PeerCertificate> {
    const r = await this.command("STARTTLS");
    if (r.code !== 220) throw new Error(`STARTTLS refused: ${r.code} ${r.text}`);
    const plain = this.socket as net.Socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: plain, servername, rejectUnauthorized: false }, () => resolve(t));
      t.once("error", reject);
    });
    this.socket = secure;
    this.attach(secure as unknown as net.Socket);
    const cert = secure.getPeerCertificate();
    const e = await this.command(`EHLO ${ehlo}`);
    if (e.code !== 250) throw new Error(`EHLO after STARTTLS: ${e.code} ${e.text}`);
    return cert;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Kills (SIGKILL) the process whose pid `pidFile` holds, if the file and the process exist: cleanup after a failed stop. */
export function killFromPidFile(pidFile: string): void {
  if (!fs.existsSync(pidFile)) return;
  try {
    process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGKILL");
  } catch {
    // already gone
  }
}
