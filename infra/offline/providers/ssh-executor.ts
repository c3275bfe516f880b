// The remote half of the real CommandExecutor: SSH with ssh2, the way pulumi-command v1.2.1 dials
// and runs (provider/pkg/provider/remote/connection.go, commandOutputs.go, copyController.go):
// - the host key, when given, is pinned: only that key, only its algorithm (`ssh.FixedHostKey`,
//   `HostKeyAlgorithms = [publicKey.Type()]`); without it any key is taken (InsecureIgnoreHostKey);
// - a failed dial is retried, `dialErrorLimit` failures allowed (-1: no limit), each bounded by
//   `perDialTimeout` seconds, with the SDK's growing pause between dials (pulumi sdk util/retry);
// - `environment` is requested variable by variable and a refusal fails the command;
//   PULUMI_COMMAND_STDOUT/STDERR are requested optimistically and a refusal is a warning;
// - stdin is written and closed; a non-zero exit fails with `Process exited with status N: running "<cmd>":\n<output>`;
// - CopyToRemote goes over SFTP, creating the parent directories.
import * as fs from "node:fs";
import * as path from "node:path";
import { Client, utils as sshUtils, type ClientChannel, type ConnectConfig, type SFTPWrapper } from "ssh2";
import type {
  CommandExecutor,
  CommandOutput,
  CopySource,
  LocalRun,
  Logging,
  RemoteCopy,
  RemoteRun,
  SshConnection,
} from "./command-executor";
import { runLocalCommand } from "./local-executor";
import { privateKeyForSsh2 } from "./ssh-key-format";

export interface SshExecutorOptions {
  /**
   * The pause after the n-th failed dial (n from 1). Default: pulumi sdk util/retry's Retryer
   * (100 ms, growing by 1.5, at most 5 s).
   */
  retryDelayMs?: (failedDials: number) => number;
}

const defaultDelay = (n: number) => Math.min(100 * 1.5 ** (n - 1), 5000);

/** SSH errors worded as golang.org/x/crypto/ssh and net.Dial word them, since that is what users of pulumi-command see. */
function goDialError(error: Error & { level?: string; code?: string }, c: SshConnection, hostKeyRefused: boolean): Error {
  const endpoint = `${c.host.includes(":") ? `[${c.host}]` : c.host}:${c.port}`;
  if (hostKeyRefused) return new Error("ssh: handshake failed: ssh: host key mismatch");
  if (error.code === "ECONNREFUSED") return new Error(`dial tcp ${endpoint}: connect: connection refused`);
  if (error.code === "EHOSTUNREACH" || error.code === "ENETUNREACH") return new Error(`dial tcp ${endpoint}: connect: no route to host`);
  if (error.code === "ETIMEDOUT" || error.level === "client-timeout") return new Error(`dial tcp ${endpoint}: i/o timeout`);
  if (error.level === "client-authentication") {
    return new Error("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain");
  }
  return new Error(`ssh: handshake failed: ${error.message}`);
}

/** `ssh.ParseAuthorizedKey`: `[options] <type> <base64> [comment]`; the blob must name the same type. */
export function parseAuthorizedKey(line: string): { type: string; blob: Buffer } {
  const fields = line.trim().split(/\s+/);
  for (let i = 0; i + 1 < fields.length; i++) {
    const type = fields[i];
    if (!/^(ssh-|ecdsa-sha2-|sk-)/.test(type)) continue;
    const blob = Buffer.from(fields[i + 1], "base64");
    if (blob.length > 4 && blob.readUInt32BE(0) === type.length && blob.subarray(4, 4 + type.length).toString() === type)
      return { type, blob };
  }
  throw new Error("failed to parse host key: ssh: no key found");
}

