// Cloudflare records as knot gets them in the lifecycle (infra/lifecycle/lifecycle-dns.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { zoneLine } from "../../infra/lifecycle/lifecycle-dns";
import type { CloudflareRecord } from "../../infra/offline/providers/cloudflare-world";

const record = (r: Partial<CloudflareRecord>): CloudflareRecord =>
  ({
    id: "1",
    zone_id: "z",
    zone_name: "example.org",
    ttl: 1,
    proxied: false,
    proxiable: false,
    settings: {},
    meta: {},
    comment: null,
    tags: [],
    created_on: "",
    modified_on: "",
    ...r,
  }) as CloudflareRecord;

test("records become zone-file lines with absolute names; Cloudflare's automatic TTL is 300", () => {
  assert.equal(
    zoneLine(record({ name: "mail.example.org", type: "A", content: "198.51.100.4" })),
    "mail.example.org. 300 IN A 198.51.100.4",
  );
  assert.equal(
    zoneLine(record({ name: "example.org", type: "MX", content: "mail.example.org", priority: 10, ttl: 3600 })),
    "example.org. 3600 IN MX 10 mail.example.org.",
  );
});

test("TXT content is quoted unless Cloudflare stored it quoted already", () => {
  assert.equal(
    zoneLine(record({ name: "example.org", type: "TXT", content: '"v=spf1 mx -all"' })),
    'example.org. 300 IN TXT "v=spf1 mx -all"',
  );
  assert.equal(
    zoneLine(record({ name: "example.org", type: "TXT", content: 'v=spf1 "x" -all' })),
    'example.org. 300 IN TXT "v=spf1 \\"x\\" -all"',
  );
});

test("SRV gets its priority back in front, and a null target stays the root", () => {
  assert.equal(
    zoneLine(record({ name: "_imaps._tcp.example.org", type: "SRV", content: "1 993 mail.example.org", priority: 0 })),
    "_imaps._tcp.example.org. 300 IN SRV 0 1 993 mail.example.org.",
  );
  assert.equal(
    zoneLine(record({ name: "_pop3._tcp.example.org", type: "SRV", content: "0 0 .", priority: 0 })),
    "_pop3._tcp.example.org. 300 IN SRV 0 0 0 .",
  );
});
