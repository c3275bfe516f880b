import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { checkCertificateNames, sameNames } from "../../components/shared/acme/certificate-names";
import { Http01Challenges } from "../../components/shared/acme/http01";

describe("checkCertificateNames", () => {
  const bad: [string[], RegExp][] = [
    [[], /names: at least one DNS name is required/],
    [["Mail.example.org"], /names\[0\]: "Mail\.example\.org" must be lowercase/],
    [["mail.example.org."], /names\[0\]: "mail\.example\.org\." must not end with a dot/],
    [["localhost"], /names\[0\]: "localhost" must have at least two labels/],
    [["198.51.100.7"], /names\[0\]: "198\.51\.100\.7" is an IP address/],
    [["a.example.org", "bad_label.example.org"], /names\[1\]: "bad_label\.example\.org" has an invalid label "bad_label"/],
    [["-x.example.org"], /names\[0\]: "-x\.example\.org" has an invalid label "-x"/],
    [["a.example.org", "a.example.org"], /names\[1\]: "a\.example\.org" appears twice/],
    [[`${"a".repeat(64)}.example.org`], /has an invalid label/],
    [["mail.*.example.org"], /has an invalid label "\*"/],
  ];
  for (const [names, message] of bad) {
    test(`refuses ${JSON.stringify(names).slice(0, 60)}`, () => assert.throws(() => checkCertificateNames(names), message));
  }
  test("accepts host names and a leading wildcard", () => {
    assert.doesNotThrow(() => checkCertificateNames(["mail.example.org", "mta-sts.example.org", "*.example.org", "xn--bcher-kva.example"]));
  });
  test("sameNames ignores order, case and duplicates", () => {
    assert.equal(sameNames(["b.example", "a.example"], ["A.example", "b.example", "b.example"]), true);
    assert.equal(sameNames(["a.example"], ["a.example", "b.example"]), false);
  });
});

describe("Http01Challenges", () => {
  test("answers the well-known path of a stored token and nothing else", () => {
    const store = new Http01Challenges();
    store.set("tok_en-1", "tok_en-1.thumb");
    assert.equal(store.answer("/.well-known/acme-challenge/tok_en-1"), "tok_en-1.thumb");
    assert.equal(store.answer("/.well-known/acme-challenge/other"), undefined);
    assert.equal(store.answer("/.well-known/acme-challenge/../etc"), undefined);
    assert.equal(store.answer("/tok_en-1"), undefined);
    store.delete("tok_en-1");
    assert.equal(store.get("tok_en-1"), undefined);
    assert.equal(store.size, 0);
  });
});
