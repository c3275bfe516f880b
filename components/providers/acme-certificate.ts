// The life cycle of one ACME certificate as a dynamic provider: check, diff, create, update and
// delete of an AcmeCertificate (components/acme-certificate.ts), as plain async functions over
// plain values. Loaded by the engine's provider host as `mailstack/providers/acme-certificate`,
// so the state holds no path of any checkout.
//
// What the state holds (inputs as the engine checked them, outputs as returned here):
// - inputs: the directory, the account URL and key (secret), the certificate request (public:
//   the certificate key itself is never an input), the names, the DNS-01 settings with their
//   credentials (secret) and the tuning values. The engine hands create and update only these,
//   so what issuing needs has to be here.
// - outputs: the certificate and its facts, the account URL, the settings diff compares; the
//   account key only with revokeOnDelete (delete gets nothing but the outputs, and revoking needs
//   it); never the DNS credentials, which only issuing needs.
import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { issueCertificate, revokeCertificate } from "../shared/acme/issue";
import { CloudflareDns01Solver } from "../shared/acme/cloudflare-dns01-solver";
import { Rfc2136Dns01Solver } from "../shared/acme/rfc2136-dns01-solver";
import { fetchRenewalInfo } from "../shared/acme/ari";
import { renewalDecision, checkRenewBeforeFraction, DEFAULT_RENEW_BEFORE_FRACTION } from "../shared/acme/renewal-decision";
import { checkCertificateNames, sameNames } from "../shared/acme/certificate-names";
import { readCertificateRequest } from "../shared/acme/certificate-request";
import { checkCaPem } from "../shared/acme/ca-trust";
import { TSIG_ALGORITHMS, type TsigAlgorithm } from "../shared/acme/tsig";
import type { ChallengeSolver } from "../shared/acme/challenge-solver";
import { checkAccountKey, checkDirectoryUrl } from "./acme-account";
import { Checks, containsUnknown, isUnknown, mayDiffer, plainProperties, type CheckFailure } from "./engine-values";
import { providerLog } from "./provider-log";

export type Dns01Config =
  | { provider: "cloudflare"; apiToken: string; baseUrl?: string }
  | {
      provider: "rfc2136";
      server: string;
      port?: number;
      zone?: string;
      tsigName: string;
      tsigAlgorithm: TsigAlgorithm;
      tsigSecret: string;
    };

/** The inputs of an AcmeCertificate as the engine hands them to the provider (all known). */
export interface CertificateInputs {
  directoryUrl: string;
  /** the account (AcmeAccount's accountUrl) that orders, and its key */
  accountUrl: string;
  accountKeyPem: string;
  /** PKCS#10 request for `names` made from the stable certificate key (@pulumi/tls CertRequest) */
  csrPem: string;
  names: string[];
  dns01: Dns01Config;
  /** bound on waiting for the TXT at the zone's authoritative servers; default 120 */
  propagationTimeoutSeconds?: number;
  /** resolvers used to find the authoritative servers ("ip" or "ip:port"); default: the system's */
  propagationResolvers?: string[];
  extraCaPem?: string;
  revokeOnDelete?: boolean;
  /** default 1/3 */
  renewBeforeFraction?: number;
  /** acme-client polling backoff; small values for tests */
  backoffMinMs?: number;
}

export interface CertificateOutputs {
  directoryUrl: string;
  accountUrl: string;
  /** only with revokeOnDelete: delete revokes with it */
  accountKeyPem?: string;
  extraCaPem?: string;
  revokeOnDelete?: boolean;
  renewBeforeFraction?: number;
  names: string[];
  /** leaf first, then intermediates */
  certificatePem: string;
  notBefore: string;
  notAfter: string;
  issuer: string;
  serialHex: string;
  /** SHA-256 (hex) of the certificate key's SPKI: DANE TLSA 3 1 1, and key-change detection */
  spkiSha256: string;
  /** why the current certificate was issued */
  issueReason: string;
}

/** What the serialised provider loads this file by (package.json "exports"). */
export const PROVIDER_MODULE = "mailstack/providers/acme-certificate";

