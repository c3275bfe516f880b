// Maildir layout (https://cr.yp.to/proto/maildir.html) as Dovecot reads it with
// `mail_location = maildir:<dataDir>/mail/%d/%n/Maildir`.
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsyncDir } from "./dir-sync";
import type { Mailbox } from "./router";

export function maildirPath(dataDir: string, mailbox: Mailbox): string {
  return join(dataDir, "mail", mailbox.domain, mailbox.local, "Maildir");
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

/** Creates `tmp`, `new` and `cur` (once per process per mailbox), making each new directory durable. */
export async function ensureMaildir(dir: string): Promise<void> {
  if (created.has(dir)) return;
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const sub of ["tmp", "new", "cur"]) await mkdir(join(dir, sub), { mode: 0o700 }).catch(ignoreExists);
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
