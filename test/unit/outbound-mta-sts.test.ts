import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import {
  fetchPolicyText,
  lookupVia,
  MtaStsPolicies,
  mxAllowed,
  PolicyFetchError,
  policyLines,
  type StsPolicy,
} from "../../server-bootstrap/maild/outbound/mta-sts";
import { MAX_POLICY_BYTES } from "../../components/shared/mta-sts-fetch";

const POLICY = "version: STSv1\nmode: enforce\nmx: mx1.example.org\nmx: *.mx.example.org\nmax_age: 86400\n";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mta-sts-test-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function policy(partial: Partial<StsPolicy> = {}): StsPolicy {
  return { id: "1", mode: "enforce", mx: ["mx1.example.org", "*.mx.example.org"], maxAge: 86400, text: POLICY, fetchedAt: 0, ...partial };
}

describe("MTA-STS MX matching (RFC 8461 4.1)", () => {
  test("an exact name or a wildcard for exactly one left-most label matches", () => {
    const p = policy();
    assert.equal(mxAllowed(p, "mx1.example.org"), true);
    assert.equal(mxAllowed(p, "MX1.example.org."), true);
    assert.equal(mxAllowed(p, "a.mx.example.org"), true);
    assert.equal(mxAllowed(p, "a.b.mx.example.org"), false);
    assert.equal(mxAllowed(p, "mx.example.org"), false);
    assert.equal(mxAllowed(p, "mx2.example.org"), false);
  });

  test("policy lines for TLSRPT are the file's non-empty lines", () => {
    assert.deepEqual(policyLines(policy({ text: "version: STSv1\r\nmode: testing\r\n\r\nmx: a.example\r\nmax_age: 60\r\n" })), [
      "version: STSv1",
      "mode: testing",
      "mx: a.example",
      "max_age: 60",
    ]);
  });
});

