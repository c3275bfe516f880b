// RSA key pairs made ahead on worker threads for the offline engine's @pulumi/tls stand-in
// (mock-provider.ts). A 2048-bit RSA key costs about 40 ms of CPU, one per domain and DKIM key
// generation: at 100 domains that was a quarter of `mailstack plan`'s time, spent on the one thread
// that also runs the program. Workers make them while the main thread loads modules and registers
// resources, and the main thread takes a finished key synchronously (receiveMessageOnPort), so the
// mock provider still answers at once: the program's registrations keep their order and the plan
// its output. `mailstack plan` now asks it for one key only, the stand-in behind every RSA key of
// the run (StandInRsaKeys below).
//
// The keys to make are a budget shared with the main thread: a worker claims one before it makes
// it, and when the main thread needs a key and none is ready it claims one and makes it itself (both
// threads then make keys), or, once every key is claimed, waits for one a worker is making. No key
// is made twice.
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import * as os from "node:os";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";

export interface RsaKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** Where the mock provider gets RSA key pairs of a size; undefined: make one. */
export interface KeyPairSource {
  takeRsa(bits: number): RsaKeyPair | undefined;
}

/** Shared counters: the keys nobody has claimed yet, and the keys the workers have posted. */
const UNCLAIMED = 0;
const POSTED = 1;
/** How long the main thread waits for a key a worker is making before it makes one itself. */
const IN_FLIGHT_WAIT_MS = 5_000;

// Plain CommonJS evaluated in the worker (the same text runs from sources under tsx and from dist/).
// KeyObjects cross threads through postMessage (Node crypto docs, "Class: KeyObject"); the key is
// in the port's queue before POSTED counts it.
const WORKER_SOURCE = `
const { generateKeyPairSync } = require("node:crypto");
const { workerData } = require("node:worker_threads");
const shared = new Int32Array(workerData.shared);
while (Atomics.sub(shared, ${UNCLAIMED}, 1) > 0) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: workerData.bits });
  workerData.port.postMessage({ privateKey, publicKey });
  Atomics.add(shared, ${POSTED}, 1);
  Atomics.notify(shared, ${POSTED});
}
`;

export class RsaKeyPool implements KeyPairSource {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly shared: Int32Array;
  private next = 0;
  private claimedHere = 0;
  private received = 0;
  private closed = false;

  /**
   * Starts making `count` key pairs of `bits` bits, on up to `threads` workers (default: one fewer
   * than the CPUs, at least one).
   */
  constructor(
    private readonly bits: number,
    private readonly count: number,
    threads = Math.max(1, os.availableParallelism() - 1),
  ) {
    this.shared = new Int32Array(new SharedArrayBuffer(8));
    this.shared[UNCLAIMED] = count;
    const workers = Math.min(threads, count);
    for (let w = 0; w < workers; w++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { bits, shared: this.shared.buffer, port: port2 },
        transferList: [port2],
      });
      // The pool never keeps the process alive, and a worker's failure only means fewer keys ahead.
      worker.unref();
      worker.on("error", () => undefined);
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  takeRsa(bits: number): RsaKeyPair | undefined {
    if (bits !== this.bits || this.closed) return undefined;
    for (;;) {
      const ready = this.receive();
      if (ready) return ready;
      // Unclaimed: this thread makes it.
      if (Atomics.sub(this.shared, UNCLAIMED, 1) > 0) {
        this.claimedHere++;
        return undefined;
      }
      // Every key is claimed: wait for one a worker is making, if any.
      const posted = Atomics.load(this.shared, POSTED);
      if (posted > this.received) continue; // posted after this thread looked
      if (posted >= this.count - this.claimedHere) return undefined; // all made and taken: one beyond the count
      if (Atomics.wait(this.shared, POSTED, posted, IN_FLIGHT_WAIT_MS) === "timed-out") return undefined;
    }
  }

  /** Keys made and not taken yet. */
  readyCount(): number {
    return Atomics.load(this.shared, POSTED) - this.received;
  }

  private receive(): RsaKeyPair | undefined {
    for (let i = 0; i < this.ports.length; i++) {
      const port = this.ports[(this.next + i) % this.ports.length];
      const received = receiveMessageOnPort(port);
      if (received) {
        this.next = (this.next + i + 1) % this.ports.length;
        this.received++;
        return received.message as RsaKeyPair;
      }
    }
    return undefined;
  }

  /** Stops the workers; keys not taken are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    Atomics.store(this.shared, UNCLAIMED, 0);
    for (const port of this.ports) port.close();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A key pair from `source` if it has one, else made here. */
export function rsaKeyPair(bits: number, source?: KeyPairSource): RsaKeyPair {
  return source?.takeRsa(bits) ?? generateKeyPairSync("rsa", { modulusLength: bits });
}

/**
 * One RSA key pair per size, handed out for every RSA key the program asks for: the stand-in
 * `mailstack plan` uses for keys `pulumi up` makes itself. A real preview of a new stack knows no
 * tls.PrivateKey output (resource_private_key.go makes the key in Create, which a preview never
 * calls), so the values derived from it are unknown there too; the plan prints them as such
 * (plan.ts markUnknown). The one pair is real, so the program's derivations (DKIM records, the
 * files for the box) run as they would on a key of that size.
 */
export class StandInRsaKeys implements KeyPairSource {
  private readonly pairs = new Map<number, RsaKeyPair>();

  /** `source`: where the first pair of a size comes from (e.g. an RsaKeyPool making it ahead) */
  constructor(private readonly source?: KeyPairSource) {}

  takeRsa(bits: number): RsaKeyPair {
    let pair = this.pairs.get(bits);
    if (!pair) {
      pair = rsaKeyPair(bits, this.source);
      this.pairs.set(bits, pair);
    }
    return pair;
  }

  /** The public keys handed out, as SPKI DER in base64 (an RSA DKIM record's p=). */
  publicKeysB64(): string[] {
    return [...this.pairs.values()].map((p) => p.publicKey.export({ format: "der", type: "spki" }).toString("base64"));
  }
}
