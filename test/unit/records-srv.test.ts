import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { srvContent, srvPresentation, srvRecords } from "../../components/records/srv";

describe("srvRecords (RFC 6186, RFC 8314)", () => {
  const records = new Map(srvRecords("Mail.Example.org").map((r) => [r.service, r.data]));

  const expected: [string, { priority: number; weight: number; port: number; target: string }][] = [
    ["_submissions._tcp", { priority: 0, weight: 1, port: 465, target: "mail.example.org" }],
    ["_submission._tcp", { priority: 10, weight: 1, port: 587, target: "mail.example.org" }],
    ["_imaps._tcp", { priority: 0, weight: 1, port: 993, target: "mail.example.org" }],
    ["_imap._tcp", { priority: 10, weight: 1, port: 143, target: "mail.example.org" }],
    ["_pop3s._tcp", { priority: 0, weight: 0, port: 0, target: "." }],
    ["_pop3._tcp", { priority: 0, weight: 0, port: 0, target: "." }],
    ["_autodiscover._tcp", { priority: 0, weight: 1, port: 443, target: "mail.example.org" }],
  ];
  for (const [service, data] of expected) {
    test(`${service} -> ${data.priority} ${data.weight} ${data.port} ${data.target}`, () => {
      assert.deepEqual(records.get(service), data);
    });
  }

  test("exactly these services are planned", () => {
    assert.deepEqual([...records.keys()].sort(), expected.map(([s]) => s).sort());
  });

  test("implicit TLS submission is preferred over STARTTLS (RFC 8314 5.1: lower priority number)", () => {
    assert.ok(records.get("_submissions._tcp")!.priority < records.get("_submission._tcp")!.priority);
  });

  test("every reason cites an RFC or the Microsoft spec and fits Cloudflare's 100-character comment", () => {
    for (const r of srvRecords("mail.example.org")) {
      assert.match(r.why, /(RFC \d+|MS-OXDSCLI)/);
      assert.ok(r.why.length <= 100, r.why);
    }
  });
});

describe("SRV content", () => {
  test("Cloudflare's content: weight, port, target separated by single spaces (priority is its own field)", () => {
    assert.equal(srvContent({ priority: 0, weight: 1, port: 465, target: "mail.example.org" }), "1 465 mail.example.org");
  });
  test("Cloudflare's content of a null-target SRV (POP3 not offered): `0 0 .`", () => {
    assert.equal(srvContent({ priority: 0, weight: 0, port: 0, target: "." }), "0 0 .");
  });
  test("zone-file presentation: priority weight port target. (RFC 2782)", () => {
    assert.equal(srvPresentation({ priority: 10, weight: 1, port: 587, target: "mail.example.org" }), "10 1 587 mail.example.org.");
  });
  test("the root target stays a single dot", () => {
    assert.equal(srvPresentation({ priority: 0, weight: 0, port: 0, target: "." }), "0 0 0 .");
  });
});
