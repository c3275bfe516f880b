// Durable, exactly-once local delivery.
//
// Every accepted message has an id I (unique: time + 96 random bits). Its DATA is held in memory,
// or when large streams into spool/incoming/I.raw (not synced: it only feeds the checks). Then one
// of two protocols stores it; each ends in a commit point, and 250 is sent only after it.
//
// A. One local mailbox, nothing to forward (the common case): Maildir's own protocol.
//   A1. The final message (trace headers + DATA) is written to tmp/I.maild and fsynced.
//   A2. It is renamed to new/<name(I)>; new/ is fsynced. The rename is the commit point, and it is
//       atomic: the message is in the mailbox whole or not at all.
// B. Several mailboxes, or remote recipients too: the spool file is the commit marker.
//   B1. The final message is written to spool/incoming/I.eml and fsynced.
//   B2. I.eml is hard-linked into new/<name(I)> of every recipient mailbox (same volume; a copy
//       when it is not); each new/ directory is fsynced; then `beforeCommit` (the remote queue).
//   B3. I.eml is unlinked and spool/incoming is fsynced. This is the commit point.
// Recovery at start (`recoverSpool`) treats every I.eml still present as not committed, so never
// acknowledged: it removes new/<name(I)> from every mailbox (undoing a partial B2), then the
// spool files. Every *.raw, and every tmp/*.maild left by an A1, is discarded.
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
import { MAIL_DIR_MODE, MAIL_FILE_MODE, ensureMaildir, maildirName, maildirPath } from "./maildir";
import type { Mailbox } from "./router";
import { splitHeader } from "./trace-headers";

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
  mailboxes: Mailbox[];
  /**
   * Runs after the local links and before the commit, with the fsynced message file: the outbound
   * queue records its entry here, so it is rolled back together with the local copies.
   */
  beforeCommit?: (messagePath: string) => Promise<void>;
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

  /** Protocol A or B above. Resolves once the message is committed: then, and only then, send 250. */
  async store(req: StoreRequest): Promise<{ size: number }> {
    if (req.mailboxes.length === 1 && !req.beforeCommit) return this.storeInOne(req, req.mailboxes[0]);
    const eml = join(this.paths.incoming, `${req.id}.eml`);
    const size = await writeMessage(eml, req.prepend, req.held ?? req.rawPath, req.dropHeader);
    const name = maildirName(req.id, this.hostname(), size);
    const linked: string[] = [];
    try {
      await Promise.all(
        req.mailboxes.map(async (mb) => {
          const dir = maildirPath(this.dataDir, mb);
          await ensureMaildir(dir);
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
          await this.syncer.sync(join(dir, "new"));
        }),
      );
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
    const dir = maildirPath(this.dataDir, mailbox);
    await ensureMaildir(dir);
    const tmp = join(dir, "tmp", `${req.id}${TMP_SUFFIX}`);
    let size: number;
    try {
      size = await writeMessage(tmp, req.prepend, req.held ?? req.rawPath, req.dropHeader);
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

/** Protocol A's file in tmp/: `<id>.maild`, distinct from the names Dovecot gives its own tmp files. */
const TMP_SUFFIX = ".maild";
const OUR_TMP = /^\d+\.M[0-9a-f]{24}\.maild$/;

// The header section is read into memory to filter it (bounded: beyond this it is copied as is).
const MAX_FILTERED_HEADER = 1024 * 1024;

/** Writes prepend + raw (header fields filtered) into `path`, fsyncs it, returns its size. */
async function writeMessage(
  path: string,
  prepend: string,
  raw: string | Buffer[],
  dropHeader?: (field: string) => boolean,
): Promise<number> {
  if (typeof raw !== "string") return writeHeldMessage(path, prepend, Buffer.concat(raw), dropHeader);
  const rawPath = raw;
  const fh = await open(path, "wx", MAIL_FILE_MODE);
  let size = 0;
  const write = async (b: Buffer): Promise<void> => {
    let off = 0;
    while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
    size += b.length;
  };
  try {
    await write(Buffer.from(prepend, "latin1"));
    let head: Buffer | undefined = Buffer.alloc(0);
    for await (const chunk of createReadStream(rawPath, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
      if (head === undefined) {
        await write(chunk);
        continue;
      }
      head = Buffer.concat([head, chunk]);
      const split = splitHeader(head);
      if (split === undefined && head.length < MAX_FILTERED_HEADER) continue;
      if (split === undefined || !dropHeader) await write(head);
      else {
        await write(Buffer.from(filterFields(head.subarray(0, split).toString("latin1"), dropHeader), "latin1"));
        await write(head.subarray(split));
      }
      head = undefined;
    }
    if (head !== undefined && head.length > 0) {
      const split = splitHeader(head) ?? head.length;
      await write(
        Buffer.from(
          dropHeader ? filterFields(head.subarray(0, split).toString("latin1"), dropHeader) : head.subarray(0, split).toString("latin1"),
          "latin1",
        ),
      );
      await write(head.subarray(split));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return size;
}

/** writeMessage for DATA held in memory: one write of the whole message. */
async function writeHeldMessage(path: string, prepend: string, raw: Buffer, dropHeader?: (field: string) => boolean): Promise<number> {
  const split = splitHeader(raw) ?? raw.length;
  const header = dropHeader
    ? Buffer.from(filterFields(raw.subarray(0, split).toString("latin1"), dropHeader), "latin1")
    : raw.subarray(0, split);
  const message = Buffer.concat([Buffer.from(prepend, "latin1"), header, raw.subarray(split)]);
  const fh = await open(path, "wx", MAIL_FILE_MODE);
  try {
    let off = 0;
    while (off < message.length) off += (await fh.write(message, off, message.length - off)).bytesWritten;
    await fh.sync();
  } finally {
    await fh.close();
  }
  return message.length;
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
  for (const file of await readdir(incoming)) {
    const path = join(incoming, file);
    if (file.endsWith(".eml")) {
      const id = file.slice(0, -4);
      const size = (await stat(path)).size;
      const name = maildirName(id, hostname, size);
      for (const mb of mailboxes) {
        const newDir = join(maildirPath(dataDir, mb), "new");
        const removed = await unlink(join(newDir, name)).then(
          () => true,
          () => false,
        );
        if (removed) touched.add(newDir);
      }
      await onRollback(id);
      report.rolledBack++;
    } else if (file.endsWith(".raw")) {
      report.discardedRaw++;
    }
    await unlink(path);
  }
  // A protocol A delivery that crashed before its rename left only an unnamed draft in tmp/.
  for (const mb of mailboxes) {
    const tmp = join(maildirPath(dataDir, mb), "tmp");
    const names = await readdir(tmp).catch(() => [] as string[]);
    for (const name of names) if (OUR_TMP.test(name)) await unlink(join(tmp, name)).catch(() => undefined);
  }
  for (const dir of touched) await fsyncDir(dir);
  await fsyncDir(incoming);
  return report;
}
