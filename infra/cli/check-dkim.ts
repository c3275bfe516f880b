// DKIM key records (RFC 6376 3.6.1; Ed25519 RFC 8463) for `mailstack check`: one record per
// selector, valid tags, a usable key, and the deployed key when it is known. Whether the server
// signs with that key is not visible from outside and is not checked.
import { createPublicKey } from "node:crypto";
import { fail, pass, warn, type CheckRow } from "./check-result";
import { lookupFailure, type DnsAnswer } from "./check-dns";
import { parseTagList } from "./check-records";
import type { ExpectedDkim } from "./check-expect";

export interface DkimKeyRecord {
  algorithm?: string;
  /** p= without whitespace; "" = revoked */
  publicKeyB64?: string;
  /** RSA modulus length */
  bits?: number;
  testing: boolean;
  problems: string[];
}

export function parseDkimKey(text: string): DkimKeyRecord {
  const list = parseTagList(text);
  const out: DkimKeyRecord = { testing: false, problems: [...list.problems] };
  // RFC 6376 3.6.1: v= is optional, but when present it is the first tag and is DKIM1.
  const v = list.tags.get("v");
  if (v !== undefined && (list.names[0] !== "v" || v !== "DKIM1")) out.problems.push("v= must be the first tag and be DKIM1");
  const k = list.tags.get("k") ?? "rsa";
  out.algorithm = k;
  if (k !== "rsa" && k !== "ed25519") out.problems.push(`k=${k} is not rsa or ed25519`);
  const p = list.tags.get("p");
  if (p === undefined) {
    out.problems.push("no p= (RFC 6376 3.6.1: required)");
    return out;
  }
  const b64 = p.replace(/[ \t\r\n]/g, "");
  out.publicKeyB64 = b64;
  if (b64 === "") {
    out.problems.push("p= is empty: the key is revoked (RFC 6376 3.6.1)");
    return out;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    out.problems.push("p= is not base64");
    return out;
  }
  const raw = Buffer.from(b64, "base64");
  if (k === "ed25519") {
    // RFC 8463 3.2: the raw 32-byte key, not an SPKI structure.
    if (raw.length !== 32) out.problems.push(`an Ed25519 key is 32 bytes, p= has ${raw.length}`);
  } else if (k === "rsa") {
    try {
      const key = createPublicKey({ key: raw, format: "der", type: "spki" });
      if (key.asymmetricKeyType !== "rsa") out.problems.push(`p= holds an ${key.asymmetricKeyType} key, k= says rsa`);
      out.bits = key.asymmetricKeyDetails?.modulusLength;
      // RFC 8301 3.2: verifiers must not accept keys under 1024 bits.
      if (out.bits !== undefined && out.bits < 1024)
        out.problems.push(`an RSA key of ${out.bits} bits is refused by verifiers (RFC 8301 3.2)`);
    } catch {
      out.problems.push("p= is not an RSA SubjectPublicKeyInfo");
    }
  }
  const t = list.tags.get("t");
  // RFC 6376 3.6.1: t=y marks a domain testing DKIM; verifiers may ignore its failures.
  out.testing =
    t !== undefined &&
    t
      .split(":")
      .map((f) => f.trim())
      .includes("y");
  return out;
}

export function checkDkim(domain: string, expected: ExpectedDkim, answer: DnsAnswer<string>): CheckRow {
  const check = `dkim.${expected.selector}`;
  const name = `${expected.selector}._domainkey.${domain}`;
  if (!answer.ok) return fail(check, lookupFailure(`TXT ${name}`, answer), name);
  if (answer.records.length === 0) return fail(check, `no key published at ${name}`, name);
  // RFC 6376 3.6.2.2: several TXT records at one selector give undefined results.
  if (answer.records.length > 1) return fail(check, `${answer.records.length} TXT records at ${name}; a selector must have one`, name);
  const text = answer.records[0];
  const key = parseDkimKey(text);
  const short = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  if (key.problems.length > 0) return fail(check, `"${short}": ${key.problems.join("; ")}`, name);
  if (expected.algorithm !== null && key.algorithm !== expected.algorithm) {
    return fail(check, `k=${key.algorithm}, the plan publishes an ${expected.algorithm} key at this selector`, name);
  }
  if (expected.publicKeyB64 !== null && key.publicKeyB64 !== expected.publicKeyB64) {
    return fail(
      check,
      `the published ${key.algorithm} key is not the deployed key of selector ${expected.selector} (--dkim-keys): signatures will not verify`,
      name,
    );
  }
  const size = key.algorithm === "rsa" ? `${key.bits}-bit RSA` : "Ed25519";
  const compared = expected.publicKeyB64 !== null ? ", matches the deployed key" : ", key not compared (pass --dkim-keys FILE)";
  if (key.testing) return warn(check, `${size} key with t=y: receivers treat failures as if unsigned`, name);
  if (key.algorithm === "rsa" && key.bits !== undefined && key.bits < 2048)
    return warn(check, `${size} key: use 2048 bits (RFC 8301 3.2)${compared}`, name);
  return pass(check, `${size} key${compared}`, name);
}
