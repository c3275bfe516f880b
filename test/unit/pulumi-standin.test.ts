// The Pulumi CLI stand-in (test/harness/pulumi-standin.ts) behaves as the real CLI's config
// commands do (pulumi/pulumi at 1b5949891b: pkg/cmd/pulumi/config/config.go,
// sdk/go/common/resource/config/{map,object}.go, sdk/go/common/util/yamlutil/edit.go): the CLI
// tests trust it, so it is held to the rules it claims.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { makeSandbox, standinPlaintext } from "../harness/mailstack-cli";

const sandbox = makeSandbox();
after(() => sandbox.remove());
const file = path.join(sandbox.projectDir, "stacks", "Pulumi.t.yaml");

function pulumi(args: string[], stdin = "", env: NodeJS.ProcessEnv = sandbox.env) {
  const r = spawnSync(path.join(sandbox.binDir, "pulumi"), args, { cwd: sandbox.projectDir, env, input: stdin, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const config = () => (parse(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> }).config;

describe("pulumi stand-in", () => {
  test("config set on a stack that was never created fails as RequireStack does without a terminal", () => {
    const r = pulumi(["config", "set", "--stack", "t", "--path", "mailstack:users[0].address", "a@example.org"]);
    assert.equal(r.code, 255);
    assert.equal(r.stderr, "error: no stack named 't' found\n");
  });

  test("stack select --create makes the stack and writes the passphrase salt into its file", () => {
    fs.writeFileSync(file, "# kept\nconfig:\n  mailstack:hostname: mail.example.org # also kept\n");
    assert.equal(pulumi(["stack", "select", "--create", "t"]).code, 0);
    const text = fs.readFileSync(file, "utf8");
    assert.match(text, /^# kept\nconfig:\n {2}mailstack:hostname: mail\.example\.org # also kept\nencryptionsalt: v1:/);
  });

  test("--path creates a list, appends at index == length, and refuses an index past it", () => {
    assert.equal(pulumi(["config", "set", "--stack", "t", "--path", "mailstack:users[0].address", "a@example.org"]).code, 0);
    assert.equal(pulumi(["config", "set", "--stack", "t", "--path", "mailstack:users[1].address", "b@example.org"]).code, 0);
    const before = fs.readFileSync(file, "utf8");
    const r = pulumi(["config", "set", "--stack", "t", "--path", "mailstack:users[3].address", "d@example.org"]);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /array index out of range/);
    assert.equal(fs.readFileSync(file, "utf8"), before);
    assert.deepEqual(config()["mailstack:users"], [{ address: "a@example.org" }, { address: "b@example.org" }]);
  });

  test("a secret is read from stdin less one newline, needs the passphrase, and is stored as {secure: ...}", () => {
    const withoutPassphrase = { ...sandbox.env };
    delete withoutPassphrase.PULUMI_CONFIG_PASSPHRASE;
    const refused = pulumi(
      ["config", "set", "--stack", "t", "--path", "--secret", "mailstack:users[0].passwordHash"],
      "x\n",
      withoutPassphrase,
    );
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE/);
    assert.equal(pulumi(["config", "set", "--stack", "t", "--path", "--secret", "mailstack:users[0].passwordHash"], "hash\n\n").code, 0);
    const users = config()["mailstack:users"] as { passwordHash?: { secure: string } }[];
    assert.equal(standinPlaintext(users[0].passwordHash!.secure), "hash\n");
  });

  test("without --type a path value that looks like a number or boolean is coerced; --type string keeps it", () => {
    pulumi(["config", "set", "--stack", "t", "--path", "mailstack:server.volumeSizeGb", "20"]);
    pulumi(["config", "set", "--stack", "t", "--path", "mailstack:server.deleteProtection", "true"]);
    pulumi(["config", "set", "--stack", "t", "--path", "--type", "string", "mailstack:server.type", "--", "0123"]);
    assert.deepEqual(config()["mailstack:server"], { volumeSizeGb: 20, deleteProtection: true, type: "0123" });
  });

  test("--secret, --plaintext and --type exclude each other; a secret-looking key refuses a plain value", () => {
    const r = pulumi(["config", "set", "--stack", "t", "--secret", "--type", "string", "mailstack:x", "y"]);
    assert.match(r.stderr, /\[secret type\] were all set/);
    const plain = pulumi(["config", "set", "--stack", "t", "--path", "mailstack:users[0].passwordHash", "$argon2id$v=19$long"]);
    assert.match(plain.stderr, /looks like a secret; rerun with --secret/);
  });

  test("config rm --path removes a list element and shifts the rest down; a missing one is no error", () => {
    assert.equal(pulumi(["config", "rm", "--stack", "t", "--path", "mailstack:users[0]"]).code, 0);
    assert.deepEqual(config()["mailstack:users"], [{ address: "b@example.org" }]);
    assert.equal(pulumi(["config", "rm", "--stack", "t", "--path", "mailstack:users[5]"]).code, 0);
    assert.deepEqual(config()["mailstack:users"], [{ address: "b@example.org" }]);
  });

  test("every call is recorded with its arguments and stdin", () => {
    const calls = sandbox.calls();
    assert.deepEqual(calls[0].args, ["config", "set", "--stack", "t", "--path", "mailstack:users[0].address", "a@example.org"]);
    assert.ok(calls.some((c) => c.stdin === "hash\n\n"));
  });
});
