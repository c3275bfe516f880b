// The reports we send: which domains ask for them (TLSRPT and DMARC records), what goes in them
// (RFC 8460 4.4 documents, RFC 7489 appendix C XML with rows summed) and the evaluations they are
// made of, read from mailauth's result or from rspamd's symbols.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseTlsrptRecord, reportedDomains, tlsReportDocument, tlsReportMail } from "../../server-bootstrap/maild/reports/tlsrpt-send";
import {
  dmarcReportMail,
  dmarcReportXml,
  evaluationsByDomain,
  externalVerificationName,
  parseDmarcRecord,
  reportRows,
} from "../../server-bootstrap/maild/reports/dmarc-send";
import { dispositionFromRspamd, evaluationFromRspamd, type DmarcEvaluation } from "../../server-bootstrap/maild/reports/dmarc-evaluation";
import { parseDmarcAggregate } from "../../server-bootstrap/maild/reports/dmarc-aggregate";
import type { TlsDayReport } from "../../server-bootstrap/maild/outbound/tls-report";

describe("parseTlsrptRecord (RFC 8460 3)", () => {
  test("mailto and https targets, in order", () =>
    assert.deepEqual(parseTlsrptRecord(["v=TLSRPTv1; rua=mailto:tls@peer.test,https://reports.peer.test/tlsrpt"]), {
      rua: ["mailto:tls@peer.test", "https://reports.peer.test/tlsrpt"],
    }));
  test("two TLSRPT records mean none", () =>
    assert.equal(parseTlsrptRecord(["v=TLSRPTv1; rua=mailto:a@b.test", "v=TLSRPTv1; rua=mailto:c@d.test"]), undefined));
  test("other TXT records are ignored; a record without a usable rua is none", () => {
    assert.deepEqual(parseTlsrptRecord(["v=spf1 -all", "v=TLSRPTv1;rua=mailto:a@b.test"]), { rua: ["mailto:a@b.test"] });
    assert.equal(parseTlsrptRecord(["v=TLSRPTv1; rua=http://insecure.test/"]), undefined);
  });
});

test("tlsReportDocument: one day, only the policy domain's policies, RFC 8460 file name and subject", () => {
  const day: TlsDayReport = {
    date: "2026-12-05",
    policies: [
      {
        policy: { "policy-type": "sts", "policy-domain": "peer.test", "mx-host": ["mail.peer.test"] },
        summary: { "total-successful-session-count": 4, "total-failure-session-count": 0 },
        "failure-details": [],
      },
      {
        policy: { "policy-type": "no-policy-found", "policy-domain": "other.test" },
        summary: { "total-successful-session-count": 1, "total-failure-session-count": 0 },
        "failure-details": [],
      },
    ],
  };
  assert.deepEqual(reportedDomains(day), ["other.test", "peer.test"]);
  const doc = tlsReportDocument(day, "peer.test", { organization: "mx.example.org", contact: "postmaster@example.org" });
  assert.deepEqual(doc, {
    "organization-name": "mx.example.org",
    "date-range": { "start-datetime": "2026-12-05T00:00:00Z", "end-datetime": "2026-12-05T23:59:59Z" },
    "contact-info": "postmaster@example.org",
    "report-id": "2026-12-05T00:00:00Z_peer.test",
    policies: [day.policies[0]],
  });
  const mail = tlsReportMail(doc, "peer.test", "mx.example.org");
  assert.equal(mail.filename, "mx.example.org!peer.test!1796428800!1796515199.json.gz");
  assert.equal(mail.subject, "Report Domain: peer.test Submitter: mx.example.org Report-ID: <2026-12-05T00:00:00Z_peer.test>");
  assert.deepEqual(mail.headers, { "TLS-Report-Domain": "peer.test", "TLS-Report-Submitter": "mx.example.org" });
});

