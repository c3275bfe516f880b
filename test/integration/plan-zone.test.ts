// `mailstack plan --format zone` for the dev stack: each zone is complete, named-checkzone accepts
// it, knot serves it, and receivers' own validators (pyspf, dkimpy, opendmarc) accept what it
// publishes, queried over DNS inside the local internet.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { parseTxtContent, txtContent } from "../../components/records/txt";

const root = path.resolve(__dirname, "..", "..");
const IPV4 = "198.51.100.25";
const IPV6_NETWORK = "2001:db8:1::";

function plan(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(root, "infra", "cli", "main.ts"), "plan", ...args], {
    cwd: root,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function splitZones(text: string): Map<string, string> {
  const zones = new Map<string, string>();
  for (const chunk of text.split(/(?=^\$ORIGIN )/m).filter((c) => c.trim())) {
    const origin = /^\$ORIGIN (\S+)\.$/m.exec(chunk)?.[1];
    assert.ok(origin, `zone chunk without $ORIGIN:\n${chunk.slice(0, 200)}`);
    zones.set(origin, chunk);
  }
  return zones;
}

const ACCOUNT = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/123";
const result = plan("--stack", "dev", "--format", "zone", "--ipv4", IPV4, "--ipv6", IPV6_NETWORK, "--acme-account", ACCOUNT);
const zones = result.status === 0 ? splitZones(result.stdout) : new Map<string, string>();

describe("mailstack plan --stack dev --format zone", () => {
  test("prints one complete zone per domain, each starting with $ORIGIN and holding SOA and NS", () => {
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual([...zones.keys()].sort(), ["example.net", "example.org"]);
    for (const [origin, text] of zones) {
      assert.ok(text.startsWith(`$ORIGIN ${origin}.\n`), origin);
      assert.match(text, new RegExp(`^${origin.replace(/\./g, "\\.")}\\. \\d+ IN SOA `, "m"));
      assert.match(text, new RegExp(`^${origin.replace(/\./g, "\\.")}\\. \\d+ IN NS `, "m"));
    }
  });

  test("named-checkzone accepts every zone with all checks fatal", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-zones-"));
    try {
      for (const [origin, text] of zones) {
        const file = path.join(dir, `${origin}.zone`);
        fs.writeFileSync(file, text);
        // -i local: integrity checks without looking up names outside the zone (no traffic).
        const r = spawnSync(
          "named-checkzone",
          ["-i", "local", "-k", "fail", "-m", "fail", "-M", "fail", "-n", "fail", "-S", "fail", origin, file],
          { encoding: "utf8" },
        );
        assert.equal(r.error, undefined, "named-checkzone is missing: install the Debian package bind9-utils");
        assert.equal(r.status, 0, `${origin}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /OK/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the RSA DKIM records are pending, marked as made at pulumi up, and hold no key", () => {
    for (const domain of ["example.org", "example.net"]) {
      const text = zones.get(domain) ?? "";
      assert.match(
        text,
        new RegExp(
          `^; known after pulumi up: s1-rsa\\._domainkey\\.${domain.replace(".", "\\.")} TXT "v=DKIM1; k=rsa; p=<rsa key made at pulumi up>"$`,
          "m",
        ),
      );
      assert.doesNotMatch(text, /k=rsa; p=[A-Za-z0-9+/]/);
      assert.match(text, /^s1-ed25519\._domainkey\.\S+ 300 IN TXT "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="/m);
    }
  });

  test("without --ipv4/--ipv6 the address records are marked pending and the zones still load", () => {
    const r = plan("--stack", "dev", "--format", "zone");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /; known after pulumi up: mail\.example\.org A <ipv4 unknown>/);
    assert.doesNotMatch(r.stdout, /255\.255\.255\.255|ffff:ffff/);
  });
});

/**
 * A pending RSA DKIM record of the zone output, published with a key of its own as `pulumi up`
 * would publish it (the program's TXT form: the value split into 255-byte strings).
 */
function deployedRsaDkim(line: string): string[] {
  const pending = /^; known after pulumi up: (\S+) TXT (".*")$/.exec(line);
  if (!pending || !pending[2].includes("<rsa key made at pulumi up>")) return [];
  const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
  return [`${pending[1]}. 300 IN TXT ${txtContent(parseTxtContent(pending[2]).replace("<rsa key made at pulumi up>", key))}`];
}

describe("the planned zones served by knot, checked by receivers' validators", () => {
  let net: LocalInternet;
  let knot: KnotServer;
  let client: NetHost;

  before(async () => {
    net = await LocalInternet.create();
    const dns = await net.addHost("dns");
    client = await net.addHost("client");
    knot = await startKnot(
      net,
      dns,
      [...zones].map(([origin, text]) => ({
        origin,
        lines: [
          ...text.split("\n").filter((l) => l.trim() && !l.startsWith("$") && !l.startsWith(";")),
          ...text.split("\n").flatMap(deployedRsaDkim),
        ],
      })),
    );
    await net.setResolver(dns.ipv4);
  });
  after(async () => {
    await knot?.stop();
    await net?.destroy();
  });

  const dig = async (type: string, name: string) => {
    const r = await client.run(["dig", "+short", "+norecurse", type, name]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };

  test("knot answers the planned records", async () => {
    assert.equal(await dig("MX", "example.net"), "10 mail.example.org.");
    assert.equal(await dig("A", "mail.example.org"), IPV4);
    assert.equal(await dig("AAAA", "mail.example.org"), "2001:db8:1::1");
    assert.equal(
      await dig("TXT", "_dmarc.example.org"),
      '"v=DMARC1; p=reject; sp=reject; adkim=r; aspf=r; rua=mailto:postmaster@example.org"',
    );
    assert.deepEqual((await dig("CAA", "example.net")).split("\n").sort(), [
      '0 issue "letsencrypt.org; accounturi=' + ACCOUNT + '; validationmethods=dns-01,http-01"',
      '0 issuewild ";"',
    ]);
    // RFC 2782 "decidedly not available", as Cloudflare stores it (data.target ".").
    assert.equal(await dig("SRV", "_pop3._tcp.example.org"), "0 0 0 .");
    assert.equal(await dig("SRV", "_submissions._tcp.example.net"), "0 1 465 mail.example.org.");
    // Upper-case hex in the plan; any case is the same digest (RFC 6698 2.2).
    // dig breaks long hex into groups; the fields and the digest are what count.
    const [usage, selector, matching, ...hex] = (await dig("TLSA", "_25._tcp.mail.example.org")).split(" ");
    assert.deepEqual([usage, selector, matching], ["3", "1", "1"]);
    assert.match(hex.join(""), /^[0-9A-F]{64}$/);
  });

  test("pyspf: the server's addresses pass for both domains and the HELO name; others fail", async () => {
    const spf = async (ip: string, sender: string) => {
      const r = await client.run(["/usr/bin/python3", "-m", "spf", ip, sender, "mail.example.org"]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    for (const sender of ["alice@example.org", "bob@example.net", "postmaster@mail.example.org"]) {
      assert.match(await spf(IPV4, sender), /^result: \('pass', 250,/, sender);
      assert.match(await spf("2001:db8:1::1", sender), /^result: \('pass', 250,/, sender);
      assert.match(await spf("198.51.100.99", sender), /^result: \('fail', 550,/, sender);
    }
  });

  test("dkimpy loads both DKIM keys of both domains from DNS", async () => {
    const script = [
      "import sys, dkim",
      "for name in sys.argv[1:]:",
      "    pk, bits, ktag, _ = dkim.load_pk_from_dns(name.encode())",
      "    print(name, ktag.decode(), bits)",
    ].join("\n");
    const names = ["example.org", "example.net"].flatMap((d) => [`s1-rsa._domainkey.${d}.`, `s1-ed25519._domainkey.${d}.`]);
    const r = await client.run(["/usr/bin/python3", "-c", script, ...names]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "s1-rsa._domainkey.example.org. rsa 2048",
      "s1-ed25519._domainkey.example.org. ed25519 256",
      "s1-rsa._domainkey.example.net. rsa 2048",
      "s1-ed25519._domainkey.example.net. ed25519 256",
    ]);
  });

  test("opendmarc-check parses the DMARC policy as reject with aggregate reports", async () => {
    const r = await client.run(["opendmarc-check", "example.org"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Domain policy:\s+reject/);
    assert.match(r.stdout, /Subdomain policy:\s+reject/);
    assert.match(r.stdout, /Aggregate report URIs:\s*\n\s+mailto:postmaster@example\.org/);
  });

  test("MTA-STS and TLSRPT records match RFC 8461 3.1 and RFC 8460 3 grammar", async () => {
    for (const domain of ["example.org", "example.net"]) {
      assert.match(await dig("TXT", `_mta-sts.${domain}`), /^"v=STSv1; id=[A-Za-z0-9]{1,32}"$/);
      assert.match(await dig("TXT", `_smtp._tls.${domain}`), /^"v=TLSRPTv1; rua=mailto:[^,;\s]+@[^,;\s]+"$/);
      assert.equal(await dig("A", `mta-sts.${domain}`), IPV4);
    }
  });
});
