// What counts as trouble (conditions.ts), how alerts fire once and clear once (alerts.ts), what the
// digest says (digest.ts), the facts read from the queue and the backup status file (facts.ts), and
// the messages the server writes (mail-message.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { conditions } from "../../server-bootstrap/maild/monitoring/conditions";
import { alertChanges, readState, writeState } from "../../server-bootstrap/maild/monitoring/alerts";
import { digestText } from "../../server-bootstrap/maild/monitoring/digest";
import { backupFact, queueFact, type Facts } from "../../server-bootstrap/maild/monitoring/facts";
import { workPaths } from "../../server-bootstrap/backup/settings";
import { composeMessage } from "../../server-bootstrap/maild/monitoring/mail-message";
import { DEFAULT_THRESHOLDS } from "../../server-bootstrap/maild/operations-config";
import { summariseDmarc, summariseTlsrpt } from "../../server-bootstrap/maild/reports/report-summary";

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);

function healthy(): Facts {
  return {
    at: NOW,
    hostname: "mx.example.org",
    certificate: { notAfter: "2027-02-01T00:00:00.000Z", daysLeft: 56, subject: "CN=mx.example.org" },
    queue: { size: 0, deferredByDomain: [] },
    disk: { path: "/var/lib/maild", usedPercent: 40, freeBytes: 6 * 2 ** 30 },
    backup: { configured: true, lastSuccess: new Date(NOW - 3600_000).toISOString(), ageSeconds: 3600, overdueAfterSeconds: 93_600 },
    spamFilter: { configured: true, ok: true, detail: "http://127.0.0.1:11333/ping answered 200" },
    dnsDrift: { checked: 20, findings: [] },
    blocklists: { checkedAt: NOW, results: [{ zone: "zen.spamhaus.org", kind: "ip", target: "198.51.100.2", status: "clear", codes: [] }] },
    dmarc: summariseDmarc([], ["198.51.100.2"]),
    tlsrpt: summariseTlsrpt([]),
  };
}

describe("conditions", () => {
  /** A source that is not ours, every message failing DMARC: someone spoofing example.org. */
  const SPOOFER: Facts["dmarc"]["sources"][number] = {
    domain: "example.org",
    sourceIp: "203.0.113.9",
    reporter: "google.com",
    ours: false,
    messages: 5,
    dmarcPass: 0,
    dmarcFail: 5,
    spfAlignedPass: 0,
    dkimAlignedPass: 0,
    dispositions: {},
  };

  test("a healthy server has none", () => assert.deepEqual(conditions(healthy(), DEFAULT_THRESHOLDS), []));

  test("each kind of trouble is one condition with a stable id", () => {
    const f = healthy();
    f.certificate.daysLeft = 5;
    f.queue = {
      size: 250,
      oldestArrival: NOW - 8 * 3600_000,
      deferredByDomain: [{ domain: "slow.example", recipients: 250, lastError: "421 try later" }],
    };
    f.disk!.usedPercent = 93;
    f.backup = {
      configured: true,
      lastSuccess: new Date(NOW - 3 * 86_400_000).toISOString(),
      ageSeconds: 3 * 86_400,
      overdueAfterSeconds: 93_600,
    };
    f.spamFilter = { configured: true, ok: false, detail: "connect ECONNREFUSED 127.0.0.1:11333" };
    f.dnsDrift.findings = [{ name: "example.org", type: "TXT", expected: "v=spf1 mx -all", found: ["v=spf1 -all"] }];
    f.blocklists.results[0] = {
      ...f.blocklists.results[0],
      status: "listed",
      codes: ["127.0.0.2"],
      reason: "SBL",
      delistUrl: "https://www.spamhaus.org/query/ip/198.51.100.2",
    };
    f.dmarc.sources = [
      {
        domain: "example.org",
        sourceIp: "198.51.100.2",
        reporter: "google.com",
        ours: true,
        messages: 10,
        dmarcPass: 8,
        dmarcFail: 2,
        spfAlignedPass: 8,
        dkimAlignedPass: 0,
        dispositions: {},
      },
      SPOOFER,
    ];
    f.tlsrpt.policies = [
      {
        policyDomain: "example.org",
        reporter: "Google",
        policyType: "sts",
        successful: 10,
        failed: 1,
        failures: { "certificate-expired": 1 },
      },
    ];
    assert.deepEqual(
      conditions(f, DEFAULT_THRESHOLDS).map((c) => [c.id, c.severity, c.summary]),
      [
        ["certificate", "warning", "TLS certificate expires in 5 days"],
        ["queue-size", "warning", "250 messages wait in the outbound queue"],
        ["queue-age", "warning", "the oldest queued message has waited 8 h"],
        ["disk", "warning", "data volume 93% full"],
        ["backup", "critical", "last good backup is 72 h old"],
        ["spam-filter", "critical", "spam filter not answering"],
        ["dns:TXT:example.org:v=spf1 mx -all", "warning", "DNS TXT example.org differs from the plan"],
        ["blocklist:zen.spamhaus.org:198.51.100.2", "critical", "198.51.100.2 is listed on zen.spamhaus.org"],
        ["dmarc:example.org:198.51.100.2", "critical", "google.com saw 2 message(s) from our 198.51.100.2 fail DMARC for example.org"],
        ["tls:example.org", "warning", "Google failed 1 TLS session(s) to example.org"],
      ],
    );
  });

  test("spoofers failing DMARC are not an alert (the digest lists them)", () => {
    const f = healthy();
    f.dmarc.sources = [SPOOFER];
    assert.deepEqual(conditions(f, DEFAULT_THRESHOLDS), []);
  });
});

