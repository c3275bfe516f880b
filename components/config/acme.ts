// The `acme` section: the ACME account and CA that issue the mail host's certificate.
import type { AcmeSpec } from "../spec";
import { Problems } from "./config-error";
import { readDomainName } from "./domain";
import { parseEmail } from "./name-syntax";
import { isAbsent, keyPath, readObject, readString, show } from "./shape";

const ACME_KEYS = ["email", "directory", "caaIdentity"] as const;

/** Directory names that stand for a known CA, with its URL and CAA identity (RFC 8659 4.2). */
export const ACME_DIRECTORIES: Readonly<Record<string, { url: string; caaIdentity: string }>> = {
  letsencrypt: { url: "https://acme-v02.api.letsencrypt.org/directory", caaIdentity: "letsencrypt.org" },
  "letsencrypt-staging": { url: "https://acme-staging-v02.api.letsencrypt.org/directory", caaIdentity: "letsencrypt.org" },
};

export function readAcme(value: unknown, path: string, problems: Problems): AcmeSpec | undefined {
  if (isAbsent(value)) {
    problems.add(path, "is required: a mapping with email (the ACME account contact) and optionally directory and caaIdentity");
    return undefined;
  }
  const raw = readObject(value, path, ACME_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;

  const emailPath = keyPath(path, "email");
  let email: string | undefined;
  if (isAbsent(raw.email)) {
    problems.add(emailPath, "is required: the ACME account contact, where the CA sends expiry and policy notices");
  } else {
    const text = readString(raw.email, emailPath, problems, "an email address");
    const parsed = text === undefined ? undefined : parseEmail(text);
    if (parsed !== undefined && !parsed.ok) problems.add(emailPath, `${show(text)} is not a valid email address: it ${parsed.reason}`);
    if (parsed?.ok) email = parsed.value.address;
  }

  const directoryPath = keyPath(path, "directory");
  const known = Object.keys(ACME_DIRECTORIES);
  let directory: string | undefined = ACME_DIRECTORIES.letsencrypt.url;
  let knownCa: { url: string; caaIdentity: string } | undefined = ACME_DIRECTORIES.letsencrypt;
  if (!isAbsent(raw.directory)) {
    const text = readString(raw.directory, directoryPath, problems, `one of ${known.join("|")} or an https:// URL`);
    knownCa = text === undefined ? undefined : ACME_DIRECTORIES[text];
    directory = knownCa?.url;
    if (text !== undefined && knownCa === undefined) {
      directory = httpsUrl(text);
      if (directory === undefined) problems.add(directoryPath, `${show(text)} is not one of ${known.join("|")} and not an https:// URL`);
    }
  }

  const caaPath = keyPath(path, "caaIdentity");
  let caaIdentity = knownCa?.caaIdentity;
  if (!isAbsent(raw.caaIdentity)) {
    caaIdentity = readDomainName(raw.caaIdentity, caaPath, problems, "the CA's CAA issuer domain");
    if (caaIdentity !== undefined && knownCa !== undefined && caaIdentity !== knownCa.caaIdentity) {
      problems.add(
        caaPath,
        `"${caaIdentity}" would forbid this CA from issuing (its CAA identity is ${knownCa.caaIdentity}); omit caaIdentity or set it to ${knownCa.caaIdentity}`,
      );
    }
  } else if (knownCa === undefined && directory !== undefined) {
    problems.add(caaPath, "is required with a custom ACME directory: the CA's CAA issuer domain (RFC 8659 4.2), e.g. letsencrypt.org");
  }

  if (problems.count > before) return undefined;
  return { email: email!, directory: directory!, caaIdentity: caaIdentity! };
}

/** An https URL (any host: a test CA may live at an IP address), or undefined. */
function httpsUrl(text: string): string | undefined {
  try {
    const url = new URL(text);
    return url.protocol === "https:" && url.hostname !== "" && url.username === "" && url.password === "" ? text : undefined;
  } catch {
    return undefined;
  }
}
