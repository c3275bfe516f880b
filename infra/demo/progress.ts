// Progress lines for long work (STYLE.md: long work shows progress, a failure says why on one line):
//   [3/13] issuing the certificate from pebble ... ok (0.4 s): 7 names
//   [12/13] mail alice@example.org -> carol@peer.test ... FAILED (0.1 s): submission: ...

export interface StepOutcome {
  ok: boolean;
  /** shown after the status: a short summary, or why it failed */
  note?: string;
}

/** An error a step already reported on its progress line (the cause is the original error). */
export class StepFailure extends Error {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause), { cause });
    this.name = "StepFailure";
  }
}

export class Progress {
  private index = 0;

  constructor(
    private readonly total: number,
    private readonly write: (text: string) => void,
  ) {}

  /**
   * Runs one step. A thrown error prints FAILED with its first line and is rethrown as a
   * StepFailure; `outcome` turns a returned value into ok/FAILED for steps that report failure
   * as a value.
   */
  async step<T>(title: string, work: () => Promise<T>, outcome: (value: T) => StepOutcome = () => ({ ok: true })): Promise<T> {
    this.index++;
    this.write(`[${this.index}/${this.total}] ${title} ... `);
    const started = process.hrtime.bigint();
    const took = () => `${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`;
    let value: T;
    try {
      value = await work();
    } catch (err) {
      const first = ((err as Error)?.message ?? String(err)).split("\n")[0];
      this.write(`FAILED (${took()}): ${first}\n`);
      throw err instanceof StepFailure ? err : new StepFailure(title, err);
    }
    const { ok, note } = outcome(value);
    this.write(`${ok ? "ok" : "FAILED"} (${took()})${note ? `: ${note}` : ""}\n`);
    return value;
  }
}
