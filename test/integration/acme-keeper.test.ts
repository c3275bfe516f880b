import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { CERT_FILE, KEY_FILE, installCertificate, readInstalledCertificate } from "../../components/shared/acme/keeper";

const REPO = path.resolve(__dirname, "../..");
const NAMES = ["mail.example.test", "mta-sts.example.test"];

// The daemon's side, run inside the mail host's namespace: port 80 answers from the keeper's
// Http01Challenges store; one keeper check; the result as JSON.
const KEEPER_SCRIPT = `
const http = require("node:http");
const { Http01Challenges } = require(${JSON.stringify(path.join(REPO, "components/shared/acme/http01"))});
const { CertificateKeeper } = require(${JSON.stringify(path.join(REPO, "components/shared/acme/keeper"))});
const input = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
const challenges = new Http01Challenges();
const server = http.createServer((req, res) => {
  const answer = challenges.answer(req.url);
  if (answer === undefined) { res.writeHead(404).end(); return; }
  res.writeHead(200, { "content-type": "text/plain" }).end(answer);
});
server.listen(80, "::", async () => {
  let installed = 0;
  const keeper = new CertificateKeeper({ ...input, challenges, onInstalled: () => installed++ });
  const result = await keeper.checkNow();
  process.stdout.write(JSON.stringify({ ...result, installed, left: challenges.size }));
  server.close();
});
`;

interface KeeperRun {
  action: string;
  reason: string;
  notAfter?: string;
  installed: number;
  left: number;
}

describe("CertificateKeeper on the mail host: HTTP-01 renewal into a certificate directory", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  let mx: NetHost;
  let dir: string;
  const keyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const accountKeyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const runs: KeeperRun[] = [];
  const certs: string[] = [];

  async function runKeeper(extra: Record<string, unknown> = {}): Promise<KeeperRun> {
    const work = fs.mkdtempSync(path.join(net.workDir, "keeper-"));
    fs.writeFileSync(path.join(work, "keeper.js"), KEEPER_SCRIPT);
    fs.writeFileSync(
      path.join(work, "input.json"),
      JSON.stringify({
        dir,
        names: NAMES,
        directoryUrl: bed.pebble.directoryUrl,
        accountKeyPem,
        extraCaPem: bed.pebble.listenerCaPem,
        backoff: { attempts: 20, minMs: 100, maxMs: 500 },
        ...extra,
      }),
    );
    const r = await mx.run([process.execPath, "--require", "tsx/cjs", path.join(work, "keeper.js"), path.join(work, "input.json")], {
      cwd: REPO,
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as KeeperRun;
  }

  before(async () => {
    net = await LocalInternet.create();
    mx = await net.addHost("mx");
    bed = await startAcmeTestbed(
      net,
      [
        {
          origin: "example.test.",
          lines: NAMES.flatMap((n) => [`${n}. 300 IN A ${mx.ipv4}`, `${n}. 300 IN AAAA ${mx.ipv6}`]),
        },
      ],
      { certificateValidityPeriodSeconds: 90 * 86_400 },
    );
    dir = path.join(net.workDir, "tls");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, KEY_FILE), keyPem, { mode: 0o600 });
    runs.push(await runKeeper());
    certs.push(fs.readFileSync(path.join(dir, CERT_FILE), "utf8"));
    runs.push(await runKeeper());
    // certificate times have one-second resolution: let the clock move past the first one's
    const first = readInstalledCertificate(dir)!;
    while (Date.now() < first.notBefore.getTime() + 1500) await new Promise((r) => setTimeout(r, 100));
    runs.push(await runKeeper({ renewBeforeFraction: 0.999999999 }));
    certs.push(fs.readFileSync(path.join(dir, CERT_FILE), "utf8"));
  });
  after(async () => {
    await net?.destroy();
  });

  test("with no certificate installed, the keeper issues one over HTTP-01 and installs it", () => {
    assert.equal(runs[0].action, "renewed");
    assert.equal(runs[0].reason, "no certificate installed");
    assert.equal(runs[0].installed, 1);
    assert.equal(runs[0].left, 0);
    assert.deepEqual(readInstalledCertificate(dir)!.names, [...NAMES].sort());
  });

  test("a fresh certificate is not renewed, and the keeper says until when it is fine", () => {
    assert.equal(runs[1].action, "not-due");
    assert.match(runs[1].reason, /^valid until .+; renewal due from .+/);
    assert.equal(runs[1].installed, 0);
  });

  test("when renewal is due the keeper installs a later certificate with the same key", () => {
    assert.equal(runs[2].action, "renewed");
    assert.match(runs[2].reason, /or less of the 90 days lifetime remains/);
    assert.notEqual(certs[1], certs[0]);
    assert.equal(fs.readFileSync(path.join(dir, KEY_FILE), "utf8"), keyPem);
    const info = readInstalledCertificate(dir)!;
    assert.equal(info.certificatePem, certs[1]);
  });

  test("installing an older certificate over a newer one is refused and changes nothing", () => {
    assert.equal(installCertificate(dir, certs[0], keyPem), "kept-newer");
    assert.equal(fs.readFileSync(path.join(dir, CERT_FILE), "utf8"), certs[1]);
  });

  test("installing a certificate with a key it does not match is an error", () => {
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(() => installCertificate(dir, certs[1], other), /the certificate does not match the key/);
  });

  test("installed files are private key 0600 and no temporary files remain", () => {
    assert.equal(fs.statSync(path.join(dir, KEY_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir).sort(), [CERT_FILE, KEY_FILE].sort());
  });
});
