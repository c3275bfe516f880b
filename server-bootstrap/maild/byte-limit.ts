// Stops writing a message to disk once it is over the size limit (RFC 1870): the rest of an
// oversized DATA is read from the socket and dropped, so a client cannot fill the disk.
import { Transform, type TransformCallback } from "node:stream";

export class ByteLimit extends Transform {
  bytes = 0;
  exceeded = false;

  constructor(private readonly max: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) {
      this.exceeded = true;
      return cb();
    }
    cb(null, chunk);
  }
}
