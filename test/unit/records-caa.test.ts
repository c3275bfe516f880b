import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { caaContent, caaProperties } from "../../components/records/caa";

describe("caaProperties (RFC 8659, RFC 8657)", () => {
  test("without an account: issue for the CA with validation methods, and no wildcards", () => {
    assert.deepEqual(caaProperties({ caaIdentity: "letsencrypt.org" }), [
      { flags: 0, tag: "issue", value: "letsencrypt.org; validationmethods=dns-01,http-01" },
      { flags: 0, tag: "issuewild", value: ";" },
    ]);
  });

  test("with an account: accounturi binds issuance to it (RFC 8657 3)", () => {
    const [issue] = caaProperties({ caaIdentity: "letsencrypt.org", accountUri: "https://acme-v02.api.letsencrypt.org/acme/acct/123" });
    assert.deepEqual(issue, {
      flags: 0,
      tag: "issue",
      value: "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/123; validationmethods=dns-01,http-01",
    });
  });

  test("the issuer domain is lowercased (RFC 8659 4.2 compares it case-insensitively)", () => {
    assert.equal(caaProperties({ caaIdentity: "LetsEncrypt.org" })[0].value.split(";")[0], "letsencrypt.org");
  });
});

describe("caaContent (RFC 8659 4.1.1 presentation)", () => {
  const cases: [string, Parameters<typeof caaContent>[0], string][] = [
    ["issue", { flags: 0, tag: "issue", value: "letsencrypt.org" }, '0 issue "letsencrypt.org"'],
    ["issuewild ;", { flags: 0, tag: "issuewild", value: ";" }, '0 issuewild ";"'],
    ["iodef", { flags: 0, tag: "iodef", value: "mailto:security@example.org" }, '0 iodef "mailto:security@example.org"'],
    ["a quote in the value is escaped", { flags: 128, tag: "issue", value: 'a"b' }, '128 issue "a\\"b"'],
  ];
  for (const [name, data, expected] of cases) {
    test(name, () => {
      assert.equal(caaContent(data), expected);
    });
  }
});