describe("MTA-STS policy cache (RFC 8461 3.3, 5.1)", () => {
  /** A world of one domain: its TXT record, its policy host's answer, and a clock. */
  function world(sub: string) {
    const state = {
      txt: [["v=STSv1; id=1"]] as string[][] | "nodata" | "servfail",
      served: POLICY as string | PolicyFetchError,
      now: 1_000_000,
      fetches: 0,
    };
    const make = () =>
      new MtaStsPolicies({
        dir: () => path.join(dir, sub),
        resolveTxt: async () => {
          if (state.txt === "nodata") throw Object.assign(new Error("nodata"), { code: "ENODATA" });
          if (state.txt === "servfail") throw Object.assign(new Error("servfail"), { code: "ESERVFAIL" });
          return state.txt;
        },
        fetch: async () => {
          state.fetches++;
          if (state.served instanceof PolicyFetchError) throw state.served;
          return state.served;
        },
        now: () => state.now,
      });
    return { state, make, file: path.join(dir, sub, "example.org.json") };
  }

  test("memory holds at most maxDomains domains: the least recently used one must come from disk (or a fetch) again", async () => {
    const sub = path.join(dir, "bounded-memory");
    let fetched = 0;
    const sts = new MtaStsPolicies({
      dir: () => sub,
      resolveTxt: async () => [["v=STSv1; id=1"]],
      fetch: async () => {
        fetched++;
        return POLICY;
      },
      now: () => 1_000_000,
      maxDomains: 2,
    });
    for (const d of ["a.example", "b.example", "c.example"]) await sts.lookup(d);
    assert.equal(fetched, 3);
    // without their files, only what memory still holds is known without a fetch
    for (const d of ["a.example", "b.example", "c.example"]) fs.rmSync(path.join(sub, `${d}.json`));
    await sts.lookup("c.example");
    await sts.lookup("b.example");
    assert.equal(fetched, 3, "b and c are still in memory");
    await sts.lookup("a.example");
    assert.equal(fetched, 4, "a was forgotten, so it is fetched again");
  });

  test("the disk cache is swept of expired policies, and beyond maxDomains of those that expire first", async () => {
    const sub = path.join(dir, "sweep");
    fs.mkdirSync(sub, { recursive: true });
    const write = (domain: string, fetchedAt: number, maxAge: number) =>
      fs.writeFileSync(path.join(sub, `${domain}.json`), JSON.stringify({ domain, ...policy({ fetchedAt, maxAge }) }));
    const now = 10_000_000;
    write("expired.example", now - 2000_000, 1000);
    write("soon.example", now, 100);
    write("later.example", now, 1000);
    write("latest.example", now, 2000);
    fs.writeFileSync(path.join(sub, "garbage.example.json"), "{not json");
    const sts = new MtaStsPolicies({
      dir: () => sub,
      resolveTxt: async () => [],
      fetch: async () => POLICY,
      now: () => now,
      maxDomains: 2,
    });
    await sts.sweep();
    assert.deepEqual(fs.readdirSync(sub).sort(), ["later.example.json", "latest.example.json"]);
  });

  test("lookups sweep the disk cache once per sweepIntervalMs", async () => {
    const sub = path.join(dir, "sweep-interval");
    fs.mkdirSync(sub, { recursive: true });
    let now = 50_000_000;
    const sts = new MtaStsPolicies({
      dir: () => sub,
      resolveTxt: async () => [],
      fetch: async () => POLICY,
      now: () => now,
      sweepIntervalMs: 60_000,
    });
    await sts.lookup("x.example");
    await sts.swept();
    fs.writeFileSync(path.join(sub, "old.example.json"), JSON.stringify({ domain: "old.example", ...policy({ fetchedAt: 0, maxAge: 1 }) }));
    now += 30_000;
    await sts.lookup("x.example");
    await sts.swept();
    assert.ok(fs.existsSync(path.join(sub, "old.example.json")), "not swept again within the interval");
    now += 30_000;
    await sts.lookup("x.example");
    await sts.swept();
    assert.ok(!fs.existsSync(path.join(sub, "old.example.json")));
  });

  test("no TXT record: no policy and no fetch", async () => {
    const w = world("a");
    w.state.txt = "nodata";
    assert.deepEqual(await w.make().lookup("example.org"), {});
    assert.equal(w.state.fetches, 0);
  });

  test("a TXT record leads to a fetch; the policy is kept in memory and on disk, and reused while the id stays", async () => {
    const w = world("b");
    const sts = w.make();
    const first = await sts.lookup("example.org");
    assert.equal(first.policy?.mode, "enforce");
    assert.deepEqual(first.policy?.mx, ["mx1.example.org", "*.mx.example.org"]);
    assert.equal(first.policy?.maxAge, 86400);
    assert.equal(first.failure, undefined);
    const stored = JSON.parse(fs.readFileSync(w.file, "utf8"));
    assert.equal(stored.id, "1");
    assert.equal(stored.text, POLICY);
    assert.equal(stored.expires, new Date(1_000_000 + 86400_000).toISOString());
    w.state.now += 3600_000;
    assert.deepEqual((await sts.lookup("example.org")).policy, first.policy);
    assert.equal(w.state.fetches, 1);
  });

  test("a new id in the TXT record means a fetch", async () => {
    const w = world("c");
    const sts = w.make();
    await sts.lookup("example.org");
    w.state.txt = [["v=STSv1; id=2"]];
    w.state.served = POLICY.replace("enforce", "testing");
    const got = await sts.lookup("example.org");
    assert.equal(w.state.fetches, 2);
    assert.equal(got.policy?.id, "2");
    assert.equal(got.policy?.mode, "testing");
  });

  test("an expired policy is fetched again even with the same id", async () => {
    const w = world("d");
    const sts = w.make();
    await sts.lookup("example.org");
    w.state.now += 86400_000 + 1;
    await sts.lookup("example.org");
    assert.equal(w.state.fetches, 2);
  });

  test("a failed fetch keeps applying the unexpired cached policy, and reports the failure", async () => {
    const w = world("e");
    const sts = w.make();
    const cached = (await sts.lookup("example.org")).policy;
    w.state.txt = [["v=STSv1; id=2"]];
    w.state.served = new PolicyFetchError("sts-webpki-invalid", "certificate not trusted");
    const got = await sts.lookup("example.org");
    assert.deepEqual(got.policy, cached);
    assert.deepEqual(got.failure, { result: "sts-webpki-invalid", reason: "certificate not trusted" });
  });

  test("a failed fetch without a cached policy means no policy; the same id is not fetched again for a while", async () => {
    const w = world("f");
    w.state.served = new PolicyFetchError("sts-policy-fetch-error", "HTTP status 404, not 200");
    const sts = w.make();
    assert.deepEqual(await sts.lookup("example.org"), {
      failure: { result: "sts-policy-fetch-error", reason: "HTTP status 404, not 200" },
    });
    w.state.now += 60_000;
    assert.deepEqual(await sts.lookup("example.org"), {
      failure: { result: "sts-policy-fetch-error", reason: "HTTP status 404, not 200" },
    });
    assert.equal(w.state.fetches, 1);
    w.state.now += 10 * 60_000;
    w.state.served = POLICY;
    assert.equal((await sts.lookup("example.org")).policy?.mode, "enforce");
    assert.equal(w.state.fetches, 2);
  });

  test("a policy file that does not parse is sts-policy-invalid", async () => {
    const w = world("g");
    w.state.served = "version: STSv1\nmode: enforce\nmax_age: 86400\n";
    const got = await w.make().lookup("example.org");
    assert.equal(got.policy, undefined);
    assert.equal(got.failure?.result, "sts-policy-invalid");
  });

  test("a vanished TXT record or a DNS failure keeps the unexpired policy; once expired, it is dropped", async () => {
    const w = world("h");
    const sts = w.make();
    await sts.lookup("example.org");
    w.state.txt = "nodata";
    assert.equal((await sts.lookup("example.org")).policy?.id, "1");
    w.state.txt = "servfail";
    assert.equal((await sts.lookup("example.org")).policy?.id, "1");
    w.state.txt = "nodata";
    w.state.now += 86400_000 + 1;
    assert.deepEqual(await sts.lookup("example.org"), {});
    assert.equal(fs.existsSync(w.file), false);
  });

  test("the cache survives a restart: a new instance reads the policy from disk", async () => {
    const w = world("i");
    await w.make().lookup("example.org");
    w.state.txt = "servfail";
    const got = await w.make().lookup("example.org");
    assert.equal(got.policy?.id, "1");
    assert.equal(got.policy?.mode, "enforce");
    assert.equal(w.state.fetches, 1);
  });

  test("a DNS failure without a cached policy means no policy (fail open, RFC 8461 5)", async () => {
    const w = world("j");
    w.state.txt = "servfail";
    assert.deepEqual(await w.make().lookup("example.org"), {});
  });
});

