// Maildir layout (https://cr.yp.to/proto/maildir.html) as Dovecot reads it with
// `mail_location = maildir:<dataDir>/mail/%d/%n/Maildir`.
//
// Dovecot's mail processes run as an account of their own (vmail), in a group maild belongs to;
// the tree under <dataDir>/mail is that group's (the install script sets <dataDir>/mail up so).
// Every directory maild makes there is group-writable and setgid (MAIL_DIR_MODE), so the group
// passes down to every file and directory below, whoever creates it; message files are
// group-readable (MAIL_FILE_MODE). Dovecot takes the mode of a new file from the mailbox's root
// directory (dovecot/core 2.3.19.1 src/lib-storage/mailbox-list.c, mailbox_list_get_permissions):
// 0660, and the group of a setgid directory. Nothing else of maild's is in that group.
import { chmod, mkdir, writeFile } from "node:fs/promises";
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

/** rwx for maild and the mail group, setgid so the group is inherited; set with chmod, past the umask. */
export const MAIL_DIR_MODE = 0o2770;
/** A message file: maild writes it, the mail group (Dovecot) reads it. */
export const MAIL_FILE_MODE = 0o640;

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
  if (first !== undefined) for (let d = dir; d.length >= first.length; d = dirname(d)) await chmod(d, MAIL_DIR_MODE);
  for (const sub of ["tmp", "new", "cur"]) {
    const made = await mkdir(join(dir, sub), { mode: 0o700 }).then(
      () => true,
      (e: NodeJS.ErrnoException) => (ignoreExists(e), false),
    );
    if (made) await chmod(join(dir, sub), MAIL_DIR_MODE);
  }
  if (basename(dir).startsWith(".")) await writeFile(join(dir, "maildirfolder"), "", { mode: MAIL_FILE_MODE, flag: "a" });
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