/** The host key algorithms a pinned key allows: its own (x/crypto/ssh offers rsa-sha2 signatures for an ssh-rsa key). */
function hostKeyAlgorithms(type: string): string[] {
  return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

/** connection.go SSHConfig: key, password, agent; errors here are not dial errors and are not retried. */
function clientConfig(c: SshConnection): ConnectConfig & { pinned?: Buffer } {
  const config: ConnectConfig & { pinned?: Buffer } = {
    host: c.host,
    port: c.port,
    username: c.user,
    // perDialTimeout 0: no bound (connection.go: "0 implies no maximum").
    readyTimeout: c.perDialTimeout > 0 ? c.perDialTimeout * 1000 : 2 ** 31 - 1,
  };
  if (c.hostKey !== undefined) {
    const pinned = parseAuthorizedKey(c.hostKey);
    config.pinned = pinned.blob;
    config.algorithms = { serverHostKey: hostKeyAlgorithms(pinned.type) as never };
  }
  if (c.privateKey !== undefined) {
    const key = privateKeyForSsh2(c.privateKey);
    const parsed = sshUtils.parseKey(key, c.privateKeyPassword);
    if (parsed instanceof Error) {
      throw new Error(/encrypt|passphrase/i.test(parsed.message) ? "ssh: this private key is passphrase protected" : "ssh: no key found");
    }
    config.privateKey = key;
    if (c.privateKeyPassword !== undefined) config.passphrase = c.privateKeyPassword;
  }
  if (c.password !== undefined) {
    config.password = c.password;
    config.tryKeyboard = true;
  }
  const agent = c.agentSocketPath ?? process.env.SSH_AUTH_SOCK;
  if (agent) config.agent = agent;
  return config;
}

function connectOnce(config: ConnectConfig & { pinned?: Buffer }, c: SshConnection, sock?: NodeJS.ReadableStream): Promise<Client> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let refused = false;
    const { pinned, ...rest } = config;
    conn.once("ready", () => resolve(conn));
    conn.once("error", (err) => {
      conn.end();
      reject(goDialError(err, c, refused));
    });
    conn.on("keyboard-interactive", (_n, _i, _l, prompts, finish) => finish(prompts.map(() => c.password ?? "")));
    conn.connect({
      ...rest,
      ...(sock ? { sock: sock as never } : {}),
      ...(pinned
        ? {
            hostVerifier: (key: Buffer) => {
              if (key.equals(pinned)) return true;
              refused = true;
              return false;
            },
          }
        : {}),
    });
  });
}

/**
 * connection.go dialWithRetry: a failing dial is retried until `dials > dialErrorLimit` (-1: never
 * gives up), then fails with `after <n> failed attempts: <error>`; every failure logs
 * `<what> <dials>/<limit|inf> failed: retrying`.
 */
async function dialWithRetry<T>(
  what: string,
  limit: number,
  log: (m: string) => void,
  delay: (n: number) => number,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      const dials = tries + 1;
      if (limit > -1 && dials > limit) throw new Error(`after ${tries} failed attempts: ${(error as Error).message}`);
      log(`${what} ${dials}/${limit === -1 ? "inf" : limit} failed: retrying`);
      await new Promise((r) => setTimeout(r, delay(dials)));
    }
  }
}

/** connection.go Connection.Dial, with the proxy hop when there is one. */
export async function dial(c: SshConnection, log: (m: string) => void, options: SshExecutorOptions = {}): Promise<Client> {
  const delay = options.retryDelayMs ?? defaultDelay;
  const config = clientConfig(c);
  if (!c.proxy) return dialWithRetry("Dial", c.dialErrorLimit, log, delay, () => connectOnce(config, c));
  const proxyConfig = (() => {
    try {
      return clientConfig(c.proxy!);
    } catch (error) {
      throw new Error(`proxy: ${(error as Error).message}`);
    }
  })();
  const proxy = await dialWithRetry("Dial proxy", c.proxy.dialErrorLimit, log, delay, () => connectOnce(proxyConfig, c.proxy!)).catch(
    (e: Error) => {
      throw new Error(`proxy: ${e.message}`);
    },
  );
  try {
    return await dialWithRetry("Dial", c.dialErrorLimit, log, delay, async () => {
      const stream = await new Promise<ClientChannel>((resolve, reject) =>
        proxy.forwardOut("127.0.0.1", 0, c.host, c.port, (err, s) =>
          err ? reject(new Error(`dial tcp ${c.host}:${c.port}: ${err.message}`)) : resolve(s),
        ),
      );
      return connectOnce(config, c, stream);
    });
  } catch (error) {
    proxy.end();
    throw new Error(`proxy: ${(error as Error).message}`);
  }
}

