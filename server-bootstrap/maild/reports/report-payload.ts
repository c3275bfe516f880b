// The report inside a report message: the one attachment (or the whole body) holding a DMARC
// aggregate report (RFC 7489 7.2.1.1: XML, gzip or zip) or a TLSRPT report (RFC 8460 5.3: JSON,
// gzip), found by its media type or, for application/octet-stream, by its first bytes, then
// decompressed within limits. The MIME structure is split by @zone-eu/mailsplit (Zone's splitter,
// the one mailparser uses); gzip by zlib with maxOutputLength; zip by yauzl, which refuses an entry
// that inflates beyond its declared size (yauzl README "validateEntrySizes").
// Limits as mox applies them (dmarcrpt/parse.go): a zip holds exactly one file; the decompressed
// report is capped (20 MB there, smaller here: a day of reports from one receiver is far less).
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import type * as Mailsplit from "@zone-eu/mailsplit";
import type * as Yauzl from "yauzl";

// The MIME splitter (with libmime and its charset tables) and the zip reader are loaded with the
// first report, not at maild's start: most of the time no report is being read, and together with
// mailauth's MTA-STS parser (outbound/mta-sts.ts) they were about 3 MiB of an idle maild's heap.
let libraries: { Splitter: typeof Mailsplit.Splitter; yauzl: typeof Yauzl } | undefined;
function reportLibraries(): NonNullable<typeof libraries> {
  libraries ??= {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Splitter: (require("@zone-eu/mailsplit") as typeof Mailsplit).Splitter,
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    yauzl: require("yauzl") as typeof Yauzl,
  };
  return libraries;
}

const gunzipAsync = promisify(gunzip);

export const REPORT_LIMITS = {
  /** MIME parts in one message; a report has two or three */
  maxParts: 64,
  /** bytes of one decoded attachment (still compressed) */
  maxAttachmentBytes: 8 * 1024 * 1024,
  /** bytes of the report once decompressed */
  maxReportBytes: 10 * 1024 * 1024,
};

export type ReportLimits = typeof REPORT_LIMITS;

/** The message is not a report we can read; `reason` says why, for the log and the metrics. */
export class ReportRefused extends Error {
  constructor(
    readonly reason: "no-report" | "malformed" | "too-large" | "unsafe" | "not-ours",
    message: string,
  ) {
    super(message);
    this.name = "ReportRefused";
  }
}

export interface ReportPayload {
  /** which format the content is: by media type, else by its first character */
  format: "dmarc" | "tlsrpt";
  /** the decompressed report */
  content: Buffer;
  /** the part's media type and file name as sent, for the log */
  contentType: string;
  filename?: string;
}

const GZIP_TYPES = new Set(["application/gzip", "application/x-gzip", "application/tlsrpt+gzip"]);
const ZIP_TYPES = new Set(["application/zip", "application/x-zip-compressed", "application/x-zip"]);
const PLAIN_TYPES = new Set(["text/xml", "application/xml", "application/tlsrpt+json", "application/json"]);

interface Part {
  contentType: string;
  filename?: string;
  decoded: Buffer[];
  size: number;
}

/** Splits a message and decodes the parts that could hold a report (by media type). */
async function candidateParts(message: Buffer, limits: ReportLimits): Promise<Part[]> {
  const parts: Part[] = [];
  const splitter = new (reportLibraries().Splitter)({ maxChildNodes: limits.maxParts, ignoreEmbedded: true });
  const pending: Promise<void>[] = [];
  let current: { part: Part; decoder: NodeJS.ReadWriteStream } | undefined;
  let tooLarge = false;
  const finish = () => {
    if (current) current.decoder.end();
    current = undefined;
  };
  await new Promise<void>((resolve, reject) => {
    splitter.on("data", (chunk) => {
      if (chunk.type === "node") {
        finish();
        const type = (chunk.contentType || "text/plain").toLowerCase();
        if (chunk.multipart) return;
        if (!GZIP_TYPES.has(type) && !ZIP_TYPES.has(type) && !PLAIN_TYPES.has(type) && type !== "application/octet-stream") return;
        const part: Part = { contentType: type, decoded: [], size: 0, ...(chunk.filename ? { filename: chunk.filename } : {}) };
        const decoder = chunk.getDecoder();
        decoder.on("data", (d: Buffer) => {
          part.size += d.length;
          if (part.size > limits.maxAttachmentBytes) tooLarge = true;
          else part.decoded.push(d);
        });
        pending.push(new Promise((res, rej) => decoder.on("end", res).on("error", rej)));
        parts.push(part);
        current = { part, decoder };
      } else if (chunk.type === "body" && current) {
        current.decoder.write(chunk.value);
      }
    });
    // mailsplit's typings declare only "data"; the splitter is a Transform and emits these too
    const events = splitter as unknown as NodeJS.EventEmitter;
    events.on("end", () => {
      finish();
      resolve();
    });
    events.on("error", reject);
    splitter.end(message);
  }).catch((e: Error) => {
    throw new ReportRefused("malformed", `the message's MIME structure cannot be read: ${e.message}`);
  });
  await Promise.all(pending);
  if (tooLarge) throw new ReportRefused("too-large", `an attachment is larger than ${limits.maxAttachmentBytes} bytes`);
  return parts;
}