describe("MTA-STS policy fetch (RFC 8461 3.3)", () => {
  let good: TestTls;
  let otherName: TestTls;
  let server: https.Server;
  let port = 0;
  let respond: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void = () => undefined;
  let cert = "good";
  const lookup = lookupVia(
    async () => [],
    async () => ["127.0.0.1"],
    { ipv6: true, ipv4: true },
  );

  before(async () => {
    good = await makeTestTls(path.join(dir, "tls"), ["mta-sts.example.org"], "good");
    otherName = await makeTestTls(path.join(dir, "tls"), ["mta-sts.example.net"], "other");
    const contexts: Record<string, tls.SecureContext> = {
      good: tls.createSecureContext({ cert: fs.readFileSync(good.certPath), key: fs.readFileSync(good.keyPath) }),
      other: tls.createSecureContext({ cert: fs.readFileSync(otherName.certPath), key: fs.readFileSync(otherName.keyPath) }),
    };
    server = https.createServer({ SNICallback: (_name, cb) => cb(null, contexts[cert]) }, (req, res) => respond(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const fetch = (ca = [good.caPem, otherName.caPem], timeoutMs = 5000) => fetchPolicyText("example.org", { ca, timeoutMs, lookup, port });

  async function failure(p: Promise<unknown>): Promise<{ result: string; message: string }> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof PolicyFetchError, String(err));
      return { result: err.result, message: err.message };
    }
    throw new Error("the fetch succeeded");
  }

  test("a 200 text/plain answer from mta-sts.<domain> at /.well-known/mta-sts.txt is the policy", async () => {
    cert = "good";
    let asked = "";
    respond = (req, res) => {
      asked = `${req.headers.host} ${req.url}`;
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end(POLICY);
    };
    assert.equal(await fetch(), POLICY);
    assert.equal(asked, `mta-sts.example.org:${port} /.well-known/mta-sts.txt`);
  });

  test("a redirect is not followed", async () => {
    cert = "good";
    let requests = 0;
    respond = (_req, res) => {
      requests++;
      res.writeHead(301, { location: "https://mta-sts.example.org/elsewhere.txt" }).end();
    };
    const f = await failure(fetch());
    assert.equal(f.result, "sts-policy-fetch-error");
    assert.match(f.message, /status 301/);
    assert.equal(requests, 1);
  });

  test("a media type other than text/plain is refused", async () => {
    cert = "good";
    respond = (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(POLICY);
    assert.equal((await failure(fetch())).result, "sts-policy-fetch-error");
  });

  test("a policy larger than 64 KiB is refused", async () => {
    cert = "good";
    respond = (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(POLICY + "#".repeat(MAX_POLICY_BYTES));
    const f = await failure(fetch());
    assert.equal(f.result, "sts-policy-fetch-error");
    assert.match(f.message, /larger than/);
  });

  test("a certificate from an untrusted CA is sts-webpki-invalid", async () => {
    cert = "good";
    respond = (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(POLICY);
    assert.equal((await failure(fetch([otherName.caPem]))).result, "sts-webpki-invalid");
  });

  test("a certificate for another name is sts-webpki-invalid", async () => {
    cert = "other";
    respond = (_req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(POLICY);
    assert.equal((await failure(fetch())).result, "sts-webpki-invalid");
  });

  test("a server that never answers is a fetch error after the time limit", async () => {
    cert = "good";
    respond = () => undefined;
    const f = await failure(fetch(undefined, 200));
    assert.equal(f.result, "sts-policy-fetch-error");
    assert.match(f.message, /no response within 200 ms/);
  });

  test("a policy host without addresses is a fetch error", async () => {
    const noAddress = lookupVia(
      async () => [],
      async () => [],
      { ipv6: true, ipv4: true },
    );
    const f = await failure(fetchPolicyText("example.org", { ca: [good.caPem], timeoutMs: 1000, lookup: noAddress, port }));
    assert.equal(f.result, "sts-policy-fetch-error");
  });
});
