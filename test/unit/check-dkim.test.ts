import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { checkDkim, parseDkimKey } from "../../infra/cli/check-dkim";
import { dkimPublicKeyFromPem, dkimTxt } from "../../components/records/dkim";

const rsa2048 = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
const ed25519 = dkimPublicKeyFromPem(
  generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString(),
  "ed25519",
);
const ok = (records: string[]) => ({ ok: true as const, records });

describe("parseDkimKey (RFC 6376 3.6.1, RFC 8463 3.2)", () => {
  test("the planner's RSA record parses: k=rsa, 2048 bits", () => {
    const k = parseDkimKey(dkimTxt({ selector: "s1-rsa", algorithm: "rsa", publicKeyB64: rsa2048 }));
    assert.deepEqual([k.algorithm, k.bits, k.publicKeyB64, k.problems], ["rsa", 2048, rsa2048, []]);
  });

  test("the planner's Ed25519 record parses", () => {
    const k = parseDkimKey(dkimTxt({ selector: "s1-ed25519", algorithm: "ed25519", publicKeyB64: ed25519 }));
    assert.deepEqual([k.algorithm, k.problems], ["ed25519", []]);
  });

  test("k= defaults to rsa and p= may hold whitespace (folded TXT)", () => {
    const k = parseDkimKey(`p=${rsa2048.slice(0, 100)} ${rsa2048.slice(100)}`);
    assert.deepEqual([k.algorithm, k.publicKeyB64, k.problems], ["rsa", rsa2048, []]);
  });

  const bad: [string, string, RegExp][] = [
    ["v= not first", `k=rsa; v=DKIM1; p=${rsa2048}`, /v= must be the first tag and be DKIM1/],
    ["v=DKIM2", `v=DKIM2; p=${rsa2048}`, /v= must be the first tag/],
    ["no p=", "v=DKIM1; k=rsa", /no p=/],
    ["empty p= (revoked)", "v=DKIM1; p=", /revoked/],
    ["p= not base64", "v=DKIM1; p=not*base64", /not base64/],
    ["unknown k=", `v=DKIM1; k=dsa; p=${rsa2048}`, /k=dsa is not rsa or ed25519/],
    ["an Ed25519 key of 31 bytes", `v=DKIM1; k=ed25519; p=${Buffer.alloc(31).toString("base64")}`, /32 bytes, p= has 31/],
    ["k=rsa with garbage in p=", `v=DKIM1; k=rsa; p=${Buffer.alloc(32).toString("base64")}`, /not an RSA SubjectPublicKeyInfo/],
  ];
  for (const [name, text, problem] of bad) {
    test(`refused: ${name}`, () => {
      assert.match(parseDkimKey(text).problems.join("; "), problem);
    });
  }
});

describe("checkDkim: one record per selector, usable, the deployed key", () => {
  const record = dkimTxt({ selector: "s1-rsa", algorithm: "rsa", publicKeyB64: rsa2048 });

  test("the deployed key passes and says it was compared", () => {
    assert.deepEqual(checkDkim("example.org", { selector: "s1-rsa", algorithm: "rsa", publicKeyB64: rsa2048 }, ok([record])), {
      check: "dkim.s1-rsa",
      status: "pass",
      detail: "2048-bit RSA key, matches the deployed key",
      target: "s1-rsa._domainkey.example.org",
    });
  });

  test("another key than the deployed one fails: signatures would not verify", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
    const r = checkDkim("example.org", { selector: "s1-rsa", algorithm: "rsa", publicKeyB64: other }, ok([record]));
    assert.equal(r.status, "fail");
    assert.match(r.detail, /not the deployed key of selector s1-rsa/);
  });

  test("an unknown deployed key: syntax only, and the row says how to compare", () => {
    const r = checkDkim("example.org", { selector: "s1-rsa", algorithm: "rsa", publicKeyB64: null }, ok([record]));
    assert.equal(r.status, "pass");
    assert.equal(r.detail, "2048-bit RSA key, key not compared (pass --dkim-keys FILE)");
  });

  test("an ed25519 key where the plan has rsa fails", () => {
    const r = checkDkim(
      "example.org",
      { selector: "s1-rsa", algorithm: "rsa", publicKeyB64: null },
      ok([dkimTxt({ selector: "x", algorithm: "ed25519", publicKeyB64: ed25519 })]),
    );
    assert.equal(r.detail, "k=ed25519, the plan publishes an rsa key at this selector");
  });

  test("nothing published fails; two records at one selector fail", () => {
    assert.equal(
      checkDkim("example.org", { selector: "s1-rsa", algorithm: null, publicKeyB64: null }, ok([])).detail,
      "no key published at s1-rsa._domainkey.example.org",
    );
    assert.equal(
      checkDkim("example.org", { selector: "s1-rsa", algorithm: null, publicKeyB64: null }, ok([record, record])).status,
      "fail",
    );
  });

  test("a 1024-bit RSA key warns; t=y (testing) warns", () => {
    assert.equal(
      checkDkim("example.org", { selector: "old", algorithm: null, publicKeyB64: null }, ok([`v=DKIM1; k=rsa; p=${rsa1024}`])).status,
      "warn",
    );
    assert.equal(
      checkDkim("example.org", { selector: "s1-rsa", algorithm: null, publicKeyB64: null }, ok([`v=DKIM1; t=y; p=${rsa2048}`])).status,
      "warn",
    );
  });
});
