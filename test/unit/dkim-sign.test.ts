// DKIM signing (server-bootstrap/maild/dkim-sign.ts) checked by an independent verifier: mailauth's
// dkimVerify, resolving the public keys from a table instead of DNS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import { dkimSignatures, relaxedBody, relaxedHeader } from "../../server-bootstrap/maild/dkim-sign";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ed = generateKeyPairSync("ed25519");
const pem = (k: import("node:crypto").KeyObject) => k.export({ type: "pkcs8", format: "pem" }).toString();
const keys = [
  { domain: "example.org", selector: "g1-rsa", privateKeyPem: pem(rsa.privateKey) },
  { domain: "example.org", selector: "g1-ed25519", privateKeyPem: pem(ed.privateKey) },
];
const dnsRecords: Record<string, string> = {
  "g1-rsa._domainkey.example.org": `v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: "spki", format: "der" }).toString("base64")}`,
  // RFC 8463 4.2: the Ed25519 public key is the raw 32 bytes
  "g1-ed25519._domainkey.example.org": `v=DKIM1; k=ed25519; p=${ed.publicKey.export({ type: "spki", format: "der" }).subarray(-32).toString("base64")}`,
};
const resolver = async (name: string, type: string) => {
  if (type === "TXT" && dnsRecords[name]) return [[dnsRecords[name]]];
  throw Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" });
};

const message = Buffer.from(
  "From: Alice <alice@example.org>\r\nTo: bob@peer.test\r\nSubject:  Hello\t there \r\n  folded\r\n" +
    "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\nX-Unsigned: yes\r\n\r\n" +
    "Line one  with   spaces \r\n\r\nlast line\r\n\r\n\r\n",
);

async function verify(msg: Buffer) {
  const res = await dkimVerify(msg, { resolver: resolver as never });
  return res.results.map((r) => ({ result: r.status.result, selector: r.selector, algo: r.algo }));
}

test("relaxed canonicalization follows RFC 6376 3.4.5's example", () => {
  // RFC 6376 3.4.5: "A: <SP> X <CRLF> B <SP> : <SP> Y <HTAB><CRLF> <HTAB> Z <SP><SP><CRLF>"
  assert.equal(relaxedHeader("A: X\r\n"), "a:X");
  assert.equal(relaxedHeader("B : Y\t\r\n\tZ  \r\n"), "b:Y Z");
  assert.equal(relaxedBody(Buffer.from(" C \r\nD \t E\r\n\r\n\r\n")).toString(), " C\r\nD E\r\n");
  assert.equal(relaxedBody(Buffer.from("\r\n\r\n")).toString(), "");
  assert.equal(relaxedBody(Buffer.from("no final newline")).toString(), "no final newline\r\n");
});

test("both signatures (RSA and Ed25519) verify, relaxed/relaxed, From oversigned", async () => {
  const sigs = dkimSignatures(message, keys);
  const signed = Buffer.concat([Buffer.from(sigs), message]);
  assert.deepEqual(await verify(signed), [
    { result: "pass", selector: "g1-rsa", algo: "rsa-sha256" },
    { result: "pass", selector: "g1-ed25519", algo: "ed25519-sha256" },
  ]);
  const h = /h=([^;]+);/.exec(sigs.replace(/\r\n\t/g, ""))![1].split(":");
  assert.equal(h.filter((n) => n === "from").length, 2, "From listed once more than it occurs");
  assert.ok(!h.includes("x-unsigned"));
  assert.match(sigs, /c=relaxed\/relaxed/);
  for (const line of sigs.split("\r\n")) assert.ok(line.length <= 78, `line too long: ${line}`);
});

test("a second From: added below the signed one breaks both signatures", async () => {
  const signed = Buffer.concat([Buffer.from(dkimSignatures(message, keys)), message]);
  const i = signed.indexOf("\r\n\r\n");
  const forged = Buffer.concat([signed.subarray(0, i + 2), Buffer.from("From: mallory@evil.test\r\n"), signed.subarray(i + 2)]);
  assert.deepEqual(
    (await verify(forged)).map((r) => r.result),
    ["fail", "fail"],
  );
});

test("relaxed canonicalization tolerates whitespace changes in transit; a body change fails", async () => {
  const signed = Buffer.concat([Buffer.from(dkimSignatures(message, keys)), message]).toString("latin1");
  const rewrapped = Buffer.from(
    signed.replace("Subject:  Hello\t there", "Subject: Hello there").replace("last line\r\n", "last line   \r\n"),
    "latin1",
  );
  assert.deepEqual(
    (await verify(rewrapped)).map((r) => r.result),
    ["pass", "pass"],
  );
  const changed = Buffer.from(signed.replace("Line one", "Line 1"), "latin1");
  // mailauth reports a body hash mismatch as "neutral" (RFC 6376 6.1.3 leaves the label open)
  for (const r of await verify(changed)) assert.notEqual(r.result, "pass");
});

test("a message without From: is refused", () => {
  assert.throws(() => dkimSignatures(Buffer.from("To: a@b.test\r\n\r\nhi\r\n"), keys), /without a From:/);
});
