import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";

const REPO = path.resolve(__dirname, "../..");
const NAMES = ["mail.example.test", "mta-sts.example.test", "autoconfig.example.test"];

function ecKeyPem(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

// Runs inside the mail host's namespace: a port-80 server answering from Http01Challenges, as the
// daemon does on the box, and one issuance through the Http01Solver. Prints the result as JSON,
// plus what the store held at the end (it must be empty again).
const ISSUER_SCRIPT = `
const http = require("node:http");
const { Http01Challenges, Http01Solver } = require(${JSON.stringify(path.join(REPO, "components/shared/acme/http01"))});
const { issueCertificate } = require(${JSON.stringify(path.join(REPO, "components/shared/acme/issue"))});
const input = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
const store = new Http01Challenges();
const served = [];
const server = http.createServer((req, res) => {
  const answer = store.answer(req.url);
  served.push({ url: req.url, status: answer === undefined ? 404 : 200 });
  if (answer === undefined) { res.writeHead(404).end(); return; }
  res.writeHead(200, { "content-type": "text/plain" }).end(answer);
});
server.listen(80, "::", async () => {
  try {
    const cert = await issueCertificate({ ...input, solver: new Http01Solver(store) });
    process.stdout.write(JSON.stringify({ ok: true, cert, served, left: store.size }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: err.message, served, left: store.size }));
  }
  server.close();
});
`;

interface ScriptResult {
  ok: boolean;
  error?: string;
  cert?: { names: string[]; certificatePem: string; spkiSha256: string; serialHex: string };
  served: { url: string; status: number }[];
  left: number;
}

describe("ACME HTTP-01 with the Http01Challenges store on port 80 of the mail host", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  let mx: NetHost;
  const accountKeyPem = ecKeyPem();
  const certificateKeyPem = ecKeyPem();

  async function issueFromMx(names: string[]): Promise<ScriptResult> {
    const dir = fs.mkdtempSync(path.join(net.workDir, "http01-"));
    fs.writeFileSync(path.join(dir, "issuer.js"), ISSUER_SCRIPT);
    fs.writeFileSync(
      path.join(dir, "input.json"),
      JSON.stringify({
        directoryUrl: bed.pebble.directoryUrl,
        extraCaPem: bed.pebble.listenerCaPem,
        accountKeyPem,
        certificateKeyPem,
        names,
        backoff: { attempts: 20, minMs: 100, maxMs: 500 },
      }),
    );
    const r = await mx.run([process.execPath, "--require", "tsx/cjs", path.join(dir, "issuer.js"), path.join(dir, "input.json")], {
      cwd: REPO,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ScriptResult;
  }

  before(async () => {
    net = await LocalInternet.create();
    mx = await net.addHost("mx");
    bed = await startAcmeTestbed(net, [
      {
        origin: "example.test.",
        lines: NAMES.flatMap((n) => [`${n}. 300 IN A ${mx.ipv4}`, `${n}. 300 IN AAAA ${mx.ipv6}`]),
      },
    ]);
  });
  after(async () => {
    await net?.destroy();
  });

  test("issues a certificate for three names, each validated over port 80, and empties the store", async () => {
    const result = await issueFromMx(NAMES);
    assert.equal(result.ok, true, result.error);
    assert.deepEqual(result.cert!.names, [...NAMES].sort());
    const validated = result.served.filter((s) => s.status === 200 && s.url.startsWith("/.well-known/acme-challenge/"));
    assert.ok(validated.length >= NAMES.length, `pebble fetched ${validated.length} challenges`);
    assert.equal(result.left, 0);
  });

  test("renewing through HTTP-01 keeps the certificate key", async () => {
    const a = await issueFromMx(["mail.example.test"]);
    const b = await issueFromMx(["mail.example.test"]);
    assert.equal(a.ok && b.ok, true, a.error ?? b.error);
    assert.equal(b.cert!.spkiSha256, a.cert!.spkiSha256);
    assert.notEqual(b.cert!.serialHex, a.cert!.serialHex);
  });

  test("a name that does not point at the host fails validation with a clear error and empties the store", async () => {
    await bed.knot.addRecords("example.test.", [`elsewhere.example.test. 300 IN A ${bed.ca.ipv4}`]);
    const result = await issueFromMx(["elsewhere.example.test"]);
    assert.equal(result.ok, false);
    assert.match(result.error!, /http-01 for elsewhere\.example\.test: validation failed: .+/);
    assert.equal(result.left, 0);
  });

  test("a wildcard name is refused for HTTP-01 before contacting the CA", async () => {
    const result = await issueFromMx(["*.example.test"]);
    assert.equal(result.ok, false);
    assert.match(result.error!, /names: "\*\.example\.test" is a wildcard; wildcards need a DNS-01 solver/);
    assert.deepEqual(result.served, []);
  });
});
