// Durable, exactly-once local delivery.
//
// Every accepted message has an id I (unique: time + 96 random bits). Its DATA is held in memory,
// or when large streams into spool/incoming/I.raw (not synced: it only feeds the checks). Then one
// of three protocols stores it; each ends in a commit point, and 250 is sent only after it.
//
// A. One local mailbox, nothing to forward (the common case): Maildir's own protocol.
//   A1. The final message (trace headers + DATA) is written to tmp/I.maild and fsynced.
//   A2. It is renamed to new/<name(I)>; new/ is fsynced. The rename is the commit point, and it is
//       atomic: the message is in the mailbox whole or not at all.
// B. Several mailboxes, or remote recipients too: the spool file is the commit marker.
//   B1. The final message is written to spool/incoming/I.eml and fsynced.
//   B2. Each recipient mailbox gets its copy in new/<name(I)>: I.eml hard-linked (same volume; a
//       copy when it is not), or, when the copy carries fields of its own (Return-Path,
//       Delivered-To), those fields and I.eml written to tmp/I.maild, fsynced and renamed into
//       new/; each new/ directory is fsynced; then `beforeCommit` (the remote queue).
//   B3. I.eml is unlinked and spool/incoming is fsynced. This is the commit point.
// C. No local mailbox, remote recipients only (forwarding), DATA held in memory: the outbound
//   queue is the only place the message goes, so it writes the message itself (outbound/spool.ts
//   Q1': its I.eml and the envelope fsynced at the same time, then the envelope renamed into
//   place and the queue directory fsynced). The rename is the commit point. There is no spool
//   file: nothing outside the queue needs rolling back, and the queue's own start-up scan drops
//   an entry whose rename never happened. Against B this saves a write, fsync and unlink of the
//   spool file, the fsync of spool/incoming, and one fsync's wait before the 250.
// Recovery at start (`recoverSpool`) treats every I.eml still present as not committed, so never
// acknowledged: it removes every new/<name(I)> (any size) from every mailbox (undoing a partial
// B2), then the spool files. Every *.raw, and every tmp/*.maild left by an A1 or B2, is discarded.
//
// fsyncs of one directory are shared by concurrent deliveries (DirSyncer: a caller only joins an
// fsync that starts after its own change), so under load many messages commit with one fsync.
//
// Why exactly once: a 250 is only ever sent after the commit point has been made durable (A2's
// or B3's directory fsync), so an acknowledged message has a durable name in every mailbox and,
// for B, no spool file left that could make recovery remove it. Nothing is ever redelivered:
// recovery only deletes, and each message gets one name per mailbox, so no mailbox can hold two
// copies of one SMTP transaction. A message that did not reach its commit point is rolled back
// (A: it never appears in new/; B: recovery), so the client's retry (RFC 5321 4.5.4.1) is the
// only copy. Two windows remain, inherent or outside our control: a crash after the commit point
// but before the client has read the 250 keeps a message the client will send again (RFC 1047);
// and if the user's IMAP client moves a B copy from new/ to cur/ between B2 and B3 of a crashing
// delivery, that copy stays (we do not scan cur/).
import { createReadStream } from "node:fs";
import { chmod, chown, link, mkdir, open, readdir, rename, stat, unlink, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DirSyncer, fsyncDir, fsyncFile } from "./dir-sync";
import { MAIL_DIR_MODE, MAIL_FILE_MODE, ensureMaildir, JUNK_FOLDER, maildirName, maildirPath } from "./maildir";
import type { Mailbox } from "./router";

export interface SpoolPaths {
  incoming: string;
}

export function spoolPaths(dataDir: string): SpoolPaths {
  return { incoming: join(dataDir, "spool", "incoming") };
}

/** `<unix seconds>.M<24 hex>`: sortable by arrival, unique without coordination. */
export function newMessageId(now = Date.now()): string {
  return `${Math.floor(now / 1000)}.M${randomBytes(12).toString("hex")}`;
}