interface Ssh2Internals {
  _protocol?: {
    env: (chan: number, key: string, val: string, wantReply: boolean) => void;
    exec: (chan: number, cmd: string, wantReply: boolean) => void;
  };
  _chanMgr?: { _channels: Record<string, unknown> };
}

type Channel = { outgoing?: { id: number }; _callbacks: ((hadErr: boolean) => void)[]; close(): void };

/**
 * ssh2 sends `env` requests without asking for a reply, so a refused variable would go unnoticed;
 * x/crypto/ssh's `session.Setenv` asks and fails. This asks for replies (ssh2 internals
 * `_protocol.env`, `_chanMgr`), waits for all of them before the exec request goes out, and does
 * not run the command when a required variable was refused.
 */
function requestEnvWithReplies(conn: Client, required: Set<string>, onRefused: (key: string) => void): void {
  const internals = conn as unknown as Ssh2Internals;
  const protocol = internals._protocol;
  const channels = internals._chanMgr?._channels;
  if (!protocol || typeof protocol.env !== "function" || typeof protocol.exec !== "function" || !channels) {
    throw new Error("ssh2's internals changed: environment variables cannot be checked (update ssh-executor.ts)");
  }
  const replies: Promise<boolean>[] = [];
  const channelOf = (id: number) =>
    Object.values(channels).find((ch) => typeof ch === "object" && ch !== null && (ch as Channel).outgoing?.id === id) as Channel;
  const env = protocol.env.bind(protocol);
  const exec = protocol.exec.bind(protocol);
  protocol.env = (chanId, key, val) => {
    replies.push(
      new Promise((resolve) =>
        channelOf(chanId)._callbacks.push((hadErr) => {
          if (hadErr) onRefused(key);
          resolve(!hadErr || !required.has(key));
        }),
      ),
    );
    env(chanId, key, val, true);
  };
  protocol.exec = (chanId, cmd, wantReply) => {
    void Promise.all(replies).then((oks) => {
      if (oks.every(Boolean)) exec(chanId, cmd, wantReply);
      else channelOf(chanId)?.close();
    });
  };
}

function logOutput(text: string, log: (m: string) => void): void {
  for (const line of text.split("\n")) if (line !== "") log(line);
}

export class SshCommandExecutor implements Pick<CommandExecutor, "runRemote" | "copyToRemote"> {
  constructor(private readonly options: SshExecutorOptions = {}) {}

  async runRemote(run: RemoteRun, log: (message: string) => void): Promise<CommandOutput> {
    const conn = await dial(run.connection, log, this.options);
    try {
      const refused: string[] = [];
      const env = { ...run.environment, ...run.optionalEnvironment };
      if (Object.keys(env).length > 0) requestEnvWithReplies(conn, new Set(Object.keys(run.environment)), (k) => refused.push(k));
      const setenvHelp = (key: string) =>
        `Unable to set '${key}'. This only works if your SSH server is configured to accept these variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote host, you could prefix the command itself with the variables in the form 'VAR=value command'`;
      let stream: ClientChannel;
      try {
        stream = await new Promise<ClientChannel>((resolve, reject) =>
          conn.exec(run.command, Object.keys(env).length > 0 ? { env } : {}, (err, s) => (err ? reject(err) : resolve(s))),
        );
      } catch (error) {
        const requiredRefused = refused.find((k) => k in run.environment);
        if (requiredRefused) {
          log(`error: ${setenvHelp(requiredRefused)}`);
          throw new Error(`could not set environment variable "${requiredRefused}": ssh: setenv failed`);
        }
        throw error;
      }
      for (const k of refused) log(`warning: ${setenvHelp(k)}`);
      return await collect(stream, run.command, run.stdin, run.logging, log);
    } finally {
      conn.end();
    }
  }

  async copyToRemote(copy: RemoteCopy, log: (message: string) => void): Promise<void> {
    const conn = await dial(copy.connection, log, this.options);
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => conn.sftp((err, s) => (err ? reject(err) : resolve(s))));
      try {
        await sftpCopy(sftp, copy.source, copy.remotePath);
      } finally {
        sftp.end();
      }
    } finally {
      conn.end();
    }
  }
}

