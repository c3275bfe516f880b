import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chooseStack, ipv6Network64, parseCheckArgs, readDkimKeys, runCheck, UsageError, type CheckOptions } from "../../infra/cli/check";
import { parseResolverAddress } from "../../infra/cli/check-dns";
import { formatCheckJson, formatCheckTable, summaryLine } from "../../infra/cli/check-format";
import { exitCodeFor, type CheckRow } from "../../infra/cli/check-result";
import { main } from "../../infra/cli/main";

const ROOT = path.resolve(__dirname, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-check-cli-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("parseCheckArgs", () => {
  test("every option, normalised", () => {
    const o = parseCheckArgs([
      "Example.ORG.",
      "--stack",
      "dev",
      "--json",
      "--resolver",
      "198.51.100.53:5353",
      "--timeout",
      "1500",
      "--ca",
      "/tmp/ca.pem",
      "--hostname",
      "Mail.Example.org",
      "--selector",
      "s1-rsa,s1-ed25519",
      "--selector",
      "old",
      "--dkim-keys",
      "keys.json",
      "--ipv4",
      "198.51.100.25",
      "--ipv6",
      "2001:DB8:1::/64",
      "--acme-account",
      "https://acme.example/acct/1",
      "--project",
      "/srv/p",
      "--dnsbl",
      "Zen.Spamhaus.org,bl.spamcop.net",
      "--dbl",
      "dbl.spamhaus.org",
    ]);
    assert.deepEqual(o, {
      domain: "example.org",
      stack: "dev",
      json: true,
      resolvers: ["198.51.100.53:5353"],
      timeoutMs: 1500,
      caFiles: ["/tmp/ca.pem"],
      hostname: "mail.example.org",
      selectors: ["s1-rsa", "s1-ed25519", "old"],
      dkimKeysFile: "keys.json",
      ipv4: "198.51.100.25",
      ipv6Network: "2001:db8:1::",
      acmeAccount: "https://acme.example/acct/1",
      project: "/srv/p",
      dnsbl: ["zen.spamhaus.org", "bl.spamcop.net"],
      dbl: ["dbl.spamhaus.org"],
    });
  });

  test("defaults: 5000 ms, the system resolver, table output", () => {
    assert.deepEqual(parseCheckArgs(["example.org"]), {
      domain: "example.org",
      json: false,
      resolvers: [],
      timeoutMs: 5000,
      caFiles: [],
      selectors: [],
      dnsbl: [],
      dbl: [],
    });
  });

  const bad: [string[], RegExp][] = [
    [[], /^DOMAIN: missing/],
    [["example.org", "--dnsbl", "bl..example"], /^--dnsbl: "bl\.\.example"/],
    [["example.org", "example.net"], /^DOMAIN: one domain per run/],
    [["exa mple.org"], /^DOMAIN: "exa mple\.org" contains " "/],
    [["example.org", "--timeout", "50"], /^--timeout: "50" is not a whole number of milliseconds 100\.\.600000$/],
    [["example.org", "--timeout", "5s"], /^--timeout: "5s"/],
    [["example.org", "--resolver", "dns.example"], /^--resolver: "dns\.example" is not an IP address/],
    [["example.org", "--resolver", "198.51.100.53:70000"], /^--resolver: "198\.51\.100\.53:70000"/],
    [["example.org", "--ipv4", "198.51.100"], /^--ipv4: "198\.51\.100" is not an IPv4 address$/],
    [["example.org", "--ipv6", "2001:db8:1::1"], /^--ipv6: /],
    [["example.org", "--selector", "bad selector"], /^--selector: "bad selector" is not a DKIM selector/],
    [
      ["example.org", "--acme-account", "http://acme.example/1"],
      /^--acme-account: "http:\/\/acme\.example\/1" is not an https:\/\/ account URL$/,
    ],
    [["example.org", "--stack", "../x"], /^--stack: "\.\.\/x" is not a stack name/],
    [["example.org", "--hostname", "mail..example.org"], /^--hostname: "mail\.\.example\.org" has an empty label/],
    [["example.org", "--frobnicate"], /--frobnicate/],
  ];
  for (const [argv, message] of bad) {
    test(`usage error: ${argv.join(" ") || "(no arguments)"}`, () => {
      assert.throws(
        () => parseCheckArgs(argv),
        (err: unknown) => err instanceof UsageError && message.test((err as Error).message),
      );
    });
  }
});

describe("parseResolverAddress", () => {
  const cases: [string, string | undefined][] = [
    ["198.51.100.53", "198.51.100.53"],
    ["198.51.100.53:5353", "198.51.100.53:5353"],
    ["2001:db8::53", "2001:db8::53"],
    ["[2001:db8::53]", "2001:db8::53"],
    ["[2001:db8::53]:5353", "[2001:db8::53]:5353"],
    ["[198.51.100.53]:53", undefined],
    ["198.51.100.53:0", undefined],
    ["ns1.example.org", undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${input} -> ${expected ?? "refused"}`, () => assert.equal(parseResolverAddress(input), expected));
  }
});

describe("ipv6Network64: the /64 an address lies in, as --ipv6 takes it", () => {
  const cases: [string, string][] = [
    ["2001:db8:1::1", "2001:db8:1::"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"],
    ["2001:db8::25", "2001:db8::"],
    ["2001:0:0:5:1::1", "2001:0:0:5::"],
  ];
  for (const [input, expected] of cases) test(`${input} -> ${expected}`, () => assert.equal(ipv6Network64(input), expected));
});

describe("chooseStack: which plan to compare with", () => {
  const project = path.join(tmp, "project");
  fs.mkdirSync(path.join(project, "stacks"), { recursive: true });
  fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: mailstack\nruntime: nodejs\n");
  for (const s of ["dev", "prod"])
    fs.copyFileSync(path.join(ROOT, "stacks", `Pulumi.${s}.yaml`), path.join(project, "stacks", `Pulumi.${s}.yaml`));
  const noProject = () => {
    throw new Error("no project");
  };
  const options = (domain: string, extra: Partial<CheckOptions> = {}): CheckOptions => ({ ...parseCheckArgs([domain]), project, ...extra });

  test("the one stack that lists the domain", () => {
    const c = chooseStack(options("example.net"), noProject);
    assert.equal(c?.stack, "dev");
    assert.equal(c?.domain.name, "example.net");
    assert.equal(c?.spec.hostname, "mail.example.org");
    assert.equal(chooseStack(options("example.com"), noProject)?.stack, "prod");
  });

  test("no stack lists the domain, or no project: no plan", () => {
    assert.equal(chooseStack(options("example.info"), noProject), null);
    assert.equal(chooseStack({ ...parseCheckArgs(["example.org"]) }, noProject), null);
  });

  test("--stack naming a stack without the domain is a usage error listing its domains", () => {
    assert.throws(
      () => chooseStack(options("example.com", { stack: "dev" }), noProject),
      /^Error: --stack dev: example\.com is not one of its domains \(example\.org, example\.net\)$/,
    );
  });

  test("--stack naming a missing stack file is a usage error", () => {
    assert.throws(
      () => chooseStack(options("example.org", { stack: "staging" }), noProject),
      (e: unknown) => e instanceof UsageError && /Pulumi\.staging\.yaml does not exist/.test((e as Error).message),
    );
  });

  test("two stacks listing the domain: a usage error asking for --stack", () => {
    fs.copyFileSync(path.join(project, "stacks", "Pulumi.dev.yaml"), path.join(project, "stacks", "Pulumi.staging.yaml"));
    try {
      assert.throws(() => chooseStack(options("example.org"), noProject), /example\.org is a domain of stacks dev, staging; pick one/);
    } finally {
      fs.rmSync(path.join(project, "stacks", "Pulumi.staging.yaml"));
    }
  });
});

describe("readDkimKeys: the deployed keys", () => {
  const file = (name: string, content: unknown) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
    return p;
  };
  const key = { selector: "s1-rsa", algorithm: "rsa", publicKeyB64: "MIIB" };

  test("the shape `pulumi stack output dkimPublicKeys --json` prints, by domain", () => {
    assert.deepEqual(readDkimKeys(file("by-domain.json", { "example.org": [key], "example.net": [] }), "example.org"), [key]);
    assert.deepEqual(readDkimKeys(file("by-domain.json", { "example.net": [key] }), "example.org"), []);
  });

  test("a plain list of keys", () => {
    assert.deepEqual(readDkimKeys(file("list.json", [key]), "example.org"), [key]);
  });

  test("malformed files are usage errors naming the file and the entry", () => {
    assert.throws(() => readDkimKeys(file("bad.json", "{"), "example.org"), /^Error: --dkim-keys: cannot read .*bad\.json as JSON/);
    assert.throws(
      () => readDkimKeys(file("bad2.json", { "example.org": [{ selector: "s1" }] }), "example.org"),
      /example\.org\[0\] is not \{selector, algorithm: rsa\|ed25519, publicKeyB64\}/,
    );
  });
});

describe("output and exit status", () => {
  const rows: CheckRow[] = [
    { check: "mx", status: "pass", detail: "10 mail.example.org (as planned)", target: "example.org" },
    { check: "mta-sts.record", status: "fail", detail: "id=1 is stale", target: "_mta-sts.example.org" },
    { check: "dmarc", status: "warn", detail: "p=none" },
  ];
  const report = { domain: "example.org", hostname: "mail.example.org", stack: "dev", notes: ["DNS queries to 198.51.100.53"], rows };

  test("the table: a header, the notes, aligned columns, the summary line", () => {
    assert.equal(
      formatCheckTable(report),
      [
        "mailstack check example.org: mail host mail.example.org, against the plan of stack dev",
        "  DNS queries to 198.51.100.53",
        "",
        "CHECK           STATUS  TARGET                DETAIL",
        "mx              pass    example.org           10 mail.example.org (as planned)",
        "mta-sts.record  fail    _mta-sts.example.org  id=1 is stale",
        "dmarc           warn    -                     p=none",
        "",
        "3 checks: 1 pass, 1 warn, 1 fail (exit status 1)",
        "",
      ].join("\n"),
    );
  });

  test("JSON: the rows as checks, with a summary", () => {
    const doc = JSON.parse(formatCheckJson(report)) as Record<string, unknown>;
    assert.deepEqual(doc.summary, { pass: 1, warn: 1, fail: 1, total: 3, ok: false });
    assert.deepEqual(doc.checks, rows);
    assert.equal(doc.stack, "dev");
  });

  test("exit status: 1 with any failure, 0 with warnings only", () => {
    assert.equal(exitCodeFor(rows), 1);
    assert.equal(exitCodeFor(rows.filter((r) => r.status !== "fail")), 0);
    assert.equal(summaryLine([]), "0 checks: 0 pass, 0 warn, 0 fail");
  });

  test("runCheck: bad arguments exit 2 with the message and the usage on stderr, nothing on stdout", async () => {
    let out = "";
    let err = "";
    const code = await runCheck(["example.org", "--ca", path.join(tmp, "missing.pem")], {
      findProjectDir: () => ROOT,
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
    });
    assert.equal(code, 2);
    assert.equal(out, "");
    assert.match(err, /^mailstack check: --ca: cannot read .*missing\.pem: ENOENT\nusage: mailstack check DOMAIN/);
  });

  test("mailstack check without a domain exits 2", async () => {
    const write = process.stderr.write;
    let err = "";
    process.stderr.write = ((t: string) => ((err += t), true)) as typeof process.stderr.write;
    try {
      assert.equal(await main(["check"]), 2);
    } finally {
      process.stderr.write = write;
    }
    assert.match(err, /^mailstack check: DOMAIN: missing/);
  });
});
