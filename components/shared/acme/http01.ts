// HTTP-01 (RFC 8555 8.3): the key authorization served at
// http://<name>/.well-known/acme-challenge/<token>. The store is shared with whatever serves
// port 80 (the daemon on the box, or a test server): the solver writes, the server reads.
import type { Challenge, ChallengeSolver } from "./challenge-solver";

export const HTTP01_PATH_PREFIX = "/.well-known/acme-challenge/";

/** In-memory challenge answers, by token. */
export class Http01Challenges {
  private readonly byToken = new Map<string, string>();

  set(token: string, keyAuthorization: string): void {
    this.byToken.set(token, keyAuthorization);
  }

  get(token: string): string | undefined {
    return this.byToken.get(token);
  }

  delete(token: string): void {
    this.byToken.delete(token);
  }

  get size(): number {
    return this.byToken.size;
  }

  /**
   * The answer for a request path, or undefined: the port-80 server calls this for every request
   * and answers 200 text/plain with the result, or falls through (e.g. to its HTTPS redirect).
   */
  answer(urlPath: string): string | undefined {
    if (!urlPath.startsWith(HTTP01_PATH_PREFIX)) return undefined;
    const token = urlPath.slice(HTTP01_PATH_PREFIX.length).split("?")[0];
    // RFC 8555 8.1: tokens are base64url
    if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
    return this.get(token);
  }
}

export class Http01Solver implements ChallengeSolver {
  readonly type = "http-01" as const;

  constructor(private readonly store: Http01Challenges) {}

  async present(c: Challenge): Promise<void> {
    this.store.set(c.token, c.keyAuthorization);
  }

  async cleanup(c: Challenge): Promise<void> {
    this.store.delete(c.token);
  }
}
