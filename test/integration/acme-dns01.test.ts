import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { promises as dns } from "node:dns";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, runCommand, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { issueCertificate, type IssuedCertificate } from "../../components/shared/acme/issue";
import { Rfc2136Dns01Solver } from "../../components/shared/acme/rfc2136-dns01-solver";
import { splitPemChain } from "../../components/shared/acme/certificate-info";
import type { ChallengeSolver } from "../../components/shared/acme/challenge-solver";

const NAMES = ["mail.example.test", "mta-sts.example.test", "autoconfig.example.test"];
const FAST = { attempts: 20, minMs: 100, maxMs: 500 };

function ecKeyPem(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

async function txtAt(server: string, name: string): Promise<string[]> {
  const r = new dns.Resolver({ timeout: 1000, tries: 1 });
  r.setServers([server]);
  try {
    return (await r.resolveTxt(name)).map((chunks) => chunks.join(""));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENODATA" || (err as NodeJS.ErrnoException).code === "ENOTFOUND") return [];
    throw err;
  }
}

describe("ACME DNS-01 through RFC 2136 into knot, validated by pebble", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  let other: NetHost;
  let otherKnot: KnotServer;
  const accountKeyPem = ecKeyPem();
  const certificateKeyPem = ecKeyPem();
  let first: IssuedCertificate;

  const solver = (overrides: { server?: string; timeoutMs?: number } = {}) =>
    new Rfc2136Dns01Solver({
      server: overrides.server ?? bed.dns.ipv4,
      tsig: bed.knot.tsig,
      propagation: { resolvers: [bed.dns.ipv4], timeoutMs: overrides.timeoutMs ?? 10_000, intervalMs: 100 },
    });
  const issue = (names: string[], s: ChallengeSolver, key = accountKeyPem) =>
    issueCertificate({
      directoryUrl: bed.pebble.directoryUrl,
      extraCaPem: bed.pebble.listenerCaPem,
      accountKeyPem: key,
      email: "admin@example.test",
      certificateKeyPem,
      names,
      solver: s,
      backoff: FAST,
    });

  before(async () => {
    net = await LocalInternet.create();
    bed = await startAcmeTestbed(net, [{ origin: "example.test.", lines: [] }], { domainBlocklist: ["blocked.example.test"] });
    // A second server with a copy of the zone that is NOT among the zone's NS: writes there are never seen.
    other = await net.addHost("dns2");
    otherKnot = await startKnot(net, other, [{ origin: "example.test.", lines: [] }]);
    first = await issue(NAMES, solver());
  });
  after(async () => {
    await net?.destroy();
  });

  test("issues one certificate for all three names", () => {
    assert.deepEqual(first.names, [...NAMES].sort());
    assert.match(first.accountUrl, /^https:\/\/.+\/my-account\/.+/);
    assert.ok(first.notAfter.getTime() > first.notBefore.getTime());
  });

  test("the chain verifies against pebble's issuing root", async () => {
    const dir = fs.mkdtempSync(path.join(net.workDir, "verify-"));
    const [leaf, ...intermediates] = splitPemChain(first.certificatePem);
    fs.writeFileSync(path.join(dir, "root.pem"), await bed.pebble.issuingRootPem());
    fs.writeFileSync(path.join(dir, "chain.pem"), intermediates.join(""));
    fs.writeFileSync(path.join(dir, "leaf.pem"), leaf);
    const r = await runCommand([
      "openssl",
      "verify",
      "-CAfile",
      path.join(dir, "root.pem"),
      "-untrusted",
      path.join(dir, "chain.pem"),
      path.join(dir, "leaf.pem"),
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /leaf\.pem: OK/);
  });

  test("the challenge TXT records are gone after issuance", async () => {
    for (const n of NAMES) assert.deepEqual(await txtAt(bed.dns.ipv4, `_acme-challenge.${n}`), []);
  });

  test("renewal with the same certificate key keeps the public key (SPKI) and changes the serial", async () => {
    const again = await issue(NAMES, solver());
    assert.equal(again.spkiSha256, first.spkiSha256);
    assert.equal(
      new X509Certificate(splitPemChain(again.certificatePem)[0]).publicKey
        .export({ type: "spki", format: "der" })
        .equals(new X509Certificate(splitPemChain(first.certificatePem)[0]).publicKey.export({ type: "spki", format: "der" })),
      true,
    );
    assert.notEqual(again.serialHex, first.serialHex);
    assert.equal(again.accountUrl, first.accountUrl);
  });

  test("a challenge that never becomes visible fails with the name and the timeout, and leaves no record", async () => {
    // The update goes to dns2, which is not authoritative per the zone's NS: the wait runs out.
    const toDns2 = new Rfc2136Dns01Solver({
      server: other.ipv4,
      tsig: otherKnot.tsig,
      propagation: { resolvers: [bed.dns.ipv4], timeoutMs: 1000, intervalMs: 100 },
    });
    await assert.rejects(
      issue(["never.example.test"], toDns2),
      /TXT _acme-challenge\.never\.example\.test = ".+" not visible at the authoritative servers of example\.test after 1 s; missing at ns\.example\.test/,
    );
    assert.deepEqual(await txtAt(other.ipv4, "_acme-challenge.never.example.test"), []);
    assert.deepEqual(await txtAt(bed.dns.ipv4, "_acme-challenge.never.example.test"), []);
  });

  test("a CA that finds no TXT invalidates the authorization; the error names the name and the record is removed", async () => {
    // Same misdirected write, without waiting for visibility: pebble looks, finds nothing, and says so.
    const toDns2 = new Rfc2136Dns01Solver({ server: other.ipv4, tsig: otherKnot.tsig });
    const noWait: ChallengeSolver = { type: "dns-01", present: (c) => toDns2.present(c), cleanup: (c) => toDns2.cleanup(c) };
    await assert.rejects(issue(["unseen.example.test"], noWait), /dns-01 for unseen\.example\.test: validation failed: .+/);
    assert.deepEqual(await txtAt(other.ipv4, "_acme-challenge.unseen.example.test"), []);
  });

  test("the CA refusing a name gives a clear error and publishes nothing", async () => {
    await assert.rejects(issue(["blocked.example.test"], solver()), /the CA refused the order for blocked\.example\.test: .*blocked/i);
    assert.deepEqual(await txtAt(bed.dns.ipv4, "_acme-challenge.blocked.example.test"), []);
  });

  test("a wrong TSIG secret fails at publishing, names the zone and server, and leaves no record", async () => {
    const bad = new Rfc2136Dns01Solver({
      server: bed.dns.ipv4,
      tsig: { ...bed.knot.tsig, secretB64: Buffer.alloc(32, 1).toString("base64") },
      propagation: { resolvers: [bed.dns.ipv4], timeoutMs: 2000, intervalMs: 100 },
    });
    await assert.rejects(
      issue(["badkey.example.test"], bad),
      new RegExp(
        `dns-01 for badkey\\.example\\.test: publishing the challenge failed: RFC 2136 update of zone example\\.test at ${bed.dns.ipv4.replace(/\./g, "\\.")}:53 was refused: NOTAUTH \\(.*BADSIG`,
      ),
    );
    assert.deepEqual(await txtAt(bed.dns.ipv4, "_acme-challenge.badkey.example.test"), []);
  });

  test("an invalid name is refused before anything is sent, naming its index", async () => {
    await assert.rejects(
      issue(["mail.example.test", "bad_name.example.test"], solver()),
      /names\[1\]: "bad_name\.example\.test" has an invalid label "bad_name"/,
    );
  });

  test("an account key the CA does not know, with a foreign account URL, is refused clearly", async () => {
    await assert.rejects(
      issueCertificate({
        directoryUrl: bed.pebble.directoryUrl,
        extraCaPem: bed.pebble.listenerCaPem,
        accountKeyPem: ecKeyPem(),
        accountUrl: first.accountUrl,
        certificateKeyPem,
        names: ["mail.example.test"],
        solver: solver(),
        backoff: FAST,
      }),
      // No account request is made for a known URL: the order, signed for that account with another key, is refused.
      /^Error: the CA refused the order for mail\.example\.test: .+ \(is https:\/\/.+\/my-account\/[0-9a-f]+ the account of accountKeyPem\? The order is signed with that key for that account\)$/,
    );
  });
});
