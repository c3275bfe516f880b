// SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489/9989) and ARC (RFC 8617) verification of a
// received message with mailauth. Our part is the policy: which verdict refuses the message.
// The SMTP listener taps the DATA as it arrives (`authenticateStream`), so DKIM hashing runs
// while the message is received, not after it by reading it back.
import { createReadStream } from "node:fs";
import { PassThrough, Transform, type Readable, type TransformCallback } from "node:stream";
import { isIP } from "node:net";
import { authenticate, type DNSResolver } from "mailauth";

// mailauth's SPF evaluator on its own (the package has no exports map; index.d.ts omits it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { spf: evaluateSpf } = require("mailauth/lib/spf") as { spf: (opts: Record<string, unknown>) => Promise<unknown> };

export interface AuthVerdict {
  /** Received-SPF and Authentication-Results fields, each ending in CRLF */
  headers: string;
  spf: string;
  dkim: string[];
  dmarc: string;
  arc: string;
  /** the domain SPF evaluated (the MAIL FROM domain, or the HELO name for the null sender) */
  spfDomain?: string;
  /** lowercase d= of every DKIM signature that verified */
  dkimPassDomains: string[];
  /** set when the message must be refused: RFC 7489 6.6.2 / 10.3 (reject in SMTP) */
  reject?: { code: number; message: string };
}

export interface AuthContext {
  clientIp: string;
  helo: string;
  /** MAIL FROM, "" for the null sender */
  sender: string;
  hostname: string;
  resolver: DNSResolver;
}

export interface AuthInput extends AuthContext {
  path: string;
}

/** DNS errors that are answers (no such name, no such record), as final as a record would be. */
const NEGATIVE_ANSWERS = new Set(["ENOTFOUND", "ENODATA"]);

/**
 * A resolver for one SMTP transaction that asks each question once: the SPF check started at MAIL
 * FROM (`prefetchSpf`) and the verification after DATA share the answers. Failures other than
 * negative answers are not kept, so a later lookup asks again, as it would without this.
 */
export function transactionResolver(base: DNSResolver): DNSResolver {
  const answers = new Map<string, Promise<string[][] | string[]>>();
  return (name, rrtype) => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const known = answers.get(key);
    if (known) return known;
    const answer = base(name, rrtype);
    answers.set(key, answer);
    answer.catch((e: NodeJS.ErrnoException) => {
      if (!NEGATIVE_ANSWERS.has(e.code ?? "")) answers.delete(key);
    });
    return answer;
  };
}

/**
 * Starts SPF (RFC 7208) as soon as MAIL FROM gives the sender, so its DNS answers are in `ctx.resolver`
 * (a transactionResolver) when the message has been received. The result itself is not used: the
 * verification after DATA evaluates SPF again, from those answers.
 */
export function prefetchSpf(ctx: AuthContext): void {
  let helo = ctx.helo || ctx.clientIp;
  if (isIP(helo)) helo = `[${helo}]`;
  evaluateSpf({ ip: ctx.clientIp, helo, sender: ctx.sender, mta: ctx.hostname, resolver: ctx.resolver }).catch(() => undefined);
}

/** Verifies a message stored in a file. */
export function authenticateMessage(input: AuthInput): Promise<AuthVerdict> {
  return verify(createReadStream(input.path), input);
}

export interface StreamedAuth {
  /** a pass-through to put in the DATA pipeline: what flows through it is what gets verified */
  tap: Transform;
  /** settles after the tap has ended; never rejects unawaited (a refused message may ignore it) */
  verdict: Promise<AuthVerdict>;
}

/** Verifies the message that flows through `tap`, while it flows. */
export function authenticateStream(ctx: AuthContext): StreamedAuth {
  // The buffer lets mailauth lag behind the socket a little without slowing it down.
  const feed = new PassThrough({ highWaterMark: 256 * 1024 });
  let settled = false;
  const verdict = verify(feed, ctx).finally(() => {
    settled = true;
    // mailauth stopped reading (done or failed): a writer waiting for it must not wait forever
    feed.emit("drain");
  });
  verdict.catch(() => undefined);
  const tap = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      if (settled || feed.write(chunk)) return cb(null, chunk);
      feed.once("drain", () => cb(null, chunk));
    },
    flush(cb: TransformCallback) {
      feed.end();
      cb();
    },
    destroy(err: Error | null, cb: (err: Error | null) => void) {
      feed.destroy(err ?? new Error("DATA aborted"));
      cb(err);
    },
  });
  return { tap, verdict };
}

async function verify(message: Readable, input: AuthContext): Promise<AuthVerdict> {
  const res = await authenticate(message, {
    ip: input.clientIp,
    helo: input.helo,
    sender: input.sender,
    mta: input.hostname,
    resolver: input.resolver,
    disableBimi: true,
    // trust nothing the message says about where it came from
    trustReceived: false,
  });
  const dmarc = res.dmarc ? res.dmarc.status.result : "none";
  const verdict: AuthVerdict = {
    headers: res.headers,
    spf: res.spf ? res.spf.status.result : "none",
    dkim: (res.dkim.results ?? []).map((r) => r.status.result),
    dmarc,
    arc: res.arc ? res.arc.status.result : "none",
    ...(res.spf && typeof (res.spf as { domain?: unknown }).domain === "string"
      ? { spfDomain: (res.spf as { domain: string }).domain }
      : {}),
    dkimPassDomains: (res.dkim.results ?? [])
      .filter((r) => r.status.result === "pass" && typeof r.signingDomain === "string")
      .map((r) => (r.signingDomain as string).toLowerCase()),
  };
  // The policy mailauth reports already reflects pct/t=y testing and sp/np for subdomains.
  if (res.dmarc && dmarc === "fail" && res.dmarc.policy === "reject") {
    verdict.reject = {
      code: 550,
      message: `5.7.1 Message refused: DMARC policy of ${res.dmarc.status.header?.from ?? res.dmarc.domain} is reject and the message fails DMARC`,
    };
  }
  return verdict;
}
