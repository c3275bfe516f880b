// What happens to a message after its final dot (the spam and authentication checks read and
// parse all of it, then it is written and fsynced) costs in proportion to its size. Ten clients
// sending 8 MB at once would otherwise have ten such checks run side by side, and an ordinary
// message arriving meanwhile would wait behind all of them (measured: 9 to 11 s with rspamd on 2
// cores). So large messages take turns, `largeMessageConcurrency` at a time, in arrival order;
// messages under `largeMessageBytes` never wait. Throughput is the same; only who waits changes.

/** Thrown by `run` when a large message has waited too long for its turn: the client should try again later. */
export class LargeMessageBusy extends Error {
  constructor(waitedMs: number) {
    super(`no turn for a large message within ${Math.round(waitedMs / 1000)} s`);
    this.name = "LargeMessageBusy";
  }
}

/**
 * RFC 5321 4.5.3.2.6: a client waits 10 minutes for the reply to the final dot. A message still
 * without its turn after half of that is answered with a temporary failure, well before the
 * client gives up (and would send it again while we might still accept the first copy).
 */
export const MAX_TURN_WAIT_MS = 5 * 60_000;

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

export class LargeMessageTurns {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly limits: () => { largeMessageBytes: number; largeMessageConcurrency: number },
    private readonly maxWaitMs = MAX_TURN_WAIT_MS,
  ) {}

  /** Large messages waiting for their turn now (a metric and the tests). */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits for the turn of a message of `bytes` (none for a small one) and returns what ends it;
   * rejects with LargeMessageBusy after maxWaitMs. Call the returned function exactly once.
   */
  async begin(bytes: number): Promise<() => void> {
    if (bytes < this.limits().largeMessageBytes) return () => undefined;
    if (this.running < this.limits().largeMessageConcurrency) this.running++;
    // a turn is handed over with its place already counted (next()), so none is taken twice
    else await this.wait();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.running--;
      this.next();
    };
  }

  private wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new LargeMessageBusy(this.maxWaitMs));
        }, this.maxWaitMs),
      };
      waiter.timer.unref();
      this.waiting.push(waiter);
    });
  }

  private next(): void {
    // a lowered limit (reload) lets the running ones finish before the next starts
    while (this.running < this.limits().largeMessageConcurrency && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!.start();
    }
  }
}
