// RSA key pairs made ahead on worker threads for the offline engine's @pulumi/tls stand-in
// (mock-provider.ts). A 2048-bit RSA key costs about 40 ms of CPU, one per domain and DKIM key
// generation: at 100 domains that was a quarter of `mailstack plan`'s time, spent on the one thread
// that also runs the program. Workers make them while the main thread loads modules and registers
// resources, and the main thread takes a finished key synchronously (receiveMessageOnPort), so the
// mock provider still answers at once: the program's registrations keep their order and the plan
// its output. A key that is not ready yet is made on the main thread as before.
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import * as os from "node:os";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";

export interface RsaKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** Where the mock provider gets RSA key pairs of a size; undefined: none ready, make one. */
export interface KeyPairSource {
  takeRsa(bits: number): RsaKeyPair | undefined;
}

// Plain CommonJS evaluated in the worker (the same text runs from sources under tsx and from dist/).
// KeyObjects cross threads through postMessage (Node crypto docs, "Class: KeyObject").
const WORKER_SOURCE = `
const { generateKeyPairSync } = require("node:crypto");
const { workerData } = require("node:worker_threads");
for (let i = 0; i < workerData.count; i++) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: workerData.bits });
  workerData.port.postMessage({ privateKey, publicKey });
}
`;

export class RsaKeyPool implements KeyPairSource {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private next = 0;

  /**
   * Starts making `count` key pairs of `bits` bits, on up to `threads` workers (default: one fewer
   * than the CPUs, at least one).
   */
  constructor(
    private readonly bits: number,
    count: number,
    threads = Math.max(1, os.availableParallelism() - 1),
  ) {
    const workers = Math.min(threads, count);
    for (let w = 0; w < workers; w++) {
      const share = Math.floor(count / workers) + (w < count % workers ? 1 : 0);
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { bits, count: share, port: port2 },
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
    if (bits !== this.bits) return undefined;
    for (let i = 0; i < this.ports.length; i++) {
      const port = this.ports[(this.next + i) % this.ports.length];
      const received = receiveMessageOnPort(port);
      if (received) {
        this.next = (this.next + i + 1) % this.ports.length;
        return received.message as RsaKeyPair;
      }
    }
    return undefined;
  }

  /** Stops the workers; keys not taken are dropped. */
  async close(): Promise<void> {
    for (const port of this.ports) port.close();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A key pair from `source` if one is ready, else made here. */
export function rsaKeyPair(bits: number, source?: KeyPairSource): RsaKeyPair {
  return source?.takeRsa(bits) ?? generateKeyPairSync("rsa", { modulusLength: bits });
}
