import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { SecretValue } from "../../components/config/secret";

describe("readStackFile", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "stack-file-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  test("returns the mailstack: entries without the prefix and ignores other namespaces", () => {
    const file = write(
      "Pulumi.a.yaml",
      [
        "encryptionsalt: v1:abc",
        "config:",
        "  hcloud:token:",
        "    secure: v1:aGNsb3Vk",
        "  cloudflare:apiToken:",
        "    secure: v1:Y2xvdWRmbGFyZQ==",
        "  mailstack:hostname: mail.example.org",
        "  mailstack:server:",
        "    type: cx23",
        "    deleteProtection: true",
        "    volumeSizeGb: 20",
      ].join("\n"),
    );
    assert.deepEqual(readStackFile(file), {
      hostname: "mail.example.org",
      server: { type: "cx23", deleteProtection: true, volumeSizeGb: 20 },
    });
  });

  test("turns every {secure: ...} value, at any depth, into a SecretValue", () => {
    const file = write(
      "Pulumi.b.yaml",
      [
        "config:",
        "  mailstack:users:",
        "    - address: alice@example.org",
        "      passwordHash:",
        "        secure: v1:YWxpY2U=",
        "  mailstack:acme:",
        "    secure: v1:YWNtZQ==",
      ].join("\n"),
    );
    const values = readStackFile(file);
    assert.deepEqual(values, {
      users: [{ address: "alice@example.org", passwordHash: new SecretValue("v1:YWxpY2U=") }],
      acme: new SecretValue("v1:YWNtZQ=="),
    });
    const users = values.users as { passwordHash: unknown }[];
    assert.ok(users[0].passwordHash instanceof SecretValue);
    assert.ok(values.acme instanceof SecretValue);
  });

  test("a key without a namespace belongs to the project namespace, as in Pulumi", () => {
    const file = write("Pulumi.c.yaml", "config:\n  hostname: mail.example.org\n");
    assert.deepEqual(readStackFile(file), { hostname: "mail.example.org" });
  });

  test("another namespace can be read by passing it", () => {
    const file = write("Pulumi.d.yaml", "config:\n  other:hostname: mail.example.net\n  mailstack:hostname: mail.example.org\n");
    assert.deepEqual(readStackFile(file, "other"), { hostname: "mail.example.net" });
  });

  test("a file without config gives an empty mapping", () => {
    const file = write("Pulumi.e.yaml", "encryptionsalt: v1:abc\n");
    assert.deepEqual(readStackFile(file), {});
  });

  test("a missing file is an error naming the file", () => {
    const file = path.join(dir, "Pulumi.missing.yaml");
    assert.throws(() => readStackFile(file), {
      message: `${file}: cannot read the stack file: no such file; create it or pick another --stack`,
    });
  });

  test("bad YAML is an error naming the file", () => {
    const file = write("Pulumi.f.yaml", "config:\n  mailstack:hostname: [unclosed\n");
    assert.throws(
      () => readStackFile(file),
      (err: Error) => err.message.startsWith(`${file}: not valid YAML: `),
    );
  });

  test("a duplicate key is an error naming the file", () => {
    const file = write("Pulumi.g.yaml", "config:\n  mailstack:hostname: a.example.org\n  mailstack:hostname: b.example.org\n");
    assert.throws(
      () => readStackFile(file),
      (err: Error) => err.message.startsWith(`${file}: not valid YAML: `),
    );
  });

  test("config that is not a mapping is an error naming the file", () => {
    const file = write("Pulumi.h.yaml", "config:\n  - mailstack:hostname\n");
    assert.throws(() => readStackFile(file), { message: `${file}: config: expected a mapping of namespace:key entries` });
  });
});
