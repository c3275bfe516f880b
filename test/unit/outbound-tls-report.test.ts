import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  certificateResult,
  TlsReport,
  MAX_FAILURE_DETAILS_PER_POLICY,
  MAX_POLICIES_PER_DAY,
} from "../../server-bootstrap/maild/outbound/tls-report";

let dataDir = "";
before(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tlsrpt-test-"));
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const STS = {
  policyDomain: "example.org",
  policyType: "sts" as const,
  policyString: ["version: STSv1", "mode: enforce", "mx: mx.example.org", "max_age: 86400"],
  mxHost: ["mx.example.org"],
};

describe("TLS report (RFC 8460)", () => {
  test("sessions are counted per policy domain and policy, failures per result type, MX host and IP, in the RFC 8460 4.4 shape", async () => {
    const dir = path.join(dataDir, "a");
    const report = new TlsReport({ dataDir: () => dir, now: () => new Date("2025-03-04T10:00:00Z") });
    report.record({ ...STS, result: "success", receivingMxHostname: "mx.example.org", receivingIp: "198.51.100.25" });
    report.record({ ...STS, result: "success", receivingMxHostname: "mx.example.org", receivingIp: "198.51.100.25" });
    report.record({
      ...STS,
      result: "certificate-not-trusted",
      receivingMxHostname: "mx.example.org",
      receivingIp: "198.51.100.25",
      failureReasonCode: "DEPTH_ZERO_SELF_SIGNED_CERT",
    });
    report.record({
      ...STS,
      result: "certificate-not-trusted",
      receivingMxHostname: "mx.example.org",
      receivingIp: "198.51.100.25",
      failureReasonCode: "DEPTH_ZERO_SELF_SIGNED_CERT",
    });
    report.record({
      policyDomain: "example.net",
      policyType: "no-policy-found",
      result: "starttls-not-supported",
      receivingMxHostname: "mx.example.net",
      receivingIp: "2001:db8::25",
    });

    assert.deepEqual(await report.readDay("2025-03-04"), {
      date: "2025-03-04",
      policies: [
        {
          policy: {
            "policy-type": "sts",
            "policy-string": STS.policyString,
            "policy-domain": "example.org",
            "mx-host": ["mx.example.org"],
          },
          summary: { "total-successful-session-count": 2, "total-failure-session-count": 2 },
          "failure-details": [
            {
              "result-type": "certificate-not-trusted",
              "receiving-mx-hostname": "mx.example.org",
              "receiving-ip": "198.51.100.25",
              "failed-session-count": 2,
              "failure-reason-code": "DEPTH_ZERO_SELF_SIGNED_CERT",
            },
          ],
        },
        {
          policy: { "policy-type": "no-policy-found", "policy-domain": "example.net" },
          summary: { "total-successful-session-count": 0, "total-failure-session-count": 1 },
          "failure-details": [
            {
              "result-type": "starttls-not-supported",
              "receiving-mx-hostname": "mx.example.net",
              "receiving-ip": "2001:db8::25",
              "failed-session-count": 1,
            },
          ],
        },
      ],
    });
    assert.ok(fs.existsSync(path.join(dir, "reports", "tlsrpt", "2025-03-04.json")));
  });

  test("another policy version (other policy string) is a separate entry", async () => {
    const dir = path.join(dataDir, "b");
    const report = new TlsReport({ dataDir: () => dir, now: () => new Date("2025-03-04T10:00:00Z") });
    report.record({ ...STS, result: "success" });
    report.record({ ...STS, policyString: ["version: STSv1", "mode: testing", "mx: mx.example.org", "max_age: 86400"], result: "success" });
    assert.equal((await report.readDay("2025-03-04"))?.policies.length, 2);
  });

  test("sessions go to their UTC day", async () => {
    const dir = path.join(dataDir, "c");
    let now = new Date("2025-03-04T23:59:59Z");
    const report = new TlsReport({ dataDir: () => dir, now: () => now });
    report.record({ ...STS, result: "success" });
    now = new Date("2025-03-05T00:00:00Z");
    report.record({ ...STS, result: "success" });
    report.record({ ...STS, result: "success" });
    assert.equal((await report.readDay("2025-03-04"))?.policies[0].summary["total-successful-session-count"], 1);
    assert.equal((await report.readDay("2025-03-05"))?.policies[0].summary["total-successful-session-count"], 2);
    assert.equal(await report.readDay("2025-03-06"), undefined);
  });

  test("a restart on the same day continues the counts on disk", async () => {
    const dir = path.join(dataDir, "d");
    const now = () => new Date("2025-03-04T08:00:00Z");
    const first = new TlsReport({ dataDir: () => dir, now });
    first.record({ ...STS, result: "success" });
    await first.flush();
    const second = new TlsReport({ dataDir: () => dir, now });
    second.record({ ...STS, result: "success" });
    second.record({ ...STS, result: "validation-failure", receivingMxHostname: "mx.example.org" });
    const day = await second.readDay("2025-03-04");
    assert.deepEqual(day?.policies[0].summary, { "total-successful-session-count": 2, "total-failure-session-count": 1 });
  });

  test("files are replaced atomically: no temporary files are left behind", async () => {
    const dir = path.join(dataDir, "e");
    const report = new TlsReport({ dataDir: () => dir, now: () => new Date("2025-03-04T08:00:00Z") });
    for (let i = 0; i < 20; i++) {
      report.record({ ...STS, result: "success" });
      if (i % 3 === 0) await report.flush();
    }
    await report.flush();
    assert.deepEqual(fs.readdirSync(path.join(dir, "reports", "tlsrpt")), ["2025-03-04.json"]);
    assert.equal(
      JSON.parse(fs.readFileSync(path.join(dir, "reports", "tlsrpt", "2025-03-04.json"), "utf8")).policies[0].summary[
        "total-successful-session-count"
      ],
      20,
    );
  });

  test("a day's report is bounded: beyond MAX_POLICIES_PER_DAY new domains and MAX_FAILURE_DETAILS_PER_POLICY details are left out", async () => {
    const dir = path.join(dataDir, "bounded");
    const report = new TlsReport({ dataDir: () => dir, now: () => new Date("2025-03-07T10:00:00Z") });
    for (let i = 0; i < MAX_POLICIES_PER_DAY + 50; i++)
      report.record({ policyDomain: `d${i}.example`, policyType: "no-policy-found", result: "success" });
    // a domain already in the report still counts
    report.record({ policyDomain: "d0.example", policyType: "no-policy-found", result: "success" });
    for (let i = 0; i < MAX_FAILURE_DETAILS_PER_POLICY + 10; i++) {
      report.record({
        policyDomain: "d1.example",
        policyType: "no-policy-found",
        result: "validation-failure",
        receivingIp: `198.51.100.${i % 250}`,
        failureReasonCode: `r${i}`,
      });
    }
    const day = (await report.readDay("2025-03-07"))!;
    assert.equal(day.policies.length, MAX_POLICIES_PER_DAY);
    assert.ok(!day.policies.some((p) => p.policy["policy-domain"] === `d${MAX_POLICIES_PER_DAY}.example`));
    assert.equal(day.policies[0].summary["total-successful-session-count"], 2);
    const d1 = day.policies[1];
    assert.equal(d1.summary["total-failure-session-count"], MAX_FAILURE_DETAILS_PER_POLICY + 10, "the summary counts every failed session");
    assert.equal(d1["failure-details"].length, MAX_FAILURE_DETAILS_PER_POLICY);
  });

  test("readDay refuses a date that is not YYYY-MM-DD", async () => {
    const report = new TlsReport({ dataDir: () => dataDir });
    await assert.rejects(report.readDay("../../etc/passwd"), /YYYY-MM-DD/);
  });

  test("OpenSSL verification codes map to RFC 8460 4.3.1 result types", () => {
    assert.equal(certificateResult("CERT_HAS_EXPIRED"), "certificate-expired");
    assert.equal(certificateResult("ERR_TLS_CERT_ALTNAME_INVALID"), "certificate-host-mismatch");
    assert.equal(certificateResult("DEPTH_ZERO_SELF_SIGNED_CERT"), "certificate-not-trusted");
    assert.equal(certificateResult("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "certificate-not-trusted");
    assert.equal(certificateResult("ECONNRESET"), undefined);
    assert.equal(certificateResult(undefined), undefined);
  });
});
