// What maild answers when storage runs short: a mailbox over its quota (mailbox-quota.ts, the
// figure Dovecot keeps too) or a data volume nearly full. Every refusal is one the client can act
// on, and none loses mail: a message is refused before it is acknowledged, never dropped after.
//
// The replies (RFC 5321 4.2.2/4.2.3, RFC 3463):
// - the volume has less than `reserveBytes` free beyond the message: 452 4.3.1 "insufficient
//   system storage", at MAIL FROM (with the SIZE the client declared, RFC 1870) and again after
//   DATA, before anything is written (Postfix: queue_minfree, 452 4.3.1 at MAIL FROM). The
//   reserve keeps room for the queue's own state and the server's notices.
// - a mailbox at or over its quota: 452 4.2.2 at RCPT for that recipient. RFC 3463 X.2.2 "mailbox
//   full" is for a persistent transient failure: the owner can make room, and the sender retries
//   (Dovecot's quota_full_tempfail = yes does the same over LMTP). Other recipients are unaffected.
// - a message larger than a recipient's whole quota can never be delivered there: 552 5.2.2, at
//   RCPT when SIZE declares it, else after DATA (RFC 5321 4.5.3.1.10 permits 552 for "exceeded
//   storage allocation"; Dovecot's quota-status answers quota_status_toolarge permanently too).
// A mailbox under its quota at RCPT takes the message whole, even if it ends over the quota by
// that message (Dovecot's quota_grace does the same for deliveries); concurrent deliveries can
// add a little more, as they can in Dovecot.
import { statfs } from "node:fs/promises";
import type { MaildConfig } from "./config";
import type { Logger } from "./log";
import { mailboxKey, type Mailbox } from "./router";
import { maildirPath } from "./maildir";
import { addToMaildirsize, mailboxUsage } from "./mailbox-quota";

export interface StorageRefusal {
  code: number;
  text: string;
  /** for metrics and logs */
  reason: "disk-reserve" | "mailbox-full" | "too-big-for-mailbox";
}

export class StoragePolicy {
  constructor(
    private readonly config: () => Pick<MaildConfig, "dataDir" | "users" | "storage">,
    private readonly log: Logger,
    /** free bytes for the caller on the data volume (statfs bavail * bsize) */
    private readonly freeBytes: (dir: string) => Promise<number> = sharedStatfs(),
  ) {}

  /** At MAIL FROM and after DATA: is there room for `bytes` more and the reserve? */
  async roomFor(bytes: number): Promise<StorageRefusal | undefined> {
    const cfg = this.config();
    const free = await this.freeBytes(cfg.dataDir);
    if (free - bytes >= cfg.storage.reserveBytes) return undefined;
    this.log.warn("storage.reserve_reached", { freeBytes: free, messageBytes: bytes, reserveBytes: cfg.storage.reserveBytes });
    return { code: 452, text: "4.3.1 Insufficient system storage, try again later", reason: "disk-reserve" };
  }

  /** At RCPT: each mailbox the recipient reaches must be under its quota (and able to hold `declaredSize`). */
  async rcpt(mailboxes: Mailbox[], declaredSize: number | undefined): Promise<StorageRefusal | undefined> {
    for (const mb of mailboxes) {
      const limit = this.limitOf(mb);
      if (limit === 0) continue;
      if (declaredSize !== undefined && declaredSize > limit) return tooBig(mb, limit);
      const usage = await mailboxUsage(maildirPath(this.config().dataDir, mb), limit);
      if (usage.bytes >= limit) {
        this.log.info("storage.mailbox_full", { mailbox: mailboxKey(mb), bytes: usage.bytes, limit });
        return { code: 452, text: `4.2.2 Mailbox full: ${mailboxKey(mb)} is over its quota, try again later`, reason: "mailbox-full" };
      }
    }
    return undefined;
  }

  /** After DATA, once the size is known: a message no recipient's quota could ever hold is refused for good. */
  afterData(mailboxes: Mailbox[], size: number): StorageRefusal | undefined {
    for (const mb of mailboxes) {
      const limit = this.limitOf(mb);
      if (limit > 0 && size > limit) return tooBig(mb, limit);
    }
    return undefined;
  }

  /** After the commit: counts the message in each mailbox's maildirsize (failures are logged: the mail is safe). */
  delivered(mailboxes: Mailbox[], size: number): void {
    const dataDir = this.config().dataDir;
    for (const mb of mailboxes) {
      addToMaildirsize(maildirPath(dataDir, mb), size).catch((e: Error) =>
        this.log.warn("storage.maildirsize_failed", { mailbox: mailboxKey(mb), error: e.message }),
      );
    }
  }

  /** The mailbox's quota in bytes: its user's own, else the default; 0 for none. */
  limitOf(mb: Mailbox): number {
    const cfg = this.config();
    const user = cfg.users.find((u) => u.address === mailboxKey(mb));
    return user?.quotaBytes ?? cfg.storage.quotaBytes;
  }
}

function tooBig(mb: Mailbox, limit: number): StorageRefusal {
  return { code: 552, text: `5.2.2 Message larger than the quota of ${mailboxKey(mb)} (${limit} bytes)`, reason: "too-big-for-mailbox" };
}

/**
 * Free bytes on the volume of a directory, by statfs(2), with concurrent callers sharing calls:
 * each caller gets the figure of a statfs that began after its own call (as DirSyncer shares
 * fsyncs, dir-sync.ts), so no answer is older than the question; under load one statfs answers
 * every message that asked while the one before it ran, instead of one each (twice a message:
 * at MAIL FROM and after DATA).
 */
export function sharedStatfs(read: (dir: string) => Promise<number> = statfsFree): (dir: string) => Promise<number> {
  const running = new Map<string, Promise<number>>();
  const next = new Map<string, Promise<number>>();
  const start = (dir: string): Promise<number> => {
    const p = read(dir).finally(() => {
      if (running.get(dir) === p) running.delete(dir);
    });
    running.set(dir, p);
    return p;
  };
  return (dir) => {
    const now = running.get(dir);
    if (!now) return start(dir);
    let waiting = next.get(dir);
    if (!waiting) {
      waiting = now
        .catch(() => undefined)
        .then(() => {
          next.delete(dir);
          return start(dir);
        });
      next.set(dir, waiting);
    }
    return waiting;
  };
}

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}
