import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { dmarcRecordName, dmarcTxt } from "../../components/records/dmarc";
import type { DmarcPolicy, DmarcSpec } from "../../components/spec";

const base: DmarcSpec = {
  policy: "reject",
  subdomainPolicy: "reject",
  rua: ["dmarc@example.org"],
  ruf: [],
  adkim: "s",
  aspf: "s",
  pct: 100,
};

describe("dmarcTxt (RFC 7489 6.3, 6.4)", () => {
  test("the record lives at _dmarc.<domain> (RFC 7489 6.1)", () => {
    assert.equal(dmarcRecordName("example.org"), "_dmarc.example.org");
  });

  const policies: DmarcPolicy[] = ["none", "quarantine", "reject"];
  for (const p of policies) {
    for (const sp of policies) {
      test(`p=${p} sp=${sp}: v first, p second, sp third`, () => {
        assert.equal(
          dmarcTxt({ ...base, policy: p, subdomainPolicy: sp }),
          `v=DMARC1; p=${p}; sp=${sp}; adkim=s; aspf=s; rua=mailto:dmarc@example.org`,
        );
      });
    }
  }

  for (const adkim of ["r", "s"] as const) {
    for (const aspf of ["r", "s"] as const) {
      test(`alignment adkim=${adkim} aspf=${aspf}`, () => {
        assert.equal(
          dmarcTxt({ ...base, adkim, aspf }),
          `v=DMARC1; p=reject; sp=reject; adkim=${adkim}; aspf=${aspf}; rua=mailto:dmarc@example.org`,
        );
      });
    }
  }

  const pcts: [number, string][] = [
    [100, ""],
    [50, " pct=50;"],
    [0, " pct=0;"],
  ];
  for (const [pct, tag] of pcts) {
    test(`pct=${pct} ${tag ? "is written" : "is left out (the default)"}`, () => {
      assert.equal(dmarcTxt({ ...base, pct }), `v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s;${tag} rua=mailto:dmarc@example.org`);
    });
  }

  test("several rua targets are comma-separated mailto: URIs", () => {
    assert.equal(
      dmarcTxt({ ...base, rua: ["a@example.org", "mailto:b@example.net"] }),
      "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; rua=mailto:a@example.org,mailto:b@example.net",
    );
  });

  test("ruf targets come with fo=1", () => {
    assert.equal(
      dmarcTxt({ ...base, ruf: ["forensic@example.org"] }),
      "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; rua=mailto:dmarc@example.org; ruf=mailto:forensic@example.org; fo=1",
    );
  });

  test("no rua and no ruf leaves both tags out", () => {
    assert.equal(dmarcTxt({ ...base, rua: [] }), "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s");
  });

  test("a comma or ! inside an address is %-encoded (RFC 7489 6.3)", () => {
    assert.equal(
      dmarcTxt({ ...base, rua: ["odd,name!@example.org"] }),
      "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; rua=mailto:odd%2Cname%21@example.org",
    );
  });

  for (const pct of [-1, 101, 12.5]) {
    test(`pct=${pct} is refused`, () => {
      assert.throws(() => dmarcTxt({ ...base, pct }), /dmarc\.pct: .* is not an integer 0\.\.100/);
    });
  }
});