describe("alertChanges", () => {
  const listed = { id: "blocklist:bl.test:198.51.100.2", severity: "critical" as const, summary: "listed", detail: "d" };
  test("a new condition fires once; while it lasts it keeps its start; when gone it clears once", () => {
    const first = alertChanges([], [listed], 1000);
    assert.deepEqual(
      first.fired.map((a) => [a.id, a.since]),
      [[listed.id, 1000]],
    );
    const second = alertChanges(first.active, [{ ...listed, detail: "newer wording" }], 2000);
    assert.deepEqual(second.fired, []);
    assert.deepEqual(
      second.active.map((a) => [a.since, a.detail]),
      [[1000, "newer wording"]],
    );
    const third = alertChanges(second.active, [], 3000);
    assert.deepEqual(
      third.cleared.map((a) => a.id),
      [listed.id],
    );
    assert.deepEqual(third.active, []);
    assert.deepEqual(alertChanges(third.active, [], 4000).cleared, []);
  });

  test("the open alerts survive a restart through the state file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mon-"));
    try {
      assert.deepEqual(readState(dir), { version: 1, active: [] });
      await writeState(dir, { version: 1, active: [{ ...listed, since: 5 }], lastDigest: "2026-12-06" });
      const back = readState(dir);
      assert.deepEqual(alertChanges(back.active, [listed], 9).fired, []);
      assert.equal(back.lastDigest, "2026-12-06");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("queueFact: size, oldest arrival, deferred recipients by destination with the latest error", () => {
  assert.deepEqual(
    queueFact([
      { id: "a", arrival: 2000, pending: [{ address: "x@slow.example", lastDiagnostic: "old", lastAt: 1 }] },
      {
        id: "b",
        arrival: 1000,
        pending: [{ address: "y@Slow.example", lastDiagnostic: "421 busy", lastAt: 5 }, { address: "z@other.example" }],
      },
    ]),
    {
      size: 2,
      oldestArrival: 1000,
      deferredByDomain: [
        { domain: "slow.example", recipients: 2, lastError: "421 busy" },
        { domain: "other.example", recipients: 1 },
      ],
    },
  );
});

test("backupFact reads the backup job's status file (version 1), and says so when there is none", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bk-"));
  try {
    assert.deepEqual(backupFact(dir, NOW), { configured: false });
    fs.mkdirSync(path.dirname(workPaths(dir).status), { recursive: true });
    fs.writeFileSync(
      workPaths(dir).status,
      JSON.stringify({
        version: 1,
        target: "sftp:u1@u1.your-storagebox.de:mail",
        appendOnly: false,
        overdueAfterSeconds: 93_600,
        lastSuccess: { snapshot: "ab12", time: new Date(NOW - 7200_000).toISOString(), files: 3, bytes: 10, dataAdded: 1, durationMs: 5 },
        lastAttempt: { time: new Date(NOW - 60_000).toISOString(), ok: false, error: "ssh: connection refused" },
      }),
    );
    assert.deepEqual(backupFact(dir, NOW), {
      configured: true,
      lastSuccess: new Date(NOW - 7200_000).toISOString(),
      ageSeconds: 7200,
      overdueAfterSeconds: 93_600,
      lastAttemptOk: false,
      lastError: "ssh: connection refused",
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the digest says 'all well' in its subject when nothing is open, and lists each section", () => {
  const { subject, text } = digestText(healthy(), []);
  assert.equal(subject, "[mx.example.org] daily status: all well");
  for (const heading of [
    "Alerts: none open",
    "Blocklists",
    "Certificate",
    "Outbound queue",
    "DMARC reports received (last 24 h)",
    "TLS reports received (last 24 h)",
    "DNS against the plan",
    "Disk, backup, spam filter",
  ])
    assert.ok(text.includes(`\n${heading}\n`), heading);
  assert.ok(text.split("\n").includes("clear  198.51.100.2 on zen.spamhaus.org"));
  assert.match(text, /^all 20 planned records as planned$/m);
});

test("composeMessage: CRLF lines, quoted-printable text, a multipart/report with a base64 attachment", () => {
  const { message, messageId } = composeMessage({
    from: "postmaster@example.org",
    to: ["a@peer.test"],
    subject: "Grüße",
    text: "line one ends with a space \nnon-ASCII: é=",
    hostname: "mx.example.org",
    reportType: "tlsrpt",
    headers: { "TLS-Report-Domain": "peer.test" },
    attachments: [{ contentType: "application/tlsrpt+gzip", filename: "r.json.gz", data: Buffer.from([0, 1, 2, 255]) }],
  });
  const text = message.toString("latin1");
  assert.ok(!/[^\r]\n/.test(text), "every line ends in CRLF");
  assert.ok(
    [...message].every((b) => b < 0x80),
    "7-bit only",
  );
  assert.match(text, /^Subject: =\?UTF-8\?B\?R3LDvMOfZQ==\?=\r$/m);
  assert.match(text, new RegExp(`^Message-ID: ${messageId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\r$`, "m"));
  assert.match(text, /Content-Type: multipart\/report; report-type="tlsrpt"; boundary=/);
  assert.match(text, /line one ends with a space=20\r\nnon-ASCII: =C3=A9=3D\r\n/);
  assert.match(text, /filename="r\.json\.gz"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\/w==\r\n/);
});
