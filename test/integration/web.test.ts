// The box's HTTPS (443) and HTTP (80) endpoints, fetched by curl from another host of the local
// internet: names resolve through knot, TLS is checked against a throwaway CA with SNI.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { XMLParser } from "fast-xml-parser";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startWebServers, type WebServers } from "../../server-bootstrap/maild/web/web-servers";
import { mtaStsPolicy } from "../../components/records/mta-sts";
import { domainSpec } from "../fixtures/stack-spec";

const DOMAIN = "example.test";
const HOSTNAME = `mail.${DOMAIN}`;
const NAMES = [HOSTNAME, `mta-sts.${DOMAIN}`, `autoconfig.${DOMAIN}`, `autodiscover.${DOMAIN}`, DOMAIN];

const POLICY = mtaStsPolicy(domainSpec(DOMAIN), [HOSTNAME]);

interface Fetched {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** curl from `host` (its resolv.conf points at knot); -i output split into status, headers and body. */
async function curl(host: NetHost, caPath: string, url: string, extra: string[] = []): Promise<Fetched> {
  const r = await host.run(["curl", "-sS", "-i", "--max-time", "10", "--cacert", caPath, ...extra, url]);
  if (r.code !== 0) throw new Error(`curl ${url} from ${host.name}: exit ${r.code}: ${r.stderr.trim()}`);
  const split = r.stdout.indexOf("\r\n\r\n");
  const head = r.stdout.slice(0, split).split("\r\n");
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head[0])?.[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body: r.stdout.slice(split + 4) };
}

const challengeStore = new Map<string, string>();

