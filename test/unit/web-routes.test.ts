import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { routeHttp, routeHttps, type WebRequest, type WebSite } from "../../server-bootstrap/maild/web/routes";
import { requestHost } from "../../server-bootstrap/maild/web/request-host";
import { isLoopbackAddress } from "../../server-bootstrap/maild/web/loopback-address";

const policy = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n";
const site = (over: Partial<WebSite> = {}): WebSite => ({
  hostname: "mail.example.com",
  domains: [
    { name: "example.com", mtaStsPolicy: policy },
    { name: "example.org", mtaStsPolicy: "version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmax_age: 86400\r\n" },
  ],
  metrics: () => "maild_connections_total 3\n",
  health: () => ({ ok: true, uptimeSeconds: 5 }),
  metricsAllowed: (a) => a === "127.0.0.1",
  ...over,
});
const get = (host: string | undefined, url: string, extra: Partial<WebRequest> = {}): WebRequest => ({
  method: "GET",
  host,
  url,
  remoteAddress: "203.0.113.9",
  ...extra,
});

describe("requestHost", () => {
  const cases: [string | undefined, string | undefined][] = [
    ["mta-sts.example.com", "mta-sts.example.com"],
    ["MTA-STS.Example.COM", "mta-sts.example.com"],
    ["mta-sts.example.com:443", "mta-sts.example.com"],
    ["example.com.", "example.com"],
    [undefined, undefined],
    ["", undefined],
    ["exa mple.com", undefined],
    ["example.com:http", undefined],
    ["[::1]:443", undefined],
  ];
  for (const [header, expected] of cases) {
    test(`Host ${JSON.stringify(header)} -> ${JSON.stringify(expected)}`, () => assert.equal(requestHost(header), expected));
  }
});

describe("isLoopbackAddress", () => {
  const cases: [string | undefined, boolean][] = [
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["::1", true],
    ["::ffff:127.0.0.1", true],
    ["198.51.100.7", false],
    ["::ffff:198.51.100.7", false],
    ["2001:db8:1::7", false],
    [undefined, false],
  ];
  for (const [address, expected] of cases) {
    test(`${address} is ${expected ? "" : "not "}loopback`, () => assert.equal(isLoopbackAddress(address), expected));
  }
});

describe("routeHttps: MTA-STS", () => {
  test("serves the exact policy text as text/plain on mta-sts.<domain>", () => {
    const r = routeHttps(get("mta-sts.example.com", "/.well-known/mta-sts.txt"), site());
    assert.equal(r.status, 200);
    assert.equal(r.body, policy);
    assert.match(r.headers["content-type"], /^text\/plain/);
  });

  test("serves each domain its own policy", () => {
    const r = routeHttps(get("mta-sts.example.org", "/.well-known/mta-sts.txt"), site());
    assert.equal(r.body, site().domains[1].mtaStsPolicy);
  });

  for (const host of ["mta-sts.example.net", "example.com", "mail.example.com", "mta-sts.sub.example.com", undefined]) {
    test(`answers 404 for Host ${host}`, () => {
      assert.equal(routeHttps(get(host, "/.well-known/mta-sts.txt"), site()).status, 404);
    });
  }
});

