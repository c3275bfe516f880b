// The DATA of one message while it is being checked, before the final copy is written. Most mail
// is small, so it stays in memory and costs no file of its own; past `memoryLimit` bytes it spills
// into a spool file. Neither form is durable, nor needs to be: nothing is acknowledged before the
// final message is written and fsynced (delivery.ts), and recovery discards a spilled file.
import { Writable } from "node:stream";
import { open, type FileHandle } from "node:fs/promises";

export class ReceivedData extends Writable {
  bytes = 0;
  private chunks: Buffer[] | undefined = [];
  private file: FileHandle | undefined;

  constructor(
    readonly spillPath: string,
    private readonly memoryLimit: number,
  ) {
    super();
  }

  /** The whole DATA when it stayed in memory; undefined when it is in `spillPath`. */
  get held(): Buffer[] | undefined {
    return this.chunks;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.chunks && this.bytes <= this.memoryLimit) {
      this.chunks.push(chunk);
      return cb();
    }
    this.spill(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    const file = this.file;
    this.file = undefined;
    if (!file) return cb();
    file.close().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const file = this.file;
    this.file = undefined;
    if (!file) return cb(err);
    file.close().then(
      () => cb(err),
      () => cb(err),
    );
  }

  private async spill(chunk: Buffer): Promise<void> {
    if (!this.file) {
      this.file = await open(this.spillPath, "wx", 0o600);
      const held = this.chunks ?? [];
      this.chunks = undefined;
      await writeAll(this.file, held.length > 0 ? Buffer.concat([...held, chunk]) : chunk);
      return;
    }
    await writeAll(this.file, chunk);
  }
}

async function writeAll(fh: FileHandle, b: Buffer): Promise<void> {
  let off = 0;
  while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
}
