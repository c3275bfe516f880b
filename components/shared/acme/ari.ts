// ACME Renewal Information (RFC 9773): ask the CA when to renew a certificate.
//
// Two unauthenticated GETs (the directory, then renewalInfo/<cert ID>: RFC 9773 4), made with
// node:http(s) rather than acme-client's axios: maild asks at every renewal check, and loading
// acme-client (axios, node-forge) for them kept about 6 MiB of heap in a maild that had nothing to
// renew. A test CA's extra trust comes from the same registry (ca-trust.ts agentFor) acme-client's
// requests use.
import * as http from "node:http";
import * as https from "node:https";
import { agentFor, registerExtraCa } from "./ca-trust";
import { ariCertificateId } from "./certificate-info";
import type { RenewalWindow } from "./renewal-decision";

export interface RenewalInfo {
  window: RenewalWindow;
  /** RFC 9773 4.2 */
  explanationUrl?: string;
  /** the certificate ID queried (also the "replaces" value of the next order, RFC 9773 5) */
  certId: string;
}

/**
 * The CA's suggested renewal window for `certificatePem`, or undefined when the CA has no
 * `renewalInfo` in its directory (e.g. pebble before 2.7) or the certificate has no AKI.
 * Errors talking to the CA are returned as undefined too, with `onProblem` told why: ARI only
 * refines the schedule, the lifetime rule still applies without it.
 */
export async function fetchRenewalInfo(
  directoryUrl: string,
  certificatePem: string,
  opts: { extraCaPem?: string; onProblem?: (message: string) => void } = {},
): Promise<RenewalInfo | undefined> {
  const certId = ariCertificateId(certificatePem);
  if (!certId) return undefined;
  if (opts.extraCaPem) registerExtraCa(directoryUrl, opts.extraCaPem);
  try {
    const dir = await getJson(directoryUrl);
    const base = (dir.body as { renewalInfo?: unknown } | null)?.renewalInfo;
    if (typeof base !== "string") return undefined;
    const res = await getJson(`${base.replace(/\/$/, "")}/${certId}`);
    if (res.status !== 200) {
      opts.onProblem?.(`ARI: ${base} answered HTTP ${res.status} for ${certId}`);
      return undefined;
    }
    const body = res.body as { suggestedWindow?: { start?: string; end?: string }; explanationURL?: string };
    const start = new Date(body.suggestedWindow?.start ?? "");
    const end = new Date(body.suggestedWindow?.end ?? "");
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
      opts.onProblem?.(`ARI: ${base} returned no valid suggestedWindow for ${certId}`);
      return undefined;
    }
    return { window: { start, end }, explanationUrl: body.explanationURL, certId };
  } catch (err) {
    opts.onProblem?.(`ARI: asking ${directoryUrl} failed: ${(err as Error).message}`);
    return undefined;
  }
}

/** A CA answers these in well under a second; a hung one must not hold the renewal check. */
const TIMEOUT_MS = 30_000;
/** A directory or a renewalInfo answer is a few hundred bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * GET `url` and parse its JSON body. A status outside 2xx is an error, as it was with axios
 * (acme-client's validateStatus default); redirects are not followed (ACME servers do not send them
 * for these resources, and ARI only refines the schedule).
 */
function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  if (!secure && target.protocol !== "http:") return Promise.reject(new Error(`${url} is not an http(s) URL`));
  return new Promise((resolve, reject) => {
    const agent = secure ? agentFor(url) : undefined;
    const options = {
      headers: { "user-agent": "mailstack (ARI)", accept: "application/json" },
      timeout: TIMEOUT_MS,
      ...(agent ? { agent } : {}),
    };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`${url} answered more than ${MAX_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on("error", reject);
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) return reject(new Error(`${url} answered HTTP ${status}`));
        try {
          resolve({ status, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown });
        } catch {
          reject(new Error(`${url} answered something that is not JSON`));
        }
      });
    };
    const req = secure ? https.get(target, options, onResponse) : http.get(target, options, onResponse);
    req.on("timeout", () => req.destroy(new Error(`${url} did not answer within ${TIMEOUT_MS / 1000} s`)));
    req.on("error", reject);
  });
}
