// Mailbox quotas, kept in the Maildir++ `maildirsize` file that Dovecot's quota plugin reads and
// writes too (`quota = maildir`), so maild's deliveries and Dovecot's IMAP saves and expunges
// count against one figure.
//
// The file (Maildir++ quota, as Dovecot 2.3.19.1 implements it in src/plugins/quota/quota-maildir.c):
//   line 1: the limits, "<bytes>S" (and ",<count>C"); "0S" for none   (maildirsize_write)
//   then:   "<bytes> <count>" lines, summed; each writer appends one per change with O_APPEND
// A reader recalculates (scans new/ and cur/ of every folder and writes a fresh two-line file, via
// a temporary file and rename) when the file is missing, unreadable, longer than 5120 bytes
// (maildirsize_read), when its limit line is not the configured limit (maildirsize_parse with
// a forced rule), or when the sum is over the limit and the file has more than one line or is
// older than 15 minutes (MAILDIRSIZE_STALE_SECS): an over-quota figure is trusted only when fresh.
// Like Dovecot (maildirs_check_have_changed), a recalculation whose folders changed while it
// counted does not write its result: the next reader counts again.
// A message's size is the `,S=` of its name (maildir_sum_dir), or its file size.
import { constants } from "node:fs";
import { open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

export const MAILDIRSIZE = "maildirsize";
const MAX_FILE_BYTES = 5120;
const STALE_MS = 15 * 60 * 1000;

export interface QuotaUsage {
  bytes: number;
  count: number;
}

/** The usage of the Maildir at `maildir` against `limitBytes` (0: none), from its maildirsize file. */
export async function mailboxUsage(maildir: string, limitBytes: number, now = Date.now()): Promise<QuotaUsage> {
  const path = join(maildir, MAILDIRSIZE);
  const read = await readMaildirsize(path, limitBytes, now);
  if (read) return read;
  return recalculate(maildir, limitBytes);
}

/** Records a delivered message: one "<bytes> 1" line, appended (no fsync: the figure is advisory). */
export async function addToMaildirsize(maildir: string, bytes: number): Promise<void> {
  let fh;
  try {
    // O_APPEND without O_CREAT: each line lands whole at the end, and no file is made here
    fh = await open(join(maildir, MAILDIRSIZE), constants.O_WRONLY | constants.O_APPEND);
  } catch (e) {
    // No file yet: the next reader counts the folders, this message included.
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  try {
    await fh.write(`${bytes} 1\n`);
  } finally {
    await fh.close();
  }
}

async function readMaildirsize(path: string, limitBytes: number, now: number): Promise<QuotaUsage | undefined> {
  let text: string;
  let mtimeMs: number;
  try {
    const [content, st] = await Promise.all([readFile(path, "latin1"), stat(path)]);
    text = content;
    mtimeMs = st.mtimeMs;
  } catch {
    return undefined;
  }
  if (text.length > MAX_FILE_BYTES) return undefined;
  // a last line without its LF is being written: leave it out, as Dovecot does
  const lines = text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .slice(0, -1);
  if (lines.length < 2 || parseLimit(lines[0]) !== limitBytes) return undefined;
  let bytes = 0;
  let count = 0;
  for (const line of lines.slice(1)) {
    const m = /^\s*(-?\d+)\s+(-?\d+)/.exec(line);
    if (!m) return undefined;
    bytes += Number(m[1]);
    count += Number(m[2]);
  }
  if (bytes < 0 || count < 0) return undefined;
  if (limitBytes > 0 && bytes > limitBytes && (lines.length > 2 || now - mtimeMs > STALE_MS)) return undefined;
  return { bytes, count };
}

/** The byte limit of a limit line ("<n>S[,<m>C]"); 0 for none. */
function parseLimit(line: string): number | undefined {
  let bytes = 0;
  for (const part of line.split(",")) {
    const m = /^(\d+)([SC])$/.exec(part.trim());
    if (!m) return undefined;
    if (m[2] === "S") bytes = Number(m[1]);
  }
  return bytes;
}

/** Counts every folder's new/ and cur/ and writes a fresh maildirsize (unless a folder changed meanwhile). */
async function recalculate(maildir: string, limitBytes: number): Promise<QuotaUsage> {
  const dirs = [maildir, ...(await folders(maildir))].flatMap((f) => [join(f, "new"), join(f, "cur")]);
  const mtime = (d: string) =>
    stat(d).then(
      (s) => s.mtimeMs,
      () => -1,
    );
  const before = await Promise.all(dirs.map(mtime));
  const usage: QuotaUsage = { bytes: 0, count: 0 };
  for (const dir of dirs) await sumDir(dir, usage);
  const after = await Promise.all(dirs.map(mtime));
  if (after.every((m, i) => m === before[i])) await writeMaildirsize(maildir, limitBytes, usage).catch(() => undefined);
  return usage;
}

/** Maildir++ folders: the `.Name` directories inside the Maildir (Dovecot's default LAYOUT=maildir++). */
async function folders(maildir: string): Promise<string[]> {
  const entries = await readdir(maildir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && e.name.startsWith(".") && e.name !== "." && e.name !== "..")
    .map((e) => join(maildir, e.name));
}

async function sumDir(dir: string, usage: QuotaUsage): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = /,S=(\d+)(?=[:,]|$)/.exec(name);
    if (m) {
      usage.bytes += Number(m[1]);
      usage.count++;
      continue;
    }
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile()) {
      usage.bytes += st.size;
      usage.count++;
    }
  }
}

const TEMP_NAME = new RegExp(`^${MAILDIRSIZE}\\.[0-9a-f]{12}$`);
const PROCESS_START_MS = Date.now() - process.uptime() * 1000;
const swept = new Set<string>();

/**
 * A maild killed between writing a temporary maildirsize and renaming it leaves the temporary file
 * in tmp/: the first write to a Maildir after a start removes those an earlier process left (older
 * than this process), so tmp/ does not fill up across crashes.
 */
async function sweepStaleTemps(maildir: string): Promise<void> {
  if (swept.has(maildir)) return;
  swept.add(maildir);
  const dir = join(maildir, "tmp");
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!TEMP_NAME.test(name)) continue;
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st !== undefined && st.mtimeMs < PROCESS_START_MS) await unlink(join(dir, name)).catch(() => undefined);
  }
}

async function writeMaildirsize(maildir: string, limitBytes: number, usage: QuotaUsage): Promise<void> {
  await sweepStaleTemps(maildir);
  const tmp = join(maildir, "tmp", `${MAILDIRSIZE}.${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o660);
  try {
    // Dovecot, another account in the same group, appends to it: group-writable whatever the umask.
    await fh.chmod(0o660);
    await fh.write(`${limitBytes}S\n${usage.bytes} ${usage.count}\n`);
  } finally {
    await fh.close();
  }
  await rename(tmp, join(maildir, MAILDIRSIZE)).catch(async (e: Error) => {
    await unlink(tmp).catch(() => undefined);
    throw e;
  });
}