export interface StoreRequest {
  id: string;
  /** the DATA as received, already checked (read only when `held` is not given) */
  rawPath: string;
  /** the DATA as received, when it was small enough to keep in memory */
  held?: Buffer[];
  /** trace header fields to put on top, each ending in CRLF */
  prepend: string;
  /** header fields of the received message to drop (e.g. forged Authentication-Results) */
  dropHeader?: (field: string) => boolean;
  /**
   * header fields for one mailbox's copy only, above `prepend` (RFC 5321 4.4 Return-Path and
   * RFC 9228 Delivered-To, which name the recipient): each mailbox then gets a copy of its own
   */
  perMailbox?: (mailbox: Mailbox) => string;
  mailboxes: Mailbox[];
  /** a folder of each mailbox instead of its inbox (spam: JUNK_FOLDER) */
  folder?: string;
  /**
   * Runs after the local links and before the commit, with the fsynced message file: the outbound
   * queue records its entry here, so it is rolled back together with the local copies.
   */
  beforeCommit?: (messagePath: string) => Promise<void>;
  /**
   * Protocol C: with no mailboxes and DATA held in memory, the final message goes to this instead
   * of a spool file, and its durable queue entry is the commit point (beforeCommit is not called).
   */
  queueMessage?: (message: Buffer) => Promise<void>;
}

export class LocalStore {
  private readonly syncer = new DirSyncer();
  readonly paths: SpoolPaths;

  constructor(
    private readonly dataDir: string,
    private readonly hostname: () => string,
  ) {
    this.paths = spoolPaths(dataDir);
  }

  async init(): Promise<void> {
    await mkdir(this.paths.incoming, { recursive: true, mode: 0o700 });
    // Protocol B hard-links the spool file into mailboxes: it must be born in the mail group
    // (maildir.ts), so spool/incoming is that group's and setgid. spool/ itself stays maild's
    // alone (0700), so the group reaches none of it by path.
    const mailRoot = join(this.dataDir, "mail");
    if (await mkdir(mailRoot, { mode: 0o700 }).then(() => true, ignoreExists)) await chmod(mailRoot, MAIL_DIR_MODE);
    const group = (await stat(mailRoot)).gid;
    const incoming = await stat(this.paths.incoming);
    if (incoming.gid !== group) await chown(this.paths.incoming, -1, group);
    if ((incoming.mode & 0o7777) !== 0o2750) await chmod(this.paths.incoming, 0o2750);
  }

  rawPath(id: string): string {
    return join(this.paths.incoming, `${id}.raw`);
  }

  /** Protocol A, B or C above. Resolves once the message is committed: then, and only then, send 250. */
  async store(req: StoreRequest): Promise<{ size: number }> {
    if (req.mailboxes.length === 1 && !req.beforeCommit) return this.storeInOne(req, req.mailboxes[0]);
    if (req.mailboxes.length === 0 && req.queueMessage && req.held) {
      const message = finalMessage(req.prepend, req.held, req.dropHeader);
      // DATA held in memory never had a spool file of its own (received-data.ts): nothing to remove
      await req.queueMessage(message);
      return { size: message.length };
    }
    const eml = join(this.paths.incoming, `${req.id}.eml`);
    const size = await writeMessage(eml, req.prepend, req.held ?? req.rawPath, req.dropHeader);
    const name = maildirName(req.id, this.hostname(), size);
    const linked: string[] = [];
    const perMailbox = req.perMailbox;
    try {
      await eachLimited(req.mailboxes, MAILBOX_WRITERS, async (mb) => {
        const dir = maildirPath(this.dataDir, mb, req.folder);
        await ensureMaildir(dir);
        if (perMailbox) {
          const tmp = join(dir, "tmp", `${req.id}${TMP_SUFFIX}`);
          let copySize: number;
          try {
            copySize = await writeCopy(tmp, perMailbox(mb), eml);
          } catch (e) {
            await unlink(tmp).catch(() => undefined);
            throw e;
          }
          const target = join(dir, "new", maildirName(req.id, this.hostname(), copySize));
          await rename(tmp, target);
          linked.push(target);
        } else {
          const target = join(dir, "new", name);
          await link(eml, target).catch(async (e: NodeJS.ErrnoException) => {
            if (e.code !== "EXDEV") throw e;
            const tmp = join(dir, "tmp", name);
            await copyFile(eml, tmp);
            await fsyncFile(tmp);
            await link(tmp, target);
            await unlink(tmp);
          });
          linked.push(target);
        }
        await this.syncer.sync(join(dir, "new"));
      });
      if (req.beforeCommit) await req.beforeCommit(eml);
    } catch (e) {
      // Not committed, so not acknowledged: take back what was linked, as recovery would.
      await Promise.all(linked.map((t) => unlink(t).catch(() => undefined)));
      await unlink(eml).catch(() => undefined);
      throw e;
    }
    await unlink(eml);
    await unlink(req.rawPath).catch(() => undefined);
    await this.syncer.sync(this.paths.incoming);
    return { size };
  }

