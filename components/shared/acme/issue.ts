// Certificate issuance with acme-client's low-level calls (RFC 8555 7): account, order,
// challenges through one ChallengeSolver, a request for a given stable key, finalize, download.
// Used by the AcmeCertificate Pulumi resource and by the renewal keeper on the box.
//
// Issuance never changes the account: with a known account URL it makes no account request at
// all, and without one it looks the account up (or registers it) but never updates its contact.
// Contact changes are AcmeAccount's, made only when the configured address changed (Let's
// Encrypt ignores contacts since 2025 and plans to drop the update path: letsencrypt/boulder
// #8198, #8208, #8199).
import { createHash } from "node:crypto";
import * as acme from "acme-client";
import type { Challenge, ChallengeSolver } from "./challenge-solver";
import { trustExtraCa } from "./ca-trust";
import { readCertificateInfo, spkiSha256OfKey, type CertificateInfo } from "./certificate-info";
import { checkCertificateNames, sameNames } from "./certificate-names";
import { certificateRequestPem, readCertificateRequest } from "./certificate-request";

export interface Backoff {
  /** attempts while polling an order/authorization; default 10 */
  attempts?: number;
  /** first delay between polls; default 5000 ms (acme-client's), use ~100 ms against pebble */
  minMs?: number;
  /** longest delay between polls; default 30 000 ms */
  maxMs?: number;
}

export interface AcmeAccountOptions {
  /** ACME directory, e.g. acme.directory.letsencrypt.production */
  directoryUrl: string;
  /** PEM of the account key (RSA or ECDSA P-256/P-384) */
  accountKeyPem: string;
  /** known account URL: no account request is made; default: found or registered for the key */
  accountUrl?: string;
  /** contact address (mailto:) used only when the account is registered */
  email?: string;
  /** PEM of an extra CA to trust for the directory's origin only (test CAs such as pebble) */
  extraCaPem?: string;
  backoff?: Backoff;
  /** progress messages (never secrets) */
  log?: (message: string) => void;
}

export interface IssueOptions extends AcmeAccountOptions {
  /** DNS names; the first is the subject CN */
  names: string[];
  /**
   * PEM of the certificate's private key: reused on every renewal so DANE TLSA stays valid. Give
   * this or `csrPem`.
   */
  certificateKeyPem?: string;
  /** a certificate request for `names` made from the stable key (@pulumi/tls CertRequest): the key itself is not needed */
  csrPem?: string;
  solver: ChallengeSolver;
  /** RFC 9773 5: the ARI certificate ID of the certificate this order replaces */
  replaces?: string;
}

export interface IssuedCertificate extends CertificateInfo {
  accountUrl: string;
  /** leaf first, then intermediates (PEM) */
  certificatePem: string;
  /** cleanup failures that did not stop issuance (records that may have been left behind) */
  warnings: string[];
}

function detail(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).replace(/\s+/g, " ").trim();
}

export function acmeClient(opts: AcmeAccountOptions): acme.Client {
  let url: URL;
  try {
    url = new URL(opts.directoryUrl);
  } catch {
    throw new Error(`directoryUrl: "${opts.directoryUrl}" is not a URL (e.g. ${acme.directory.letsencrypt.staging})`);
  }
  if (url.protocol !== "https:") throw new Error(`directoryUrl: "${opts.directoryUrl}" must be https (RFC 8555 6.1)`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(opts.accountKeyPem)) {
    throw new Error("accountKeyPem: not a PEM private key (use tls.PrivateKey's privateKeyPem)");
  }
  if (opts.extraCaPem) trustExtraCa(acme.axios, opts.directoryUrl, opts.extraCaPem);
  return new acme.Client({
    directoryUrl: opts.directoryUrl,
    accountKey: opts.accountKeyPem,
    accountUrl: opts.accountUrl,
    backoffAttempts: opts.backoff?.attempts ?? 10,
    backoffMin: opts.backoff?.minMs ?? 5000,
    backoffMax: opts.backoff?.maxMs ?? 30000,
  });
}

export interface FoundAccount {
  accountUrl: string;
  /** whether this call registered it */
  created: boolean;
  /** the contact the CA returned; absent when it stores none (Let's Encrypt since 2025, boulder #8198) */
  contact?: string[];
}

