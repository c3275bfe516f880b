// Durable, exactly-once local delivery.
//
// Protocol for one accepted message with id I (I is unique: time + 96 random bits):
//   1. DATA streams into spool/incoming/I.raw (not synced: it only feeds the checks).
//   2. The final message (trace headers + DATA) is written to spool/incoming/I.eml and fsynced.
//   3. I.eml is hard-linked into new/<name(I)> of every recipient mailbox (same volume; a copy
//      when it is not); each new/ directory is fsynced.
//   4. I.eml is unlinked and spool/incoming is fsynced. This is the commit point.
//   5. Only now is 250 sent.
// Recovery at start (`recoverSpool`) treats every I.eml still present as not committed, so never
// acknowledged: it removes new/<name(I)> from every mailbox (undoing a partial step 3), then the
// spool files. Every *.raw is discarded.
//
// Why exactly once: a 250 is only ever sent after step 4, and step 4 is durable, so an
// acknowledged message has a durable link in every mailbox and no spool file left that could
// make recovery remove it. Nothing is ever redelivered: recovery only deletes, and each message
// is linked once per mailbox under one name, so no mailbox can hold two copies of one SMTP
// transaction. A message that was not acknowledged is rolled back, so the client's retry (RFC
// 5321 4.5.4.1) is the only copy. (The one window left: if the user's IMAP client moves the
// rolled-back copy from new/ to cur/ between steps 3 and 4 of a crashing delivery, that copy
// stays; we do not scan cur/.)
import { createReadStream } from "node:fs";
import { link, mkdir, open, readdir, stat, unlink, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { DirSyncer, fsyncDir } from "./dir-sync";
import { ensureMaildir, maildirName, maildirPath } from "./maildir";
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
  /** the DATA as received, already checked */
  rawPath: string;
  /** trace header fields to put on top, each ending in CRLF */
  prepend: string;
  /** header fields of the received message to drop (e.g. forged Authentication-Results) */
  dropHeader?: (field: string) => boolean;
  mailboxes: Mailbox[];
  /**
   * Runs after the local links and before the commit, with the fsynced message file: the outbound
   * queue (issue 5) records its entry here, so it is rolled back together with the local copies.
   */
  beforeCommit?: (messagePath: string) => Promise<void>;
}

export class LocalStore {
  private readonly syncer = new DirSyncer();
  readonly paths: SpoolPaths;

  constructor(private readonly dataDir: string, private readonly hostname: () => string) {
    this.paths = spoolPaths(dataDir);
  }

  async init(): Promise<void> {
    await mkdir(this.paths.incoming, { recursive: true, mode: 0o700 });
  }

  rawPath(id: string): string {
    return join(this.paths.incoming, `${id}.raw`);
  }

  /** Steps 2-4 above. Resolves once the message is committed: then, and only then, send 250. */
  async store(req: StoreRequest): Promise<{ size: number }> {
    const eml = join(this.paths.incoming, `${req.id}.eml`);
    const size = await writeMessage(eml, req.prepend, req.rawPath, req.dropHeader);
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

  /** Drops a message that will not be acknowledged (refused after DATA, or the client left). */
  async discard(id: string): Promise<void> {
    await unlink(this.rawPath(id)).catch(() => undefined);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// The header section is read into memory to filter it (bounded: beyond this it is copied as is).
const MAX_FILTERED_HEADER = 1024 * 1024;

/** Writes prepend + raw (header fields filtered) into `path`, fsyncs it, returns its size. */
async function writeMessage(path: string, prepend: string, rawPath: string, dropHeader?: (field: string) => boolean): Promise<number> {
  const fh = await open(path, "wx", 0o600);
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
      await write(Buffer.from(dropHeader ? filterFields(head.subarray(0, split).toString("latin1"), dropHeader) : head.subarray(0, split).toString("latin1"), "latin1"));
      await write(head.subarray(split));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return size;
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
        const removed = await unlink(join(newDir, name)).then(() => true, () => false);
        if (removed) touched.add(newDir);
      }
      await onRollback(id);
      report.rolledBack++;
    } else if (file.endsWith(".raw")) {
      report.discardedRaw++;
    }
    await unlink(path);
  }
  for (const dir of touched) await fsyncDir(dir);
  await fsyncDir(incoming);
  return report;
}