describe("parseDmarcRecord (RFC 7489 6.3, 6.4)", () => {
  test("rua with size limits in the RFC's units", () =>
    assert.deepEqual(
      parseDmarcRecord(["v=DMARC1; p=quarantine; sp=reject; adkim=s; pct=50; rua=mailto:a@peer.test!10m,mailto:b@peer.test,https://x"]),
      {
        p: "quarantine",
        sp: "reject",
        adkim: "s",
        aspf: "r",
        pct: 50,
        rua: [{ address: "a@peer.test", maxBytes: 10 * 2 ** 20 }, { address: "b@peer.test" }],
      },
    ));
  test("no record, two records, or no valid p= is no policy", () => {
    assert.equal(parseDmarcRecord([]), undefined);
    assert.equal(parseDmarcRecord(["v=DMARC1; p=none", "v=DMARC1; p=reject"]), undefined);
    assert.equal(parseDmarcRecord(["v=DMARC1; p=maybe"]), undefined);
  });
});

test("externalVerificationName: inside the policy domain no opt-in is needed; elsewhere RFC 7489 7.1's name", () => {
  assert.equal(externalVerificationName("peer.test", "peer.test"), undefined);
  assert.equal(externalVerificationName("peer.test", "reports.peer.test"), undefined);
  assert.equal(externalVerificationName("peer.test", "dmarc-service.example"), "peer.test._report._dmarc.dmarc-service.example");
});

const evaluation = (o: Partial<DmarcEvaluation> = {}): DmarcEvaluation => ({
  at: Date.UTC(2026, 11, 5, 10),
  sourceIp: "198.51.100.4",
  headerFrom: "peer.test",
  envelopeFrom: "peer.test",
  policyDomain: "peer.test",
  disposition: "none",
  dkimAligned: "pass",
  spfAligned: "pass",
  dkim: [{ domain: "peer.test", selector: "s1", result: "pass" }],
  spf: { domain: "peer.test", scope: "mfrom", result: "pass" },
  optional: false,
  ...o,
});

test("reportRows sums identical evaluations; evaluationsByDomain drops our own domains and optional-only ones", () => {
  const evals = [
    evaluation(),
    evaluation({ at: Date.UTC(2026, 11, 5, 11) }),
    evaluation({ sourceIp: "203.0.113.9", dkimAligned: "fail", spfAligned: "fail", disposition: "reject" }),
    evaluation({ policyDomain: "reports-only.test", optional: true }),
    evaluation({ policyDomain: "example.org" }),
  ];
  const byDomain = evaluationsByDomain(evals, ["example.org"]);
  assert.deepEqual([...byDomain.keys()], ["peer.test"]);
  assert.deepEqual(
    reportRows(byDomain.get("peer.test")!).map((r) => [r.sourceIp, r.count, r.disposition]),
    [
      ["198.51.100.4", 2, "none"],
      ["203.0.113.9", 1, "reject"],
    ],
  );
});

test("our aggregate report reads back as the RFC 7489 appendix C document it claims to be", () => {
  const meta = {
    orgName: "mx.example.org",
    email: "postmaster@example.org",
    reportId: "2026-12-05.peer.test@mx.example.org",
    begin: 1796428800,
    end: 1796515199,
  };
  const policy = parseDmarcRecord(["v=DMARC1; p=none; rua=mailto:dmarc@peer.test"])!;
  const xml = dmarcReportXml(meta, "peer.test", policy, reportRows([evaluation(), evaluation({ headerFrom: "a<b&c" })]));
  const back = parseDmarcAggregate(xml);
  assert.equal(back.orgName, "mx.example.org");
  assert.equal(back.domain, "peer.test");
  assert.deepEqual(back.policy, { p: "none", sp: "none", adkim: "r", aspf: "r", pct: 100 });
  assert.deepEqual(
    back.records.map((r) => [r.sourceIp, r.count, r.headerFrom, r.dkim, r.spf]),
    [
      [
        "198.51.100.4",
        1,
        "peer.test",
        [{ domain: "peer.test", selector: "s1", result: "pass" }],
        [{ domain: "peer.test", scope: "mfrom", result: "pass" }],
      ],
      [
        "198.51.100.4",
        1,
        "a<b&c",
        [{ domain: "peer.test", selector: "s1", result: "pass" }],
        [{ domain: "peer.test", scope: "mfrom", result: "pass" }],
      ],
    ],
  );
  const mail = dmarcReportMail(meta, "peer.test", xml);
  assert.equal(mail.filename, "mx.example.org!peer.test!1796428800!1796515199.xml.gz");
  assert.equal(mail.subject, "Report Domain: peer.test Submitter: mx.example.org Report-ID: <2026-12-05.peer.test@mx.example.org>");
});

