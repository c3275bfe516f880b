// Restores: the whole data directory onto an empty volume (the install step, before maild starts),
// and one mailbox or one folder into a running system (by hand) without touching anything else.
//
// Whole volume (`restoreVolume`): only an empty data directory is restored; one that holds
// anything but lost+found and the job's own directory is left alone, so a restore never overwrites
// mail, not even older mail. The snapshot is restored into the job's directory on the same volume,
// then each top-level entry is renamed into place, so an interrupted restore leaves only the job's
// directory behind and is redone by the next install. Afterwards maild's own start-up recovery
// applies to the restored spool and queue exactly as after a crash (stage.ts says why that is right).
//
// One mailbox or folder (`restoreMailbox`): a merge that only adds. A folder that no longer exists
// comes back whole (with its dovecot-uidlist, so its UIDs are the old ones, and its subscription).
// In a folder that exists, each message of the snapshot whose unique name part is not there (in
// new/ or cur/, whatever its flags now) is added; nothing present is changed or removed. Dovecot
// gives added messages new UIDs (RFC 9051 2.3.1.1: a UID is never reused, so a message that comes
// back is a new one to clients).
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile, chown } from "node:fs/promises";
import * as path from "node:path";
import type { Logger } from "../maild/log";
import { fsyncDir } from "../maild/dir-sync";
import { type BackupSettings, workPaths } from "./settings";
import { maildirBase } from "./stage";
import { listSnapshots, pickSnapshot, repositoryMissing, Restic, resticError, type Snapshot } from "./restic";
import { currentStatus, dataEntries } from "./job";
import { writeStatus } from "./status";

export { dataEntries } from "./job";

export type VolumeRestore =
  | { result: "disabled" }
  | { result: "not-empty"; entries: string[] }
  | { result: "no-repository" }
  | { result: "no-snapshot" }
  | { result: "restored"; snapshot: string; time: string; entries: string[] };

async function resolveSnapshot(restic: Restic, settings: BackupSettings, wanted: string): Promise<Snapshot | "no-repository" | undefined> {
  const probe = await restic.run(["cat", "config", "--no-lock"]);
  if (probe.code !== 0) {
    if (repositoryMissing(probe)) return "no-repository";
    // Unreachable is not empty: coming up without the mail would accept new mail onto a volume
    // that then counts as not empty, and the restore would never happen.
    throw new Error(`restic cannot reach the repository: ${resticError(probe)}`);
  }
  const snapshots = await listSnapshots(restic, settings.hostname);
  const snap = pickSnapshot(snapshots, wanted);
  if (!snap && wanted !== "latest") {
    const known = snapshots.map((s) => `${s.short_id} (${s.time})`).join(", ") || "none";
    throw new Error(`snapshot ${wanted} is not in the repository; snapshots of ${settings.hostname}: ${known}`);
  }
  return snap;
}

/** Restores `snapshot` (a `restic restore` include list) under the job's restore directory; returns the staged root in it. */
async function restoreToWorkDir(
  restic: Restic,
  settings: BackupSettings,
  snap: Snapshot,
  include: string[] = [],
): Promise<{ root: string }> {
  const { restore } = workPaths(settings.dataDir);
  await rm(restore, { recursive: true, force: true });
  await mkdir(restore, { recursive: true, mode: 0o700 });
  const includes = include.flatMap((p) => ["--include", p]);
  await restic.mustRun(["restore", snap.id, "--target", restore, ...includes], "restore");
  if (snap.paths.length !== 1)
    throw new Error(`snapshot ${snap.short_id} holds ${snap.paths.length} paths; a mailstack snapshot holds one`);
  return { root: path.join(restore, snap.paths[0]) };
}

