// Reports received at our rua addresses: DMARC aggregate (XML; gzip, zip or plain) and TLSRPT
// (JSON, gzip) read from the message, checked, stored bounded and summarised; and every kind of
// bad input (malformed, oversized, zip bomb, gzip bomb, XXE, entity expansion, reports about
// someone else's domain) refused with a reason, nothing stored.
import { describe, test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";
import { extractReport, ReportRefused } from "../../server-bootstrap/maild/reports/report-payload";
import { parseDmarcAggregate } from "../../server-bootstrap/maild/reports/dmarc-aggregate";
import { parseTlsrpt } from "../../server-bootstrap/maild/reports/tlsrpt-report";
import { ReceivedReports } from "../../server-bootstrap/maild/reports/received-reports";
import { ReportIntake, MAX_REPORT_MESSAGE_BYTES } from "../../server-bootstrap/maild/reports/report-intake";
import { summariseDmarc, summariseTlsrpt } from "../../server-bootstrap/maild/reports/report-summary";
import { createLogger } from "../../server-bootstrap/maild/log";
import { dmarcAggregateXml, reportMessage, tlsrptJson, zipOne } from "../fixtures/report-samples";

const BEGIN = Date.UTC(2026, 10, 30) / 1000;
const OUR_IP = "198.51.100.2";
const SPOOFER = "203.0.113.66";

const sampleXml = (reportId = "r-1", domain = "example.org") =>
  dmarcAggregateXml({
    domain,
    reportId,
    begin: BEGIN,
    records: [
      { sourceIp: OUR_IP, count: 12, dkim: "pass", spf: "pass", headerFrom: domain },
      { sourceIp: SPOOFER, count: 3, dkim: "fail", spf: "fail", headerFrom: domain },
    ],
  });

const sampleTls = (reportId = "t-1", domain = "example.org") =>
  tlsrptJson({
    domain,
    mx: "mx.example.org",
    reportId,
    begin: new Date(BEGIN * 1000),
    successful: 40,
    failures: [{ resultType: "certificate-expired", count: 2, receivingIp: OUR_IP, sendingIp: "198.51.100.9" }],
  });

const dmarcMail = (attachment: Buffer, contentType = "application/gzip", filename = "peer.test!example.org!1!2.xml.gz") =>
  Buffer.from(
    reportMessage({
      from: "noreply-dmarc-support@peer.test",
      to: "postmaster@example.org",
      subject: "Report Domain: example.org Submitter: peer.test Report-ID: r-1",
      attachment,
      contentType,
      filename,
    }),
  );

async function refusal(p: Promise<unknown>): Promise<{ reason: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ReportRefused) return { reason: e.reason, message: e.message };
    throw e;
  }
  throw new Error("expected the report to be refused");
}

describe("extractReport finds and decompresses the report in a message", () => {
  test("DMARC XML gzipped in an application/gzip attachment", async () => {
    const p = await extractReport(dmarcMail(gzipSync(sampleXml())));
    assert.equal(p.format, "dmarc");
    assert.equal(p.content.toString(), sampleXml());
    assert.equal(p.filename, "peer.test!example.org!1!2.xml.gz");
  });

  test("DMARC XML in a zip attachment", async () => {
    const p = await extractReport(dmarcMail(zipOne("report.xml", Buffer.from(sampleXml())), "application/zip", "report.zip"));
    assert.equal(p.content.toString(), sampleXml());
  });

  test("a zip that is the whole body (as Google sends it) and an octet-stream recognised by its bytes", async () => {
    const zip = zipOne("report.xml", Buffer.from(sampleXml()));
    const whole = Buffer.from(
      `From: a@peer.test\r\nTo: postmaster@example.org\r\nSubject: r\r\nMIME-Version: 1.0\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${zip.toString("base64")}\r\n`,
    );
    assert.equal((await extractReport(whole)).format, "dmarc");
    assert.equal((await extractReport(dmarcMail(gzipSync(sampleXml()), "application/octet-stream", "r.xml.gz"))).format, "dmarc");
  });

  test("TLSRPT JSON gzipped as application/tlsrpt+gzip in a multipart/report", async () => {
    const message = reportMessage({
      from: "tlsrpt@peer.test",
      to: "postmaster@example.org",
      subject: "Report Domain: example.org",
      attachment: gzipSync(sampleTls()),
      contentType: "application/tlsrpt+gzip",
      filename: "peer.test!example.org!1!2.json.gz",
      tlsrpt: true,
    });
    const p = await extractReport(Buffer.from(message));
    assert.equal(p.format, "tlsrpt");
    assert.deepEqual(JSON.parse(p.content.toString()), JSON.parse(sampleTls()));
  });
});