function checkDns01(c: Checks, d: unknown): void {
  if (containsUnknown(d) && (isUnknown(d) || isUnknown((d as { provider?: unknown }).provider))) return;
  const dns01 = d as Partial<Record<string, unknown>> | undefined;
  if (!dns01 || (dns01.provider !== "cloudflare" && dns01.provider !== "rfc2136")) {
    c.fail("dns01", `dns01.provider: "${String(dns01?.provider)}" is not one of cloudflare|rfc2136`);
    return;
  }
  const required = (key: string, why: string) =>
    c.known("dns01", dns01[key], (v) => {
      if (!v) throw new Error(`dns01.${key}: required for provider ${String(dns01.provider)}${why}`);
    });
  if (dns01.provider === "cloudflare") {
    required("apiToken", "");
    return;
  }
  required("server", " (address of the primary)");
  required("tsigName", "");
  required("tsigSecret", " (base64)");
  c.known("dns01", dns01.tsigAlgorithm, (v) => {
    if (!TSIG_ALGORITHMS.includes(v as TsigAlgorithm))
      throw new Error(`dns01.tsigAlgorithm: "${String(v)}" is not one of ${TSIG_ALGORITHMS.join("|")}`);
  });
}

/** Check failures of the known inputs; an unknown input (a preview) is never a failure. */
export async function checkCertificateInputs(i: Record<string, unknown>): Promise<CheckFailure[]> {
  const c = new Checks();
  c.known("names", i.names, (v) => checkCertificateNames((v ?? []) as string[]));
  c.known("directoryUrl", i.directoryUrl, (v) => checkDirectoryUrl(v));
  c.known("accountUrl", i.accountUrl, (v) => checkDirectoryUrl(v, "accountUrl"));
  c.known("accountKeyPem", i.accountKeyPem, (v) => checkAccountKey(v));
  if (!containsUnknown(i.csrPem)) {
    try {
      const request = await readCertificateRequest(String(i.csrPem));
      // The names are compared once both are known.
      if (!containsUnknown(i.names) && Array.isArray(i.names) && !sameNames(request.names, i.names as string[])) {
        throw new Error(`csrPem: asks for ${request.names.join(", ")}, but names are ${(i.names as string[]).join(", ")}`);
      }
    } catch (err) {
      c.fail("csrPem", (err as Error).message);
    }
  }
  c.known("renewBeforeFraction", i.renewBeforeFraction, (v) => {
    if (v !== undefined) checkRenewBeforeFraction(v as number);
  });
  c.known("propagationTimeoutSeconds", i.propagationTimeoutSeconds, (v) => {
    if (v !== undefined && !((v as number) > 0 && (v as number) <= 3600))
      throw new Error(`propagationTimeoutSeconds: ${String(v)} must be 1-3600`);
  });
  c.known("extraCaPem", i.extraCaPem, (v) => {
    if (v !== undefined) checkCaPem(String(v));
  });
  checkDns01(c, i.dns01);
  return c.failures;
}

export function solverFor(i: CertificateInputs): ChallengeSolver {
  const propagation = {
    timeoutMs: (i.propagationTimeoutSeconds ?? 120) * 1000,
    resolvers: i.propagationResolvers,
    intervalMs: i.backoffMinMs !== undefined ? Math.max(50, i.backoffMinMs) : undefined,
  };
  const d = i.dns01;
  if (d.provider === "cloudflare") return new CloudflareDns01Solver({ apiToken: d.apiToken, baseUrl: d.baseUrl, propagation });
  return new Rfc2136Dns01Solver({
    server: d.server,
    port: d.port,
    zone: d.zone,
    tsig: { name: d.tsigName, algorithm: d.tsigAlgorithm, secretB64: d.tsigSecret },
    propagation,
  });
}

/** The settings kept in the outputs, and the account key only where delete needs it. */
function settingsOf(
  i: CertificateInputs,
): Pick<CertificateOutputs, "directoryUrl" | "accountUrl" | "accountKeyPem" | "extraCaPem" | "revokeOnDelete" | "renewBeforeFraction"> {
  return {
    directoryUrl: i.directoryUrl,
    accountUrl: i.accountUrl,
    ...(i.revokeOnDelete ? { accountKeyPem: i.accountKeyPem, revokeOnDelete: true } : {}),
    ...(i.extraCaPem !== undefined ? { extraCaPem: i.extraCaPem } : {}),
    ...(i.renewBeforeFraction !== undefined ? { renewBeforeFraction: i.renewBeforeFraction } : {}),
  };
}