describe("evaluations from a verifier's answer", () => {
  const ctx = {
    at: 5,
    sourceIp: "198.51.100.4",
    sender: "bounce@mail.peer.test",
    helo: "mail.peer.test",
    disposition: "none" as const,
    optional: false,
  };

  test("rspamd: the policy domain from DMARC_POLICY_*, DKIM from DKIM_TRACE, alignment recomputed under the policy domain", () => {
    // options as rspamd 3.4 dmarc.lua and dkim_check.lua write them
    const pass = evaluationFromRspamd(
      {
        symbols: {
          DMARC_POLICY_ALLOW: { options: ["peer.test", "none"] },
          R_SPF_ALLOW: { options: ["+ip4:198.51.100.4"] },
          DKIM_TRACE: { options: ["peer.test:+", "other.test:-"] },
        },
      },
      { ...ctx, headerFrom: "peer.test" },
    )!;
    assert.deepEqual(
      [pass.policyDomain, pass.spfAligned, pass.dkimAligned, pass.dkim],
      [
        "peer.test",
        "pass",
        "pass",
        [
          { domain: "peer.test", result: "pass" },
          { domain: "other.test", result: "fail" },
        ],
      ],
    );
    const failed = evaluationFromRspamd(
      { symbols: { DMARC_POLICY_REJECT: { options: ["peer.test : No valid SPF, No valid DKIM", "reject"] }, R_SPF_FAIL: { options: [] } } },
      { ...ctx, headerFrom: "peer.test", disposition: "reject" },
    )!;
    assert.deepEqual(
      [failed.policyDomain, failed.spfAligned, failed.dkimAligned, failed.spf.result, failed.disposition],
      ["peer.test", "fail", "fail", "fail", "reject"],
    );
    assert.equal(evaluationFromRspamd({ symbols: { DMARC_NA: { options: ["No From header"] } } }, { ...ctx, headerFrom: "" }), undefined);
  });

  test("the disposition is the DMARC policy we applied: reject or quarantine only for an enforced failure refused or filed in Junk", () => {
    const reject = { DMARC_POLICY_REJECT: { options: ["peer.test : No valid SPF, No valid DKIM", "reject"] } };
    const quarantine = { DMARC_POLICY_QUARANTINE: { options: ["peer.test : No valid SPF, No valid DKIM", "quarantine"] } };
    const sampledOut = { DMARC_POLICY_QUARANTINE: { options: ["peer.test : No valid SPF, No valid DKIM", "quarantine", "sampled_out"] } };
    const pass = { DMARC_POLICY_ALLOW: { options: ["peer.test", "reject"] } };
    const cases: [string, Record<string, { options: string[] }>, string, DmarcEvaluation["disposition"]][] = [
      ["p=reject failure refused", reject, "reject", "reject"],
      ["p=quarantine failure filed in Junk", quarantine, "junk", "quarantine"],
      ["p=quarantine failure refused as spam", quarantine, "reject", "reject"],
      ["p=quarantine failure delivered to the inbox", quarantine, "inbox", "none"],
      ["failure sampled out by pct=, filed in Junk", sampledOut, "junk", "none"],
      ["pass refused as spam", pass, "reject", "none"],
      ["pass filed in Junk", pass, "junk", "none"],
      ["no DMARC record, refused as spam", { DMARC_NA: { options: ["No DMARC record"] } }, "reject", "none"],
    ];
    for (const [name, symbols, kind, expected] of cases) {
      assert.equal(dispositionFromRspamd({ symbols }, { kind }), expected, name);
    }
  });
});
