// The outbound queue on disk: `<dataDir>/queue/`, two files per message id I.
//
//   I.eml   the message as it will be sent (trace headers included), never changed once there
//   I.json  the envelope and its delivery state (Envelope below); the entry exists iff it exists
//
// Protocol (every step is a name created, replaced or removed in one directory):
//   Q1. enqueue: I.eml is made a hard link of the caller's fsynced message file (on another file
//       system: a copy into I.eml.tmp, fsynced, renamed to I.eml), and I.json is created (never
//       over an existing one) with the first envelope. Then, at the same time, an fsync of I.json
//       and one of the directory; only once both are done does enqueue resolve: the entry is
//       durable before the client's 250.
//   Q1'. enqueue of a message that exists nowhere else yet (a forwarded message with no local
//       mailbox: delivery.ts protocol C): I.eml is created (never over an existing one) with the
//       message and fsynced, and at the same time the envelope is written to I.json.<random>.tmp
//       and fsynced; once both are durable, the tmp file is renamed to I.json and the directory
//       fsynced, and only then does enqueue resolve. I.json appears, whole, only after I.eml is
//       complete on disk, so the entry's existence is its own commit point: the caller needs no
//       spool file of its own to roll back, and an entry found at start was acknowledged.
//   Q2. every later change of state writes a whole new I.json as I.json.<random>.tmp, fsyncs
//       it, renames it over I.json and fsyncs the directory. rename(2) replaces atomically, so
//       from Q1's end on I.json is always one complete state that was written, never a mix of two
//       and never a torn file.
//   Q3. removal: I.json is unlinked and the directory fsynced, then I.eml is unlinked.
// Invariants this gives, whatever instant a crash (or power loss) hits:
//   - the I.json of every entry whose enqueue resolved is complete and has its I.eml: all of Q1
//     (or Q1') was durable before it resolved, and Q3 removes I.eml only once I.json's removal
//     is durable;
//   - a crash inside Q1' leaves I.eml (complete or not) and a *.tmp, garbage to `scan` below,
//     and no I.json, unless the rename had reached the disk. The rename is the commit point of
//     Q1', as the spool file's removal is protocol B's: once it is on disk the entry is whole
//     (I.eml was durable before it) and is sent; if the crash came before the 250, the client
//     sends the message again (the RFC 1047 window every commit point has, delivery.ts). An
//     I.json whose I.eml's name did not reach the disk is deleted by `scan`: that enqueue never
//     resolved;
//   - a crash inside Q1 may leave either name without the other, or an I.json that is empty or
//     cut short (the file system makes names and contents durable in any order until the
//     fsyncs return). That enqueue never resolved, so the message was never acknowledged: the
//     receiving side's commit point comes after it, and recovery (delivery.ts recoverSpool)
//     discards such an entry, both files, without reading them. Anything else left, `scan`
//     deletes (an I.eml without I.json, an I.json without I.eml) or leaves for a human (an
//     I.json that does not parse), and logs;
//   - *.tmp files are writes that never reached their rename: `scan` deletes them.
// Why Q1 loses nothing with fewer waits: the fsyncs are those that made each part durable before
// (the directory for both names, the file for the envelope's content); they now run together
// instead of one after the other, and the acknowledgement still waits for all of them. Their
// order only mattered for states in which the entry was not yet acknowledged, which recovery
// throws away.
// fsyncs of the directory are shared by concurrent writers (DirSyncer), as in delivery.ts.
import { copyFile, constants as fsConstants, link, mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { close as closeFd, fsync as fsyncFd, open as openFd } from "node:fs";
import { DirSyncer, fsyncDir, fsyncFile } from "../dir-sync";
import { splitHeader } from "../trace-headers";
import type { RecipientResult } from "./types";
import { replaceDurably, writeDurableTemp } from "./atomic-file";

export interface RecipientState {
  address: string;
  /** pending: still to be tried; delivered/failed are final */
  state: "pending" | "delivered" | "failed";
  /**
   * Durably set before an attempt hands the message to the transport, cleared with the durable
   * record of its result. Found set at start: the process died in between, possibly after the
   * remote server's 250, so the retry may deliver a second copy (RFC 1047).
   */
  inFlight: boolean;
  /** failed: a failure DSN listing this recipient has been handed to `bounce` */
  reported: boolean;
  /** failed by expiry (no permanent answer: the message was too old to try again) */
  expired: boolean;
  /** the latest result the transport gave for this recipient, and when (ms since the epoch) */
  last?: RecipientResult & { at: number };
}

export interface Envelope {
  version: 1;
  id: string;
  /** RFC 5321 reverse-path; "" is the null sender, to whom no DSN is ever sent (RFC 5321 6.1) */
  sender: string;
  recipients: RecipientState[];
  /** bytes of I.eml */
  size: number;
  /** ms since the epoch: when the message was queued (the DSN's Arrival-Date) */
  arrival: number;
  /** attempts made so far (each tries every pending recipient, one transport call per domain) */
  attempts: number;
  /** ms since the epoch: not before then is the next attempt made */
  nextAttempt: number;
  /** the one delay notice (DSN action=delayed) has been handed to `bounce` */
  delayNoticeSent: boolean;
  /** false: the sender gets no DSN (not verified, reverse-path.ts); absent: it does */
  notify?: false;
  /** ms since the epoch: `bounce` has failed (temporarily) for the notice owed since then */
  noticeFailingSince?: number;
}

export interface ScanResult {
  envelopes: Envelope[];
  /** ids of I.eml files without I.json, deleted */
  orphanMessages: string[];
  /** ids of I.json files without I.eml (only from an enqueue that never resolved, see above), deleted */
  missingMessages: string[];
  /** I.json files that do not parse as an Envelope: kept, with their message, for a human */
  unreadable: { id: string; error: string }[];
}

/** The ids maild gives (delivery.ts newMessageId) and nothing that could leave the directory. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// A DSN returns the header section only (RFC 6522 text/rfc822-headers), and at most this much of
// it: whole lines up to the limit. A real header section is a few KiB; what is beyond this is
// someone else's payload (Postfix returns at most bounce_size_limit = 50000 bytes of a message).
export const MAX_RETURNED_HEADER = 32 * 1024;

export class Spool {
  readonly dir: string;
  // The queue directory stays open for its fsyncs: every message needs several, and opening and
  // closing it around each would double the calls for the same effect.
  private readonly syncer = new DirSyncer((dir) => (dir === this.dir ? this.fsyncQueueDir() : fsyncDir(dir)));
  private dirFd?: Promise<number>;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "queue");
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Closes the queue directory kept open for fsyncs (opened again if needed later). */
  async close(): Promise<void> {
    const fd = this.dirFd;
    this.dirFd = undefined;
    if (fd)
      await fd.then(
        (n) => new Promise<void>((resolve) => closeFd(n, () => resolve())),
        () => undefined,
      );
  }

  private async fsyncQueueDir(): Promise<void> {
    this.dirFd ??= new Promise<number>((resolve, reject) => openFd(this.dir, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
    const opening = this.dirFd;
    let fd: number;
    try {
      fd = await opening;
    } catch (err) {
      if (this.dirFd === opening) this.dirFd = undefined;
      throw err;
    }
    await new Promise<void>((resolve, reject) => fsyncFd(fd, (err) => (err ? reject(err) : resolve())));
  }

  messagePath(id: string): string {
    return join(this.dir, `${checkId(id)}.eml`);
  }

  envelopePath(id: string): string {
    return join(this.dir, `${checkId(id)}.json`);
  }

  /**
   * Q1: links (or copies) the fsynced `source` in as I.eml and creates I.json with the envelope
   * `envelope(size)` gives; resolves once both are durable. On failure it takes back what it made
   * (a name it could not create may be someone else's and is not touched).
   */
  async add(id: string, source: string, envelope: (size: number) => Envelope): Promise<void> {
    const target = this.messagePath(id);
    const envelopePath = this.envelopePath(id);
    // a hard link is the same file; a copy has the same bytes
    const size = (await stat(source)).size;
    const linking = link(source, target).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "EXDEV") throw e;
      const tmp = `${target}.tmp`;
      await copyFile(source, tmp, fsConstants.COPYFILE_EXCL);
      await fsyncFile(tmp);
      await rename(tmp, target);
    });
    // "wx": an envelope already there belongs to another entry
    const creating = open(envelopePath, "wx", 0o600);
    const [linked, created] = await Promise.allSettled([linking, creating]);
    try {
      if (linked.status === "rejected") throw linked.reason;
      if (created.status === "rejected") throw created.reason;
      const fh = created.value;
      try {
        await fh.writeFile(JSON.stringify(envelope(size)));
        await Promise.all([fh.sync(), this.syncer.sync(this.dir)]);
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (created.status === "fulfilled") await unlink(envelopePath).catch(() => undefined);
      if (linked.status === "fulfilled") await unlink(target).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Q1': writes `message` as I.eml and its envelope (`envelope(size)`) beside it, then makes
   * I.json appear; resolves once the entry is durable. On failure it takes back what it made.
   */
  async addMessage(id: string, message: Buffer, envelope: (size: number) => Envelope): Promise<void> {
    const target = this.messagePath(id);
    const envelopePath = this.envelopePath(id);
    const writing = (async () => {
      // "wx": a message already there belongs to another entry
      const fh = await open(target, "wx", 0o600);
      try {
        await fh.writeFile(message);
        await fh.sync();
      } finally {
        await fh.close();
      }
    })();
    const [written, temp] = await Promise.allSettled([writing, writeDurableTemp(envelopePath, JSON.stringify(envelope(message.length)))]);
    let renamed = false;
    try {
      if (written.status === "rejected") throw written.reason;
      if (temp.status === "rejected") throw temp.reason;
      await replaceDurably(envelopePath, temp.value);
      renamed = true;
      await this.syncer.sync(this.dir);
    } catch (e) {
      if (renamed) await unlink(envelopePath).catch(() => undefined);
      else if (temp.status === "fulfilled") await unlink(temp.value).catch(() => undefined);
      if (written.status === "fulfilled" || (written.reason as NodeJS.ErrnoException).code !== "EEXIST")
        await unlink(target).catch(() => undefined);
      throw e;
    }
  }

  /** Q2: replaces I.json with `env` atomically and durably (tmp + fsync + rename + dir fsync). */
  async writeEnvelope(env: Envelope): Promise<void> {
    const path = this.envelopePath(env.id);
    await replaceDurably(path, await writeDurableTemp(path, JSON.stringify(env)));
    await this.syncer.sync(this.dir);
  }

  /** Q3. Missing files are no error: removal may be repeated after a crash. */
  async remove(id: string): Promise<void> {
    await unlink(this.envelopePath(id)).catch(ignoreMissing);
    await this.syncer.sync(this.dir);
    await unlink(this.messagePath(id)).catch(ignoreMissing);
  }

  /** Reads every entry at start and tidies what the protocol says is garbage (see above). */
  async scan(): Promise<ScanResult> {
    const result: ScanResult = { envelopes: [], orphanMessages: [], missingMessages: [], unreadable: [] };
    const names = await readdir(this.dir);
    const messages = new Set<string>();
    const envelopes = new Set<string>();
    let removed = false;
    for (const name of names) {
      if (name.endsWith(".tmp")) {
        await unlink(join(this.dir, name)).catch(ignoreMissing);
        removed = true;
      } else if (name.endsWith(".eml") && ID.test(name.slice(0, -4))) messages.add(name.slice(0, -4));
      else if (name.endsWith(".json") && ID.test(name.slice(0, -5))) envelopes.add(name.slice(0, -5));
    }
    for (const id of [...envelopes].sort()) {
      if (!messages.has(id)) {
        result.missingMessages.push(id);
        await unlink(this.envelopePath(id)).catch(ignoreMissing);
        removed = true;
        continue;
      }
      try {
        result.envelopes.push(parseEnvelope(id, await readFile(this.envelopePath(id), "utf8")));
      } catch (e) {
        result.unreadable.push({ id, error: (e as Error).message });
      }
    }
    for (const id of [...messages].sort()) {
      if (envelopes.has(id)) continue;
      result.orphanMessages.push(id);
      await unlink(this.messagePath(id)).catch(ignoreMissing);
      removed = true;
    }
    if (removed) await this.syncer.sync(this.dir);
    return result;
  }

  /** The header section of I.eml (up to MAX_RETURNED_HEADER), without the blank line that ends it. */
  async readHeader(id: string): Promise<Buffer> {
    const fh = await open(this.messagePath(id), "r");
    try {
      const buf = Buffer.alloc(MAX_RETURNED_HEADER);
      let len = 0;
      while (len < buf.length) {
        const { bytesRead } = await fh.read(buf, len, buf.length - len, len);
        if (bytesRead === 0) break;
        len += bytesRead;
        const end = splitHeader(buf.subarray(0, len));
        if (end !== undefined) return buf.subarray(0, end - 2);
      }
      // No end of header within the limit (or a message that is all header): keep whole lines.
      const lastLine = buf.subarray(0, len).lastIndexOf("\r\n");
      return buf.subarray(0, lastLine === -1 ? 0 : lastLine + 2);
    } finally {
      await fh.close();
    }
  }
}

function checkId(id: string): string {
  if (!ID.test(id)) throw new Error(`queue id ${JSON.stringify(id)} is not a plain file name`);
  return id;
}

function parseEnvelope(id: string, text: string): Envelope {
  const env = JSON.parse(text) as Envelope;
  const ok =
    env !== null &&
    typeof env === "object" &&
    env.version === 1 &&
    env.id === id &&
    typeof env.sender === "string" &&
    Array.isArray(env.recipients) &&
    env.recipients.length > 0 &&
    env.recipients.every((r) => typeof r.address === "string" && ["pending", "delivered", "failed"].includes(r.state)) &&
    [env.size, env.arrival, env.attempts, env.nextAttempt].every((n) => typeof n === "number" && Number.isFinite(n));
  if (!ok) throw new Error(`${id}.json is not a version 1 queue envelope for ${id}`);
  return env;
}

function ignoreMissing(e: NodeJS.ErrnoException): void {
  if (e.code !== "ENOENT") throw e;
}
