// The status page's routes without a browser (web/status/status-page.ts): who gets in, what the
// session cookie carries, what a cross-site POST gets, and that every page keeps its CSP.
import { describe, test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { StatusPage, type StatusOperations } from "../../server-bootstrap/maild/web/status/status-page";
import { statusAssets } from "../../server-bootstrap/maild/web/status/status-assets";
import type { AuthOutcome } from "../../server-bootstrap/maild/submission-auth";
import type { WebRequest } from "../../server-bootstrap/maild/web/routes";
import { summariseDmarc, summariseTlsrpt } from "../../server-bootstrap/maild/reports/report-summary";

const facts = {
  at: Date.UTC(2026, 11, 6),
  hostname: "mx.example.org",
  certificate: { notAfter: "2027-01-01T00:00:00.000Z", daysLeft: 26, subject: "CN=mx.example.org" },
  queue: { size: 0, deferredByDomain: [] },
  backup: { configured: false },
  spamFilter: { configured: false, ok: true, detail: "none" },
  dnsDrift: { checked: 0, findings: [] },
  blocklists: {
    results: [
      {
        zone: "bl.test",
        kind: "ip" as const,
        target: "198.51.100.2",
        status: "listed" as const,
        codes: ["127.0.0.2"],
        reason: "<script>alert(1)</script>",
        delistUrl: "https://bl.test/?ip=198.51.100.2&x=1",
      },
    ],
  },
  dmarc: summariseDmarc([], []),
  tlsrpt: summariseTlsrpt([]),
};

let calls: string[];
const operations: StatusOperations = {
  status: async () => ({ facts, alerts: [] }),
  history: async () => ({ dmarc: facts.dmarc, tlsrpt: facts.tlsrpt }),
  sendDigest: async () => void calls.push("digest"),
  checkNow: async () => void calls.push("check"),
  sendReports: async (day) => void calls.push(`reports ${day}`),
};

const PASSWORDS: Record<string, string> = { "alice@example.org": "right", "bob@example.org": "bobs" };

function site(now = () => Date.UTC(2026, 11, 6, 12)) {
  return new StatusPage({
    hostname: "mx.example.org",
    admins: () => ["alice@example.org"],
    authenticate: async (user, password): Promise<AuthOutcome> =>
      user === "eve@example.org"
        ? { ok: false, reason: "blocked", retryAfterSeconds: 60 }
        : PASSWORDS[user] === password
          ? { ok: true, user }
          : { ok: false, reason: "bad-credentials" },
    operations,
    now,
  });
}

const req = (method: string, url: string, extra: Partial<WebRequest> = {}): WebRequest => ({
  method,
  host: "mx.example.org",
  url,
  remoteAddress: "198.51.100.9",
  ...extra,
});

async function login(page: StatusPage, address = "alice@example.org", password = "right") {
  return (await page.handle(req("POST", "/status/login", { body: `address=${encodeURIComponent(address)}&password=${password}` })))!;
}

describe("status page", () => {
  beforeEach(() => (calls = []));

  test("other paths are not its business", async () => assert.equal(await site().handle(req("GET", "/healthz")), undefined));

  test("without a session: the login form (with the CSP) and 401 for the data", async () => {
    const page = site();
    const form = (await page.handle(req("GET", "/status")))!;
    assert.equal(form.status, 200);
    assert.match(form.body, /<form method="post" action="\/status\/login">/);
    assert.match(form.headers["content-security-policy"], /^default-src 'none'; script-src 'self';/);
    assert.equal((await page.handle(req("GET", "/status/data.json")))!.status, 401);
  });

  test("a wrong password, a non-admin and a blocked address are turned away with their own answer", async () => {
    const page = site();
    assert.equal((await login(page, "alice@example.org", "wrong")).status, 401);
    const bob = await login(page, "bob@example.org", "bobs");
    assert.equal(bob.status, 403);
    assert.match(bob.body, /bob@example\.org is not an administrator of this server\./);
    assert.equal((await login(page, "eve@example.org", "x")).status, 429);
  });

  test("an admin gets a session cookie (HttpOnly, Secure, SameSite=Strict, Path=/status) that opens the dashboard", async () => {
    const page = site();
    const r = await login(page);
    assert.equal(r.status, 303);
    const cookie = r.headers["set-cookie"];
    assert.match(cookie, /^maild_status=[A-Za-z0-9_-]{43}; Path=\/status; Max-Age=43200; HttpOnly; Secure; SameSite=Strict$/);
    const dash = (await page.handle(req("GET", "/status", { cookie: cookie.split(";")[0] })))!;
    assert.equal(dash.status, 200);
    // untrusted text is escaped; the delisting link keeps its query
    assert.match(dash.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(dash.body, /href="https:\/\/bl\.test\/\?ip=198\.51\.100\.2&amp;x=1"/);
    assert.ok(dash.body.includes(`<script src="${statusAssets().uplotJs.path}"></script>`));
    const data = (await page.handle(req("GET", "/status/data.json", { cookie: cookie.split(";")[0] })))!;
    assert.equal(JSON.parse(data.body).facts.hostname, "mx.example.org");
  });

  test("a session ends after its time", async () => {
    let now = Date.UTC(2026, 11, 6, 12);
    const page = site(() => now);
    const cookie = (await login(page)).headers["set-cookie"].split(";")[0];
    now += 12 * 3600_000 + 1;
    assert.equal((await page.handle(req("GET", "/status/data.json", { cookie })))!.status, 401);
  });

  test("actions run only for a POST from this site", async () => {
    const page = site();
    const cookie = (await login(page)).headers["set-cookie"].split(";")[0];
    const cross = await page.handle(req("POST", "/status/actions/digest", { cookie, origin: "https://evil.example" }));
    assert.equal(cross!.status, 403);
    assert.deepEqual(calls, []);
    assert.equal((await page.handle(req("POST", "/status/actions/digest", { cookie, origin: "https://mx.example.org" })))!.status, 303);
    assert.equal((await page.handle(req("POST", "/status/actions/reports?day=2026-12-05", { cookie })))!.status, 303);
    assert.equal((await page.handle(req("POST", "/status/actions/reports?day=2027-01-01", { cookie })))!.status, 400);
    assert.deepEqual(calls, ["digest", "reports 2026-12-05"]);
  });

  test("the chart library and page files are served under content-hashed names", async () => {
    const a = statusAssets();
    assert.match(a.uplotJs.path, /^\/status\/assets\/uplot-[0-9a-f]{12}\.js$/);
    const r = (await site().handle(req("GET", a.uplotJs.path)))!;
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "text/javascript; charset=utf-8");
    assert.match(r.body, /uPlot/);
  });
});