describe("extractReport refuses what it cannot read safely", () => {
  test("a gzip bomb (200 MB of zeros in 200 KB) stops at the decompression limit", async () => {
    const bomb = gzipSync(Buffer.alloc(200 * 1024 * 1024));
    assert.ok(bomb.length < 300 * 1024);
    const r = await refusal(extractReport(dmarcMail(bomb)));
    assert.equal(r.reason, "too-large");
    assert.match(r.message, /gzip content inflates beyond 10485760 bytes/);
  });

  test("a zip bomb that declares a large entry is refused before inflating", async () => {
    const r = await refusal(extractReport(dmarcMail(zipOne("r.xml", Buffer.alloc(64 * 1024 * 1024)), "application/zip", "r.zip")));
    assert.equal(r.reason, "too-large");
    assert.match(r.message, /declares 67108864 bytes/);
  });

  test("a zip bomb that lies about its size is cut off where the lie ends", async () => {
    const liar = zipOne("r.xml", Buffer.alloc(64 * 1024 * 1024), { declaredSize: 1000 });
    const r = await refusal(extractReport(dmarcMail(liar, "application/zip", "r.zip")));
    assert.equal(r.reason, "too-large");
  });

  test("a zip of two files is not a report", async () => {
    const r = await refusal(
      extractReport(dmarcMail(zipOne("r.xml", Buffer.from(sampleXml()), { extraEntry: true }), "application/zip", "r.zip")),
    );
    assert.deepEqual(r, { reason: "malformed", message: "the zip holds 2 entries; a report zip holds exactly one" });
  });

  test("a truncated gzip is malformed", async () => {
    const r = await refusal(extractReport(dmarcMail(gzipSync(sampleXml()).subarray(0, 40))));
    assert.equal(r.reason, "malformed");
  });

  test("a message without a report attachment says so", async () => {
    const r = await refusal(extractReport(Buffer.from("From: a@peer.test\r\nSubject: hi\r\n\r\njust text\r\n")));
    assert.deepEqual(r, { reason: "no-report", message: "the message has no report attachment" });
  });
});

describe("parseDmarcAggregate", () => {
  test("reads the RFC 7489 appendix C elements", () => {
    const r = parseDmarcAggregate(sampleXml());
    assert.equal(r.orgName, "peer.test");
    assert.equal(r.domain, "example.org");
    assert.equal(r.begin, BEGIN);
    assert.deepEqual(r.policy, { p: "reject", sp: "reject", adkim: "r", aspf: "r", pct: 100 });
    assert.deepEqual(r.records[1], {
      sourceIp: SPOOFER,
      count: 3,
      disposition: "reject",
      dkimAligned: "fail",
      spfAligned: "fail",
      headerFrom: "example.org",
      dkim: [{ domain: "example.org", selector: "s1-rsa", result: "fail" }],
      spf: [{ domain: "example.org", scope: "mfrom", result: "fail" }],
    });
  });

  test("XXE: an external entity is refused before any parsing", () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>`;
    assert.throws(() => parseDmarcAggregate(xxe), {
      name: "ReportRefused",
      reason: "unsafe",
      message: "DMARC report: DOCTYPE and ENTITY declarations are not allowed",
    });
  });

  test("entity expansion (billion laughs) is refused before any parsing", () => {
    const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><feedback>&lol2;</feedback>`;
    assert.throws(() => parseDmarcAggregate(lol), { reason: "unsafe" });
  });

  test("malformed XML names the line", () => {
    assert.throws(() => parseDmarcAggregate("<feedback><report_metadata></feedback>"), {
      reason: "malformed",
      message: /^DMARC report: not well-formed XML \(.*line 1\)$/,
    });
  });

  test("a report missing required elements names each one", () => {
    const broken = sampleXml()
      .replace("<org_name>peer.test</org_name>", "")
      .replace(`<source_ip>${SPOOFER}</source_ip>`, "<source_ip>not-an-ip</source_ip>");
    assert.throws(() => parseDmarcAggregate(broken), {
      reason: "malformed",
      message:
        'DMARC report: feedback.report_metadata.org_name: missing; feedback.record[1].row.source_ip: "not-an-ip" is not an IP address',
    });
  });
});

describe("parseTlsrpt", () => {
  test("reads RFC 8460 4.4 fields", () => {
    const r = parseTlsrpt(sampleTls());
    assert.equal(r.orgName, "Peer Test Inc.");
    assert.equal(r.begin, BEGIN);
    assert.deepEqual(r.policies, [
      {
        policyType: "sts",
        policyDomain: "example.org",
        mxHost: ["mx.example.org"],
        successful: 40,
        failed: 2,
        failures: [
          {
            resultType: "certificate-expired",
            failedSessions: 2,
            sendingMtaIp: "198.51.100.9",
            receivingMxHostname: "mx.example.org",
            receivingIp: OUR_IP,
          },
        ],
      },
    ]);
  });

  test("bad JSON and bad fields are refused, naming the field", () => {
    assert.throws(() => parseTlsrpt("{not json"), { reason: "malformed", message: /^TLSRPT report: not JSON/ });
    const bad = JSON.parse(sampleTls());
    bad.policies[0].summary["total-successful-session-count"] = -1;
    delete bad["report-id"];
    assert.throws(() => parseTlsrpt(JSON.stringify(bad)), {
      message: "TLSRPT report: report-id: missing; policies[0].summary.total-successful-session-count: is not a whole number of sessions",
    });
  });
});