async function issue(i: CertificateInputs, reason: string, replaces?: string): Promise<CertificateOutputs> {
  const cert = await issueCertificate({
    directoryUrl: i.directoryUrl,
    accountUrl: i.accountUrl,
    accountKeyPem: i.accountKeyPem,
    extraCaPem: i.extraCaPem,
    names: i.names,
    csrPem: i.csrPem,
    solver: solverFor(i),
    replaces,
    backoff: i.backoffMinMs !== undefined ? { minMs: i.backoffMinMs, maxMs: i.backoffMinMs * 5, attempts: 20 } : undefined,
  });
  return {
    ...settingsOf(i),
    names: i.names,
    certificatePem: cert.certificatePem,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    issuer: cert.issuer,
    serialHex: cert.serialHex,
    spkiSha256: cert.spkiSha256,
    issueReason: reason,
  };
}

async function knownInputs(raw: Record<string, unknown>): Promise<CertificateInputs> {
  const i = plainProperties(raw);
  const failures = await checkCertificateInputs(i);
  if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
  if (containsUnknown(i)) throw new Error("AcmeCertificate: an input is still unknown; issuing needs every input known");
  return i as unknown as CertificateInputs;
}

export async function createCertificate(raw: Record<string, unknown>): Promise<{ id: string; outs: CertificateOutputs }> {
  const i = await knownInputs(raw);
  const outs = await issue(i, "new certificate");
  return { id: `${i.names[0]}-${randomBytes(4).toString("hex")}`, outs };
}

export interface CertificatePlan {
  /** re-issue the certificate (or may have to, when an input is not known yet) */
  reissue: boolean;
  /** a different CA: a new resource */
  replace: boolean;
  /** the state changes (a re-issue or a setting) */
  changes: boolean;
  /** the inputs driving the change, for the engine's diff */
  properties: string[];
  reason: string;
  /** RFC 9773 5: the ARI ID of the certificate being replaced, when the CA offers ARI */
  replacesCertId?: string;
}

/**
 * Decide what an update would do, from the old outputs and the new inputs. Asks the CA for ARI
 * when it offers renewalInfo. An input not known yet (a preview) counts as the change it may be.
 */
export async function planCertificate(
  oldsRaw: Record<string, unknown>,
  newsRaw: Record<string, unknown>,
  now = new Date(),
): Promise<CertificatePlan> {
  const olds = plainProperties(oldsRaw) as unknown as CertificateOutputs;
  const news = plainProperties(newsRaw);
  if (mayDiffer(olds.directoryUrl, news.directoryUrl)) {
    return {
      reissue: true,
      replace: true,
      changes: true,
      properties: ["directoryUrl"],
      reason: isUnknown(news.directoryUrl)
        ? "the ACME directory is not known yet and may change (a new resource)"
        : `the ACME directory changed (${olds.directoryUrl} -> ${String(news.directoryUrl)})`,
    };
  }
  const properties: string[] = [];
  const pending: string[] = [];
  if (containsUnknown(news.names)) pending.push("names");
  else if (!sameNames(olds.names, news.names as string[])) properties.push("names");
  let wantedSpki: string | undefined;
  if (containsUnknown(news.csrPem)) pending.push("csrPem");
  else {
    try {
      wantedSpki = (await readCertificateRequest(String(news.csrPem))).spkiSha256;
    } catch {
      wantedSpki = undefined;
    }
    if (wantedSpki !== olds.spkiSha256) properties.push("csrPem");
  }
  let decision: { renew: boolean; reason: string } = { renew: false, reason: "" };
  let ariCertId: string | undefined;
  if (containsUnknown(news.renewBeforeFraction)) pending.push("renewBeforeFraction");
  else {
    const ari = containsUnknown(news.extraCaPem)
      ? undefined
      : await fetchRenewalInfo(olds.directoryUrl, olds.certificatePem, { extraCaPem: news.extraCaPem as string | undefined });
    ariCertId = ari?.certId;
    decision = renewalDecision({
      now,
      notBefore: new Date(olds.notBefore),
      notAfter: new Date(olds.notAfter),
      currentNames: olds.names,
      wantedNames: pending.includes("names") ? olds.names : (news.names as string[]),
      currentSpkiSha256: olds.spkiSha256,
      wantedSpkiSha256: wantedSpki,
      renewBeforeFraction: (news.renewBeforeFraction as number | undefined) ?? DEFAULT_RENEW_BEFORE_FRACTION,
      ariWindow: ari?.window,
      ariSeed: ari?.certId,
    });
  }
  if (decision.renew && properties.length === 0) properties.push("renewal");
  // Settings that change the state without a new certificate. The DNS-01 settings are not kept:
  // they only matter to the next issuance, which gets them from the inputs.
  // revokeOnDelete false is kept as absent; the account key is kept (and compared) only with it.
  const revoke = (v: unknown) => (v === undefined || v === null ? false : v);
  const settings = [
    ...(["accountUrl", "extraCaPem", "renewBeforeFraction"] as const).filter((k) => !pending.includes(k) && mayDiffer(olds[k], news[k])),
    ...(mayDiffer(revoke(olds.revokeOnDelete), revoke(news.revokeOnDelete)) ? ["revokeOnDelete"] : []),
    ...(olds.revokeOnDelete && news.revokeOnDelete !== false && mayDiffer(olds.accountKeyPem, news.accountKeyPem) ? ["accountKeyPem"] : []),
  ];
  // Moving to this provider: the old state's serialised provider loaded the logic from a path of
  // the checkout that created it; an update writes this provider into the outputs (delete uses those).
  const legacyProvider = typeof oldsRaw.__provider === "string" && !oldsRaw.__provider.includes(PROVIDER_MODULE);
  const reasons = [
    ...(pending.length ? [`${pending.join(", ")} not known yet: the certificate is re-issued if they change`] : []),
    ...(decision.renew || !pending.length ? [decision.reason] : []),
    ...(legacyProvider ? ["the state moves to the path-free provider"] : []),
  ].filter(Boolean);
  return {
    reissue: decision.renew || pending.length > 0,
    replace: false,
    changes: decision.renew || pending.length > 0 || settings.length > 0 || legacyProvider,
    properties: [...new Set([...properties, ...pending, ...settings])],
    reason: reasons.join("; "),
    replacesCertId: decision.renew ? ariCertId : undefined,
  };
}