/**
 * Find the account of the key (RFC 8555 7.3.1, onlyReturnExisting: a lookup that changes
 * nothing), or register it with the contact (7.3). An existing account is left as it is.
 */
export async function findOrRegisterAccount(client: acme.Client, opts: AcmeAccountOptions): Promise<FoundAccount> {
  try {
    try {
      const account = await client.createAccount({ onlyReturnExisting: true });
      return { accountUrl: client.getAccountUrl(), created: false, contact: account.contact };
    } catch (err) {
      // RFC 8555 7.3.1: urn:ietf:params:acme:error:accountDoesNotExist (acme-client keeps only the detail text)
      if (!/accountDoesNotExist|does not exist|unable to find existing account|no account/i.test(detail(err))) throw err;
      const account = await client.createAccount({
        termsOfServiceAgreed: true,
        ...(opts.email ? { contact: [`mailto:${opts.email}`] } : {}),
      });
      return { accountUrl: client.getAccountUrl(), created: true, contact: account.contact };
    }
  } catch (err) {
    throw new Error(`ACME account at ${opts.directoryUrl} could not be registered or found: ${detail(err)}${hintFor(err)}`);
  }
}

/** The account URL: the known one without any request, else found or registered (never updated). */
export async function ensureAccount(client: acme.Client, opts: AcmeAccountOptions): Promise<string> {
  if (opts.accountUrl) return opts.accountUrl;
  return (await findOrRegisterAccount(client, opts)).accountUrl;
}

/** RFC 8555 7.3.2: replace the account's contact (none when `email` is undefined). */
export async function updateAccountContact(client: acme.Client, email: string | undefined): Promise<void> {
  await client.updateAccount({ contact: email ? [`mailto:${email}`] : [] });
}

function hintFor(err: unknown): string {
  const m = detail(err);
  // acme-client's symptom of an untrusted CA certificate (see notes/local-internet.md)
  if (/reading 'config'|self[- ]signed|unable to verify|UNABLE_TO_GET_ISSUER/i.test(m)) {
    return " (the ACME server's TLS certificate is not trusted: pass extraCaPem for a test CA)";
  }
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH/.test(m)) return " (the ACME directory is unreachable: check directoryUrl)";
  return "";
}

function challengeFor(authz: acme.Authorization, solver: ChallengeSolver): { url: string; type: string; token: string; status: string } {
  const ch = authz.challenges.find((c) => c.type === solver.type);
  if (!ch) {
    const offered = authz.challenges.map((c) => c.type).join(", ");
    throw new Error(`the CA offers no ${solver.type} challenge for ${authz.identifier.value} (offered: ${offered})`);
  }
  return ch as { url: string; type: string; token: string; status: string };
}

/**
 * Issue a certificate for `names` with the given key. Every challenge that was presented is
 * cleaned up, whether issuance succeeds or fails. Errors say which step and name failed.
 */
