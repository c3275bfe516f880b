// The header section of DATA (RFC 5322 2.1: every line up to the first empty one), read as it
// streams past, before anything else buffers it: its size against the cap, and the trace fields
// loop detection needs (RFC 5321 6.3 Received count, RFC 9228 Delivered-To), and From (the author
// domain our DMARC reports name, RFC 7489 3.1). Past the cap nothing
// more is passed on, so neither the checks downstream nor the spool file hold an oversized header
// section; the caller refuses the message (552 5.3.4) once the client has sent all of it, the only
// moment SMTP allows a reply to DATA.
import { Transform, type TransformCallback } from "node:stream";

/** Delivered-To values kept for the loop check; a message with more is refused for its hops anyway. */
const MAX_DELIVERED_TO = 200;

export class HeaderSection extends Transform {
  /** bytes of the header section seen so far (its empty line included once seen) */
  bytes = 0;
  /** the empty line that ends the header section has been seen */
  complete = false;
  /** the header section is larger than the cap: from there on nothing was passed on */
  exceeded = false;
  /** Received fields (RFC 5321 4.4: one per hop) */
  hops = 0;
  /** Delivered-To addresses, lowercased, in order */
  readonly deliveredTo: string[] = [];
  /** the values of the From fields (two at most: more than one is already more than DMARC can use) */
  readonly from: string[] = [];
  /** a line whose CRLF has not arrived yet */
  private partial = "";
  /** the field being read (its continuation lines may follow) */
  private field = "";

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.exceeded) return cb();
    if (this.complete) return cb(null, chunk);
    // A chunk that ends no line only lengthens the pending one: appended without a search, so a
    // long line costs no more than its bytes (the cap bounds it).
    const endsLine = chunk.includes("\r\n") || (chunk[0] === 0x0a && this.partial.endsWith("\r"));
    if (!endsLine) {
      this.partial += chunk.toString("latin1");
      return this.count(chunk.length, chunk, cb);
    }
    // latin1 maps each byte to one code unit, so string offsets are byte offsets
    const text = this.partial + chunk.toString("latin1");
    let pos = 0;
    for (;;) {
      const eol = text.indexOf("\r\n", pos);
      if (eol === -1) break;
      const line = text.slice(pos, eol);
      pos = eol + 2;
      if (line === "") {
        this.endField();
        this.complete = true;
        break;
      }
      if (line.startsWith(" ") || line.startsWith("\t")) this.field += line;
      else {
        this.endField();
        this.field = line;
      }
    }
    const consumed = pos - this.partial.length;
    this.partial = this.complete ? "" : text.slice(pos);
    this.count(this.complete ? consumed : chunk.length, chunk, cb);
  }

  private count(bytes: number, chunk: Buffer, cb: TransformCallback): void {
    this.bytes += bytes;
    if (this.bytes > this.maxBytes) {
      this.exceeded = true;
      this.partial = "";
      this.field = "";
      return cb();
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    // a message that ends inside its header section (no body): its last field still counts
    if (!this.complete && !this.exceeded) {
      const last = this.partial;
      if (last.startsWith(" ") || last.startsWith("\t")) this.field += last;
      else if (last !== "") {
        this.endField();
        this.field = last;
      }
      this.endField();
    }
    cb();
  }

  private endField(): void {
    const f = this.field;
    this.field = "";
    if (f === "") return;
    const colon = f.indexOf(":");
    if (colon <= 0) return;
    const name = f.slice(0, colon).trim().toLowerCase();
    if (name === "received") this.hops++;
    else if (name === "delivered-to" && this.deliveredTo.length < MAX_DELIVERED_TO) {
      const address = deliveredToAddress(f.slice(colon + 1));
      if (address) this.deliveredTo.push(address);
    } else if (name === "from" && this.from.length < 2) this.from.push(f.slice(colon + 1));
  }
}

/** The address of a Delivered-To value (RFC 9228 4: an addr-spec; some writers add <> or comments). */
export function deliveredToAddress(value: string): string | undefined {
  const v = value
    .replace(/\([^()]*\)/g, " ")
    .trim()
    .replace(/^<(.*)>$/, "$1")
    .trim()
    .toLowerCase();
  return /^[^\s<>@]+@[^\s<>@]+$/.test(v) ? v : undefined;
}
