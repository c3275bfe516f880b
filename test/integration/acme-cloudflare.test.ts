import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { promises as dns } from "node:dns";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { CloudflareDns01Solver } from "../../components/shared/acme/cloudflare-dns01-solver";
import { issueCertificate } from "../../components/shared/acme/issue";
import type { Challenge } from "../../components/shared/acme/challenge-solver";
import { CloudflareWorld, type RecordChange } from "../../infra/offline/providers/cloudflare-world";
import { startCloudflareApi } from "../../infra/offline/providers/cloudflare-http";

const ZONE_ID = "023e105f4ecef8ad9ca31a8372d0c353";

/**
 * The Cloudflare API v4 stand-in (infra/offline/providers/cloudflare-http.ts) with the zone
 * example.test; `onChange` sees every record written or deleted (e.g. to mirror it into knot).
 */
async function startCloudflareStandIn(onChange?: (change: RecordChange) => Promise<void>) {
  const world = new CloudflareWorld({ onRecordsChanged: (_zone, _records, change) => onChange?.(change) });
  world.addZone("example.test", { id: ZONE_ID });
  const api = await startCloudflareApi(world, { tokens: ["test-token-123", "t0ken", "test-token"] });
  return { world, api };
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
    const { world, api } = await startCloudflareStandIn();
    try {
      const solver = new CloudflareDns01Solver({ apiToken: "test-token-123", baseUrl: api.baseUrl });
      await solver.present(challenge);
      const [created] = world.recordsOf(ZONE_ID);
      assert.deepEqual(
        [created.type, created.name, created.content, created.ttl],
        ["TXT", "_acme-challenge.mail.example.test", `"${challenge.dnsValue}"`, 60],
      );
      await solver.cleanup(challenge);
      const auth = "Bearer test-token-123";
      assert.deepEqual(api.requests, [
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
          path: `/client/v4/zones/${ZONE_ID}/dns_records`,
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
          path: `/client/v4/zones/${ZONE_ID}/dns_records/${created.id}`,
          query: {},
          body: undefined,
          authorization: auth,
        },
      ]);
      assert.equal(world.records.size, 0);
    } finally {
      await api.close();
    }
  });

  test("cleanup after a failed present sends nothing", async () => {
    const { api } = await startCloudflareStandIn();
    try {
      const solver = new CloudflareDns01Solver({ apiToken: "t0ken", baseUrl: api.baseUrl });
      const elsewhere = { ...challenge, identifier: "mail.other.test", dnsName: "_acme-challenge.mail.other.test." };
      await assert.rejects(
        solver.present(elsewhere),
        /Cloudflare: no zone for _acme-challenge\.mail\.other\.test is visible to this API token/,
      );
      const before = api.requests.length;
      await solver.cleanup(elsewhere);
      assert.equal(api.requests.length, before);
    } finally {
      await api.close();
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
    const { world, api } = await startCloudflareStandIn(async (change) => {
      if (change.kind === "create")
        await bed.knot.addRecords("example.test.", [`${change.record.name}. 60 IN TXT ${change.record.content}`]);
      if (change.kind === "delete") await bed.knot.removeRecords("example.test.", `${change.record.name}.`, "TXT");
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
          baseUrl: api.baseUrl,
          propagation: { resolvers: [bed.dns.ipv4], timeoutMs: 10_000, intervalMs: 100 },
        }),
        backoff: { attempts: 20, minMs: 100, maxMs: 500 },
      });
      assert.deepEqual(cert.names, ["mail.example.test", "mta-sts.example.test"]);
      assert.equal(api.requests.filter((s) => s.method === "POST").length, 2);
      assert.equal(api.requests.filter((s) => s.method === "DELETE").length, 2);
      assert.equal(world.records.size, 0);
      const r = new dns.Resolver();
      r.setServers([bed.dns.ipv4]);
      await assert.rejects(r.resolveTxt("_acme-challenge.mail.example.test"), { code: "ENOTFOUND" });
    } finally {
      await api.close();
    }
  });
});
