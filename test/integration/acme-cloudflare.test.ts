import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { promises as dns } from "node:dns";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { CloudflareDns01Solver } from "../../components/shared/acme/cloudflare-dns01-solver";
import { issueCertificate } from "../../components/shared/acme/issue";
import type { Challenge } from "../../components/shared/acme/challenge-solver";

interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization: string | undefined;
}

/**
 * A stand-in for the few Cloudflare API v4 endpoints the solver calls. Zones: example.test.
 * Records it creates are handed to `onCreate`/`onDelete` (e.g. written into knot).
 */
async function startCloudflareStandIn(
  hooks: {
    onCreate?: (name: string, content: string) => Promise<void>;
    onDelete?: (name: string) => Promise<void>;
  } = {},
) {
  const seen: SeenRequest[] = [];
  const zones = [{ id: "023e105f4ecef8ad9ca31a8372d0c353", name: "example.test" }];
  const records = new Map<string, { id: string; name: string; content: string }>();
  let next = 1;
  const envelope = (result: unknown, extra: object = {}) => JSON.stringify({ success: true, errors: [], messages: [], result, ...extra });
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", async () => {
      const url = new URL(req.url!, "http://x");
      const body = raw ? JSON.parse(raw) : undefined;
      seen.push({
        method: req.method!,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        body,
        authorization: req.headers.authorization,
      });
      res.setHeader("content-type", "application/json");
      let m: RegExpMatchArray | null;
      if (req.method === "GET" && url.pathname === "/client/v4/zones") {
        const found = zones.filter((z) => z.name === url.searchParams.get("name"));
        res.end(
          envelope(found, { result_info: { page: 1, per_page: 20, count: found.length, total_count: found.length, total_pages: 1 } }),
        );
      } else if (req.method === "POST" && (m = url.pathname.match(/^\/client\/v4\/zones\/([^/]+)\/dns_records$/))) {
        const id = `rec${next++}`;
        records.set(id, { id, name: body.name, content: body.content });
        await hooks.onCreate?.(body.name, body.content);
        res.end(envelope({ id, ...body, zone_id: m[1] }));
      } else if (req.method === "DELETE" && (m = url.pathname.match(/^\/client\/v4\/zones\/([^/]+)\/dns_records\/([^/]+)$/))) {
        const r = records.get(m[2]);
        if (!r) {
          res.statusCode = 404;
          res.end(
            JSON.stringify({ success: false, errors: [{ code: 81044, message: "Record does not exist." }], messages: [], result: null }),
          );
          return;
        }
        records.delete(m[2]);
        await hooks.onDelete?.(r.name);
        res.end(envelope({ id: m[2] }));
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ success: false, errors: [{ code: 7003, message: "No route for that URI" }], messages: [], result: null }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/client/v4`,
    seen,
    records,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const challenge: Challenge = {
  type: "dns-01",
  identifier: "mail.example.test",
  token: "tok",
  keyAuthorization: "tok.thumb",
  dnsName: "_acme-challenge.mail.example.test.",
  dnsValue: "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
};

describe("CloudflareDns01Solver against a Cloudflare API stand-in", () => {
  test("present finds the zone, creates exactly one TXT; cleanup deletes exactly that record", async () => {
    const cf = await startCloudflareStandIn();
    try {
      const solver = new CloudflareDns01Solver({ apiToken: "test-token-123", baseUrl: cf.baseUrl });
      await solver.present(challenge);
      await solver.cleanup(challenge);
      const auth = "Bearer test-token-123";
      assert.deepEqual(cf.seen, [
        {
          method: "GET",
          path: "/client/v4/zones",
          query: { name: "_acme-challenge.mail.example.test" },
          body: undefined,
          authorization: auth,
        },
        { method: "GET", path: "/client/v4/zones", query: { name: "mail.example.test" }, body: undefined, authorization: auth },
        { method: "GET", path: "/client/v4/zones", query: { name: "example.test" }, body: undefined, authorization: auth },
        {
          method: "POST",
          path: "/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records",
          query: {},
          body: {
            type: "TXT",
            name: "_acme-challenge.mail.example.test",
            content: `"${challenge.dnsValue}"`,
            ttl: 60,
            comment: "ACME DNS-01 challenge (RFC 8555 8.4); removed after validation",
          },
          authorization: auth,
        },
        {
          method: "DELETE",
          path: "/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records/rec1",
          query: {},
          body: undefined,
          authorization: auth,
        },
      ]);
      assert.equal(cf.records.size, 0);
    } finally {
      await cf.close();
    }
  });

  test("cleanup after a failed present sends nothing", async () => {
    const cf = await startCloudflareStandIn();
    try {
      const solver = new CloudflareDns01Solver({ apiToken: "t0ken", baseUrl: cf.baseUrl });
      const elsewhere = { ...challenge, identifier: "mail.other.test", dnsName: "_acme-challenge.mail.other.test." };
      await assert.rejects(
        solver.present(elsewhere),
        /Cloudflare: no zone for _acme-challenge\.mail\.other\.test is visible to this API token/,
      );
      const before = cf.seen.length;
      await solver.cleanup(elsewhere);
      assert.equal(cf.seen.length, before);
    } finally {
      await cf.close();
    }
  });

  test("an API token with spaces is refused when the solver is built", () => {
    assert.throws(() => new CloudflareDns01Solver({ apiToken: "abc def" }), /cloudflare\.apiToken: must be a Cloudflare API token/);
  });
});

describe("ACME DNS-01 through the Cloudflare solver, the stand-in writing into knot, validated by pebble", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  before(async () => {
    net = await LocalInternet.create();
    bed = await startAcmeTestbed(net, [{ origin: "example.test.", lines: [] }]);
  });
  after(async () => {
    await net?.destroy();
  });

  test("issues a two-name certificate and leaves no TXT record in the zone", async () => {
    const cf = await startCloudflareStandIn({
      onCreate: (name, content) => bed.knot.addRecords("example.test.", [`${name}. 60 IN TXT ${content}`]),
      onDelete: (name) => bed.knot.removeRecords("example.test.", `${name}.`, "TXT"),
    });
    try {
      const key = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const cert = await issueCertificate({
        directoryUrl: bed.pebble.directoryUrl,
        extraCaPem: bed.pebble.listenerCaPem,
        accountKeyPem: key(),
        certificateKeyPem: key(),
        names: ["mail.example.test", "mta-sts.example.test"],
        solver: new CloudflareDns01Solver({
          apiToken: "test-token",
          baseUrl: cf.baseUrl,
          propagation: { resolvers: [bed.dns.ipv4], timeoutMs: 10_000, intervalMs: 100 },
        }),
        backoff: { attempts: 20, minMs: 100, maxMs: 500 },
      });
      assert.deepEqual(cert.names, ["mail.example.test", "mta-sts.example.test"]);
      assert.equal(cf.seen.filter((s) => s.method === "POST").length, 2);
      assert.equal(cf.seen.filter((s) => s.method === "DELETE").length, 2);
      assert.equal(cf.records.size, 0);
      const r = new dns.Resolver();
      r.setServers([bed.dns.ipv4]);
      await assert.rejects(r.resolveTxt("_acme-challenge.mail.example.test"), { code: "ENOTFOUND" });
    } finally {
      await cf.close();
    }
  });
});