export async function restoreVolume(
  settings: BackupSettings,
  restic: Restic,
  log: Logger,
  wanted = settings.restoreFrom,
): Promise<VolumeRestore> {
  if (wanted === "never") return { result: "disabled" };
  const entries = await dataEntries(settings.dataDir);
  if (entries.length > 0) {
    log.info("restore.skipped", { reason: "the data directory is not empty; a restore never overwrites mail", entries });
    return { result: "not-empty", entries };
  }
  const snap = await resolveSnapshot(restic, settings, wanted);
  if (snap === "no-repository" || snap === undefined) {
    const result = snap === "no-repository" ? "no-repository" : "no-snapshot";
    if (wanted !== "latest") throw new Error(`restoreFrom ${wanted}: the repository at ${currentStatus(settings).target} does not exist`);
    log.info("restore.nothing", { reason: result === "no-repository" ? "no repository yet" : "no snapshot yet" });
    return { result };
  }
  log.info("restore.start", { snapshot: snap.short_id, snapshotTime: snap.time });
  const started = Date.now();
  const { root } = await restoreToWorkDir(restic, settings, snap);
  const restored = (await readdir(root)).sort();
  for (const name of restored) {
    // Nothing may have appeared meanwhile (maild is not running): refuse rather than merge.
    await stat(path.join(settings.dataDir, name)).then(
      () => {
        throw new Error(`${path.join(settings.dataDir, name)} appeared during the restore; nothing was overwritten`);
      },
      () => undefined,
    );
    await rename(path.join(root, name), path.join(settings.dataDir, name));
  }
  await fsyncDir(settings.dataDir);
  await rm(workPaths(settings.dataDir).restore, { recursive: true, force: true });
  const status = currentStatus(settings);
  status.restored = { snapshot: snap.id, time: new Date().toISOString() };
  await writeStatus(workPaths(settings.dataDir).status, status);
  log.info("restore.done", { snapshot: snap.short_id, entries: restored, durationMs: Date.now() - started });
  return { result: "restored", snapshot: snap.id, time: snap.time, entries: restored };
}

/** Maildir++ (Dovecot's maildir layout): folder `A/B` is the directory `.A.B` beside the INBOX's cur/. */
export function folderDir(folder: string): string {
  if (folder.toUpperCase() === "INBOX") return "";
  if (folder === "" || folder.includes(".") || folder.split("/").some((p) => p === "")) {
    throw new Error(`folder ${JSON.stringify(folder)}: give the IMAP name with "/" between levels (e.g. Archive/2024), without "."`);
  }
  return `.${folder.split("/").join(".")}`;
}

export interface MailboxRestore {
  snapshot: string;
  /** folders (IMAP names) restored whole because they did not exist */
  foldersRestored: string[];
  /** messages added to folders that existed */
  messagesAdded: number;
  /** messages of the snapshot already present (by unique name part) */
  messagesPresent: number;
}

