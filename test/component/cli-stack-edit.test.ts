// mailstack init, user and alias without a terminal (flags, the password on stdin), against the
// Pulumi CLI stand-in on PATH: the exact Pulumi commands they run, the stack file that results
// (valid, the hash a secret that verifies the password), and that bad input changes nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { argon2Sync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { readStackFile } from "../../components/config/stack-file";
import { SecretValue } from "../../components/config/secret";
import { validateValues } from "../../infra/cli/stack-edit";
import { PULUMI_MISSING } from "../../infra/cli/pulumi-cli";
import { planDemoStack } from "../../infra/demo/planned-stack";
import { mailstack, makeSandbox, standinPlaintext, type Sandbox } from "../harness/mailstack-cli";

const PASSWORD = "alice's long password";
const INIT = [
  "init",
  "--stack",
  "mail",
  "--domain",
  "example.org,example.net",
  "--zone",
  "example.net=example.net",
  "--user",
  "Alice@example.org",
];

/** Whether an argon2id PHC string is the hash of `password` (recomputed with its own salt and parameters). */
function verifies(phc: string, password: string): boolean {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(phc);
  assert.ok(m, `not an argon2id PHC string: ${phc}`);
  const [, memory, passes, parallelism, salt, hash] = m;
  const tag = Buffer.from(hash, "base64");
  const again = argon2Sync("argon2id", {
    message: password,
    nonce: Buffer.from(salt, "base64"),
    memory: Number(memory),
    passes: Number(passes),
    parallelism: Number(parallelism),
    tagLength: tag.length,
  });
  return again.equals(tag);
}

function stackFile(s: Sandbox, stack = "mail"): string {
  return path.join(s.projectDir, "stacks", `Pulumi.${stack}.yaml`);
}

type Yaml = { config: Record<string, unknown> };
const yamlOf = (s: Sandbox) => parse(fs.readFileSync(stackFile(s), "utf8")) as Yaml;

/** The secrets the stand-in stored for each user, decrypted. */
function storedHashes(s: Sandbox): Record<string, string> {
  const users = yamlOf(s).config["mailstack:users"] as { address: string; passwordHash: { secure: string } }[];
  return Object.fromEntries(users.map((u) => [u.address, standinPlaintext(u.passwordHash.secure)]));
}

