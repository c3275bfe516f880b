// The staging tree: a hard-link copy of what is backed up, built in a moment and then read by
// restic at leisure while mail keeps moving in the real tree.
//
// Why: restic walks a directory tree for as long as the upload takes. Meanwhile Dovecot renames
// messages (new/ -> cur/, and within cur/ whenever a flag changes) and maild commits new ones. A
// walk that lists cur/ before a message moves there from new/, and new/ after, misses it. Linking
// every file first takes milliseconds per thousand messages, and the links are immutable: Maildir
// messages are never rewritten in place, and every other file kept here is replaced by rename(2)
// (dovecot-uidlist, dovecot-keywords, subscriptions, maild's queue envelopes and TLS certificate,
// TLS reports), so a link holds one whole version of it.
//
// What the tree guarantees (`stageDataDir`):
// - every message that was in a mailbox (new/ or cur/) when staging began is in the tree once,
//   with the flags of some moment during staging: per Maildir, new/ is linked before cur/, and a
//   name that vanished between listing and linking (moved, or renamed for a flag) is looked up
//   again by its unique part (before ":") until found; only a message expunged meanwhile is left out;
// - mail/ is staged before spool/: maild commits a multi-recipient delivery by unlinking its
//   spool/incoming/I.eml (delivery.ts B3) after linking it into the mailboxes, so a delivery
//   acknowledged before staging began has its links in the tree and no I.eml (kept on restore),
//   and one still uncommitted at the end has its I.eml too, which maild's recovery at start rolls
//   back, as it would have after a crash;
// - the queue (outbound/spool.ts) is copied entry by entry: an envelope and its message, or what
//   its removal left, which the queue's scan at start tidies exactly as after a crash.
// Left out: Maildir tmp/ (drafts that never committed), Dovecot's index and cache files (rebuilt
// from the Maildir, dovecot-uidlist and dovecot-keywords, which keep UIDs, UIDVALIDITY and flags),
// lock and *.tmp files, spool/incoming/*.raw (discarded at start), the DKIM keys and the TLS key
// (Pulumi holds them and deploys them again), lost+found and the job's own directory.
import { chmod, chown, link, lstat, mkdir, readdir, readlink, rm, symlink, utimes } from "node:fs/promises";
import * as path from "node:path";
import { WORK_DIR } from "./settings";

/** Top-level entries of the data directory, in the order they are staged (see above). */
export const STAGED_ENTRIES = ["mail", "queue", "spool", "reports", "tls", "redis"] as const;

/**
 * The spam filter's Redis keeps its data here (install/layout.ts redisDataDir): what rspamd learned
 * is backed up with the mail, and its RDB dump, which Redis writes to a temporary file and renames
 * into place, is backed up whole.
 */
export const REDIS_DIR = "redis";

export interface StageReport {
  files: number;
  bytes: number;
  dirs: number;
  /** messages that were listed but had been expunged before they could be linked */
  vanished: number;
}

/** Files left out wherever they are (names, not paths). */
function excludedFile(name: string): boolean {
  return (
    name.startsWith("dovecot.index") ||
    name.startsWith("dovecot.list.index") ||
    name.endsWith(".lock") ||
    name.endsWith(".tmp") ||
    /^dovecot-uidlist\.\w+$/.test(name)
  );
}

/** Paths (relative to the data directory) left out with everything below them. */
function excludedPath(rel: string): boolean {
  const parts = rel.split("/");
  const name = parts[parts.length - 1];
  if (parts[0] === "tls") return rel === "tls/key.pem";
  if (parts[0] === "spool") return rel !== "spool" && rel !== "spool/incoming" && !(parts[1] === "incoming" && name.endsWith(".eml"));
  // Maildir tmp/ (of the INBOX and of every folder).
  if (parts[0] === "mail" && name === "tmp" && parts.length >= 5) return true;
  return false;
}

/** The unique part of a Maildir file name: what stays the same when Dovecot renames it for flags. */
export function maildirBase(name: string): string {
  const colon = name.indexOf(":");
  return colon === -1 ? name : name.slice(0, colon);
}

class Stager {
  readonly report: StageReport = { files: 0, bytes: 0, dirs: 0, vanished: 0 };

  constructor(
    private readonly from: string,
    private readonly to: string,
  ) {}

  private src(rel: string): string {
    return path.join(this.from, rel);
  }

  private dst(rel: string): string {
    return path.join(this.to, rel);
  }

