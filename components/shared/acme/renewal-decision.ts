// When to re-issue a certificate: pure decisions, so `pulumi preview`, the Pulumi provider's diff
// and the keeper on the box all decide the same way, and say why.
import { createHash } from "node:crypto";
import { sameNames } from "./certificate-names";

/** Default: renew when a third or less of the lifetime remains (90 d -> 30 d left, 6 d -> 2 d left). */
export const DEFAULT_RENEW_BEFORE_FRACTION = 1 / 3;

/** RFC 9773 4.2: the CA's suggested renewal window. */
export interface RenewalWindow {
  start: Date;
  end: Date;
}

export interface RenewalInput {
  now: Date;
  notBefore: Date;
  notAfter: Date;
  /** names on the current certificate */
  currentNames: readonly string[];
  /** names wanted now */
  wantedNames: readonly string[];
  /** SHA-256 of the current certificate's SPKI and of the wanted key (both hex); a difference re-issues */
  currentSpkiSha256?: string;
  wantedSpkiSha256?: string;
  /** fraction of the lifetime that may remain before renewal; default 1/3 */
  renewBeforeFraction?: number;
  /** ARI window from the CA, when it offers renewalInfo */
  ariWindow?: RenewalWindow;
  /** stable per-certificate seed for the point inside the ARI window (e.g. the ARI cert ID) */
  ariSeed?: string;
}

export interface RenewalDecision {
  renew: boolean;
  /** one line for the preview / logs: why (not) */
  reason: string;
  /** when renewal becomes due (absent when due now for a reason other than time) */
  renewAt?: Date;
}

const DAY = 86_400_000;

function days(ms: number): string {
  const d = ms / DAY;
  return d >= 2 ? `${Math.round(d)} days` : `${Math.round(ms / 3_600_000)} hours`;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A point inside the ARI window, fixed for a given seed: RFC 9773 4.2 asks for a random point to
 * spread load; deriving it from the certificate keeps previews stable from one run to the next.
 */
export function pointInWindow(w: RenewalWindow, seed: string): Date {
  const span = Math.max(0, w.end.getTime() - w.start.getTime());
  const frac = createHash("sha256").update(seed).digest().readUInt32BE(0) / 2 ** 32;
  return new Date(w.start.getTime() + Math.floor(frac * span));
}

/** The renewal time from the lifetime rule alone. */
export function renewalTime(notBefore: Date, notAfter: Date, fraction = DEFAULT_RENEW_BEFORE_FRACTION): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime * fraction);
}

export function checkRenewBeforeFraction(f: number, where = "renewBeforeFraction"): void {
  if (!(typeof f === "number" && f > 0 && f < 1))
    throw new Error(`${where}: ${f} must be a number between 0 and 1 (e.g. 0.333 for a third)`);
}

export function renewalDecision(input: RenewalInput): RenewalDecision {
  const fraction = input.renewBeforeFraction ?? DEFAULT_RENEW_BEFORE_FRACTION;
  checkRenewBeforeFraction(fraction);
  if (!sameNames(input.currentNames, input.wantedNames)) {
    const cur = new Set(input.currentNames.map((n) => n.toLowerCase()));
    const want = new Set(input.wantedNames.map((n) => n.toLowerCase()));
    const added = [...want].filter((n) => !cur.has(n));
    const removed = [...cur].filter((n) => !want.has(n));
    const parts = [...added.map((n) => `+${n}`), ...removed.map((n) => `-${n}`)];
    return { renew: true, reason: `names changed (${parts.join(", ")})` };
  }
  if (input.currentSpkiSha256 && input.wantedSpkiSha256 && input.currentSpkiSha256 !== input.wantedSpkiSha256) {
    return { renew: true, reason: "the certificate key changed" };
  }
  const now = input.now.getTime();
  if (now >= input.notAfter.getTime()) {
    return { renew: true, reason: `expired on ${iso(input.notAfter)}`, renewAt: input.notAfter };
  }
  const lifetime = input.notAfter.getTime() - input.notBefore.getTime();
  if (input.ariWindow) {
    const at = pointInWindow(input.ariWindow, input.ariSeed ?? iso(input.notAfter));
    const window = `${iso(input.ariWindow.start)} .. ${iso(input.ariWindow.end)}`;
    if (now >= at.getTime()) {
      return { renew: true, reason: `the CA's renewal window (ARI, RFC 9773) is ${window}; chosen time ${iso(at)} has come`, renewAt: at };
    }
    return {
      renew: false,
      reason: `valid until ${iso(input.notAfter)}; the CA's renewal window (ARI) is ${window}, renewal at ${iso(at)}`,
      renewAt: at,
    };
  }
  const at = renewalTime(input.notBefore, input.notAfter, fraction);
  const share = fraction === DEFAULT_RENEW_BEFORE_FRACTION ? "a third" : `${Math.round(fraction * 100)}%`;
  if (now >= at.getTime()) {
    return {
      renew: true,
      reason: `${share} or less of the ${days(lifetime)} lifetime remains (${days(input.notAfter.getTime() - now)} left, expires ${iso(input.notAfter)})`,
      renewAt: at,
    };
  }
  return {
    renew: false,
    reason: `valid until ${iso(input.notAfter)}; renewal due from ${iso(at)} (${share} of the lifetime left)`,
    renewAt: at,
  };
}

/** Never replace a certificate with one that expires earlier (the box may hold a newer one). */
export function isNewerCertificate(candidate: { notAfter: Date }, installed: { notAfter: Date } | undefined): boolean {
  return installed === undefined || candidate.notAfter.getTime() > installed.notAfter.getTime();
}