/** x/crypto/ssh ssh/session.go `signals`: the status of a command ended by a signal is 128 plus these. */
const SIGNAL_NUMBERS: Record<string, number> = {
  ABRT: 6,
  ALRM: 14,
  FPE: 8,
  HUP: 1,
  ILL: 4,
  INT: 2,
  KILL: 9,
  PIPE: 13,
  QUIT: 3,
  SEGV: 11,
  TERM: 15,
};

/**
 * x/crypto/ssh ssh/session.go wait and Waitmsg.String for an exit-signal without exit-status:
 * `Process exited with status <128+n> from signal <NAME>[. Reason was: <message>]`, the name as
 * sent (RFC 4254 6.10: without "SIG"; ssh2 adds the prefix).
 */
function exitSignalText(ssh2Signal: string, reason: string | undefined): string {
  const name = ssh2Signal.replace(/^SIG/, "");
  const status = 128 + (SIGNAL_NUMBERS[name] ?? 0);
  return `Process exited with status ${status} from signal ${name}${reason ? `. Reason was: ${reason}` : ""}`;
}

/** remote/commandOutputs.go run: stdout, stderr and both interleaved for the error text. */
function collect(
  stream: ClientChannel,
  command: string,
  stdin: string | undefined,
  logging: Logging,
  log: (m: string) => void,
): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    let both = "";
    stream.on("data", (d: Buffer) => {
      stdout += d.toString();
      both += d.toString();
      if (logging === "stdout" || logging === "stdoutAndStderr") logOutput(d.toString(), log);
    });
    stream.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      both += d.toString();
      if (logging === "stderr" || logging === "stdoutAndStderr") logOutput(d.toString(), log);
    });
    // The exit status is taken from 'close', never from an 'exit' listener added here: ssh2 1.17
    // emits 'exit' the moment the exit-status request is parsed (lib/client.js CHANNEL_REQUEST),
    // and when the exec reply and the exit-status arrive in one read (a command as short as
    // `true` while this process does not get to read the socket in between) that is before this
    // function runs, so the status would be lost. ssh2 keeps it on the channel and hands it to
    // 'close' (lib/utils.js onCHANNEL_CLOSE). x/crypto/ssh cannot lose it either: newSession starts the goroutine that
    // collects the session's requests before the exec request is sent (ssh/session.go newSession,
    // golang/crypto@82adefa711cb8d9a1f12c7ea91b491007d21819f), and Wait reports what it collected.
    stream.on("close", (code?: number | null, signal?: string, _coreDumped?: boolean, reason?: string) => {
      if (code === 0) return resolve({ stdout, stderr });
      // x/crypto/ssh ExitError / ExitMissingError texts (ssh/session.go wait, Waitmsg.String).
      const why =
        code === undefined && signal === undefined
          ? "wait: remote command exited without exit status or exit signal"
          : signal !== undefined
            ? exitSignalText(signal, reason)
            : `Process exited with status ${code}`;
      reject(new Error(`${why}: running ${JSON.stringify(command)}:\n${both}`));
    });
    if (stdin !== undefined && stdin !== "") stream.end(stdin);
    else stream.end();
  });
}

const sftpStat = (sftp: SFTPWrapper, p: string) =>
  new Promise<{ isDirectory(): boolean } | undefined>((resolve, reject) =>
    sftp.stat(p, (err, stats) => {
      if (!err) return resolve(stats);
      // SSH_FX_NO_SUCH_FILE (2): pkg/sftp normalises it to os.ErrNotExist.
      if ((err as Error & { code?: number }).code === 2) return resolve(undefined);
      reject(new Error(`failed to stat remote path ${p}: ${err.message}`));
    }),
  );

const sftpMkdir = (sftp: SFTPWrapper, p: string) =>
  new Promise<void>((resolve, reject) => sftp.mkdir(p, (err) => (err ? reject(err) : resolve())));

