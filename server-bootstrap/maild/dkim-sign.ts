// DKIM signing of outgoing mail (RFC 6376), with every key of the sender's domain: the RSA and the
// Ed25519 key together (RFC 8463 section 5 dual signing), so receivers that know Ed25519 use it and
// the others still find an RSA signature they can check.
//
// Why not mailauth's signer: it builds h= only from header fields present in the message and has
// no way to list a field one more time than it occurs. That extra listing ("oversigning",
// RFC 6376 8.15) is what stops anyone from adding a second From: (or Subject:) below ours and
// having the signature still verify; receivers pick the bottom-most instance of each listed field.
// The canonicalization code is short and is checked in tests against mailauth's verifier,
// dkimpy's `dkimverify` and opendkim.
import { createHash, createPrivateKey, sign, type KeyObject } from "node:crypto";

export interface DkimSigningKey {
  /** d= : the signing domain (the From: domain, for DMARC alignment) */
  domain: string;
  selector: string;
  /** PEM (PKCS#8 or PKCS#1) */
  privateKeyPem: string;
}

/**
 * Header fields signed when present, bottom-most instance first as RFC 6376 5.4.2 orders them.
 * The ones in OVERSIGNED are listed once more than they occur, so none can be added later
 * (RFC 6376 8.15); a missing one is then listed once, which forbids adding it at all.
 */
const SIGNED = [
  "from",
  "reply-to",
  "subject",
  "date",
  "to",
  "cc",
  "message-id",
  "in-reply-to",
  "references",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
  "content-disposition",
  "content-language",
  "sender",
  "list-id",
  "list-unsubscribe",
  "list-unsubscribe-post",
  "list-post",
  "list-help",
  "list-subscribe",
  "list-owner",
  "list-archive",
  "autocrypt",
  "openpgp",
  "resent-date",
  "resent-from",
  "resent-to",
  "resent-cc",
  "resent-message-id",
  "feedback-id",
];
const OVERSIGNED = new Set(["from", "reply-to", "subject", "date", "to", "cc", "message-id", "mime-version", "content-type"]);

/** Splits a message at the first empty line; the header keeps its final CRLF. */
export function splitMessage(message: Buffer): { header: string; body: Buffer } {
  const end = message.indexOf("\r\n\r\n");
  if (end < 0)
    return {
      header: message.toString("latin1") + (message.length > 0 && !message.toString("latin1").endsWith("\r\n") ? "\r\n" : ""),
      body: Buffer.alloc(0),
    };
  return { header: message.subarray(0, end + 2).toString("latin1"), body: message.subarray(end + 4) };
}

/** Header fields in order, each with its folding kept and its final CRLF. */
export function headerFields(header: string): { name: string; raw: string }[] {
  const fields: { name: string; raw: string }[] = [];
  for (const line of header.split(/(?<=\r\n)/)) {
    if (line === "") continue;
    if ((line.startsWith(" ") || line.startsWith("\t")) && fields.length > 0) {
      fields[fields.length - 1].raw += line;
      continue;
    }
    const colon = line.indexOf(":");
    fields.push({ name: (colon > 0 ? line.slice(0, colon) : line).trim().toLowerCase(), raw: line });
  }
  return fields;
}

/** RFC 6376 3.4.2 relaxed header canonicalization of one field (no CRLF added). */
export function relaxedHeader(raw: string): string {
  const colon = raw.indexOf(":");
  const name = raw.slice(0, colon).trim().toLowerCase();
  const value = raw
    .slice(colon + 1)
    .replace(/\r\n(?=[ \t])/g, "") // unfold
    .replace(/\r\n$/, "")
    .replace(/[ \t]+/g, " ")
    .trim();
  return `${name}:${value}`;
}

/** RFC 6376 3.4.4 relaxed body canonicalization. */
export function relaxedBody(body: Buffer): Buffer {
  const lines = body.toString("latin1").split("\r\n");
  // A body that ends in CRLF splits into a last empty element: it is the end of the last line.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((l) => l.replace(/[ \t]+/g, " ").replace(/ $/, ""));
  while (out.length > 0 && out[out.length - 1] === "") out.pop();
  return Buffer.from(out.length === 0 ? "" : out.join("\r\n") + "\r\n", "latin1");
}