  /** Links one file; false when it vanished meanwhile. */
  private async linkFile(rel: string): Promise<boolean> {
    try {
      await link(this.src(rel), this.dst(rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
    const st = await lstat(this.dst(rel));
    this.report.files++;
    this.report.bytes += st.size;
    return true;
  }

  /** Copies a directory's mode, owner and times onto its staged twin (after its content is in). */
  private async copyDirMeta(rel: string): Promise<void> {
    const st = await lstat(this.src(rel)).catch(() => undefined);
    if (!st) return;
    const d = this.dst(rel);
    await chown(d, st.uid, st.gid);
    await chmod(d, st.mode & 0o7777);
    await utimes(d, st.atime, st.mtime);
  }

  async entry(rel: string): Promise<void> {
    if (excludedPath(rel) || excludedFile(path.basename(rel))) return;
    const st = await lstat(this.src(rel)).catch(() => undefined);
    if (!st) return;
    if (st.isDirectory()) return this.directory(rel);
    if (st.isSymbolicLink()) {
      await symlink(await readlink(this.src(rel)), this.dst(rel));
      this.report.files++;
      return;
    }
    if (st.isFile()) await this.linkFile(rel);
  }

  private async directory(rel: string): Promise<void> {
    await mkdir(this.dst(rel), { mode: 0o700 });
    this.report.dirs++;
    const names = await readdir(this.src(rel)).catch(() => [] as string[]);
    if (names.includes("cur") && names.includes("new")) await this.maildir(rel, names);
    else for (const name of names.sort()) await this.entry(path.join(rel, name));
    await this.copyDirMeta(rel);
  }

  /** A Maildir (the INBOX or a folder): new/ before cur/, then whatever moved, then the rest. */
  private async maildir(rel: string, names: string[]): Promise<void> {
    const missing = new Set<string>();
    const staged = new Set<string>();
    for (const sub of ["new", "cur"]) {
      await mkdir(this.dst(path.join(rel, sub)), { mode: 0o700 });
      this.report.dirs++;
      for (const name of (await readdir(this.src(path.join(rel, sub))).catch(() => [] as string[])).sort()) {
        if (excludedFile(name)) continue;
        const base = maildirBase(name);
        if (staged.has(base)) continue;
        if (await this.linkFile(path.join(rel, sub, name))) {
          staged.add(base);
          missing.delete(base);
        } else missing.add(base);
      }
    }
    // Renamed while we looked: find each by its unique part. A rename during readdir(3) may also
    // hide a file under both its names (POSIX leaves entries changed meanwhile unspecified), so
    // each round takes every message not staged yet, seen before or not, until a round finds
    // nothing new. Dovecot renames within a moment, so a few rounds suffice; what is still
    // missing was expunged.
    for (let round = 0, found = 1; round < 5 && (found > 0 || missing.size > 0); round++) {
      found = 0;
      for (const sub of ["new", "cur"]) {
        for (const name of await readdir(this.src(path.join(rel, sub))).catch(() => [] as string[])) {
          const base = maildirBase(name);
          if (excludedFile(name) || staged.has(base)) continue;
          if (await this.linkFile(path.join(rel, sub, name))) {
            staged.add(base);
            missing.delete(base);
            found++;
          } else missing.add(base);
        }
      }
    }
    this.report.vanished += missing.size;
    for (const sub of ["new", "cur"]) await this.copyDirMeta(path.join(rel, sub));
    for (const name of names.sort()) {
      if (name === "new" || name === "cur") continue;
      await this.entry(path.join(rel, name));
    }
  }
}

/**
 * Builds the staging tree of `dataDir` at `stageDir` (which must be on the same file system, and is
 * replaced). Returns what it holds.
 */
export async function stageDataDir(dataDir: string, stageDir: string): Promise<StageReport> {
  await rm(stageDir, { recursive: true, force: true });
  await mkdir(stageDir, { recursive: true, mode: 0o700 });
  const stager = new Stager(dataDir, stageDir);
  for (const top of STAGED_ENTRIES) await stager.entry(top);
  const st = await lstat(dataDir);
  await chown(stageDir, st.uid, st.gid);
  await chmod(stageDir, st.mode & 0o7777);
  await utimes(stageDir, st.atime, st.mtime);
  return stager.report;
}

/** Entries of a data directory that are not data: an empty volume holds nothing else. */
export function isHousekeeping(name: string): boolean {
  return name === "lost+found" || name === WORK_DIR;
}
