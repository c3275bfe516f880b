// Whole-file replacement that a crash cannot tear: write a temporary file beside the target,
// fsync it, rename(2) it over the target (atomic within one file system), fsync the directory so
// the rename itself is durable. Readers see the old content or the new, never a mix.
// Not write-file-atomic (7.0): it fsyncs the file but not the directory, so the rename could be
// lost in a crash and this code would still be needed around it.
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir } from "../dir-sync";

/** `syncDir` makes the rename durable; a caller with a shared DirSyncer passes its `sync`. */
export async function writeFileAtomic(path: string, data: string, syncDir: (dir: string) => Promise<void> = fsyncDir): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await replaceDurably(path, await writeDurableTemp(path, data));
  await syncDir(dir);
}

/**
 * The first half: `data` in a new temporary file beside `path`, fsynced; resolves with its name.
 * The directory must exist. A failed write leaves no temporary file.
 */
export async function writeDurableTemp(path: string, data: string): Promise<string> {
  // unique per write: concurrent writers of one target must not share a temporary file
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return tmp;
}

/** The second half: renames `tmp` over `path` (durable only once the directory is fsynced). */
export async function replaceDurably(path: string, tmp: string): Promise<void> {
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
