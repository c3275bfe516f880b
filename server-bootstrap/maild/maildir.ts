// Maildir layout (https://cr.yp.to/proto/maildir.html) as Dovecot reads it with
// `mail_location = maildir:<dataDir>/mail/%d/%n/Maildir`.
import { mkdir, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncDir } from "./dir-sync";
import type { Mailbox } from "./router";

/** The folder spam goes to: Dovecot's `Junk` mailbox (\\Junk special use, dovecot-conf.ts). */
export const JUNK_FOLDER = "Junk";

/**
 * A mailbox's Maildir, or one of its folders: Maildir++ keeps folder `F` in `.F/` inside the
 * Maildir (Dovecot's default maildir layout; https://doc.dovecot.org/2.3/admin_manual/mailbox_formats/maildir/).
 */
export function maildirPath(dataDir: string, mailbox: Mailbox, folder?: string): string {
  const root = join(dataDir, "mail", mailbox.domain, mailbox.local, "Maildir");
  return folder === undefined ? root : join(root, `.${folder}`);
}

/**
 * The file name a message gets in `new/`. Derived only from the message id, hostname and size, so
 * recovery can find the copies of an interrupted delivery. `,S=` is Dovecot's size hint.
 */
export function maildirName(messageId: string, hostname: string, size: number): string {
  // Maildir reserves "/" and ":" in names.
  const host = hostname.replace(/\//g, "\\057").replace(/:/g, "\\072");
  return `${messageId}.${host},S=${size}`;
}

const created = new Set<string>();

/**
 * Creates `tmp`, `new` and `cur` (once per process per mailbox), making each new directory durable.
 * A folder (`.Junk`) also gets the empty `maildirfolder` file Maildir++ marks folders with, and its
 * Maildir (the inbox) is made first: a mailbox whose first message is spam still has an inbox.
 */
export async function ensureMaildir(dir: string): Promise<void> {
  if (created.has(dir)) return;
  if (basename(dir).startsWith(".")) await ensureMaildir(dirname(dir));
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const sub of ["tmp", "new", "cur"]) await mkdir(join(dir, sub), { mode: 0o700 }).catch(ignoreExists);
  if (basename(dir).startsWith(".")) await writeFile(join(dir, "maildirfolder"), "", { mode: 0o600, flag: "a" });
  if (first !== undefined) {
    // A new directory's name lives in its parent: fsync every parent up to the first that existed.
    await fsyncDir(dir);
    for (let d = dir; d !== dirname(first); d = dirname(d)) await fsyncDir(dirname(d));
  } else {
    await fsyncDir(dir);
  }
  created.add(dir);
}

function ignoreExists(e: NodeJS.ErrnoException): void {
  if (e.code !== "EEXIST") throw e;
}
