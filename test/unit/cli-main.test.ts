// The mailstack dispatcher: help on every command and subcommand, the version, and usage errors
// (exit status 2) for bad arguments.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { COMMANDS, main } from "../../infra/cli/main";
import type { CommandIo } from "../../infra/cli/command";

const ROOT = path.resolve(__dirname, "..", "..");

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const stdin = new PassThrough();
  stdin.end();
  const io: CommandIo = { stdin, stdout: (t) => (out += t), stderr: (t) => (err += t), interactive: false, cwd: ROOT, env: {} };
  const code = await main(argv, io);
  return { code, out, err };
}

describe("mailstack help, usage and version", () => {
  test("--version prints package.json's version", async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
    assert.deepEqual(await run(["--version"]), { code: 0, out: `mailstack ${version}\n`, err: "" });
  });

  test("--help, -h and help list every command with its summary", async () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const r = await run(argv);
      assert.equal(r.code, 0);
      for (const c of COMMANDS) assert.match(r.out, new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
    }
  });

  test("no command: the list on stderr, exit 2", async () => {
    const r = await run([]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^usage: mailstack COMMAND/);
  });

  test("the commands are init, user, alias, plan, preview, check and backup", () => {
    assert.deepEqual(
      COMMANDS.map((c) => c.name),
      ["init", "user", "alias", "plan", "preview", "check", "backup"],
    );
  });

  const subcommands: Record<string, string[][]> = {
    init: [[]],
    user: [[], ["add"], ["passwd"], ["remove"]],
    alias: [[], ["add"], ["remove"]],
    plan: [[]],
    preview: [[]],
    check: [[]],
    backup: [[], ["status"], ["snapshots"], ["restore-mailbox"], ["prune"]],
  };
  for (const c of COMMANDS) {
    for (const sub of subcommands[c.name] ?? [[]]) {
      for (const flag of ["--help", "-h"]) {
        test(`mailstack ${[c.name, ...sub, flag].join(" ")} prints its usage and exits 0`, async () => {
          const r = await run([c.name, ...sub, ...(sub.length > 0 ? ["alice@example.org"] : []), flag]);
          assert.deepEqual(r, { code: 0, out: `${c.usage}\n`, err: "" });
          assert.match(c.usage, new RegExp(`^usage: mailstack ${c.name}\\b`));
          for (const s of sub) assert.match(c.usage, new RegExp(`mailstack ${c.name} ${s}\\b`));
        });
      }
    }
  }

  const bad: [string[], RegExp][] = [
    [["deploy"], /^mailstack: unknown command "deploy"\nusage: mailstack COMMAND/],
    [["help", "deploy"], /^mailstack help: no command "deploy"/],
    [["plan", "--format", "xml"], /^mailstack plan: --format: "xml" is not one of table\|json\|zone\nusage: mailstack plan/],
    [["plan", "--bogus"], /^mailstack plan: Unknown option '--bogus'\nusage: mailstack plan/],
    [["plan", "extra"], /^mailstack plan: unexpected argument "extra"; plan takes options only/],
    [["check"], /^mailstack check: DOMAIN: missing/],
    [["preview"], /^mailstack preview: --stack: required/],
    [["init", "--stack", "../x"], /^mailstack init: --stack: "\.\.\/x" is not a stack name/],
    [["init", "positional"], /^mailstack init: unexpected argument "positional"/],
    [["user"], /^mailstack user: a subcommand is missing: add, passwd, remove\nusage: mailstack user add/],
    [["user", "rename", "a@example.org"], /^mailstack user: "rename" is not one of add, passwd, remove/],
    [["user", "add"], /^mailstack user: ADDRESS is missing, e.g. mailstack user add alice@example\.org/],
    [["user", "add", "not-an-address"], /^mailstack user: ADDRESS: "not-an-address" is not an email address: it has no @/],
    [["user", "add", "a@example.org", "b@example.org"], /^mailstack user: unexpected argument "b@example\.org": one ADDRESS per run/],
    [["alias", "add", "info@example.org"], /^mailstack alias: TARGET is missing/],
    [["alias", "add", "@exa mple.org", "a@example.org"], /^mailstack alias: ADDRESS: "@exa mple\.org" is not a catch-all @domain/],
    [["alias", "list"], /^mailstack alias: "list" is not one of add, remove/],
    [["backup"], /^mailstack backup: a subcommand is missing: status, snapshots, restore-mailbox, prune\nusage: mailstack backup status/],
    [["backup", "restore"], /^mailstack backup: "restore" is not one of status, snapshots, restore-mailbox, prune/],
    [["backup", "status"], /^mailstack backup: --outputs FILE is required: the stack's outputs, pulumi stack output --json --show-secrets/],
    [["backup", "restore-mailbox", "--outputs", "o.json"], /^mailstack backup: ADDRESS is missing/],
    [
      ["backup", "restore-mailbox", "a@example.org", "--snapshot", "yesterday", "--outputs", "o.json"],
      /^mailstack backup: --snapshot: "yesterday" is not latest or a snapshot id/,
    ],
  ];
  for (const [argv, message] of bad) {
    test(`mailstack ${argv.join(" ")}: exit 2 with the reason and the usage`, async () => {
      const r = await run(argv);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.out, "");
      assert.match(r.err, message);
      assert.match(r.err, /usage: mailstack/);
    });
  }
});