function imapName(dir: string): string {
  return dir === "" ? "INBOX" : dir.slice(1).split(".").join("/");
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

/** Keyword letters (a-z) in a Maildir info part, which index dovecot-keywords, a per-folder table. */
export function withoutKeywords(name: string): string {
  const colon = name.indexOf(":2,");
  if (colon === -1) return name;
  return name.slice(0, colon + 3) + name.slice(colon + 3).replace(/[a-z]/g, "");
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([readFile(a).catch(() => undefined), readFile(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.equals(y);
}

/** Adds the messages of one restored Maildir folder that the live one lacks. */
export async function mergeFolder(from: string, to: string): Promise<{ added: number; present: number }> {
  const live = new Set<string>();
  for (const sub of ["new", "cur"]) for (const n of await listDir(path.join(to, sub))) live.add(maildirBase(n));
  // Keyword letters mean something only with the same dovecot-keywords table.
  const keywordsMatch = await sameFile(path.join(from, "dovecot-keywords"), path.join(to, "dovecot-keywords"));
  let added = 0;
  let present = 0;
  for (const sub of ["new", "cur"]) {
    for (const name of await listDir(path.join(from, sub))) {
      if (live.has(maildirBase(name))) {
        present++;
        continue;
      }
      const target = path.join(to, sub, keywordsMatch ? name : withoutKeywords(name));
      // link, not rename-over: never replaces a file that is there.
      await link(path.join(from, sub, name), target);
      live.add(maildirBase(name));
      added++;
    }
    if (added > 0) await fsyncDir(path.join(to, sub));
  }
  return { added, present };
}

/** Dovecot 2.3's subscriptions file: `V\t2` then one name per line, hierarchy levels separated by a tab. */
async function subscribe(maildir: string, restoredMaildir: string, folders: string[]): Promise<void> {
  const file = path.join(maildir, "subscriptions");
  const restored = await readFile(path.join(restoredMaildir, "subscriptions"), "utf8").catch(() => "");
  const wanted = folders.map((f) => f.split("/").join("\t")).filter((line) => restored.split("\n").includes(line));
  if (wanted.length === 0) return;
  const current = await readFile(file, "utf8").catch(() => undefined);
  if (current === undefined) {
    await writeFile(file, restored);
  } else {
    const lines = current.split("\n");
    const missing = wanted.filter((w) => !lines.includes(w));
    if (missing.length === 0) return;
    const body = current.endsWith("\n") || current === "" ? current : `${current}\n`;
    const tmp = `${file}.mailstack-restore`;
    await writeFile(tmp, body + missing.map((m) => `${m}\n`).join(""));
    const st = await stat(path.join(maildir, "cur"));
    await chown(tmp, st.uid, st.gid);
    await rename(tmp, file);
  }
  const st = await stat(path.join(maildir, "cur"));
  await chown(file, st.uid, st.gid);
}

/**
 * Restores one mailbox (all its folders) or one folder of it from a snapshot, adding only what is
 * missing. maild and Dovecot may keep running: Maildir takes new files at any time.
 */
export async function restoreMailbox(
  settings: BackupSettings,
  restic: Restic,
  log: Logger,
  opts: { address: string; folder?: string; snapshot?: string },
): Promise<MailboxRestore> {
  const address = opts.address.toLowerCase();
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1 || /[/\s]/.test(address) || address.includes("..")) {
    throw new Error(`${JSON.stringify(opts.address)} is not a mailbox address (local@domain)`);
  }
  const rel = path.posix.join("mail", address.slice(at + 1), address.slice(0, at), "Maildir");
  const folder = opts.folder === undefined ? undefined : folderDir(opts.folder);
  const wanted = opts.snapshot ?? "latest";
  const snap = await resolveSnapshot(restic, settings, wanted);
  if (snap === "no-repository" || snap === undefined) throw new Error(`no snapshot to restore ${address} from (${wanted})`);
  const stagedMaildir = path.posix.join(snap.paths[0], rel);
  const include =
    folder === undefined
      ? [stagedMaildir]
      : folder === ""
        ? [path.posix.join(stagedMaildir, "cur"), path.posix.join(stagedMaildir, "new"), path.posix.join(stagedMaildir, "dovecot-keywords")]
        : [path.posix.join(stagedMaildir, folder), path.posix.join(stagedMaildir, "subscriptions")];
  log.info("restore_mailbox.start", { address, folder: opts.folder ?? null, snapshot: snap.short_id });
  try {
    const { root } = await restoreToWorkDir(restic, settings, snap, include);
    const from = path.join(root, rel);
    const to = path.join(settings.dataDir, rel);
    if ((await listDir(from)).length === 0) {
      throw new Error(
        `snapshot ${snap.short_id} holds no ${opts.folder !== undefined ? `folder ${opts.folder} of ` : "mailbox "}${address}`,
      );
    }
    const result: MailboxRestore = { snapshot: snap.id, foldersRestored: [], messagesAdded: 0, messagesPresent: 0 };
    const liveExists = await stat(to).then(
      () => true,
      () => false,
    );
    if (!liveExists && folder === undefined) {
      await mkdir(path.dirname(to), { recursive: true });
      await rename(from, to);
      result.foldersRestored.push("INBOX", ...(await listDir(to)).filter((n) => n.startsWith(".")).map(imapName));
    } else {
      if (!liveExists) throw new Error(`${address} has no mailbox on this server; restore the whole mailbox first (without --folder)`);
      const dirs = folder === undefined ? ["", ...(await listDir(from)).filter((n) => n.startsWith(".") && !n.startsWith(".."))] : [folder];
      const wholeFolders: string[] = [];
      for (const dir of dirs) {
        const src = path.join(from, dir);
        const dst = path.join(to, dir);
        if (
          dir !== "" &&
          !(await stat(dst).then(
            () => true,
            () => false,
          ))
        ) {
          await rename(src, dst);
          wholeFolders.push(imapName(dir));
          continue;
        }
        const { added, present } = await mergeFolder(src, dst);
        result.messagesAdded += added;
        result.messagesPresent += present;
      }
      if (wholeFolders.length > 0) {
        await fsyncDir(to);
        await subscribe(to, from, wholeFolders);
        result.foldersRestored.push(...wholeFolders);
      }
    }
    log.info("restore_mailbox.done", {
      address,
      snapshot: snap.short_id,
      foldersRestored: result.foldersRestored,
      messagesAdded: result.messagesAdded,
      messagesPresent: result.messagesPresent,
    });
    return result;
  } finally {
    await rm(workPaths(settings.dataDir).restore, { recursive: true, force: true });
  }
}
