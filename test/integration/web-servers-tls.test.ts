// Certificate reload of the HTTPS listener: new connections get the new certificate, open
// connections keep working. Runs on loopback; no namespaces needed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { startWebServers, type WebServers } from "../../server-bootstrap/maild/web/web-servers";

const NAME = "mail.example.test";

/** The certificate fingerprint a fresh TLS connection is shown (optionally without SNI). */
function peerFingerprint(port: number, ca: string, sni: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { host: "127.0.0.1", port, ca, ...(sni ? { servername: NAME } : { checkServerIdentity: () => undefined }) },
      () => {
        const fp = s.getPeerCertificate().fingerprint256;
        s.end();
        resolve(fp);
      },
    );
    s.on("error", reject);
  });
}

function fingerprintOf(certPath: string): string {
  return new crypto.X509Certificate(fs.readFileSync(certPath)).fingerprint256;
}

function get(agent: https.Agent, port: number, ca: string, pathname: string): Promise<{ status: number; socketFingerprint: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path: pathname, servername: NAME, headers: { host: NAME }, ca, agent }, (res) => {
        const fp = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, socketFingerprint: fp }));
      })
      .on("error", reject);
  });
}

describe("HTTPS certificate reload", () => {
  let dir: string;
  let first: TestTls;
  let second: TestTls;
  let live: { certPath: string; keyPath: string };
  let web: WebServers;
  let port: number;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "maild-web-tls-"));
    first = await makeTestTls(dir, [NAME], "first");
    second = await makeTestTls(dir, [NAME], "second");
    live = { certPath: path.join(dir, "live-cert.pem"), keyPath: path.join(dir, "live-key.pem") };
    fs.copyFileSync(first.certPath, live.certPath);
    fs.copyFileSync(first.keyPath, live.keyPath);
    web = await startWebServers({
      hostname: NAME,
      domains: [{ name: "example.test", mtaStsPolicy: "version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\nmax_age: 86400\r\n" }],
      tls: live,
      listen: { https: [{ host: "127.0.0.1", port: 0 }], http: [] },
      challenges: { get: () => undefined },
      metrics: () => "",
      health: () => ({ ok: true }),
    });
    port = web.addresses.https[0].port;
  });

  after(async () => {
    await web?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("serves the configured certificate with and without SNI", async () => {
    assert.equal(await peerFingerprint(port, first.caPem, true), fingerprintOf(first.certPath));
    assert.equal(await peerFingerprint(port, first.caPem, false), fingerprintOf(first.certPath));
  });

  test("after reloadTls, new connections get the new files' certificate while an open connection keeps serving", async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await get(agent, port, first.caPem, "/healthz");
      fs.copyFileSync(second.certPath, live.certPath);
      fs.copyFileSync(second.keyPath, live.keyPath);
      web.reloadTls();
      const sameSocket = await get(agent, port, first.caPem, "/healthz");
      assert.deepEqual([before.status, sameSocket.status, sameSocket.socketFingerprint], [200, 200, fingerprintOf(first.certPath)]);
      assert.equal(await peerFingerprint(port, second.caPem, true), fingerprintOf(second.certPath));
      assert.equal(await peerFingerprint(port, second.caPem, false), fingerprintOf(second.certPath));
    } finally {
      agent.destroy();
    }
  });
});

describe("HTTPS with a secure-context getter", () => {
  test("asks the getter again on reloadTls", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "maild-web-tls-"));
    try {
      const a = await makeTestTls(dir, [NAME], "a");
      const b = await makeTestTls(dir, [NAME], "b");
      let current = a;
      const web = await startWebServers({
        hostname: NAME,
        domains: [],
        tls: {
          secureContext: () => tls.createSecureContext({ cert: fs.readFileSync(current.certPath), key: fs.readFileSync(current.keyPath) }),
        },
        listen: { https: [{ host: "127.0.0.1", port: 0 }], http: [] },
        challenges: { get: () => undefined },
        metrics: () => "",
        health: () => ({ ok: true }),
      });
      try {
        const p = web.addresses.https[0].port;
        const before = await peerFingerprint(p, a.caPem, true);
        current = b;
        web.reloadTls();
        const afterReload = await peerFingerprint(p, b.caPem, true);
        assert.deepEqual([before, afterReload], [fingerprintOf(a.certPath), fingerprintOf(b.certPath)]);
      } finally {
        await web.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("close()", () => {
  test("stops listening", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "maild-web-tls-"));
    try {
      const t = await makeTestTls(dir, [NAME], "c");
      const web = await startWebServers({
        hostname: NAME,
        domains: [],
        tls: t,
        listen: { https: [{ host: "127.0.0.1", port: 0 }], http: [{ host: "127.0.0.1", port: 0 }] },
        challenges: { get: () => undefined },
        metrics: () => "",
        health: () => ({ ok: true }),
      });
      const ports = [web.addresses.https[0].port, web.addresses.http[0].port];
      await web.close();
      for (const p of ports) {
        await assert.rejects(peerFingerprint(p, t.caPem, true), /ECONNREFUSED/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
