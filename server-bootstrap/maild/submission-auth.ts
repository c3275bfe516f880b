// SMTP AUTH for submission: the argon2id password check (the same PHC hashes Dovecot uses), on
// its own thread (password-check.ts), behind the login throttle shared with IMAP (login-throttle.ts).
// Unknown accounts cost a check of the same price and get the same answers, so neither the
// replies nor their timing tell which accounts exist.
import { randomBytes } from "node:crypto";
import type { SubmissionConfig, UserConfig } from "./config";
import { counter } from "./metrics";
import { parseArgon2id } from "../../components/shared/argon2id";
import { LoginThrottle } from "./login-throttle";
import { PasswordCheckBusy, PasswordChecker, type Argon2idParams } from "./password-check";

export { clientKey } from "./client-key";

const authResults = counter("maild_submission_auth_total", "SMTP AUTH attempts on submission, by result");

/** A user's hash, as config.ts validated it (components/shared/argon2id.ts), ready to check a password. */
export function readArgon2id(text: string): Argon2idParams {
  const phc = parseArgon2id(text);
  if (!phc || phc.version !== 19) throw new Error("not an argon2id v=19 PHC string");
  return {
    memory: phc.memory,
    passes: phc.passes,
    parallelism: phc.parallelism,
    salt: Buffer.from(phc.salt, "base64"),
    hash: Buffer.from(phc.hash, "base64"),
  };
}

export type AuthOutcome =
  | { ok: true; user: string }
  | { ok: false; reason: "bad-credentials" }
  | { ok: false; reason: "blocked"; retryAfterSeconds: number }
  /** too many checks waiting: try again later */
  | { ok: false; reason: "busy" };

export class SubmissionAuthenticator {
  private readonly dummy: Argon2idParams;

  constructor(
    private readonly users: () => UserConfig[],
    private readonly throttle: LoginThrottle,
    private readonly checker: PasswordChecker = new PasswordChecker(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    // Cost of a check for an unknown account: the same as for the first user's hash.
    this.dummy = { memory: 19456, passes: 2, parallelism: 1, salt: randomBytes(16), hash: randomBytes(32) };
  }

  /** A throttle of its own (tests, a daemon without IMAP), with the given limits and clock. */
  static standalone(users: () => UserConfig[], limits: () => SubmissionConfig, now: () => number = Date.now): SubmissionAuthenticator {
    return new SubmissionAuthenticator(users, new LoginThrottle(limits, now));
  }

  async authenticate(username: string, password: string, ip: string): Promise<AuthOutcome> {
    const account = username.trim().toLowerCase();
    const decision = this.throttle.check(account, ip);
    if (!decision.allow) {
      authResults.inc({ result: "blocked" });
      return { ok: false, reason: "blocked", retryAfterSeconds: decision.retryAfterSeconds };
    }
    if (decision.delayMs > 0) await this.sleep(decision.delayMs);
    const user = this.users().find((u) => u.address === account);
    let ok: boolean;
    try {
      ok = user
        ? await this.checker.verify(password, readArgon2id(user.passwordHash))
        : await this.checker.verify(password, this.dummyLike()).then(() => false);
    } catch (e) {
      if (!(e instanceof PasswordCheckBusy)) throw e;
      authResults.inc({ result: "busy" });
      return { ok: false, reason: "busy" };
    }
    if (ok) {
      authResults.inc({ result: "ok" });
      this.throttle.recordSuccess(account, ip);
      return { ok: true, user: account };
    }
    authResults.inc({ result: "failed" });
    this.throttle.recordFailure(account, ip);
    return { ok: false, reason: "bad-credentials" };
  }

  /** Forgets throttle state that can no longer matter. */
  sweep(): void {
    this.throttle.sweep();
  }

  close(): Promise<void> {
    return this.checker.close();
  }

  /** A hash nobody's password matches, as costly to check as a real user's. */
  private dummyLike(): Argon2idParams {
    const first = this.users()[0];
    if (!first) return this.dummy;
    const p = readArgon2id(first.passwordHash);
    return { ...this.dummy, memory: p.memory, passes: p.passes, parallelism: p.parallelism };
  }
}
