// argon2id password checks on a thread of their own. crypto.argon2 (async) runs on libuv's
// threadpool, 4 threads by default (https://nodejs.org/api/cli.html#uv_threadpool_sizesize) that
// also carry every fs call of the delivery path (open, write, fsync, rename): a flood of logins,
// each ~19 MiB and tens of milliseconds of argon2, would stall deliveries behind it. Here one
// worker thread runs argon2Sync, one check at a time; at most MAX_QUEUED checks wait, and a check
// beyond that is refused at once (the caller answers "try again later"), so a flood costs one
// core and a bounded amount of memory, never the file system's threads.
import { Worker } from "node:worker_threads";

/** ~50 ms each at Dovecot's and OWASP's m=19456,t=2: about 1.5 s of waiting at most. */
export const MAX_QUEUED = 32;

export interface Argon2idParams {
  memory: number;
  passes: number;
  parallelism: number;
  salt: Buffer;
  hash: Buffer;
}

/** Too many checks are waiting: answer "temporary failure" (RFC 4954 6: 454 4.7.0). */
export class PasswordCheckBusy extends Error {
  constructor() {
    super("too many password checks waiting");
    this.name = "PasswordCheckBusy";
  }
}

// The worker's code, run with `eval` so the bundled daemon needs no second file on the box.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { argon2Sync, timingSafeEqual } = require("node:crypto");
parentPort.on("message", (m) => {
  try {
    const got = argon2Sync("argon2id", {
      message: m.password,
      nonce: Buffer.from(m.salt),
      parallelism: m.parallelism,
      tagLength: m.hash.length,
      memory: m.memory,
      passes: m.passes,
    });
    parentPort.postMessage({ id: m.id, ok: got.length === m.hash.length && timingSafeEqual(got, Buffer.from(m.hash)) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});
`;

interface Pending {
  resolve: (ok: boolean) => void;
  reject: (e: Error) => void;
}

export class PasswordChecker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly maxQueued = MAX_QUEUED) {}

  /** Whether `password` matches the argon2id hash; rejects with PasswordCheckBusy when the queue is full. */
  verify(password: string, p: Argon2idParams): Promise<boolean> {
    if (this.pending.size >= this.maxQueued) return Promise.reject(new PasswordCheckBusy());
    const worker = this.start();
    const id = this.nextId++;
    // referenced while a check runs, so a caller awaiting it keeps the process alive
    worker.ref();
    return new Promise<boolean>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, password, salt: p.salt, hash: p.hash, memory: p.memory, passes: p.passes, parallelism: p.parallelism });
    });
  }

  /** Checks waiting or running now. */
  get queued(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    // an idle checker must not keep the process alive
    worker.unref();
    worker.on("message", (m: { id: number; ok?: boolean; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.error !== undefined) p.reject(new Error(`argon2id: ${m.error}`));
      else p.resolve(m.ok === true);
    });
    const fail = (e: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(e);
      }
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`password check thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
