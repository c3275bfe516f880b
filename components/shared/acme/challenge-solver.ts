// One interface for every way of answering an ACME challenge (RFC 8555 8).

export type ChallengeType = "dns-01" | "http-01";

/** What a solver needs to publish (and later remove) one challenge answer. */
export interface Challenge {
  type: ChallengeType;
  /** the identifier being validated, e.g. "mail.example.org" (for a wildcard: without "*.") */
  identifier: string;
  /** the challenge token (RFC 8555 8.1) */
  token: string;
  /** token + "." + account key thumbprint (RFC 8555 8.1) */
  keyAuthorization: string;
  /** dns-01: "_acme-challenge.<identifier>." (RFC 8555 8.4) */
  dnsName: string;
  /** dns-01: the TXT value, base64url(SHA-256(keyAuthorization)) (RFC 8555 8.4) */
  dnsValue: string;
}

export interface ChallengeSolver {
  readonly type: ChallengeType;
  /** publish the answer; may throw (the caller still calls cleanup) */
  present(challenge: Challenge): Promise<void>;
  /** wait until the CA can see the answer; throw a clear error on timeout */
  waitUntilVisible?(challenge: Challenge): Promise<void>;
  /** remove exactly what present() published; always called after present(), even when it failed */
  cleanup(challenge: Challenge): Promise<void>;
}
