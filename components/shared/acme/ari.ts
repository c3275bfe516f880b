// ACME Renewal Information (RFC 9773): ask the CA when to renew a certificate.
import * as acme from "acme-client";
import { trustExtraCa } from "./ca-trust";
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
  if (opts.extraCaPem) trustExtraCa(acme.axios, directoryUrl, opts.extraCaPem);
  try {
    const dir = await acme.axios.get(directoryUrl, { responseType: "json" });
    const base = (dir.data as { renewalInfo?: unknown })?.renewalInfo;
    if (typeof base !== "string") return undefined;
    const res = await acme.axios.get(`${base.replace(/\/$/, "")}/${certId}`, { responseType: "json" });
    if (res.status !== 200) {
      opts.onProblem?.(`ARI: ${base} answered HTTP ${res.status} for ${certId}`);
      return undefined;
    }
    const body = res.data as { suggestedWindow?: { start?: string; end?: string }; explanationURL?: string };
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