/** pkg/sftp Client.MkdirAll: every missing component; an existing non-directory is an error. */
async function mkdirAll(sftp: SFTPWrapper, dir: string): Promise<void> {
  const parts = path.posix.resolve("/", dir).split("/").filter(Boolean);
  let current = dir.startsWith("/") ? "" : ".";
  for (const part of parts) {
    current = `${current}/${part}`;
    const stat = await sftpStat(sftp, current);
    if (!stat) await sftpMkdir(sftp, current);
    else if (!stat.isDirectory()) throw new Error(`mkdir ${current}: not a directory`);
  }
}

function writeRemote(sftp: SFTPWrapper, remotePath: string, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) =>
    sftp.open(remotePath, "w", (err, handle) => {
      if (err) return reject(new Error(`failed to create remote file ${remotePath}: ${err.message}`));
      const buf = typeof data === "string" ? Buffer.from(data) : data;
      const finish = (e?: Error | null) => sftp.close(handle, () => (e ? reject(e) : resolve()));
      if (buf.length === 0) return finish();
      let offset = 0;
      const next = () => {
        const chunk = buf.subarray(offset, offset + 32 * 1024);
        sftp.write(handle, chunk, 0, chunk.length, offset, (e) => {
          if (e) return finish(new Error(`failed to write to remote path ${remotePath}: ${e.message}`));
          offset += chunk.length;
          if (offset < buf.length) next();
          else finish();
        });
      };
      next();
    }),
  );
}

/** copyController.go copyTextContent and sftpCopy (the source/destination table there). */
async function sftpCopy(sftp: SFTPWrapper, source: CopySource, remotePath: string): Promise<void> {
  const dest = await sftpStat(sftp, remotePath);
  if (source.kind === "text") {
    if (dest?.isDirectory())
      throw new Error(`remote path ${remotePath} is a directory; when using a text asset, remotePath must be a file path`);
    await mkdirAll(sftp, path.posix.dirname(remotePath));
    await writeRemote(sftp, remotePath, source.text);
    return;
  }
  const local = fs.statSync(source.path);
  if (!local.isDirectory()) {
    let target = remotePath;
    if (dest?.isDirectory()) target = path.posix.join(remotePath, path.basename(source.path));
    else if (!dest) await mkdirAll(sftp, path.posix.dirname(remotePath));
    await writeRemote(sftp, target, fs.readFileSync(source.path));
    return;
  }
  if (dest && !dest.isDirectory()) throw new Error(`remote path ${remotePath} exists but is not a directory`);
  if (!dest) await mkdirAll(sftp, remotePath);
  let target = remotePath;
  if (!source.path.endsWith("/")) {
    target = path.posix.join(remotePath, path.basename(source.path));
    const t = await sftpStat(sftp, target);
    if (t && !t.isDirectory()) throw new Error(`remote path ${target} exists but is not a directory`);
    if (!t) await sftpMkdir(sftp, target);
  }
  const walk = async (localDir: string, remoteDir: string) => {
    for (const entry of fs.readdirSync(localDir, { withFileTypes: true })) {
      const l = path.join(localDir, entry.name);
      const r = path.posix.join(remoteDir, entry.name);
      if (entry.isDirectory()) {
        const s = await sftpStat(sftp, r);
        if (!s) await sftpMkdir(sftp, r);
        else if (!s.isDirectory()) throw new Error(`remote path ${r} exists but is not a directory`);
        await walk(l, r);
      } else await writeRemote(sftp, r, fs.readFileSync(l));
    }
  };
  await walk(source.path, target);
}

/** The real executor: SSH and SFTP for remote commands and copies, a child process for local ones. */
export class RealCommandExecutor implements CommandExecutor {
  private readonly ssh: SshCommandExecutor;
  constructor(options: SshExecutorOptions = {}) {
    this.ssh = new SshCommandExecutor(options);
  }
  runRemote(run: RemoteRun, log: (message: string) => void): Promise<CommandOutput> {
    return this.ssh.runRemote(run, log);
  }
  copyToRemote(copy: RemoteCopy, log: (message: string) => void): Promise<void> {
    return this.ssh.copyToRemote(copy, log);
  }
  runLocal(run: LocalRun, log: (message: string) => void): Promise<CommandOutput> {
    return runLocalCommand(run, log);
  }
}
