// `mailstack plan`: what it prints for people and machines, that secrets never print, and that
// bad arguments are refused naming the argument.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { planStack } from "../../infra/cli/plan";
import { formatJson, formatTable } from "../../infra/cli/plan-format";

const root = path.resolve(__dirname, "..", "..");

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", path.join(root, "infra", "cli", "main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
  });
}

describe("plan output", async () => {
  const known = await planStack({ stack: "dev", projectDir: root, ipv4: "198.51.100.25", ipv6: "2001:db8:1::/64" });
  const table = formatTable(known);
  const json = formatJson(known);

  test("no private key, password hash or ciphertext reaches the output; secret inputs print as [secret]", () => {
    for (const text of [table, json]) {
      assert.doesNotMatch(text, /PRIVATE KEY|\$argon2|v1:REPLACE/);
    }
    const server = (JSON.parse(json).resources as { type: string; inputs: { userData: string } }[]).find(
      (r) => r.type === "hcloud:index/server:Server",
    )!;
    assert.equal(server.inputs.userData, "[secret]");
    assert.match(table, /userData=\[secret\]/);
  });

  test("the table lists resources with their options, records per zone and both PTRs", () => {
    assert.match(table, /^Stack dev: mail host mail\.example\.org, \d+ resources, 2 DNS zones$/m);
    assert.match(table, /hcloud:Server\s+mail-server\s+deleteBeforeReplace/);
    assert.match(table, /^DNS records in zone example\.net$/m);
    assert.match(table, /^example\.net\s+MX\s+10 mail\.example\.org$/m);
    assert.match(table, /^198\.51\.100\.25\s+mail\.example\.org$/m);
    assert.match(table, /^2001:db8:1::1\s+mail\.example\.org$/m);
  });

  test("json carries every record with its content per zone", () => {
    const parsed = JSON.parse(json) as { zones: Record<string, { name: string; type: string; content: string }[]>; ipv6: string };
    assert.equal(parsed.ipv6, "2001:db8:1::1");
    const spf = parsed.zones["example.org"].find((r) => r.name === "example.org" && r.type === "TXT")!;
    assert.equal(spf.content, '"v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all"');
  });

  test("the RSA DKIM keys, made at pulumi up, print as such in the records and in the record resources' inputs", () => {
    const parsed = JSON.parse(json) as {
      zones: Record<string, { name: string; type: string; content: string }[]>;
      resources: { type: string; inputs: { name?: string; content?: string } }[];
    };
    for (const domain of ["example.org", "example.net"]) {
      const name = `s1-rsa._domainkey.${domain}`;
      const record = parsed.zones[domain].find((r) => r.name === name && r.type === "TXT")!;
      assert.equal(record.content, '"v=DKIM1; k=rsa; p=<rsa key made at pulumi up>"');
      const resource = parsed.resources.find((r) => r.type === "cloudflare:index/dnsRecord:DnsRecord" && r.inputs.name === name)!;
      assert.equal(resource.inputs.content, '"v=DKIM1; k=rsa; p=<rsa key made at pulumi up>"');
      assert.match(table, new RegExp(`^${name.replace(/\./g, "\\.")}\\s+TXT\\s+"v=DKIM1; k=rsa; p=<rsa key made at pulumi up>"$`, "m"));
    }
    assert.doesNotMatch(json + table, /k=rsa; p=[A-Za-z0-9+/]|MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A/);
  });

  test("without addresses, they show as unknown and never as a stand-in value", async () => {
    const unknown = formatTable(await planStack({ stack: "dev", projectDir: root }));
    assert.match(unknown, /^mail\.example\.org\s+A\s+<ipv4 unknown>$/m);
    assert.match(unknown, /ip4:<ipv4 unknown> ip6:<ipv6 unknown> -all/);
    assert.doesNotMatch(unknown, /255\.255\.255\.255|ffff:ffff/);
  });
});

describe("bad arguments are refused on one line naming the argument", () => {
  const cases: [string, string[], RegExp][] = [
    ["unknown format", ["plan", "--format", "xml"], /^mailstack plan: --format: "xml" is not one of table\|json\|zone$/m],
    ["ipv4 without ipv6", ["plan", "--ipv4", "198.51.100.25"], /--ipv4 and --ipv6 go together/],
    [
      "ipv6 prefix that is not a /64",
      ["plan", "--ipv4", "198.51.100.25", "--ipv6", "2001:db8::/48"],
      /--ipv6: Hetzner assigns a \/64; got \/48/,
    ],
    [
      "ipv6 host address instead of the network",
      ["plan", "--ipv4", "198.51.100.25", "--ipv6", "2001:db8:1::1"],
      /--ipv6: "2001:db8:1::1" is not an IPv6 \/64 network address/,
    ],
    ["bad ipv4", ["plan", "--ipv4", "198.51.100.256", "--ipv6", "2001:db8:1::"], /--ipv4: "198.51.100.256" is not an IPv4 address/],
    ["missing stack file", ["plan", "--stack", "nosuch"], /stacks\/Pulumi\.nosuch\.yaml: cannot read the stack file/],
    ["unknown command", ["deploy"], /unknown command "deploy"/],
  ];
  for (const [what, args, expected] of cases) {
    test(what, () => {
      const r = cli(...args);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, expected);
      assert.equal(r.stdout, "");
    });
  }
});
