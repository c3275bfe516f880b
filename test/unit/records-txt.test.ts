import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { txtContent, parseTxtContent, parseCharacterStrings } from "../../components/records/txt";
import { dkimPublicKeyFromPem, dkimTxt } from "../../components/records/dkim";

describe("txtContent (RFC 1035 character-strings as Cloudflare stores them)", () => {
  const cases: { name: string; value: string; content: string }[] = [
    { name: "a short value is one quoted string", value: "v=spf1 -all", content: '"v=spf1 -all"' },
    { name: "an empty value is one empty string", value: "", content: '""' },
    { name: "a double quote is escaped", value: 'say "hi"', content: '"say \\"hi\\""' },
    { name: "a backslash is escaped", value: "a\\b", content: '"a\\\\b"' },
    { name: "a control octet is escaped as \\DDD", value: "a\tb", content: '"a\\009b"' },
    { name: "non-ASCII UTF-8 is kept as is", value: "grüße", content: '"grüße"' },
    { name: "255 bytes fit in one string", value: "x".repeat(255), content: `"${"x".repeat(255)}"` },
    { name: "256 bytes make two strings joined by one space", value: "x".repeat(256), content: `"${"x".repeat(255)}" "x"` },
    {
      name: "a 2-byte character is never split across strings",
      value: `${"x".repeat(254)}ü`,
      content: `"${"x".repeat(254)}" "ü"`,
    },
    {
      name: "the 255-byte limit counts octets, so escapes never straddle strings",
      value: '"'.repeat(256),
      content: `"${'\\"'.repeat(255)}" "\\""`,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(txtContent(c.value), c.content);
    });
  }

  for (const c of cases) {
    test(`parseTxtContent inverts: ${c.name}`, () => {
      assert.equal(parseTxtContent(c.content), c.value);
    });
  }

  test("a 2048-bit RSA DKIM record splits into a first string of exactly 255 bytes and round-trips", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
    const value = dkimTxt({ selector: "s1-rsa", algorithm: "rsa", publicKeyB64: dkimPublicKeyFromPem(pem, "rsa") });
    const content = txtContent(value);
    const strings = parseCharacterStrings(content);
    assert.equal(strings.length, 2);
    assert.equal(strings[0].length, 255);
    assert.ok(strings[1].length > 0 && strings[1].length <= 255);
    assert.match(content, /^"v=DKIM1; k=rsa; p=MII[^"]{234}" "[^"]+"$/);
    assert.equal(parseTxtContent(content), value);
  });

  test("every string of a long value with many escapes holds at most 255 bytes", () => {
    const value = 'ab"\\'.repeat(300);
    const strings = parseCharacterStrings(txtContent(value));
    assert.ok(strings.every((s) => s.length <= 255));
    assert.deepEqual(
      strings.map((s) => s.length),
      [255, 255, 255, 255, 180],
    );
  });
});

describe("parseTxtContent", () => {
  test("decodes \\DDD escapes to octets", () => {
    assert.equal(parseTxtContent('"a\\059b"'), "a;b");
  });

  test("concatenates strings without a separator (RFC 7208 3.3)", () => {
    assert.equal(parseTxtContent('"v=spf1 " "-all"'), "v=spf1 -all");
  });

  const bad: { name: string; content: string; message: RegExp }[] = [
    { name: "unquoted text", content: "v=spf1 -all", message: /text outside quotes/ },
    { name: "an unterminated string", content: '"v=spf1', message: /unterminated string/ },
    { name: "a string over 255 bytes", content: `"${"x".repeat(256)}"`, message: /256 bytes exceeds 255/ },
    { name: "strings not separated by a space", content: '"a""b"', message: /separated by a space/ },
    { name: "no string at all", content: "  ", message: /no string/ },
  ];
  for (const c of bad) {
    test(`rejects ${c.name}`, () => {
      assert.throws(() => parseTxtContent(c.content), c.message);
    });
  }
});
