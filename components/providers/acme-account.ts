// The life cycle of one ACME account (RFC 8555 7.3) as a dynamic provider: what the engine's
// provider host calls for an AcmeAccount (components/acme-account.ts). Loaded by the host as
// `mailstack/providers/acme-account`, so the state holds no path of any checkout.
//
// - Replaced only when the key or the directory changes: either is another account.
// - The contact is sent when the account is registered, and updated only when the configured
//   address changed since the last run, or when the CA returns a different one for an existing
//   account. Let's Encrypt stores no contacts since 2025 and plans to remove the update path
//   (letsencrypt/boulder #8198, #8199): a refused update is logged and never fails the run.
// - Delete leaves the account at the CA: certificates it ordered stay revocable with its key.
// Stored: inputs (the key as a secret, as the program marks it); outputs without the key.
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { acmeClient, findOrRegisterAccount, updateAccountContact } from "../shared/acme/issue";
import { checkCaPem } from "../shared/acme/ca-trust";
import { Checks, mayDiffer, plainProperties, type CheckFailure } from "./engine-values";
import { providerLog } from "./provider-log";

export interface AccountInputs {
  directoryUrl: string;
  /** PEM of the account key (ECDSA P-256/P-384 or RSA) */
  accountKeyPem: string;
  email?: string;
  /** PEM of an extra CA to trust for the directory (test CAs) */
  extraCaPem?: string;
}

/** What the state keeps: no key, only its RFC 7638 thumbprint (public) to see a key change. */
export interface AccountOutputs {
  directoryUrl: string;
  email?: string;
  accountUrl: string;
  accountKeyThumbprint: string;
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of the key's public half. */
export function accountKeyThumbprint(keyPem: string): string {
  const jwk = createPublicKey(createPrivateKey(keyPem)).export({ format: "jwk" }) as Record<string, string>;
  // RFC 7638 3.2: the required members only, in lexicographic order, no whitespace
  const members = jwk.kty === "RSA" ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}

export function checkDirectoryUrl(url: unknown, where = "directoryUrl"): void {
  if (typeof url !== "string" || !/^https:\/\/[^\s/]+/.test(url)) {
    throw new Error(`${where}: "${String(url)}" must be the https URL of an ACME directory (RFC 8555 7.1.1)`);
  }
}

export function checkAccountKey(pem: unknown, where = "accountKeyPem"): void {
  let type: string | undefined;
  try {
    const key = createPrivateKey(String(pem));
    type = key.asymmetricKeyType === "ec" ? key.asymmetricKeyDetails?.namedCurve : key.asymmetricKeyType;
  } catch {
    throw new Error(`${where}: must be a PEM private key (e.g. tls.PrivateKey's privateKeyPem)`);
  }
  if (!["prime256v1", "secp384r1", "rsa"].includes(type ?? "")) {
    throw new Error(`${where}: a ${type} key; ACME account keys are ECDSA P-256/P-384 or RSA (RFC 8555 6.2, RFC 7518 3.1)`);
  }
}

export function checkEmail(email: unknown, where = "email"): void {
  if (email !== undefined && (typeof email !== "string" || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email))) {
    throw new Error(`${where}: "${String(email)}" is not an email address`);
  }
}

export function checkAccountInputs(news: Record<string, unknown>): CheckFailure[] {
  const c = new Checks();
  c.known("directoryUrl", news.directoryUrl, (v) => checkDirectoryUrl(v));
  c.known("accountKeyPem", news.accountKeyPem, (v) => checkAccountKey(v));
  c.known("email", news.email, (v) => checkEmail(v));
  c.known("extraCaPem", news.extraCaPem, (v) => {
    if (v !== undefined) checkCaPem(String(v));
  });
  return c.failures;
}

/** What a change of inputs does: the properties that replace the account, and those updated in place. */
export function accountDiff(olds: AccountOutputs, news: Record<string, unknown>): { replaces: string[]; updates: string[] } {
  const replaces: string[] = [];
  if (mayDiffer(olds.directoryUrl, news.directoryUrl)) replaces.push("directoryUrl");
  // An unknown key (a key being created or replaced) may be another key: another account.
  const key = news.accountKeyPem;
  if (mayDiffer(olds.accountKeyThumbprint, typeof key === "string" ? thumbprintOrKey(key) : key)) replaces.push("accountKeyPem");
  // extraCaPem only decides whom to trust when talking to the CA: nothing to change at the CA.
  const updates = mayDiffer(olds.email, news.email) ? ["email"] : [];
  return { replaces, updates };
}

/** The thumbprint of a known key; the sentinel or an unreadable key passes through to count as a change. */
function thumbprintOrKey(key: string): string {
  try {
    return accountKeyThumbprint(key);
  } catch {
    return key;
  }
}

function contactOf(email: string | undefined): string[] {
  return email ? [`mailto:${email}`] : [];
}

async function tryContactUpdate(i: AccountInputs, accountUrl: string, why: string): Promise<void> {
  try {
    await updateAccountContact(acmeClient({ ...i, accountUrl }), i.email);
  } catch (err) {
    providerLog(
      "warn",
      `AcmeAccount ${accountUrl}: the contact update (${why}) was refused and is skipped: ${(err as Error).message.replace(/\s+/g, " ")}`,
    );
  }
}

export async function createAccount(raw: Record<string, unknown>): Promise<{ id: string; outs: AccountOutputs }> {
  const i = plainProperties(raw) as unknown as AccountInputs;
  const failures = checkAccountInputs(i as unknown as Record<string, unknown>);
  if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
  const found = await findOrRegisterAccount(acmeClient(i), i);
  // RFC 8555 7.3.1: the fields of a newAccount request for an existing key are ignored; a contact
  // the CA returns that is not ours is updated once. A CA that returns none stores none.
  if (!found.created && found.contact !== undefined && JSON.stringify(found.contact) !== JSON.stringify(contactOf(i.email))) {
    await tryContactUpdate(i, found.accountUrl, "the existing account has another contact");
  }
  return { id: found.accountUrl, outs: outputsOf(i, found.accountUrl) };
}

function outputsOf(i: AccountInputs, accountUrl: string): AccountOutputs {
  return {
    directoryUrl: i.directoryUrl,
    ...(i.email !== undefined ? { email: i.email } : {}),
    accountUrl,
    accountKeyThumbprint: accountKeyThumbprint(i.accountKeyPem),
  };
}

export async function updateAccount(olds: AccountOutputs, raw: Record<string, unknown>): Promise<AccountOutputs> {
  const i = plainProperties(raw) as unknown as AccountInputs;
  const failures = checkAccountInputs(i as unknown as Record<string, unknown>);
  if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
  if ((olds.email ?? null) !== (i.email ?? null)) await tryContactUpdate(i, olds.accountUrl, "the configured email changed");
  return outputsOf(i, olds.accountUrl);
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: checkAccountInputs(plainProperties(news)) };
  },
  async diff(_id: string, olds: AccountOutputs, news: Record<string, unknown>) {
    const { replaces, updates } = accountDiff(olds, plainProperties(news));
    return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: false };
  },
  async create(inputs: Record<string, unknown>) {
    return createAccount(inputs);
  },
  async update(_id: string, olds: AccountOutputs, news: Record<string, unknown>) {
    return { outs: await updateAccount(olds, news) };
  },
  async delete() {
    // The account stays with the CA (see above).
  },
};