export async function issueCertificate(opts: IssueOptions): Promise<IssuedCertificate> {
  checkCertificateNames(opts.names);
  if (opts.solver.type === "http-01") {
    const wild = opts.names.find((n) => n.startsWith("*."));
    if (wild) throw new Error(`names: "${wild}" is a wildcard; wildcards need a DNS-01 solver (RFC 8555 8.3 forbids http-01)`);
  }
  let keySpki: string;
  let csr: string;
  if (opts.csrPem !== undefined) {
    const request = await readCertificateRequest(opts.csrPem);
    if (!sameNames(request.names, opts.names)) {
      throw new Error(`csrPem: asks for ${request.names.join(", ")}, but the order is for ${opts.names.join(", ")}`);
    }
    keySpki = request.spkiSha256;
    csr = opts.csrPem;
  } else if (opts.certificateKeyPem !== undefined) {
    try {
      keySpki = spkiSha256OfKey(opts.certificateKeyPem);
    } catch (err) {
      throw new Error(`certificateKeyPem: not a usable private key: ${detail(err)}`);
    }
    csr = await certificateRequestPem(opts.certificateKeyPem, opts.names);
  } else {
    throw new Error("certificateKeyPem or csrPem: one of them is required");
  }
  const log = opts.log ?? (() => undefined);
  const client = acmeClient(opts);
  const accountUrl = await ensureAccount(client, opts);
  log(`account ${accountUrl}`);

  let order: acme.Order;
  try {
    order = await client.createOrder({
      identifiers: opts.names.map((value) => ({ type: "dns", value })),
      ...(opts.replaces ? { replaces: opts.replaces } : {}),
    } as Parameters<acme.Client["createOrder"]>[0]);
  } catch (err) {
    // With a known account URL the order is the first request signed for that account (kid): a
    // key that is not the account's fails here.
    const hint =
      opts.accountUrl && /JWS|signature|unauthorized|accountDoesNotExist|does not exist|no account/i.test(detail(err))
        ? ` (is ${opts.accountUrl} the account of accountKeyPem? The order is signed with that key for that account)`
        : "";
    throw new Error(`the CA refused the order for ${opts.names.join(", ")}: ${detail(err)}${hint}`);
  }

  const presented: Challenge[] = [];
  const warnings: string[] = [];
  try {
    const authzs = await client.getAuthorizations(order);
    const pending: { authz: acme.Authorization; challenge: ReturnType<typeof challengeFor>; c: Challenge }[] = [];
    for (const authz of authzs) {
      if (authz.status === "valid") continue; // RFC 8555 7.1.4: reused authorization
      const challenge = challengeFor(authz, opts.solver);
      // token "." thumbprint (RFC 8555 8.1); acme-client returns exactly that for the http-01 type
      const keyAuthorization = await client.getChallengeKeyAuthorization({ ...challenge, type: "http-01" } as never);
      const identifier = authz.identifier.value;
      const c: Challenge = {
        type: opts.solver.type,
        identifier,
        token: challenge.token,
        keyAuthorization,
        dnsName: `_acme-challenge.${identifier}.`,
        dnsValue: createHash("sha256").update(keyAuthorization).digest("base64url"), // RFC 8555 8.4
      };
      presented.push(c);
      try {
        await opts.solver.present(c);
      } catch (err) {
        throw new Error(`${c.type} for ${identifier}: publishing the challenge failed: ${detail(err)}`);
      }
      pending.push({ authz, challenge, c });
    }
    if (opts.solver.waitUntilVisible) {
      await Promise.all(pending.map(({ c }) => opts.solver.waitUntilVisible!(c)));
    }
    for (const { challenge, c } of pending) {
      try {
        await client.completeChallenge(challenge as never);
      } catch (err) {
        throw new Error(`${c.type} for ${c.identifier}: the CA did not accept the challenge response: ${detail(err)}`);
      }
    }
    for (const { authz, c } of pending) {
      try {
        await client.waitForValidStatus(authz);
      } catch (err) {
        throw new Error(`${c.type} for ${c.identifier}: validation failed: ${detail(err)}`);
      }
    }
  } finally {
    for (const c of presented) {
      try {
        await opts.solver.cleanup(c);
      } catch (err) {
        warnings.push(`cleanup of the ${c.type} challenge for ${c.identifier} failed: ${detail(err)}`);
      }
    }
    if (warnings.length) log(warnings.join("\n"));
  }

  let chain: string;
  try {
    const finalized = await client.finalizeOrder(order, csr);
    chain = await client.getCertificate(finalized);
  } catch (err) {
    throw new Error(`finalizing the order for ${opts.names.join(", ")} failed: ${detail(err)}`);
  }
  const info = readCertificateInfo(chain);
  if (info.spkiSha256 !== keySpki) {
    throw new Error("the issued certificate does not carry the requested key");
  }
  log(`issued ${info.names.join(", ")}, valid ${info.notBefore.toISOString()} to ${info.notAfter.toISOString()}`);
  return { ...info, accountUrl, certificatePem: chain, warnings };
}

export interface RevokeOptions extends AcmeAccountOptions {
  certificatePem: string;
  /** RFC 5280 5.3.1 reason code; default 0 (unspecified); 4 = superseded, 5 = cessationOfOperation */
  reason?: number;
}

/** Revoke a certificate with the account that ordered it (RFC 8555 7.6). */
export async function revokeCertificate(opts: RevokeOptions): Promise<void> {
  const client = acmeClient(opts);
  await ensureAccount(client, opts);
  try {
    await client.revokeCertificate(opts.certificatePem, { reason: opts.reason ?? 0 });
  } catch (err) {
    throw new Error(`revoking the certificate at ${opts.directoryUrl} failed: ${detail(err)}`);
  }
}