function sniff(content: Buffer): "gzip" | "zip" | "xml" | "json" | undefined {
  if (content[0] === 0x1f && content[1] === 0x8b) return "gzip";
  if (content.subarray(0, 4).equals(Buffer.from("PK\x03\x04", "latin1"))) return "zip";
  const text = content
    .subarray(0, 64)
    .toString("utf8")
    .replace(/^\uFEFF/, "")
    .trimStart();
  if (text.startsWith("<")) return "xml";
  if (text.startsWith("{")) return "json";
  return undefined;
}

async function gunzipLimited(data: Buffer, limits: ReportLimits): Promise<Buffer> {
  try {
    return await gunzipAsync(data, { maxOutputLength: limits.maxReportBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
      throw new ReportRefused("too-large", `the gzip content inflates beyond ${limits.maxReportBytes} bytes`);
    throw new ReportRefused("malformed", `the gzip content cannot be read: ${(e as Error).message}`);
  }
}

async function unzipLimited(data: Buffer, limits: ReportLimits): Promise<Buffer> {
  const zip = await new Promise<Yauzl.ZipFile>((resolve, reject) =>
    reportLibraries().yauzl.fromBuffer(data, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false }, (err, z) =>
      err || !z ? reject(new ReportRefused("malformed", `the zip content cannot be read: ${err?.message ?? "no zip file"}`)) : resolve(z),
    ),
  );
  try {
    // mox dmarcrpt/parse.go: a report zip holds exactly one file
    if (zip.entryCount !== 1)
      throw new ReportRefused("malformed", `the zip holds ${zip.entryCount} entries; a report zip holds exactly one`);
    const entry = await new Promise<Yauzl.Entry>((resolve, reject) => {
      zip.once("entry", resolve).once("error", reject);
      zip.readEntry();
    }).catch((e: Error) => {
      throw e instanceof ReportRefused ? e : new ReportRefused("malformed", `the zip content cannot be read: ${e.message}`);
    });
    // The declared size first; yauzl then refuses to inflate beyond it (validateEntrySizes).
    if (entry.uncompressedSize > limits.maxReportBytes)
      throw new ReportRefused("too-large", `the zip entry declares ${entry.uncompressedSize} bytes, over ${limits.maxReportBytes}`);
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
      zip.openReadStream(entry, (err, s) => (err || !s ? reject(err ?? new Error("no stream")) : resolve(s))),
    ).catch((e: Error) => {
      throw new ReportRefused("malformed", `the zip entry cannot be read: ${e.message}`);
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limits.maxReportBytes)
        throw new ReportRefused("too-large", `the zip entry inflates beyond ${limits.maxReportBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } catch (e) {
    if (e instanceof ReportRefused) throw e;
    const message = (e as Error).message;
    // yauzl: "too many bytes in the stream. expected N. got at least M" (validateEntrySizes)
    if (/too many bytes/.test(message)) throw new ReportRefused("too-large", `the zip entry inflates beyond its declared size: ${message}`);
    throw new ReportRefused("malformed", `the zip content cannot be read: ${message}`);
  } finally {
    zip.close();
  }
}

/**
 * The report a message carries, decompressed. Throws ReportRefused when there is none, when it is
 * too large (before or after decompression) or when its container cannot be read.
 */
export async function extractReport(message: Buffer, limits: ReportLimits = REPORT_LIMITS): Promise<ReportPayload> {
  const parts = await candidateParts(message, limits);
  const problems: string[] = [];
  for (const part of parts) {
    const data = Buffer.concat(part.decoded);
    const container = GZIP_TYPES.has(part.contentType) ? "gzip" : ZIP_TYPES.has(part.contentType) ? "zip" : sniff(data);
    let content: Buffer;
    if (container === "gzip") content = await gunzipLimited(data, limits);
    else if (container === "zip") content = await unzipLimited(data, limits);
    else if (container === "xml" || container === "json") {
      if (data.length > limits.maxReportBytes)
        throw new ReportRefused("too-large", `the report is larger than ${limits.maxReportBytes} bytes`);
      content = data;
    } else {
      problems.push(`${part.contentType}${part.filename ? ` ${part.filename}` : ""}: neither gzip, zip, XML nor JSON`);
      continue;
    }
    const inner = sniff(content);
    const format = part.contentType.startsWith("application/tlsrpt") || inner === "json" ? "tlsrpt" : inner === "xml" ? "dmarc" : undefined;
    if (format === undefined) {
      problems.push(`${part.contentType}: the content is neither XML nor JSON`);
      continue;
    }
    return { format, content, contentType: part.contentType, ...(part.filename ? { filename: part.filename } : {}) };
  }
  throw new ReportRefused("no-report", problems.length > 0 ? problems.join("; ") : "the message has no report attachment");
}
