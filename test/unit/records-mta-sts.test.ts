import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mtaStsId, mtaStsPolicy, mtaStsRecordName, mtaStsTxt } from "../../components/records/mta-sts";
import { tlsrptRecordName, tlsrptTxt } from "../../components/records/tlsrpt";
import type { DomainSpec, MtaStsMode } from "../../components/spec";
import { domainSpec } from "../fixtures/stack-spec";

function domain(mode: MtaStsMode, maxAge: number): DomainSpec {
  return domainSpec("example.org", { mtaSts: { mode, maxAge } });
}

describe("mtaStsPolicy (RFC 8461 3.2)", () => {
  for (const mode of ["enforce", "testing", "none"] as const) {
    test(`mode ${mode}: version, mode, one mx line per host, max_age, CRLF line ends`, () => {
      assert.equal(
        mtaStsPolicy(domain(mode, 604800), ["mail.example.org", "MX2.example.org"]),
        `version: STSv1\r\nmode: ${mode}\r\nmx: mail.example.org\r\nmx: mx2.example.org\r\nmax_age: 604800\r\n`,
      );
    });
  }

  for (const maxAge of [-1, 31557601, 1.5]) {
    test(`max_age ${maxAge} is refused with the domain and the allowed range`, () => {
      assert.throws(() => mtaStsPolicy(domain("enforce", maxAge), ["mail.example.org"]), /example\.org: mtaSts\.maxAge .* 0\.\.31557600/);
    });
  }

  test("max_age 31557600 (the RFC maximum) is accepted", () => {
    assert.match(mtaStsPolicy(domain("enforce", 31557600), ["mail.example.org"]), /max_age: 31557600\r\n$/);
  });
});

describe("mtaStsId / _mta-sts TXT (RFC 8461 3.1)", () => {
  const policy = mtaStsPolicy(domain("enforce", 604800), ["mail.example.org"]);

  test("the id is 1-32 alphanumerics", () => {
    assert.match(mtaStsId(policy), /^[A-Za-z0-9]{1,32}$/);
  });

  test("the same policy always gets the same id", () => {
    assert.equal(mtaStsId(mtaStsPolicy(domain("enforce", 604800), ["mail.example.org"])), mtaStsId(policy));
  });

  test("any change to the policy changes the id", () => {
    const others = [
      mtaStsPolicy(domain("testing", 604800), ["mail.example.org"]),
      mtaStsPolicy(domain("enforce", 86400), ["mail.example.org"]),
      mtaStsPolicy(domain("enforce", 604800), ["mx.example.org"]),
    ];
    assert.equal(new Set([policy, ...others].map(mtaStsId)).size, 4);
  });

  test("the TXT record is v=STSv1; id=<id> at _mta-sts.<domain>", () => {
    assert.equal(mtaStsRecordName("example.org"), "_mta-sts.example.org");
    assert.equal(mtaStsTxt(policy), `v=STSv1; id=${mtaStsId(policy)}`);
  });
});

describe("tlsrptTxt (RFC 8460 3)", () => {
  test("the record lives at _smtp._tls.<domain>", () => {
    assert.equal(tlsrptRecordName("example.org"), "_smtp._tls.example.org");
  });

  const cases: { name: string; rua: string[]; expected: string }[] = [
    { name: "a mailto: URI as given", rua: ["mailto:tls@example.org"], expected: "v=TLSRPTv1; rua=mailto:tls@example.org" },
    { name: "a plain address becomes mailto:", rua: ["tls@example.org"], expected: "v=TLSRPTv1; rua=mailto:tls@example.org" },
    {
      name: "mailto and https targets, comma-separated",
      rua: ["mailto:tls@example.org", "https://reports.example.net/tlsrpt"],
      expected: "v=TLSRPTv1; rua=mailto:tls@example.org,https://reports.example.net/tlsrpt",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(tlsrptTxt(c.rua), c.expected);
    });
  }

  test("no rua is refused: RFC 8460 3 requires one", () => {
    assert.throws(() => tlsrptTxt([]), /tlsrpt\.rua: at least one report URI is required/);
  });
});