describe("HTTPS and HTTP endpoints over the local internet", () => {
  let internet: LocalInternet;
  let client: NetHost;
  let knot: KnotServer;
  let certs: TestTls;
  let web: WebServers;
  let health = { ok: true as boolean, uptimeSeconds: 1 };

  before(async () => {
    assert.ok(fs.existsSync("/usr/bin/curl"), 'web test: /usr/bin/curl not found; install the Debian package "curl"');
    internet = await LocalInternet.create();
    const dns = await internet.addHost("dns");
    client = await internet.addHost("client");
    const at = internet.localIpv4;
    knot = await startKnot(internet, dns, [{ origin: `${DOMAIN}.`, lines: NAMES.map((n) => `${n}. 300 IN A ${at}`) }]);
    await internet.setResolver(dns.ipv4);
    certs = await makeTestTls(path.join(internet.workDir, "web-tls"), NAMES, "web");
    web = await startWebServers({
      hostname: HOSTNAME,
      domains: [{ name: DOMAIN, mtaStsPolicy: POLICY }],
      tls: { certPath: certs.certPath, keyPath: certs.keyPath },
      listen: {
        https: [
          { host: at, port: 443 },
          { host: "127.0.0.1", port: 0 },
        ],
        http: [{ host: at, port: 80 }],
      },
      challenges: { get: (t) => challengeStore.get(t) },
      metrics: () => "# TYPE maild_smtp_connections_total counter\nmaild_smtp_connections_total 7\n",
      health: () => health,
    });
  });

  after(async () => {
    await web?.close();
    await knot?.stop();
    await internet?.destroy();
  });

  test("serves the planner's exact MTA-STS policy at https://mta-sts.<domain>/.well-known/mta-sts.txt", async () => {
    const r = await curl(client, certs.caPath, `https://mta-sts.${DOMAIN}/.well-known/mta-sts.txt`);
    assert.equal(r.status, 200);
    assert.match(r.headers["content-type"], /^text\/plain/);
    assert.equal(r.body, POLICY);
  });

  test("answers 404 for the policy path on any other host name", async () => {
    const r = await curl(client, certs.caPath, `https://${HOSTNAME}/.well-known/mta-sts.txt`);
    assert.equal(r.status, 404);
  });

  test("serves Thunderbird autoconfig on autoconfig.<domain> with IMAP 993 and the mail host", async () => {
    const r = await curl(client, certs.caPath, `https://autoconfig.${DOMAIN}/mail/config-v1.1.xml?emailaddress=alice%40${DOMAIN}`);
    assert.equal(r.status, 200);
    const incoming = new XMLParser().parse(r.body).clientConfig.emailProvider.incomingServer;
    assert.deepEqual([incoming.hostname, incoming.port, incoming.socketType], [HOSTNAME, 993, "SSL"]);
  });

  test("serves autoconfig at https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml", async () => {
    const r = await curl(client, certs.caPath, `https://${DOMAIN}/.well-known/autoconfig/mail/config-v1.1.xml`);
    assert.equal(r.status, 200);
    assert.equal(new XMLParser({ ignoreAttributes: false }).parse(r.body).clientConfig.emailProvider["@_id"], DOMAIN);
  });

  test("answers an Outlook autodiscover POST with the requested address as login name", async () => {
    const body = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@${DOMAIN}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
    const r = await curl(client, certs.caPath, `https://autodiscover.${DOMAIN}/Autodiscover/Autodiscover.xml`, [
      "-H",
      "content-type: text/xml",
      "--data-binary",
      body,
    ]);
    assert.equal(r.status, 200);
    const protocols = new XMLParser().parse(r.body).Autodiscover.Response.Account.Protocol;
    assert.deepEqual(
      protocols.map((p: Record<string, unknown>) => [p.Type, p.Server, p.LoginName]),
      [
        ["IMAP", HOSTNAME, `alice@${DOMAIN}`],
        ["SMTP", HOSTNAME, `alice@${DOMAIN}`],
      ],
    );
  });

  test("answers 400 to an autodiscover POST that is not XML", async () => {
    const r = await curl(client, certs.caPath, `https://autodiscover.${DOMAIN}/autodiscover/autodiscover.xml`, [
      "--data-binary",
      "<Autodiscover><Request>",
    ]);
    assert.equal(r.status, 400);
  });

  test("answers /healthz with the health JSON, 503 when unhealthy", async () => {
    const ok = await curl(client, certs.caPath, `https://${HOSTNAME}/healthz`);
    assert.deepEqual([ok.status, JSON.parse(ok.body)], [200, { ok: true, uptimeSeconds: 1 }]);
    health = { ok: false, uptimeSeconds: 2 };
    const bad = await curl(client, certs.caPath, `https://${HOSTNAME}/healthz`);
    health = { ok: true, uptimeSeconds: 1 };
    assert.deepEqual([bad.status, JSON.parse(bad.body)], [503, { ok: false, uptimeSeconds: 2 }]);
  });

  test("refuses /metrics to a remote client with 403", async () => {
    const r = await curl(client, certs.caPath, `https://${HOSTNAME}/metrics`);
    assert.equal(r.status, 403);
    assert.doesNotMatch(r.body, /maild_smtp_connections_total/);
  });

  test("serves /metrics to loopback as Prometheus text", async () => {
    const port = web.addresses.https[1].port;
    const r = await new Promise<Fetched>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port, path: "/metrics", servername: HOSTNAME, headers: { host: HOSTNAME }, ca: certs.caPem }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body }));
        })
        .on("error", reject);
    });
    assert.equal(r.status, 200);
    assert.match(r.headers["content-type"], /^text\/plain; version=0\.0\.4/);
    assert.match(r.body, /^maild_smtp_connections_total 7$/m);
  });

  test("answers an ACME HTTP-01 challenge on port 80 from the challenge store", async () => {
    challengeStore.set("tok-123_ABC", "tok-123_ABC.account-thumbprint");
    const r = await curl(client, certs.caPath, `http://${HOSTNAME}/.well-known/acme-challenge/tok-123_ABC`);
    challengeStore.delete("tok-123_ABC");
    assert.equal(r.status, 200);
    assert.equal(r.body, "tok-123_ABC.account-thumbprint");
  });

  test("answers 404 on port 80 for an unknown challenge token", async () => {
    const r = await curl(client, certs.caPath, `http://${HOSTNAME}/.well-known/acme-challenge/nope`);
    assert.equal(r.status, 404);
  });

  test("redirects other port-80 requests with 301 to https on the same host and path", async () => {
    const r = await curl(client, certs.caPath, `http://mta-sts.${DOMAIN}/.well-known/mta-sts.txt?x=1`);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `https://mta-sts.${DOMAIN}/.well-known/mta-sts.txt?x=1`);
  });

  test("following the port-80 redirect reaches the policy over HTTPS", async () => {
    const r = await curl(client, certs.caPath, `http://mta-sts.${DOMAIN}/.well-known/mta-sts.txt`, ["-L"]);
    assert.equal(r.body.slice(r.body.lastIndexOf("\r\n\r\n") + 4), POLICY);
  });
});
