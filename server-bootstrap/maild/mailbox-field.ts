// Strict reading of an address field that must hold exactly one mailbox (From:, Sender: of
// submitted mail): RFC 5322 3.4 `mailbox` = name-addr / addr-spec, with comments and folding
// where 3.2.2 allows them, UTF-8 where RFC 6532 allows it, and nothing else. Lenient parsers
// (nodemailer's addressparser) read `<alice@ours> <ceo@bank.example>` as alice and let the rest
// through to the recipient's screen; a signer must know exactly which address it vouches for.

export type MailboxParse = { ok: true; address: string; local: string; domain: string } | { ok: false; reason: string };

// RFC 5322 3.2.3 atext, plus the octets of UTF-8 (RFC 6532 3.2), which arrive here as latin1 code units.
const ATEXT = /[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u00ff]/;
// RFC 5322 3.4.1 dtext: printable ASCII but [ ] \
const DTEXT = /[\x21-\x5a\x5e-\x7e\u0080-\u00ff]/;
// RFC 5322 3.2.4 qtext: printable ASCII but " and \
const QTEXT = /[\x21\x23-\x5b\x5d-\x7e\u0080-\u00ff]/;

class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? "";
  }
}

class ParseError extends Error {}

/** RFC 5322 3.2.2 CFWS: spaces, tabs and (nested) comments with quoted-pairs. */
function skipCfws(c: Cursor): void {
  for (;;) {
    const ch = c.peek();
    if (ch === " " || ch === "\t") c.i++;
    else if (ch === "(") skipComment(c);
    else return;
  }
}

function skipComment(c: Cursor): void {
  let depth = 0;
  do {
    const ch = c.peek();
    if (ch === "") throw new ParseError("a comment is not closed");
    if (ch === "\\") c.i += 2;
    else {
      if (ch === "(") depth++;
      else if (ch === ")") depth--;
      c.i++;
    }
  } while (depth > 0);
}

/** RFC 5322 3.2.3 dot-atom-text, or undefined (cursor unmoved) if none starts here. */
function dotAtomText(c: Cursor): string | undefined {
  const start = c.i;
  for (;;) {
    const atomStart = c.i;
    while (ATEXT.test(c.peek())) c.i++;
    if (c.i === atomStart) {
      c.i = start;
      return undefined;
    }
    if (c.peek() !== "." || !ATEXT.test(c.s[c.i + 1] ?? "")) return c.s.slice(start, c.i);
    c.i++;
  }
}

/** RFC 5322 3.2.4 quoted-string (the cursor on its opening quote); returns its content, quoted-pairs resolved. */
function quotedString(c: Cursor): string {
  c.i++;
  let out = "";
  for (;;) {
    const ch = c.peek();
    if (ch === "") throw new ParseError("a quoted string is not closed");
    if (ch === '"') {
      c.i++;
      return out;
    }
    if (ch === "\\") {
      const next = c.s[c.i + 1] ?? "";
      if (next === "") throw new ParseError("a quoted string is not closed");
      out += next;
      c.i += 2;
    } else if (QTEXT.test(ch) || ch === " " || ch === "\t") {
      out += ch;
      c.i++;
    } else throw new ParseError(`character ${JSON.stringify(ch)} is not allowed in a quoted string`);
  }
}

/** A local part as it must be written: dot-atom when it can be, quoted otherwise (RFC 5321 4.1.2). */
export function canonicalLocalPart(content: string): string {
  const c = new Cursor(content);
  if (dotAtomText(c) !== undefined && c.done) return content;
  return `"${content.replace(/(["\\])/g, "\\$1")}"`;
}

/** RFC 5322 3.4.1 addr-spec, without CFWS inside (obs-local-part and obs-domain are refused). */
function addrSpec(c: Cursor): { local: string; domain: string } | undefined {
  const start = c.i;
  let local: string | undefined;
  if (c.peek() === '"') local = canonicalLocalPart(quotedString(c));
  else local = dotAtomText(c);
  if (local === undefined || c.peek() !== "@") {
    c.i = start;
    return undefined;
  }
  c.i++;
  let domain: string | undefined;
  if (c.peek() === "[") {
    const open = c.i;
    c.i++;
    while (DTEXT.test(c.peek())) c.i++;
    if (c.peek() !== "]") throw new ParseError("a domain literal is not closed");
    c.i++;
    domain = c.s.slice(open, c.i);
  } else domain = dotAtomText(c);
  if (domain === undefined) throw new ParseError("the address has no domain after @");
  return { local, domain };
}

/** RFC 5322 3.2.5 phrase (display-name), with obs-phrase's periods: words until `<`. */
function skipDisplayName(c: Cursor): void {
  let words = 0;
  for (;;) {
    skipCfws(c);
    const ch = c.peek();
    if (ch === '"') quotedString(c);
    else if (ch === "." && words > 0) c.i++;
    else if (ATEXT.test(ch)) while (ATEXT.test(c.peek())) c.i++;
    else return;
    words++;
  }
}

/**
 * Parses a field value (after the colon, folded or not) that must be exactly one mailbox:
 * `addr-spec` or `[display-name] <addr-spec>`, surrounded by CFWS, and nothing left over.
 */
export function parseMailboxField(value: string): MailboxParse {
  // RFC 5322 3.2.2: unfolding is removing each CRLF that is followed by WSP.
  const c = new Cursor(value.replace(/\r\n(?=[ \t])/g, ""));
  try {
    skipCfws(c);
    let spec = addrSpec(c);
    if (spec) {
      skipCfws(c);
      if (!c.done) {
        // `alice@example.org <...>` is not a display name: an addr-spec cannot be followed by anything
        return { ok: false, reason: `unexpected ${JSON.stringify(c.s.slice(c.i, c.i + 40))} after the address` };
      }
    } else {
      skipDisplayName(c);
      if (c.peek() !== "<") {
        return c.done
          ? { ok: false, reason: "there is no address" }
          : { ok: false, reason: `unexpected ${JSON.stringify(c.s.slice(c.i, c.i + 40))} where an address or display name should be` };
      }
      c.i++;
      spec = addrSpec(c);
      if (!spec) return { ok: false, reason: `${JSON.stringify(c.s.slice(c.i, c.i + 40))} in <...> is not an address` };
      if (c.peek() !== ">") return { ok: false, reason: "the address in <...> is not closed by >" };
      c.i++;
      skipCfws(c);
      if (!c.done) return { ok: false, reason: `unexpected ${JSON.stringify(c.s.slice(c.i, c.i + 40))} after the address` };
    }
    return { ok: true, address: `${spec.local}@${spec.domain}`, local: spec.local, domain: spec.domain };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, reason: e.message };
    throw e;
  }
}
