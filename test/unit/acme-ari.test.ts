import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { ariCertificateId, authorityKeyIdentifier, readCertificateInfo } from "../../components/shared/acme/certificate-info";
import { fetchRenewalInfo } from "../../components/shared/acme/ari";
import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import * as x509 from "@peculiar/x509";
import { NEW_EC_KEY } from "../../infra/local-internet/test-tls";

/**
 * A leaf whose issuer key identifier and serial are those of RFC 9773 4.1's example:
 * keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321.
 */
function rfcExampleCertificate(dir: string): string {
  const p = (f: string) => path.join(dir, f);
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  fs.writeFileSync(
    p("ca.cnf"),
    "subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
  );
  run(["req", "-new", ...NEW_EC_KEY, "-keyout", p("ca.key"), "-out", p("ca.csr"), "-subj", "/CN=ARI example CA"]);
  run(["x509", "-req", "-in", p("ca.csr"), "-signkey", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-extfile", p("ca.cnf")]);
  fs.writeFileSync(p("leaf.cnf"), "authorityKeyIdentifier=keyid:always\nsubjectAltName=DNS:mail.example.org\n");
  run(["req", "-new", ...NEW_EC_KEY, "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=mail.example.org"]);
  run([
    "x509",
    "-req",
    "-in",
    p("leaf.csr"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-set_serial",
    "0x87654321",
    "-out",
    p("leaf.pem"),
    "-days",
    "1",
    "-extfile",
    p("leaf.cnf"),
  ]);
  return fs.readFileSync(p("leaf.pem"), "utf8");
}

describe("ARI certificate identifier (RFC 9773 4.1)", () => {
  let dir: string;
  let leaf: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "acme-ari-"));
    leaf = rfcExampleCertificate(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the AKI keyIdentifier is read from the certificate", () => {
    assert.equal(authorityKeyIdentifier(new X509Certificate(leaf).raw)!.toString("hex"), "69885b6b87464041e1b37b847ba0ae2cde01c8d4");
  });

  test("a certificate without an Authority Key Identifier (the example's CA) has no keyIdentifier and no ARI ID", () => {
    const ca = fs.readFileSync(path.join(dir, "ca.pem"), "utf8");
    assert.equal(authorityKeyIdentifier(new X509Certificate(ca).raw), undefined);
    assert.equal(ariCertificateId(ca), undefined);
  });

  test("the keyIdentifier read from the DER is the one @peculiar/x509 reads, for every root certificate Node ships", () => {
    let withAki = 0;
    for (const pem of tls.rootCertificates) {
      const raw = new X509Certificate(pem).raw;
      const keyId = new x509.X509Certificate(raw).getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
      assert.equal(authorityKeyIdentifier(raw)?.toString("hex"), keyId?.toLowerCase(), pem.slice(0, 120));
      if (keyId) withAki++;
    }
    // both kinds are among them: roots with and without the extension
    assert.ok(withAki > 0 && withAki < tls.rootCertificates.length, `${withAki} of ${tls.rootCertificates.length} roots have an AKI`);
  });

  test("the ID of the RFC's example is aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE (serial keeps its DER leading zero)", () => {
    assert.equal(ariCertificateId(leaf), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    assert.equal(readCertificateInfo(leaf).ariCertId, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  });

  describe("fetchRenewalInfo against a stand-in CA", () => {
    let server: http.Server;
    let base: string;
    const asked: string[] = [];
    let withAri = true;
    /** answer 404 for the certificate's renewal info */
    let missing = false;
    before(async () => {
      server = http.createServer((req, res) => {
        asked.push(req.url!);
        res.setHeader("content-type", "application/json");
        if (req.url === "/dir") {
          res.end(JSON.stringify({ newOrder: `${base}/new-order`, ...(withAri ? { renewalInfo: `${base}/renewal-info` } : {}) }));
        } else if (req.url === "/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE" && !missing) {
          res.end(
            JSON.stringify({
              suggestedWindow: { start: "2026-03-12T00:00:00Z", end: "2026-03-14T00:00:00Z" },
              explanationURL: "https://ca.example/why",
            }),
          );
        } else {
          res.statusCode = 404;
          res.end("{}");
        }
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    test("asks <renewalInfo>/<cert ID> and returns the suggested window", async () => {
      const info = await fetchRenewalInfo(`${base}/dir`, leaf);
      assert.deepEqual(info, {
        window: { start: new Date("2026-03-12T00:00:00Z"), end: new Date("2026-03-14T00:00:00Z") },
        explanationUrl: "https://ca.example/why",
        certId: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
      });
      assert.ok(asked.includes("/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
    });

    test("a CA that answers 404 for the certificate gives undefined and says why", async () => {
      const problems: string[] = [];
      missing = true;
      try {
        assert.equal(await fetchRenewalInfo(`${base}/dir`, leaf, { onProblem: (m) => problems.push(m) }), undefined);
      } finally {
        missing = false;
      }
      assert.deepEqual(problems, [
        `ARI: asking ${base}/dir failed: ${base}/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE answered HTTP 404`,
      ]);
    });

    test("a CA without renewalInfo in its directory gives undefined and no further request", async () => {
      withAri = false;
      asked.length = 0;
      assert.equal(await fetchRenewalInfo(`${base}/dir`, leaf), undefined);
      assert.deepEqual(asked, ["/dir"]);
      withAri = true;
    });
  });
});