describe("routeHttps: autoconfig", () => {
  for (const [host, url] of [
    ["autoconfig.example.com", "/mail/config-v1.1.xml"],
    ["autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=a%40example.com"],
    ["example.com", "/.well-known/autoconfig/mail/config-v1.1.xml"],
    ["mail.example.com", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40example.com"],
  ]) {
    test(`serves example.com's clientConfig for ${host}${url}`, () => {
      const r = routeHttps(get(host, url), site());
      assert.equal(r.status, 200);
      assert.match(r.headers["content-type"], /^application\/xml/);
      assert.match(r.body, /<emailProvider id="example\.com">/);
      assert.match(r.body, /<hostname>mail\.example\.com<\/hostname>/);
    });
  }

  test("answers 404 for an unconfigured domain", () => {
    assert.equal(routeHttps(get("autoconfig.example.net", "/mail/config-v1.1.xml?emailaddress=a%40example.net"), site()).status, 404);
  });
});

describe("routeHttps: autodiscover", () => {
  const body = (email: string) =>
    `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${email}</EMailAddress></Request></Autodiscover>`;
  const post = (email: string, url = "/autodiscover/autodiscover.xml") =>
    get("autodiscover.example.com", url, { method: "POST", body: body(email) });

  test("answers a POST with settings naming the requested address", () => {
    const r = routeHttps(post("alice@example.com"), site());
    assert.equal(r.status, 200);
    assert.match(r.body, /<LoginName>alice@example\.com<\/LoginName>/);
  });

  test("matches the path case-insensitively (/Autodiscover/Autodiscover.xml)", () => {
    assert.equal(routeHttps(post("alice@example.com", "/Autodiscover/Autodiscover.xml"), site()).status, 200);
  });

  test("escapes the requested address in the answer", () => {
    const r = routeHttps(post("a&amp;b@example.com"), site());
    assert.match(r.body, /<LoginName>a&amp;b@example\.com<\/LoginName>/);
  });

  test("answers 400 for a body that is not well-formed XML", () => {
    const r = routeHttps(
      get("autodiscover.example.com", "/autodiscover/autodiscover.xml", { method: "POST", body: "<Autodiscover><Request>" }),
      site(),
    );
    assert.equal(r.status, 400);
  });

  test("answers 404 for an address in an unconfigured domain", () => {
    assert.equal(routeHttps(post("alice@example.net"), site()).status, 404);
  });

  test("answers 405 with Allow: POST for GET", () => {
    const r = routeHttps(get("autodiscover.example.com", "/autodiscover/autodiscover.xml"), site());
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, "POST");
  });
});

describe("routeHttps: health and metrics", () => {
  test("/healthz answers 200 with the health JSON when ok", () => {
    const r = routeHttps(get("mail.example.com", "/healthz"), site());
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ok: true, uptimeSeconds: 5 });
  });

  test("/healthz answers 503 when not ok", () => {
    const r = routeHttps(get("mail.example.com", "/healthz"), site({ health: () => ({ ok: false, reason: "disk" }) }));
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { ok: false, reason: "disk" });
  });

  test("/metrics serves the Prometheus text to an allowed address", () => {
    const r = routeHttps(get("mail.example.com", "/metrics", { remoteAddress: "127.0.0.1" }), site());
    assert.equal(r.status, 200);
    assert.equal(r.body, "maild_connections_total 3\n");
    assert.match(r.headers["content-type"], /^text\/plain; version=0\.0\.4/);
  });

  test("/metrics answers 403 to other addresses", () => {
    const r = routeHttps(get("mail.example.com", "/metrics"), site());
    assert.equal(r.status, 403);
    assert.doesNotMatch(r.body, /maild_connections_total/);
  });

  test("an unknown path answers 404", () => {
    assert.equal(routeHttps(get("mail.example.com", "/wp-admin"), site()).status, 404);
  });
});

describe("routeHttp (port 80)", () => {
  const challenges = { get: (t: string) => (t === "tok_EN-1" ? "tok_EN-1.thumbprint" : undefined) };

  test("answers a known ACME challenge token with its key authorization", () => {
    const r = routeHttp(get("mail.example.com", "/.well-known/acme-challenge/tok_EN-1"), challenges);
    assert.equal(r.status, 200);
    assert.equal(r.body, "tok_EN-1.thumbprint");
  });

  for (const token of ["unknown", "", "tok_EN-1/..", "..%2Ftok"]) {
    test(`answers 404 for challenge token ${JSON.stringify(token)}`, () => {
      assert.equal(routeHttp(get("mail.example.com", `/.well-known/acme-challenge/${token}`), challenges).status, 404);
    });
  }

  test("redirects everything else with 301 to https on the same host and path", () => {
    const r = routeHttp(get("mta-sts.example.com:80", "/.well-known/mta-sts.txt?x=1"), challenges);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, "https://mta-sts.example.com/.well-known/mta-sts.txt?x=1");
  });

  test("answers 400 without a usable Host header", () => {
    assert.equal(routeHttp(get(undefined, "/"), challenges).status, 400);
  });
});
