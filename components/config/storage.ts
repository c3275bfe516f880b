// The `storage` section: the quota every mailbox gets unless its user sets one (users[].quotaMiB),
// and the free space on the data volume below which the box refuses mail (452 4.3.1) instead of
// filling the disk. The box enforces both (server-bootstrap/maild/storage-policy.ts; Dovecot's
// quota plugin counts against the same figure).
import type { Problems } from "./config-error";
import { isAbsent, keyPath, readInteger, readObject } from "./shape";

export interface StorageSpec {
  /** MiB; 0: no quota */
  quotaMiB: number;
  /** MiB kept free on the data volume */
  reserveMiB: number;
}

/** 5 GiB a mailbox: a few mailboxes fit the default 10 GB volume with room to spare. */
export const DEFAULT_QUOTA_MIB = 5120;
/** 256 MiB: room for the outbound queue's state and the server's own notices (maild's default too). */
export const DEFAULT_RESERVE_MIB = 256;
/** 10 TiB, Hetzner's largest volume. */
const MAX_MIB = 10 * 1024 * 1024;

const STORAGE_KEYS = ["quotaMiB", "reserveMiB"] as const;

export function readStorage(value: unknown, path: string, volumeSizeGb: number | undefined, problems: Problems): StorageSpec {
  const out: StorageSpec = { quotaMiB: DEFAULT_QUOTA_MIB, reserveMiB: DEFAULT_RESERVE_MIB };
  if (isAbsent(value)) return out;
  const raw = readObject(value, path, STORAGE_KEYS, problems);
  if (raw === undefined) return out;
  if (!isAbsent(raw.quotaMiB))
    out.quotaMiB = readInteger(raw.quotaMiB, keyPath(path, "quotaMiB"), 0, MAX_MIB, problems, " (MiB, 0 for none)") ?? out.quotaMiB;
  if (!isAbsent(raw.reserveMiB)) {
    const reserve = readInteger(raw.reserveMiB, keyPath(path, "reserveMiB"), 0, MAX_MIB, problems, " (MiB)");
    // The volume's GB are 10^9 bytes (Hetzner); a reserve of the whole volume would refuse all mail.
    if (reserve !== undefined && volumeSizeGb !== undefined && reserve * 1024 ** 2 >= volumeSizeGb * 1e9) {
      problems.add(
        keyPath(path, "reserveMiB"),
        `${reserve} MiB is the whole ${volumeSizeGb} GB data volume or more; mail would always be refused`,
      );
    } else if (reserve !== undefined) out.reserveMiB = reserve;
  }
  return out;
}

/** A user's own quota (`users[].quotaMiB`); undefined: the storage default. */
export function readUserQuota(value: unknown, path: string, problems: Problems): number | undefined {
  if (isAbsent(value)) return undefined;
  return readInteger(value, path, 0, MAX_MIB, problems, " (MiB, 0 for none)");
}

export const MIB = 1024 * 1024;
