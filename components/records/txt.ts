// TXT record content in RFC 1035 presentation form, exactly as Cloudflare stores it:
// one or more quoted character-strings of at most 255 bytes each, separated by one space.

/** RFC 1035 3.3: a character-string is a length octet and at most 255 octets of data. */
export const MAX_CHARACTER_STRING_BYTES = 255;

/**
 * Quote a TXT value: split its UTF-8 bytes into character-strings of at most 255 bytes
 * (RFC 1035 3.3.14), never inside a UTF-8 sequence, escape `"` and `\` and control octets
 * (RFC 1035 5.1), and join the strings with exactly one space. The limit counts the stored
 * octets, so an escape never straddles two strings. Consumers concatenate the strings without
 * a separator (RFC 7208 3.3, RFC 6376 3.6.2.2, RFC 7489 6.6.3).
 */
export function txtContent(value: string): string {
  if (value.length === 0) return '""';
  return splitUtf8(value, MAX_CHARACTER_STRING_BYTES)
    .map((chunk) => `"${escapeCharacterString(chunk)}"`)
    .join(" ");
}

/**
 * The inverse of `txtContent`: the value a receiver sees after concatenating the strings.
 * Accepts only quoted character-strings separated by whitespace.
 */
export function parseTxtContent(content: string): string {
  return Buffer.concat(parseCharacterStrings(content)).toString("utf8");
}

/** The individual character-strings of TXT content, as raw octets. */
export function parseCharacterStrings(content: string): Buffer[] {
  const fail = (at: number, why: string): never => {
    throw new Error(`TXT content ${JSON.stringify(content)}: ${why} at offset ${at}; expected "quoted" "strings"`);
  };
  const bytes = Buffer.from(content, "utf8");
  const strings: Buffer[] = [];
  let i = 0;
  const isSpace = (b: number) => b === 0x20 || b === 0x09;
  while (i < bytes.length) {
    if (isSpace(bytes[i])) {
      i++;
      continue;
    }
    if (bytes[i] !== 0x22) fail(i, "text outside quotes");
    i++;
    const out: number[] = [];
    for (;;) {
      if (i >= bytes.length) fail(i, "unterminated string");
      const b = bytes[i];
      if (b === 0x22) {
        i++;
        break;
      }
      if (b === 0x5c) {
        // RFC 1035 5.1: \DDD is a decimal octet, \X is X literally.
        const digits = bytes.subarray(i + 1, i + 4).toString("latin1");
        if (/^\d{3}$/.test(digits)) {
          const octet = Number(digits);
          if (octet > 255) fail(i, `\\${digits} is not an octet`);
          out.push(octet);
          i += 4;
        } else {
          if (i + 1 >= bytes.length) fail(i, "dangling backslash");
          out.push(bytes[i + 1]);
          i += 2;
        }
        continue;
      }
      out.push(b);
      i++;
    }
    if (out.length > MAX_CHARACTER_STRING_BYTES) {
      fail(i, `a string of ${out.length} bytes exceeds ${MAX_CHARACTER_STRING_BYTES}`);
    }
    strings.push(Buffer.from(out));
    if (i < bytes.length && !isSpace(bytes[i])) fail(i, "strings must be separated by a space");
  }
  if (strings.length === 0) fail(0, "no string");
  return strings;
}

function splitUtf8(value: string, maxBytes: number): string[] {
  // ASCII (every record the planner makes): one byte per character.
  if (Buffer.byteLength(value, "utf8") === value.length) {
    const ascii: string[] = [];
    for (let at = 0; at < value.length || ascii.length === 0; at += maxBytes) ascii.push(value.slice(at, at + maxBytes));
    return ascii;
  }
  const chunks: string[] = [];
  let current = "";
  let currentBytes = 0;
  for (const char of value) {
    const size = Buffer.byteLength(char, "utf8");
    if (currentBytes + size > maxBytes) {
      chunks.push(current);
      current = "";
      currentBytes = 0;
    }
    current += char;
    currentBytes += size;
  }
  chunks.push(current);
  return chunks;
}

function escapeCharacterString(chunk: string): string {
  let out = "";
  for (const char of chunk) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === "\\") out += `\\${char}`;
    else if (code < 0x20 || code === 0x7f) out += `\\${String(code).padStart(3, "0")}`;
    else out += char;
  }
  return out;
}