describe("ReportIntake stores what is ours and refuses the rest", () => {
  let dir: string;
  let lines: string[];
  let intake: ReportIntake;
  let store: ReceivedReports;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "reports-"));
    lines = [];
    store = new ReceivedReports({ dataDir: dir, retentionDays: 30, maxDayBytes: 1024 * 1024 });
    intake = new ReportIntake({
      addresses: () => ["postmaster@example.org"],
      domains: () => ["example.org"],
      store,
      log: createLogger((l) => void lines.push(l)),
    });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function ingest(message: Buffer) {
    const copy = intake.copier();
    await pipeline(Readable.from([message]), copy, new Writable({ write: (_c, _e, cb) => cb() }));
    return intake.ingest("m1", copy);
  }

  test("only the published report addresses are read, whatever their case", () => {
    assert.ok(intake.wants("Postmaster@Example.org"));
    assert.ok(!intake.wants("alice@example.org"));
  });

  test("a report is stored once; its resend is a duplicate", async () => {
    assert.deepEqual(await ingest(dmarcMail(gzipSync(sampleXml()))), { kind: "dmarc", result: "stored" });
    assert.deepEqual(await ingest(dmarcMail(gzipSync(sampleXml()))), { kind: "dmarc", result: "duplicate" });
    const stored = await store.dmarc(0, Date.now());
    assert.equal(stored.length, 1);
    assert.equal(stored[0].report.reportId, "r-1");
  });

  test("a report about a domain that is not ours is refused and not stored", async () => {
    const outcome = await ingest(dmarcMail(gzipSync(sampleXml("r-2", "victim.example"))));
    assert.deepEqual(outcome, { kind: "unknown", result: "not-ours" });
    assert.equal((await store.dmarc(0, Date.now())).length, 0);
    const log = JSON.parse(lines.find((l) => l.includes("report.refused"))!);
    assert.equal(log.error, "DMARC report about victim.example, which is not one of our domains");
  });

  test("a message over the size limit is not read at all", async () => {
    const big = Buffer.concat([dmarcMail(gzipSync(sampleXml())), Buffer.alloc(MAX_REPORT_MESSAGE_BYTES, 0x41)]);
    assert.deepEqual(await ingest(big), { kind: "unknown", result: "too-large" });
  });

  test("an XXE report is refused as unsafe", async () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><feedback>&e;</feedback>`;
    assert.deepEqual(await ingest(dmarcMail(gzipSync(xxe))), { kind: "unknown", result: "unsafe" });
  });

  test("a day's file stops growing at its bound", async () => {
    const small = new ReceivedReports({ dataDir: dir, retentionDays: 30, maxDayBytes: 600 });
    const outcome = await small.store({ kind: "dmarc", report: parseDmarcAggregate(sampleXml("r-9")) });
    assert.equal(outcome, "day-full");
  });

  test("day files older than the retention are deleted", async () => {
    const received = path.join(dir, "reports", "received");
    fs.mkdirSync(received, { recursive: true });
    fs.writeFileSync(path.join(received, "dmarc-2020-01-01.jsonl"), "{}\n");
    await store.store({ kind: "tlsrpt", report: parseTlsrpt(sampleTls()) });
    assert.deepEqual(fs.readdirSync(received), [`tlsrpt-${new Date().toISOString().slice(0, 10)}.jsonl`]);
  });
});

describe("summaries", () => {
  test("DMARC per source: our own address apart from a spoofer, failures first, per day", () => {
    const s = summariseDmarc([parseDmarcAggregate(sampleXml())], [OUR_IP]);
    assert.equal(s.messages, 15);
    assert.equal(s.dmarcFail, 3);
    assert.deepEqual(
      s.sources.map((r) => [r.sourceIp, r.ours, r.dmarcPass, r.dmarcFail, r.dispositions]),
      [
        [SPOOFER, false, 0, 3, { reject: 3 }],
        [OUR_IP, true, 12, 0, { none: 12 }],
      ],
    );
    assert.deepEqual(s.daily, [{ date: "2026-11-30", pass: 12, fail: 3 }]);
  });

  test("our own IPv6 address is recognised in whatever form the receiver writes it", () => {
    const report = parseDmarcAggregate(sampleXml());
    report.records[0].sourceIp = "2001:DB8:1:0:0:0:0:2";
    assert.equal(summariseDmarc([report], ["2001:db8:1::2"]).sources.find((r) => r.sourceIp === "2001:DB8:1:0:0:0:0:2")?.ours, true);
  });

  test("TLSRPT per policy domain: failures by result type", () => {
    const s = summariseTlsrpt([parseTlsrpt(sampleTls())]);
    assert.deepEqual(s.policies, [
      {
        policyDomain: "example.org",
        reporter: "Peer Test Inc.",
        policyType: "sts",
        successful: 40,
        failed: 2,
        failures: { "certificate-expired": 2 },
      },
    ]);
    assert.deepEqual(s.daily, [{ date: "2026-11-30", successful: 40, failed: 2 }]);
  });
});
