// Trace header fields we add on receipt (RFC 5321 4.4 Received, RFC 8601 Authentication-Results)
// and the forged ones we remove.

/** Offset just past the blank line that ends the header section, or undefined if not yet seen. */
export function splitHeader(buf: Buffer): number | undefined {
  if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  const i = buf.indexOf("\r\n\r\n");
  return i === -1 ? undefined : i + 4;
}

export interface ReceivedInfo {
  helo: string;
  clientIp: string;
  /** the client's verified name, if any */
  clientHostname?: string;
  hostname: string;
  /** RFC 3848 protocol: ESMTP, ESMTPS (TLS), ESMTPA/ESMTPSA (authenticated) */
  protocol: string;
  tls?: { version: string; cipher: string };
  id: string;
  date: Date;
}

// Characters a client controls end up in a header field: keep them to printable ASCII without
// the comment delimiters so they cannot break out of the comment or the field.
function clean(s: string): string {
  return s
    .replace(/[^\x21-\x7e]/g, "?")
    .replace(/[()\\]/g, "?")
    .slice(0, 255);
}

/** RFC 5321 4.4 time stamp line, folded, ending in CRLF. */
export function receivedHeader(r: ReceivedInfo): string {
  const ip = r.clientIp.includes(":") ? `IPv6:${r.clientIp}` : r.clientIp;
  const tls = r.tls ? ` (${clean(r.tls.version)} cipher ${clean(r.tls.cipher)})` : "";
  return (
    `Received: from ${clean(r.helo || "unknown")} (${r.clientHostname ? clean(r.clientHostname) + " " : ""}[${ip}])\r\n` +
    `\tby ${r.hostname} (maild) with ${r.protocol}${tls}\r\n` +
    `\tid ${r.id}; ${rfc5322Date(r.date)}\r\n`
  );
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 3.3 date-time in UTC. */
export function rfc5322Date(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/**
 * RFC 8601 5: an Authentication-Results field carrying our own authserv-id that arrives from
 * outside is forged (or a leftover) and must be removed before ours is added. One whose
 * authserv-id cannot be read is removed too: no reader could trust it, and a lenient one might
 * find our name in it.
 */
export function isForgedAuthResults(field: string, ourAuthservId: string): boolean {
  const m = /^authentication-results[ \t]*:/i.exec(field);
  if (!m) return false;
  const id = authservId(field.slice(m[0].length));
  return id === undefined || id.toLowerCase() === ourAuthservId.toLowerCase();
}

// RFC 2045 5.1 tspecials, which end a token (with space and controls)
const TSPECIALS = new Set([...'()<>@,;:\\"/[]?=']);

/**
 * The authserv-id of an Authentication-Results field body (RFC 8601 2.2: after optional CFWS, a
 * RFC 2045 `value`: a token or a quoted-string), or undefined when it is malformed.
 */
export function authservId(body: string): string | undefined {
  const s = body.replace(/\r\n(?=[ \t])/g, "");
  let i = 0;
  // RFC 5322 3.2.2 CFWS: whitespace and comments, which nest and may hold quoted-pairs
  for (;;) {
    if (s[i] === " " || s[i] === "\t") i++;
    else if (s[i] === "(") {
      let depth = 0;
      do {
        if (i >= s.length) return undefined;
        if (s[i] === "\\") i += 2;
        else {
          if (s[i] === "(") depth++;
          else if (s[i] === ")") depth--;
          i++;
        }
      } while (depth > 0);
    } else break;
  }
  if (s[i] === '"') {
    let out = "";
    for (i++; i < s.length; i++) {
      if (s[i] === '"') return out === "" ? undefined : out;
      if (s[i] === "\\") i++;
      if (s[i] === "\r" || s[i] === "\n") return undefined;
      out += s[i] ?? "";
    }
    return undefined;
  }
  const start = i;
  while (i < s.length && s.charCodeAt(i) > 0x20 && s.charCodeAt(i) < 0x7f && !TSPECIALS.has(s[i])) i++;
  return i > start ? s.slice(start, i) : undefined;
}
