// fsync(2) of a directory makes the names created or removed in it durable (a new link, a rename,
// an unlink). Under load many messages land in the same Maildir at once; one fsync that *starts
// after* a caller's change covers it, so concurrent callers share fsyncs instead of queueing one
// each. Correctness: a caller joins only a sync that has not started yet.
import { open } from "node:fs/promises";

interface Batch {
  promise: Promise<void>;
  started: boolean;
}

export class DirSyncer {
  private readonly next = new Map<string, Batch>();
  private readonly running = new Map<string, Promise<void>>();

  /** `fsyncDirectory` does the fsync itself (a caller may keep the directory open for it). */
  constructor(private readonly fsyncDirectory: (dir: string) => Promise<void> = fsyncDir) {}

  /** Resolves once an fsync of `dir` that began after this call has completed. */
  sync(dir: string): Promise<void> {
    const pending = this.next.get(dir);
    if (pending && !pending.started) return pending.promise;
    const before = this.running.get(dir) ?? Promise.resolve();
    const batch: Batch = { started: false, promise: Promise.resolve() };
    batch.promise = before
      .catch(() => undefined)
      .then(async () => {
        batch.started = true;
        this.next.delete(dir);
        this.running.set(dir, batch.promise);
        try {
          await this.fsyncDirectory(dir);
        } finally {
          if (this.running.get(dir) === batch.promise) this.running.delete(dir);
        }
      });
    this.next.set(dir, batch);
    return batch.promise;
  }
}

export function fsyncDir(dir: string): Promise<void> {
  return fsync(dir, "r");
}

/** Makes a file's content durable; its name needs an fsync of its directory too. */
export function fsyncFile(path: string): Promise<void> {
  return fsync(path, "r+");
}

async function fsync(path: string, flags: "r" | "r+"): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
