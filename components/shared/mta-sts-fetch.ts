// Fetching an MTA-STS policy as RFC 8461 3.3 tells a sender to: GET
// https://mta-sts.<domain>/.well-known/mta-sts.txt with SNI for the policy host, a certificate valid
// for that name as a DNS-ID subjectAltName (RFC 6125, no CN fallback), no redirects followed, at
// most 64 KiB, within a time limit. maild's sender (server-bootstrap/maild/outbound/mta-sts.ts)
// refuses any policy that fails this; `mailstack check` (infra/cli/check-mtasts.ts) fetches it
// anyway and reports what a sender would refuse.
import * as https from "node:https";
import type { LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import * as tls from "node:tls";
import { X509Certificate } from "node:crypto";

/** RFC 8461 3.3 suggests 64 KiB as the largest policy a sender need accept. */
export const MAX_POLICY_BYTES = 64 * 1024;

export function policyUrl(domain: string): string {
  return `https://mta-sts.${domain}/.well-known/mta-sts.txt`;
}

/** A certificate as the policy host presented it, and Node's verdict on it under the trust store given. */
export interface PresentedCertificate {
  /** DER, the server's certificate first, then the chain it sent */
  chain: Buffer[];
  authorized: boolean;
  /** OpenSSL's verify code, or ERR_TLS_CERT_ALTNAME_INVALID for a name the certificate does not carry */
  authorizationError?: string;
}

export interface PolicyResponse {
  url: string;
  status?: number;
  contentType?: string;
  body?: string;
  certificate?: PresentedCertificate;
  /** why no complete response was read; `code` is Node's error code, when there is one */
  error?: { message: string; code?: string };
}

export interface PolicyFetchOptions {
  /** PEM certificates trusted for the policy host (RFC 8461 3.3: the Web PKI) */
  ca: string[];
  timeoutMs: number;
  /** resolves mta-sts.<domain> (through the caller's resolvers, not necessarily the system's) */
  lookup: LookupFunction;
  /** 443 except in tests */
  port?: number;
  /**
   * true (a sender): a certificate that fails verification ends the fetch with its error;
   * false (a checker): the policy is read anyway and `certificate` says what was wrong.
   */
  verify: boolean;
}

/** RFC 8461 3.3 / RFC 6125: the name must be a DNS-ID subjectAltName; no CN fallback. */
function checkPolicyHostIdentity(name: string, cert: tls.PeerCertificate): Error | undefined {
  const err = tls.checkServerIdentity(name, cert);
  if (err) return err;
  if (new X509Certificate(cert.raw).checkHost(name, { subject: "never", partialWildcards: false }) === undefined) {
    return Object.assign(new Error(`certificate has no subjectAltName DNS entry for ${name}`), { code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  }
  return undefined;
}

function presented(socket: tls.TLSSocket): PresentedCertificate {
  const chain: Buffer[] = [];
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && !chain.some((c) => c.equals(cert!.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return {
    chain,
    authorized: socket.authorized,
    ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
  };
}

/** Never rejects: a failure is the response's `error`. */
export function fetchMtaStsPolicy(domain: string, opts: PolicyFetchOptions): Promise<PolicyResponse> {
  const host = `mta-sts.${domain}`;
  const url = policyUrl(domain);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<PolicyResponse, "url">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ url, ...r });
    };
    let answered = false;
    const timer = setTimeout(
      () => finish({ error: { message: `${answered ? "no complete answer" : "no response"} within ${opts.timeoutMs} ms` } }),
      opts.timeoutMs,
    );
    const req = https.request(
      {
        host,
        port: opts.port ?? 443,
        path: "/.well-known/mta-sts.txt",
        method: "GET",
        servername: host,
        ca: opts.ca,
        lookup: opts.lookup,
        rejectUnauthorized: opts.verify,
        checkServerIdentity: checkPolicyHostIdentity,
        // a fresh connection: nothing verified under other options is reused
        agent: false,
        headers: { "user-agent": "mailstack (MTA-STS)", accept: "text/plain" },
      },
      (res) => {
        answered = true;
        const certificate = presented(res.socket as tls.TLSSocket);
        const head = { status: res.statusCode, contentType: res.headers["content-type"], certificate };
        const tooLarge = { ...head, error: { message: `the policy is larger than ${MAX_POLICY_BYTES} bytes (RFC 8461 3.3)` } };
        if (Number(res.headers["content-length"] ?? 0) > MAX_POLICY_BYTES) return finish(tooLarge);
        const parts: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_POLICY_BYTES) finish(tooLarge);
          else parts.push(chunk);
        });
        res.on("end", () => finish({ ...head, body: Buffer.concat(parts).toString("utf8") }));
        res.on("error", (err: NodeJS.ErrnoException) => finish({ ...head, error: { message: err.message, code: err.code } }));
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      const refused = err.code === "ECONNREFUSED" ? `connection refused (nothing listens on ${opts.port ?? 443})` : err.message;
      finish({ error: { message: refused, ...(err.code ? { code: err.code } : {}) } });
    });
    req.end();
  });
}

/** A LookupFunction that answers every name with `address` (a caller that resolved the host itself). */
export function fixedAddress(address: string): LookupFunction {
  const family = address.includes(":") ? 6 : 4;
  return ((
    _hostname: string,
    options: { all?: boolean },
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => (options?.all ? callback(null, [{ address, family }]) : callback(null, address, family))) as LookupFunction;
}
