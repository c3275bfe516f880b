// The life cycle of one ACME certificate as a Pulumi dynamic resource: check, create, diff,
// update, delete, as plain async functions over plain values (no Pulumi engine needed to test).
// components/acme-certificate.ts wires them into pulumi.dynamic.
import { issueCertificate, revokeCertificate, acmeClient, ensureAccount } from "./shared/acme/issue";
import { CloudflareDns01Solver } from "./shared/acme/cloudflare-dns01-solver";
import { Rfc2136Dns01Solver } from "./shared/acme/rfc2136-dns01-solver";
import { fetchRenewalInfo } from "./shared/acme/ari";
import { renewalDecision, checkRenewBeforeFraction, DEFAULT_RENEW_BEFORE_FRACTION } from "./shared/acme/renewal-decision";
import { checkCertificateNames, sameNames } from "./shared/acme/certificate-names";
import { spkiSha256OfKey } from "./shared/acme/certificate-info";
import { TSIG_ALGORITHMS, type TsigAlgorithm } from "./shared/acme/tsig";
import type { ChallengeSolver } from "./shared/acme/challenge-solver";
import { randomBytes } from "node:crypto";

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

/** Resolved inputs of an AcmeCertificate (what the engine hands the provider). */
export interface CertificateInputs {
  directoryUrl: string;
  email?: string;
  accountKeyPem: string;
  certificateKeyPem: string;
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

/** State kept by the engine. No certificate key and no DNS credentials are stored. */
export interface CertificateOutputs {
  directoryUrl: string;
  email?: string;
  /** kept (secret) so that delete can revoke with the account that ordered */
  accountKeyPem: string;
  extraCaPem?: string;
  revokeOnDelete?: boolean;
  renewBeforeFraction?: number;
  names: string[];
  accountUrl: string;
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

export interface CheckFailure {
  property: string;
  reason: string;
}

/** Pulumi secrets arrive unwrapped when the provider does not accept secrets; tolerate both. */
function plain<T>(v: T): T {
  const sig = "4dabf18193072939515e22adb298388d";
  if (v && typeof v === "object" && sig in (v as object)) return (v as unknown as { value: T }).value;
  return v;
}

export function normalizeInputs(raw: Record<string, unknown>): CertificateInputs {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith("__")) continue;
    const p = plain(v);
    out[k] =
      p && typeof p === "object" && !Array.isArray(p)
        ? Object.fromEntries(Object.entries(p as object).map(([kk, vv]) => [kk, plain(vv)]))
        : Array.isArray(p)
          ? p.map(plain)
          : p;
  }
  return out as unknown as CertificateInputs;
}

