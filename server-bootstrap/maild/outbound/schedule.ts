// When the outbound queue next looks at a message: the retry backoff and the deadlines of a
// message's life (delay notice, expiry). Pure functions over the envelope and the config; the
// queue (queue.ts) only acts on what they say.
import type { OutboundConfig } from "../config";
import type { Envelope } from "./spool";

/**
 * Up to this fraction is taken off each delay at random, so the messages one outage deferred
 * together do not all come back in the same second (and the cap is never exceeded).
 */
export const RETRY_JITTER = 0.1;

type Backoff = Pick<OutboundConfig, "retryBaseSeconds" | "retryMaxSeconds">;

/**
 * Milliseconds to wait after the `attempts`-th attempt (1-based): retryBase * 2^(attempts-1),
 * at most retryMax, less up to RETRY_JITTER of it. RFC 5321 4.5.4.1 asks for at least 30 minutes
 * between retries to one destination; the defaults start at 5 and double (as Postfix does).
 */
export function retryDelayMs(attempts: number, cfg: Backoff, random: () => number = Math.random): number {
  const seconds = Math.min(cfg.retryMaxSeconds, cfg.retryBaseSeconds * 2 ** Math.max(0, attempts - 1));
  return Math.round(seconds * 1000 * (1 - RETRY_JITTER * random()));
}

type Deadlines = Pick<OutboundConfig, "delayNoticeAfterSeconds" | "expireAfterSeconds">;

/** From then on the recipients still pending are failed (RFC 5321 4.5.4.1: give up after 4-5 days). */
export function expiresAt(env: Envelope, cfg: Deadlines): number {
  return env.arrival + cfg.expireAfterSeconds * 1000;
}

/**
 * Whether the sender is told about this message at all: never the null sender (RFC 5321 4.5.5,
 * 6.1), nor one nobody verified (reverse-path.ts).
 */
export function notifiesSender(env: Envelope): boolean {
  return env.sender !== "" && env.notify !== false;
}

/** When the one delay notice is due, or undefined if none is owed (sent, disabled, or no one to tell). */
export function delayNoticeAt(env: Envelope, cfg: Deadlines): number | undefined {
  if (env.delayNoticeSent || !notifiesSender(env) || cfg.delayNoticeAfterSeconds === 0) return undefined;
  if (!env.recipients.some((r) => r.state === "pending")) return undefined;
  return env.arrival + cfg.delayNoticeAfterSeconds * 1000;
}

/** Failed recipients the sender has not been told about yet (never any for a sender not told, above). */
export function unreportedFailures(env: Envelope): Envelope["recipients"] {
  if (!notifiesSender(env)) return [];
  return env.recipients.filter((r) => r.state === "failed" && !r.reported);
}

/** Nothing left to send and nothing left to report: the message may be deleted. */
export function isFinished(env: Envelope): boolean {
  return !env.recipients.some((r) => r.state === "pending") && unreportedFailures(env).length === 0;
}

/**
 * When the queue must next look at this message: the next attempt, expiry, a delay notice coming
 * due, or a notice still owed. `noticeRetryAt` holds a notice back after `bounce` failed. A
 * finished message still there (a crash came between its last record and its removal) is due
 * now, to be removed.
 */
export function nextWake(env: Envelope, cfg: Deadlines, noticeRetryAt = 0): number {
  if (isFinished(env)) return 0;
  let at = Infinity;
  if (env.recipients.some((r) => r.state === "pending")) at = Math.min(env.nextAttempt, expiresAt(env, cfg));
  const delay = delayNoticeAt(env, cfg);
  if (delay !== undefined) at = Math.min(at, Math.max(delay, noticeRetryAt));
  if (unreportedFailures(env).length > 0) at = Math.min(at, noticeRetryAt);
  return at;
}