  /** Protocol A: one mailbox, committed by the rename into new/. */
  private async storeInOne(req: StoreRequest, mailbox: Mailbox): Promise<{ size: number }> {
    const dir = maildirPath(this.dataDir, mailbox, req.folder);
    await ensureMaildir(dir);
    const tmp = join(dir, "tmp", `${req.id}${TMP_SUFFIX}`);
    let size: number;
    try {
      size = await writeMessage(tmp, (req.perMailbox?.(mailbox) ?? "") + req.prepend, req.held ?? req.rawPath, req.dropHeader);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    const target = join(dir, "new", maildirName(req.id, this.hostname(), size));
    try {
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    try {
      await this.syncer.sync(join(dir, "new"));
    } catch (e) {
      // not durably committed, so not acknowledged: take it back rather than risk a second copy
      await unlink(target).catch(() => undefined);
      throw e;
    }
    await unlink(req.rawPath).catch(() => undefined);
    return { size };
  }

  /** Drops a message that will not be acknowledged (refused after DATA, or the client left). */
  async discard(id: string): Promise<void> {
    await unlink(this.rawPath(id)).catch(() => undefined);
  }
}

/** Copies written to mailboxes at once in protocol B: enough to overlap fsyncs, few enough for open files and memory. */
const MAILBOX_WRITERS = 8;

/** Where deliveries go: the inbox (undefined) or the Junk folder; recovery looks in each. */
const DELIVERY_FOLDERS: (string | undefined)[] = [undefined, JUNK_FOLDER];

/** Runs `work` on every item, at most `limit` at a time; rejects with the first failure once all have ended. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      await work(item).catch((e: unknown) => errors.push(e));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

/** Writes `prefix` and the file `source` into the new file `path`, fsyncs it, returns its size. */
async function writeCopy(path: string, prefix: string, source: string): Promise<number> {
  const fh = await open(path, "wx", MAIL_FILE_MODE);
  let size = 0;
  const write = async (b: Buffer): Promise<void> => {
    let off = 0;
    while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
    size += b.length;
  };
  try {
    await write(Buffer.from(prefix, "latin1"));
    for await (const chunk of createReadStream(source, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) await write(chunk);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return size;
}

/** Protocol A's (and B's per-mailbox) file in tmp/: `<id>.maild`, distinct from the names Dovecot gives its own tmp files. */
const TMP_SUFFIX = ".maild";
const OUR_TMP = /^\d+\.M[0-9a-f]{24}\.maild$/;

/** prepend + DATA held in memory (header fields filtered): the final message. */
function finalMessage(prepend: string, held: Buffer[], dropHeader?: (field: string) => boolean): Buffer {
  const filter = dropHeader ? new HeaderFieldFilter(dropHeader) : undefined;
  const pieces: Buffer[] = [Buffer.from(prepend, "latin1")];
  for (const chunk of held) pieces.push(...(filter ? filter.push(chunk) : [chunk]));
  if (filter) pieces.push(...filter.end());
  return Buffer.concat(pieces);
}

/** Writes prepend + raw (header fields filtered) into `path`, fsyncs it, returns its size. */
async function writeMessage(
  path: string,
  prepend: string,
  raw: string | Buffer[],
  dropHeader?: (field: string) => boolean,
): Promise<number> {
  const fh = await open(path, "wx", MAIL_FILE_MODE);
  let size = 0;
  const write = async (b: Buffer): Promise<void> => {
    let off = 0;
    while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
    size += b.length;
  };
  try {
    const filter = dropHeader ? new HeaderFieldFilter(dropHeader) : undefined;
    const chunks: AsyncIterable<Buffer> | Buffer[] =
      typeof raw === "string" ? (createReadStream(raw, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) : raw;
    // DATA held in memory is small: one write with the prepended fields
    const pieces: Buffer[] = [Buffer.from(prepend, "latin1")];
    for await (const chunk of chunks) {
      pieces.push(...(filter ? filter.push(chunk) : [chunk]));
      if (typeof raw === "string") await write(Buffer.concat(pieces.splice(0)));
    }
    if (filter) pieces.push(...filter.end());
    await write(Buffer.concat(pieces));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return size;
}

/** A field is decided on at most this much of its start; the rest of a longer one follows that decision. */
const FIELD_DECISION_BYTES = 64 * 1024;

/**
 * Drops whole header fields (with their folded continuation lines) from a message as it streams
 * by, holding one field at a time (at most FIELD_DECISION_BYTES of it), so a header section of any
 * size is filtered completely; the body passes untouched.
 */
export class HeaderFieldFilter {
  private inBody = false;
  /** a line whose CRLF has not arrived yet */
  private partial = "";
  /** the start of a line longer than FIELD_DECISION_BYTES went out already: the next text continues it */
  private midLine = false;
  /** the field being read, undecided */
  private field = "";
  /** the current field was decided early (it is long): drop or keep its further lines */
  private decided: "drop" | "keep" | undefined;

  constructor(private readonly drop: (field: string) => boolean) {}

  push(chunk: Buffer): Buffer[] {
    if (this.inBody) return [chunk];
    const text = this.partial + chunk.toString("latin1");
    this.partial = "";
    let out = "";
    let pos = 0;
    for (;;) {
      const eol = text.indexOf("\r\n", pos);
      if (eol === -1) break;
      const line = text.slice(pos, eol + 2);
      pos = eol + 2;
      if (this.midLine) {
        this.midLine = false;
        out += this.addLine(line);
      } else if (line === "\r\n") {
        out += this.endField() + line;
        this.inBody = true;
        return [Buffer.from(out, "latin1"), Buffer.from(text.slice(pos), "latin1")];
      } else out += this.lineStart(line);
    }
    let rest = text.slice(pos);
    if (rest.length > FIELD_DECISION_BYTES) {
      // a line longer than any decision needs goes on now; a CR at its end waits for its LF
      const keep = rest.endsWith("\r") ? 1 : 0;
      const head = rest.slice(0, rest.length - keep);
      out += this.midLine ? this.addLine(head) : this.lineStart(head);
      this.midLine = true;
      rest = rest.slice(rest.length - keep);
    }
    this.partial = rest;
    return [Buffer.from(out, "latin1")];
  }

  /** The end of the message (no empty line: a header-only message): what is held goes out. */
  end(): Buffer[] {
    if (this.inBody) return [];
    const rest = this.partial;
    this.partial = "";
    let out = rest === "" ? "" : this.midLine ? this.addLine(rest) : this.lineStart(rest);
    out += this.endField();
    return [Buffer.from(out, "latin1")];
  }

  /** A whole line, or the start of one: a continuation of the current field, or a new field. */
  private lineStart(line: string): string {
    if (line.startsWith(" ") || line.startsWith("\t")) return this.addLine(line);
    return this.endField() + this.addLine(line);
  }

  private addLine(line: string): string {
    if (this.decided) return this.decided === "keep" ? line : "";
    this.field += line;
    if (this.field.length <= FIELD_DECISION_BYTES) return "";
    this.decided = this.drop(this.field) ? "drop" : "keep";
    const held = this.field;
    this.field = "";
    return this.decided === "keep" ? held : "";
  }

  private endField(): string {
    const f = this.field;
    const wasDecided = this.decided !== undefined;
    this.field = "";
    this.decided = undefined;
    if (wasDecided || f === "") return "";
    return this.drop(f) ? "" : f;
  }
}

/** Removes whole header fields (with their folded continuation lines) for which `drop` is true. */
export function filterFields(header: string, drop: (field: string) => boolean): string {
  const fields: string[] = [];
  for (const line of header.split(/(?<=\r\n)/)) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && fields.length > 0) fields[fields.length - 1] += line;
    else fields.push(line);
  }
  return fields.filter((f) => !drop(f)).join("");
}

function ignoreExists(e: NodeJS.ErrnoException): false {
  if (e.code !== "EEXIST") throw e;
  return false;
}

export interface RecoveryReport {
  rolledBack: number;
  discardedRaw: number;
}

/** Run before listening: rolls back every delivery that had not committed (see the protocol above). */
export async function recoverSpool(
  dataDir: string,
  hostname: string,
  mailboxes: Mailbox[],
  /** the outbound queue's `discard`, so a rolled-back message leaves no queue entry either */
  onRollback: (id: string) => Promise<void> = async () => undefined,
): Promise<RecoveryReport> {
  const { incoming } = spoolPaths(dataDir);
  await mkdir(incoming, { recursive: true, mode: 0o700 });
  const report: RecoveryReport = { rolledBack: 0, discardedRaw: 0 };
  const touched = new Set<string>();
  const rolledBack: string[] = [];
  for (const file of await readdir(incoming)) {
    if (file.endsWith(".eml")) rolledBack.push(file.slice(0, -4));
  }
  if (rolledBack.length > 0) {
    // A copy's name is maildirName(id, hostname, its size), and copies with fields of their own
    // differ in size: every name of a rolled-back id goes, whatever its size.
    const prefixes = rolledBack.map((id) => maildirName(id, hostname, 0).replace(/0$/, ""));
    for (const mb of mailboxes) {
      for (const folder of DELIVERY_FOLDERS) {
        const newDir = join(maildirPath(dataDir, mb, folder), "new");
        const names = await readdir(newDir).catch(() => [] as string[]);
        for (const name of names) {
          const prefix = prefixes.find((p) => name.startsWith(p) && /^\d+$/.test(name.slice(p.length)));
          if (prefix === undefined) continue;
          await unlink(join(newDir, name)).catch(() => undefined);
          touched.add(newDir);
        }
      }
    }
  }
  for (const file of await readdir(incoming)) {
    const path = join(incoming, file);
    if (file.endsWith(".eml")) {
      await onRollback(file.slice(0, -4));
      report.rolledBack++;
    } else if (file.endsWith(".raw")) {
      report.discardedRaw++;
    }
    await unlink(path);
  }
  // A protocol A delivery that crashed before its rename left only an unnamed draft in tmp/.
  for (const mb of mailboxes) {
    for (const folder of DELIVERY_FOLDERS) {
      const tmp = join(maildirPath(dataDir, mb, folder), "tmp");
      const names = await readdir(tmp).catch(() => [] as string[]);
      for (const name of names) if (OUR_TMP.test(name)) await unlink(join(tmp, name)).catch(() => undefined);
    }
  }
  for (const dir of touched) await fsyncDir(dir);
  await fsyncDir(incoming);
  return report;
}
