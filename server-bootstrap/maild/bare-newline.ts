// SMTP smuggling defence. RFC 5321 2.3.8: lines end in CRLF, and a bare CR or LF must not be
// taken for a line ending. smtp-server already ends DATA only on CRLF.CRLF; what it lets through
// is message content holding bare LF or CR, which a downstream MTA that is more lenient could
// read as `<LF>.<LF>` end-of-data and so accept a second, forged message. Like Postfix's
// `smtpd_forbid_bare_newline`, a message containing any bare CR or LF is refused outright.
import { Transform, type TransformCallback } from "node:stream";

const CR = 0x0d;
const LF = 0x0a;

/** Incremental detector: feed chunks in order; `found` says whether a bare CR or LF was seen. */
export class BareNewlineDetector {
  found: "bare-lf" | "bare-cr" | undefined;
  private pendingCr = false;

  push(chunk: Uint8Array): void {
    if (this.found || chunk.length === 0) return;
    if (this.pendingCr && chunk[0] !== LF) {
      this.found = "bare-cr";
      return;
    }
    if (!this.pendingCr && chunk[0] === LF) {
      this.found = "bare-lf";
      return;
    }
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    for (let i = buf.indexOf(LF, 1); i !== -1; i = buf.indexOf(LF, i + 1)) {
      if (buf[i - 1] !== CR) {
        this.found = "bare-lf";
        return;
      }
    }
    for (let i = buf.indexOf(CR); i !== -1 && i < buf.length - 1; i = buf.indexOf(CR, i + 1)) {
      if (buf[i + 1] !== LF) {
        this.found = "bare-cr";
        return;
      }
    }
    this.pendingCr = buf[buf.length - 1] === CR;
  }

  /** Call at end of data: a CR as the very last byte is bare too. */
  end(): void {
    if (!this.found && this.pendingCr) this.found = "bare-cr";
  }
}

/** Pass-through stream that records bare line endings; the consumer checks `detector.found` at the end. */
export class BareNewlineGuard extends Transform {
  readonly detector = new BareNewlineDetector();

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.detector.push(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.detector.end();
    cb();
  }
}