function keyAlgorithm(key: KeyObject): "rsa" | "ed25519" {
  const t = key.asymmetricKeyType;
  if (t === "rsa" || t === "ed25519") return t;
  throw new Error(`DKIM key type ${t} is not rsa or ed25519`);
}

/**
 * Folds `tag=value` items into a header value of lines under 78 characters. h= may break after
 * any colon (RFC 6376 3.5 allows FWS there), so its names are pieces of their own.
 */
function foldTags(prefix: string, tags: string[]): string {
  const pieces = tags.flatMap((tag, i) => {
    const end = i === tags.length - 1 ? "" : ";";
    if (!tag.startsWith("h=")) return [tag + end];
    const names = tag.split(":");
    return names.map((n, j) => (j === names.length - 1 ? n + end : `${n}:`));
  });
  let out = prefix;
  let lineLength = prefix.length;
  for (const [i, piece] of pieces.entries()) {
    const glued = i > 0 && pieces[i - 1].endsWith(":");
    if (lineLength + 1 + piece.length > 76) {
      out += `\r\n\t${piece}`;
      lineLength = 1 + piece.length;
    } else {
      out += glued ? piece : ` ${piece}`;
      lineLength += (glued ? 0 : 1) + piece.length;
    }
  }
  return out;
}

/** Breaks a long base64 value into folded lines (whitespace in b= and bh= is ignored, 3.5). */
function foldBase64(value: string, first: number): string {
  const parts: string[] = [value.slice(0, first)];
  for (let i = first; i < value.length; i += 72) parts.push(value.slice(i, i + 72));
  return parts.filter((p) => p.length > 0).join("\r\n\t");
}

export interface SignOptions {
  /** seconds since the epoch for t=; default now */
  time?: number;
}

/**
 * Returns the DKIM-Signature header fields (each ending in CRLF) to put on top of `message`,
 * one per key, in the order given. Throws if the message has no From: (RFC 6376 5.4).
 */
export function dkimSignatures(message: Buffer, keys: DkimSigningKey[], opts: SignOptions = {}): string {
  const { header, body } = splitMessage(message);
  const fields = headerFields(header);
  if (!fields.some((f) => f.name === "from")) throw new Error("cannot DKIM-sign a message without a From: header field");

  // h= and the signed header data, bottom-most instance of each name first (RFC 6376 5.4.2).
  const names: string[] = [];
  const data: string[] = [];
  for (const name of SIGNED) {
    const instances = fields.filter((f) => f.name === name).reverse();
    for (const f of instances) {
      names.push(name);
      data.push(relaxedHeader(f.raw) + "\r\n");
    }
    // A listed name with no instance left contributes nothing to the hash (5.4.2).
    if (OVERSIGNED.has(name)) names.push(name);
  }
  const bodyHash = createHash("sha256").update(relaxedBody(body)).digest("base64");
  const time = opts.time ?? Math.floor(Date.now() / 1000);

  let out = "";
  for (const k of keys) {
    const key = createPrivateKey(k.privateKeyPem);
    const alg = keyAlgorithm(key);
    const a = alg === "rsa" ? "rsa-sha256" : "ed25519-sha256";
    const tags = [
      `v=1`,
      `a=${a}`,
      `c=relaxed/relaxed`,
      `d=${k.domain}`,
      `s=${k.selector}`,
      `t=${time}`,
      `h=${names.join(":")}`,
      `bh=${bodyHash}`,
      `b=`,
    ];
    const unsigned = foldTags("DKIM-Signature:", tags);
    const signedData = Buffer.from(data.join("") + relaxedHeader(unsigned), "latin1");
    // RFC 8463 3: Ed25519 signs the SHA-256 hash of the data with PureEdDSA.
    const signature = alg === "rsa" ? sign("sha256", signedData, key) : sign(null, createHash("sha256").update(signedData).digest(), key);
    const b64 = signature.toString("base64");
    const lastLine = unsigned.slice(unsigned.lastIndexOf("\n") + 1);
    out += unsigned + foldBase64(b64, Math.max(0, 76 - lastLine.length)) + "\r\n";
  }
  return out;
}