export async function updateCertificate(
  oldsRaw: Record<string, unknown>,
  newsRaw: Record<string, unknown>,
  now = new Date(),
): Promise<CertificateOutputs> {
  const olds = plainProperties(oldsRaw) as unknown as CertificateOutputs;
  const news = await knownInputs(newsRaw);
  const plan = await planCertificate(oldsRaw, newsRaw, now);
  if (plan.reissue) return issue(news, plan.reason, plan.replacesCertId);
  // Same certificate: only the settings (a new account URL, revokeOnDelete, ...) change.
  return {
    ...settingsOf(news),
    names: olds.names,
    certificatePem: olds.certificatePem,
    notBefore: olds.notBefore,
    notAfter: olds.notAfter,
    issuer: olds.issuer,
    serialHex: olds.serialHex,
    spkiSha256: olds.spkiSha256,
    issueReason: olds.issueReason,
  };
}

export async function deleteCertificate(propsRaw: Record<string, unknown>): Promise<void> {
  const p = plainProperties(propsRaw) as unknown as CertificateOutputs;
  if (!p.revokeOnDelete || !p.accountKeyPem) return;
  if (new Date(p.notAfter).getTime() <= Date.now()) return; // expired: nothing to revoke
  await revokeCertificate({
    directoryUrl: p.directoryUrl,
    accountKeyPem: p.accountKeyPem,
    accountUrl: p.accountUrl,
    extraCaPem: p.extraCaPem,
    certificatePem: p.certificatePem,
    reason: 5, // RFC 5280 5.3.1 cessationOfOperation
  });
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: await checkCertificateInputs(plainProperties(news)) };
  },
  async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    const plan = await planCertificate(olds, news);
    if (plan.changes)
      providerLog("info", `AcmeCertificate ${plan.replace ? "replace" : plan.reissue ? "re-issue" : "update"}: ${plan.reason}`);
    return { changes: plan.changes, replaces: plan.replace ? plan.properties : [], deleteBeforeReplace: false };
  },
  async create(inputs: Record<string, unknown>) {
    return createCertificate(inputs);
  },
  async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { outs: await updateCertificate(olds, news) };
  },
  async delete(_id: string, props: Record<string, unknown>) {
    await deleteCertificate(props);
  },
};