describe("mailstack init, non-interactive", () => {
  let s: Sandbox;
  before(() => (s = makeSandbox()));
  after(() => s.remove());

  test("writes a commented stack that validates, then stores the first user's hash through pulumi", () => {
    const r = mailstack(s, INIT, `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote stacks\/Pulumi\.mail\.yaml: example\.org, example\.net on mail\.example\.org, user alice@example\.org/);
    assert.deepEqual(
      s.calls().map((c) => c.args),
      [
        ["version"],
        ["stack", "select", "--create", "mail"],
        ["config", "set", "--stack", "mail", "--path", "--secret", "mailstack:users[0].passwordHash"],
      ],
    );
    // The hash went on stdin only, never on a command line.
    const hash = s.calls()[2].stdin!;
    assert.ok(verifies(hash, PASSWORD), "the stored hash does not verify the password");
    assert.ok(!s.calls().some((c) => c.args.some((a) => a.includes("argon2") || a.includes(PASSWORD))));

    const text = fs.readFileSync(stackFile(s), "utf8");
    assert.match(text, /^# Stack "mail", written by `mailstack init`/);
    assert.match(
      text,
      /pulumi config set --secret cloudflare:apiToken {3}# Cloudflare API token: Zone\.DNS edit on example\.org, example\.net/,
    );
    assert.deepEqual(yamlOf(s).config, {
      "mailstack:hostname": "mail.example.org",
      "mailstack:server": { type: "cx23", location: "fsn1" },
      "mailstack:domains": [
        { name: "example.org", zone: "example.org" },
        { name: "example.net", zone: "example.net" },
      ],
      "mailstack:users": [
        { address: "alice@example.org", passwordHash: { secure: (yamlOf(s).config["mailstack:users"] as any)[0].passwordHash.secure } },
      ],
      "mailstack:acme": { email: "alice@example.org", directory: "letsencrypt" },
    });
    assert.equal(storedHashes(s)["alice@example.org"], hash);
    const spec = validateValues(readStackFile(stackFile(s)));
    assert.ok(spec.users[0].passwordHash instanceof SecretValue);
  });

  test("never overwrites: an existing stack is a usage error and nothing runs", () => {
    const before = fs.readFileSync(stackFile(s));
    const calls = s.calls().length;
    const r = mailstack(s, INIT, `${PASSWORD}\n`);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^mailstack init: --stack: stacks\/Pulumi\.mail\.yaml exists already; pick another name \(init never overwrites\)\nusage: mailstack init/,
    );
    assert.deepEqual(fs.readFileSync(stackFile(s)), before);
    assert.equal(s.calls().length, calls);
  });

  const bad: [string, string[], string, RegExp][] = [
    [
      "a domain that is no name",
      ["--domain", "exa mple.org"],
      PASSWORD,
      /^mailstack init: --domain: "exa mple\.org" is not a domain name: it contains " "/,
    ],
    [
      "a zone that does not hold its domain",
      ["--zone", "example.org=example.net"],
      PASSWORD,
      /--zone: zone example\.net does not contain example\.org/,
    ],
    ["a zone for no mail domain", ["--zone", "other.org=other.org"], PASSWORD, /--zone: other\.org is not one of the mail domains/],
    [
      "a host name outside the zones",
      ["--hostname", "mail.other.net"],
      PASSWORD,
      /--hostname: mail\.other\.net is in none of the zones example\.org/,
    ],
    [
      "a user outside the domains",
      ["--user", "bob@other.org"],
      PASSWORD,
      /--user: bob@other\.org is in none of the mail domains \(example\.org\)/,
    ],
    [
      "an ACME CA that is not https",
      ["--acme-ca", "http://ca.example/dir"],
      PASSWORD,
      /--acme-ca: "http:\/\/ca\.example\/dir" is not one of letsencrypt, letsencrypt-staging or an https:\/\/ URL/,
    ],
    [
      "a custom CA without its CAA identity",
      ["--acme-ca", "https://ca.example/dir"],
      PASSWORD,
      /--caa-identity is required when standard input is not a terminal/,
    ],
    [
      "an unknown location",
      ["--location", "mars"],
      PASSWORD,
      /--location: "mars" is not a Hetzner location; pick one of fsn1, nbg1, hel1, ash, hil, sin/,
    ],
    [
      "a type Hetzner does not sell there",
      ["--location", "ash", "--server-type", "cx23"],
      PASSWORD,
      /--server-type: cx23 is not offered in "ash" \(CX is sold in fsn1, nbg1, hel1 only\); in ash use cpx11, /,
    ],
    ["a short password", [], "short", /standard input: the password has 5 characters; use at least 12/],
  ];
  for (const [what, flags, password, message] of bad) {
    test(`${what}: exit 2 naming it, nothing written, pulumi never called`, () => {
      const t = makeSandbox();
      try {
        const r = mailstack(
          t,
          ["init", "--stack", "other", "--domain", "example.org", "--user", "alice@example.org", ...flags],
          `${password}\n`,
        );
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /\nusage: mailstack init /);
        assert.deepEqual(fs.readdirSync(path.join(t.projectDir, "stacks")), []);
        assert.deepEqual(t.calls(), []);
      } finally {
        t.remove();
      }
    });
  }

  test("missing required flags without a terminal: exit 2 naming the flag", () => {
    const t = makeSandbox();
    try {
      const r = mailstack(t, ["init", "--stack", "other", "--domain", "example.org"], `${PASSWORD}\n`);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^mailstack init: --user is required when standard input is not a terminal/);
    } finally {
      t.remove();
    }
  });

  test("without the Pulumi CLI: a clear error and nothing written", () => {
    const t = makeSandbox({ pulumi: false });
    try {
      const r = mailstack(t, ["init", "--stack", "other", "--domain", "example.org", "--user", "alice@example.org"], `${PASSWORD}\n`);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `mailstack init: ${PULUMI_MISSING}\n`);
      assert.deepEqual(fs.readdirSync(path.join(t.projectDir, "stacks")), []);
    } finally {
      t.remove();
    }
  });

  test("a stack file holding only what `pulumi stack init` writes (its secrets provider) is completed, not refused", () => {
    const t = makeSandbox();
    try {
      fs.writeFileSync(stackFile(t, "other"), "encryptionsalt: v1:c2FsdA==:v1:x:y\n");
      const r = mailstack(t, ["init", "--stack", "other", "--domain", "example.org", "--user", "alice@example.org"], `${PASSWORD}\n`);
      assert.equal(r.code, 0, r.stderr);
      const doc = parse(fs.readFileSync(stackFile(t, "other"), "utf8")) as Yaml & { encryptionsalt: string };
      assert.equal(doc.encryptionsalt, "v1:c2FsdA==:v1:x:y");
      assert.equal(validateValues(readStackFile(stackFile(t, "other"))).users[0].address, "alice@example.org");
    } finally {
      t.remove();
    }
  });

  test("a passphrase-protected stack without PULUMI_CONFIG_PASSPHRASE: says so, and the file is removed again", () => {
    const t = makeSandbox({ passphrase: false });
    try {
      const r = mailstack(t, ["init", "--stack", "other", "--domain", "example.org", "--user", "alice@example.org"], `${PASSWORD}\n`);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /pulumi stack select --create other failed \(exit 255\): error: passphrase must be set/);
      assert.match(r.stderr, /export PULUMI_CONFIG_PASSPHRASE \(or PULUMI_CONFIG_PASSPHRASE_FILE\) and run this again/);
      assert.match(r.stderr, /Pulumi\.other\.yaml was removed again/);
      assert.deepEqual(fs.readdirSync(path.join(t.projectDir, "stacks")), []);
    } finally {
      t.remove();
    }
  });
});

describe("mailstack user and alias, non-interactive", () => {
  let s: Sandbox;
  before(() => {
    s = makeSandbox();
    const r = mailstack(s, INIT, `${PASSWORD}\n`);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => s.remove());
  const since = (n: number) => s.calls().slice(n);

  test("user add appends at the next index: the address, then the hash as a secret on stdin", () => {
    const n = s.calls().length;
    const r = mailstack(s, ["user", "add", "Bob@Example.net"], "bob's long password\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "added user bob@example.net to stack mail (mailstack:users[1], password hash stored as a secret)\n");
    assert.deepEqual(
      since(n).map((c) => c.args),
      [
        ["version"],
        ["version"],
        ["config", "set", "--stack", "mail", "--path", "--type", "string", "mailstack:users[1].address", "--", "bob@example.net"],
        ["config", "set", "--stack", "mail", "--path", "--secret", "mailstack:users[1].passwordHash"],
      ],
    );
    assert.ok(verifies(storedHashes(s)["bob@example.net"], "bob's long password"));
    assert.ok(verifies(storedHashes(s)["alice@example.org"], PASSWORD));
  });

  test("user add of an existing user, or one outside the domains: refused, nothing runs", () => {
    const before = fs.readFileSync(stackFile(s));
    const n = s.calls().length;
    const again = mailstack(s, ["user", "add", "alice@example.org"], "some long password\n");
    assert.equal(again.code, 2);
    assert.match(again.stderr, /^mailstack user: ADDRESS: alice@example\.org is already a user of stack mail; use user passwd/);
    const outside = mailstack(s, ["user", "add", "carol@other.org"], "some long password\n");
    assert.equal(outside.code, 1);
    assert.match(
      outside.stderr,
      /cannot add user carol@other\.org: the stack would be invalid, so nothing was changed:\n.*users\[2\]\.address: "carol@other\.org" is in none of the managed domains/s,
    );
    assert.deepEqual(fs.readFileSync(stackFile(s)), before);
    assert.deepEqual(
      since(n).map((c) => c.args),
      [],
    );
  });

  test("without the Pulumi CLI, user add says so before asking for a password, and nothing changes", () => {
    const before = fs.readFileSync(stackFile(s));
    const env = { ...s.env, PATH: s.env.PATH!.split(":").slice(1).join(":") };
    const r = mailstack({ ...s, env }, ["user", "add", "dave@example.org"], "");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `mailstack user: ${PULUMI_MISSING}\n`);
    assert.deepEqual(fs.readFileSync(stackFile(s)), before);
  });

  test("user passwd replaces only that user's hash", () => {
    const bob = storedHashes(s)["bob@example.net"];
    const n = s.calls().length;
    assert.equal(mailstack(s, ["user", "passwd", "alice@example.org"], "alice's new long password\n").code, 0);
    assert.deepEqual(
      since(n)
        .map((c) => c.args)
        .at(-1),
      ["config", "set", "--stack", "mail", "--path", "--secret", "mailstack:users[0].passwordHash"],
    );
    assert.ok(verifies(storedHashes(s)["alice@example.org"], "alice's new long password"));
    assert.equal(storedHashes(s)["bob@example.net"], bob);
  });

  test("alias add creates an alias, and adds targets to an existing one", () => {
    const n = s.calls().length;
    assert.equal(mailstack(s, ["alias", "add", "info@example.net", "bob@example.net"]).code, 0);
    const r = mailstack(s, ["alias", "add", "info@example.net", "Alice@Example.org", "friend@outside.example"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "alias info@example.net now delivers to bob@example.net, alice@example.org, friend@outside.example (stack mail)\n",
    );
    assert.deepEqual(
      since(n)
        .map((c) => c.args)
        .filter((a) => a[0] === "config"),
      [
        ["config", "set", "--stack", "mail", "--path", "--type", "string", "mailstack:aliases[0].address", "--", "info@example.net"],
        ["config", "set", "--stack", "mail", "--path", "--type", "string", "mailstack:aliases[0].to[0]", "--", "bob@example.net"],
        ["config", "set", "--stack", "mail", "--path", "--type", "string", "mailstack:aliases[0].to[1]", "--", "alice@example.org"],
        ["config", "set", "--stack", "mail", "--path", "--type", "string", "mailstack:aliases[0].to[2]", "--", "friend@outside.example"],
      ],
    );
    assert.deepEqual(yamlOf(s).config["mailstack:aliases"], [
      { address: "info@example.net", to: ["bob@example.net", "alice@example.org", "friend@outside.example"] },
    ]);
  });

  test("an alias target that points nowhere, or no target at all: refused, nothing changes", () => {
    const before = fs.readFileSync(stackFile(s));
    const nowhere = mailstack(s, ["alias", "add", "sales@example.org", "nobody@example.org"]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /aliases\[1\]\.to\[0\]: "nobody@example\.org" points nowhere/);
    const none = mailstack(s, ["alias", "add", "sales@example.org"]);
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /^mailstack alias: TARGET is missing: where should mail to sales@example\.org go\?\nusage: mailstack alias add/,
    );
    assert.deepEqual(fs.readFileSync(stackFile(s)), before);
  });

  test("removing a user an alias still delivers to is refused with the validator's reason", () => {
    const before = fs.readFileSync(stackFile(s));
    const r = mailstack(s, ["user", "remove", "bob@example.net"]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /cannot remove user bob@example\.net: the stack would be invalid, so nothing was changed:\n.*aliases\[0\]\.to\[0\]: "bob@example\.net" points nowhere/s,
    );
    assert.deepEqual(fs.readFileSync(stackFile(s)), before);
  });

  test("alias remove of a target (pulumi config rm --path ... to[N]), then the user, which shifts the list", () => {
    const bob = storedHashes(s)["bob@example.net"];
    const n = s.calls().length;
    assert.equal(mailstack(s, ["alias", "remove", "info@example.net", "bob@example.net"]).code, 0);
    assert.equal(mailstack(s, ["user", "add", "carol@example.org"], "carol's long password\n").code, 0);
    assert.equal(mailstack(s, ["user", "remove", "bob@example.net"]).code, 0);
    const rm = since(n)
      .map((c) => c.args)
      .filter((a) => a[1] === "rm");
    assert.deepEqual(rm, [
      ["config", "rm", "--stack", "mail", "--path", "mailstack:aliases[0].to[0]"],
      ["config", "rm", "--stack", "mail", "--path", "mailstack:users[1]"],
    ]);
    const users = yamlOf(s).config["mailstack:users"] as { address: string }[];
    assert.deepEqual(
      users.map((u) => u.address),
      ["alice@example.org", "carol@example.org"],
    );
    assert.ok(!Object.values(storedHashes(s)).includes(bob));
    assert.ok(verifies(storedHashes(s)["carol@example.org"], "carol's long password"));
  });

  test("the resulting stack validates and the Pulumi program plans its users and aliases for the box", async () => {
    const values = readStackFile(stackFile(s));
    const spec = validateValues(values);
    assert.deepEqual(
      spec.aliases.map((a) => `${a.address} -> ${a.to.join(",")}`),
      [
        "info@example.net -> alice@example.org,friend@outside.example",
        "postmaster@example.org -> alice@example.org",
        "postmaster@example.net -> alice@example.org",
      ],
    );
    const hashes = storedHashes(s);
    const plan = await planDemoStack({
      projectDir: s.projectDir,
      stack: "mail",
      users: spec.users.map((u) => ({ address: u.address, password: "", passwordHash: hashes[u.address] })),
      acme: { directoryUrl: "https://ca.test/directory", caaIdentity: "ca.test" },
      ipv4: "198.51.100.25",
      ipv6Network: "2001:db8:1::",
    });
    assert.deepEqual(plan.deploy.users, [
      { address: "alice@example.org", passwordHash: hashes["alice@example.org"] },
      { address: "carol@example.org", passwordHash: hashes["carol@example.org"] },
    ]);
    assert.deepEqual(plan.deploy.aliases.find((a) => a.address === "info@example.net")?.to, [
      "alice@example.org",
      "friend@outside.example",
    ]);
  });

  test("alias remove without targets removes the alias", () => {
    assert.equal(mailstack(s, ["alias", "remove", "info@example.net"]).code, 0);
    assert.deepEqual(yamlOf(s).config["mailstack:aliases"], []);
    assert.deepEqual(s.calls().at(-1)!.args, ["config", "rm", "--stack", "mail", "--path", "mailstack:aliases[0]"]);
  });
});