export function checkInputs(i: CertificateInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (property: string, reason: string) => failures.push({ property, reason });
  const guard = (property: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      fail(property, (err as Error).message);
    }
  };
  guard("names", () => checkCertificateNames(i.names ?? []));
  if (typeof i.directoryUrl !== "string" || !/^https:\/\//.test(i.directoryUrl))
    fail("directoryUrl", `directoryUrl: "${i.directoryUrl}" must be an https URL of an ACME directory`);
  if (typeof i.accountKeyPem !== "string" || !/PRIVATE KEY-----/.test(i.accountKeyPem))
    fail("accountKeyPem", "accountKeyPem: must be a PEM private key");
  guard("certificateKeyPem", () => spkiSha256OfKey(i.certificateKeyPem));
  if (i.email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(i.email)) fail("email", `email: "${i.email}" is not an email address`);
  if (i.renewBeforeFraction !== undefined) guard("renewBeforeFraction", () => checkRenewBeforeFraction(i.renewBeforeFraction!));
  if (i.propagationTimeoutSeconds !== undefined && !(i.propagationTimeoutSeconds > 0 && i.propagationTimeoutSeconds <= 3600)) {
    fail("propagationTimeoutSeconds", `propagationTimeoutSeconds: ${i.propagationTimeoutSeconds} must be 1-3600`);
  }
  const d = i.dns01 as Dns01Config | undefined;
  if (!d || (d.provider !== "cloudflare" && d.provider !== "rfc2136")) {
    fail("dns01", `dns01.provider: "${(d as { provider?: string } | undefined)?.provider}" is not one of cloudflare|rfc2136`);
  } else if (d.provider === "cloudflare") {
    if (!d.apiToken) fail("dns01", "dns01.apiToken: required for provider cloudflare");
  } else {
    if (!d.server) fail("dns01", "dns01.server: required for provider rfc2136 (address of the primary)");
    if (!d.tsigName) fail("dns01", "dns01.tsigName: required for provider rfc2136");
    if (!TSIG_ALGORITHMS.includes(d.tsigAlgorithm))
      fail("dns01", `dns01.tsigAlgorithm: "${d.tsigAlgorithm}" is not one of ${TSIG_ALGORITHMS.join("|")}`);
    if (!d.tsigSecret) fail("dns01", "dns01.tsigSecret: required for provider rfc2136 (base64)");
  }
  return failures;
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

async function issue(i: CertificateInputs, reason: string, replaces?: string): Promise<CertificateOutputs> {
  const cert = await issueCertificate({
    directoryUrl: i.directoryUrl,
    accountKeyPem: i.accountKeyPem,
    email: i.email,
    extraCaPem: i.extraCaPem,
    names: i.names,
    certificateKeyPem: i.certificateKeyPem,
    solver: solverFor(i),
    replaces,
    backoff: i.backoffMinMs !== undefined ? { minMs: i.backoffMinMs, maxMs: i.backoffMinMs * 5, attempts: 20 } : undefined,
  });
  return {
    directoryUrl: i.directoryUrl,
    email: i.email,
    accountKeyPem: i.accountKeyPem,
    extraCaPem: i.extraCaPem,
    revokeOnDelete: i.revokeOnDelete,
    renewBeforeFraction: i.renewBeforeFraction,
    names: i.names,
    accountUrl: cert.accountUrl,
    certificatePem: cert.certificatePem,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    issuer: cert.issuer,
    serialHex: cert.serialHex,
    spkiSha256: cert.spkiSha256,
    issueReason: reason,
  };
}

export async function createCertificate(raw: Record<string, unknown>): Promise<{ id: string; outs: CertificateOutputs }> {
  const i = normalizeInputs(raw);
  const failures = checkInputs(i);
  if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
  const outs = await issue(i, "new certificate");
  return { id: `${i.names[0]}-${randomBytes(4).toString("hex")}`, outs };
}

export interface CertificatePlan {
  /** re-issue the certificate */
  reissue: boolean;
  /** a different CA: a new resource (replacement) */
  replace: boolean;
  /** something else in the state changes (e.g. email, account key) */
  changes: boolean;
  /** input names driving the change, for the engine's diff */
  properties: string[];
  reason: string;
  /** RFC 9773 5: the ARI ID of the certificate being replaced, when the CA offers ARI */
  replacesCertId?: string;
}

/** Decide what an update would do; asks the CA for ARI when it offers renewalInfo. */
export async function planCertificate(
  oldsRaw: Record<string, unknown>,
  newsRaw: Record<string, unknown>,
  now = new Date(),
): Promise<CertificatePlan> {
  const olds = normalizeInputs(oldsRaw) as unknown as CertificateOutputs;
  const news = normalizeInputs(newsRaw);
  if (olds.directoryUrl !== news.directoryUrl) {
    return {
      reissue: true,
      replace: true,
      changes: true,
      properties: ["directoryUrl"],
      reason: `the ACME directory changed (${olds.directoryUrl} -> ${news.directoryUrl})`,
    };
  }
  const ari = await fetchRenewalInfo(news.directoryUrl, olds.certificatePem, { extraCaPem: news.extraCaPem });
  let wantedSpki: string | undefined;
  try {
    wantedSpki = spkiSha256OfKey(news.certificateKeyPem);
  } catch {
    wantedSpki = undefined;
  }
  const decision = renewalDecision({
    now,
    notBefore: new Date(olds.notBefore),
    notAfter: new Date(olds.notAfter),
    currentNames: olds.names,
    wantedNames: news.names,
    currentSpkiSha256: olds.spkiSha256,
    wantedSpkiSha256: wantedSpki,
    renewBeforeFraction: news.renewBeforeFraction ?? DEFAULT_RENEW_BEFORE_FRACTION,
    ariWindow: ari?.window,
    ariSeed: ari?.certId,
  });
  const properties: string[] = [];
  if (!sameNames(olds.names, news.names)) properties.push("names");
  if (wantedSpki !== olds.spkiSha256) properties.push("certificateKeyPem");
  if (decision.renew && properties.length === 0) properties.push("renewal");
  const other = (["email", "accountKeyPem", "extraCaPem", "revokeOnDelete", "renewBeforeFraction"] as const).filter(
    (k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null),
  );
  return {
    reissue: decision.renew,
    replace: false,
    changes: decision.renew || other.length > 0,
    properties: [...properties, ...other],
    reason: decision.reason,
    replacesCertId: decision.renew ? ari?.certId : undefined,
  };
}

export async function updateCertificate(
  oldsRaw: Record<string, unknown>,
  newsRaw: Record<string, unknown>,
  now = new Date(),
): Promise<CertificateOutputs> {
  const olds = normalizeInputs(oldsRaw) as unknown as CertificateOutputs;
  const news = normalizeInputs(newsRaw);
  const failures = checkInputs(news);
  if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
  const plan = await planCertificate(oldsRaw, newsRaw, now);
  if (plan.reissue) return issue(news, plan.reason, plan.replacesCertId);
  // Same certificate; refresh the account (a new account key or email) and the settings.
  let accountUrl = olds.accountUrl;
  if (olds.accountKeyPem !== news.accountKeyPem || olds.email !== news.email) {
    const client = acmeClient({
      directoryUrl: news.directoryUrl,
      accountKeyPem: news.accountKeyPem,
      email: news.email,
      extraCaPem: news.extraCaPem,
    });
    accountUrl = await ensureAccount(client, { directoryUrl: news.directoryUrl, accountKeyPem: news.accountKeyPem, email: news.email });
  }
  return {
    ...olds,
    directoryUrl: news.directoryUrl,
    email: news.email,
    accountKeyPem: news.accountKeyPem,
    extraCaPem: news.extraCaPem,
    revokeOnDelete: news.revokeOnDelete,
    renewBeforeFraction: news.renewBeforeFraction,
    accountUrl,
  };
}

export async function deleteCertificate(propsRaw: Record<string, unknown>): Promise<void> {
  const p = normalizeInputs(propsRaw) as unknown as CertificateOutputs;
  if (!p.revokeOnDelete) return;
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
