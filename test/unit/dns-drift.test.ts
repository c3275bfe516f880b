// DNS drift (components/shared/dns-drift.ts): the planner's records in one normal form per type,
// compared with what a resolver answers; missing and changed records found, lookups that fail
// reported as such, nothing reported for records as planned.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dnsDrift, expectedFromPlanned, type DriftResolver } from "../../components/shared/dns-drift";

test("expectedFromPlanned brings each planned type to the form a resolver's answer takes", () => {
  assert.deepEqual(
    [
      { name: "mx.example.org", type: "AAAA", content: "2001:DB8:1:0::1" },
      { name: "example.org", type: "MX", content: "mx.example.org", priority: 10 },
      { name: "example.org", type: "TXT", content: '"v=spf1 " "mx -all"' },
      {
        name: "example.org",
        type: "CAA",
        content: '0 issue "letsencrypt.org"',
        data: { flags: 0, tag: "issue", value: "letsencrypt.org" },
      },
      {
        name: "_25._tcp.mx.example.org",
        type: "TLSA",
        content: "3 1 1 AB",
        data: { usage: 3, selector: 1, matchingType: 1, certificate: "ABCD" },
      },
      {
        name: "_imaps._tcp.example.org",
        type: "SRV",
        content: "0 1 993 mx.example.org",
        data: { priority: 0, weight: 1, port: 993, target: "mx.example.org." },
      },
      { name: "example.org", type: "NS", content: "ns.example.org" },
    ].map(expectedFromPlanned),
    [
      { name: "mx.example.org", type: "AAAA", value: "2001:db8:1::1" },
      { name: "example.org", type: "MX", value: "10 mx.example.org" },
      { name: "example.org", type: "TXT", value: "v=spf1 mx -all" },
      { name: "example.org", type: "CAA", value: "0 issue letsencrypt.org" },
      { name: "_25._tcp.mx.example.org", type: "TLSA", value: "3 1 1 abcd" },
      { name: "_imaps._tcp.example.org", type: "SRV", value: "0 1 993 mx.example.org" },
      undefined,
    ],
  );
});

const notFound = () => Promise.reject(Object.assign(new Error("no"), { code: "ENOTFOUND" }));
const resolver: DriftResolver = {
  resolve4: async () => ["198.51.100.2"],
  resolve6: async () => ["2001:db8:1::1"],
  resolveMx: async () => [{ priority: 10, exchange: "mx.example.org" }],
  resolveTxt: async (name) => (name === "example.org" ? [["v=spf1 ", "-all"]] : notFound()),
  resolveCaa: async () => [{ critical: 0, issue: "letsencrypt.org" }],
  resolveTlsa: async () => [{ certUsage: 3, selector: 1, match: 1, data: new Uint8Array([0xab, 0xcd]).buffer }],
  resolveSrv: () => Promise.reject(Object.assign(new Error("timeout"), { code: "ETIMEOUT" })),
};

test("dnsDrift reports what DNS does not answer as planned, and only that", async () => {
  const findings = await dnsDrift(
    [
      { name: "mx.example.org", type: "A", value: "198.51.100.2" },
      { name: "mx.example.org", type: "AAAA", value: "2001:db8:1::1" },
      { name: "example.org", type: "MX", value: "10 mx.example.org" },
      { name: "example.org", type: "TXT", value: "v=spf1 mx -all" },
      { name: "_dmarc.example.org", type: "TXT", value: "v=DMARC1; p=reject" },
      { name: "example.org", type: "CAA", value: "0 issue letsencrypt.org" },
      { name: "_25._tcp.mx.example.org", type: "TLSA", value: "3 1 1 abcd" },
      { name: "_imaps._tcp.example.org", type: "SRV", value: "0 1 993 mx.example.org" },
    ],
    resolver,
  );
  assert.deepEqual(findings, [
    { name: "_dmarc.example.org", type: "TXT", expected: "v=DMARC1; p=reject", found: [] },
    { name: "_imaps._tcp.example.org", type: "SRV", expected: "0 1 993 mx.example.org", found: [], error: "ETIMEOUT" },
    { name: "example.org", type: "TXT", expected: "v=spf1 mx -all", found: ["v=spf1 -all"] },
  ]);
});
