// The README's quick start ("Deploying for real"), run line by line as written, from
// `mailstack init` up to the first Pulumi CLI call that needs the clouds (`pulumi up`), with
// the Pulumi CLI stand-in on PATH: each step succeeds and the stack it leaves validates and plans.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { readStackFile } from "../../components/config/stack-file";
import { validateValues } from "../../infra/cli/stack-edit";
import { COMMANDS } from "../../infra/cli/main";
import { MAIN, makeSandbox, NODE, ROOT, standinPlaintext, TSX, type Sandbox } from "../harness/mailstack-cli";

let s: Sandbox;
before(() => {
  s = makeSandbox();
  // The quick start runs in a clone of this repository; the program's dynamic providers load
  // mailstack from the project (as after `npm install mailstack`): this checkout, built by npm test.
  fs.mkdirSync(path.join(s.projectDir, "node_modules"));
  fs.symlinkSync(ROOT, path.join(s.projectDir, "node_modules", "mailstack"));
  // `npx mailstack` as in a clone of this repository: this checkout's command.
  fs.writeFileSync(
    path.join(s.binDir, "npx"),
    `#!/bin/sh\n[ "$1" = mailstack ] || { echo "npx: only mailstack here" >&2; exit 1; }\nshift\nexec "${NODE}" --import "${TSX}" "${MAIN}" "$@"\n`,
    { mode: 0o755 },
  );
});
after(() => s.remove());

function quickStart(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Deploying for real"));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, "no sh block in Deploying for real");
  return block[1].split("\n").filter((l) => l.trim() !== "");
}

/** What a person types at each step: a password, or a token. */
function stdinFor(line: string): string {
  if (/mailstack init /.test(line)) return "alice's long password\n";
  if (/mailstack user add bob@/.test(line)) return "bob's long password\n";
  if (/hcloud:token/.test(line)) return "hetzner-token-123\n";
  if (/cloudflare:apiToken/.test(line)) return "cloudflare-token-456\n";
  return "";
}

test("the quick start runs step by step up to pulumi up, and leaves a stack that validates and plans", () => {
  const lines = quickStart();
  const first = lines.findIndex((l) => l.startsWith("npx mailstack init "));
  // The first Pulumi CLI call that needs the clouds; the rest of the block is such calls.
  const cloud = lines.findIndex((l) => /^pulumi (preview|up)\b/.test(l));
  assert.ok(first > 0 && cloud > first, lines.join("\n"));
  assert.ok(
    lines.slice(cloud).every((l) => /^pulumi (preview|up)\b/.test(l)),
    lines.slice(cloud).join("\n"),
  );
  assert.equal(lines.at(-1), "pulumi up --stack mail");
  const steps = lines.slice(first, cloud);
  const kinds = steps.map((l) =>
    l
      .replace(/\s+#.*$/, "")
      .split(" ")
      .slice(0, 3)
      .join(" "),
  );
  // The steps of the quick start, in this order (others, such as mailstack preview, may come between).
  const required = [
    "npx mailstack init",
    "npx mailstack user",
    "npx mailstack alias",
    "pulumi config set",
    "pulumi config set",
    "npx mailstack plan",
  ];
  let at = 0;
  for (const k of kinds) if (k === required[at]) at++;
  assert.equal(at, required.length, `the quick start lacks ${required[at]} (it has ${kinds.join("; ")})`);
  for (const k of kinds) {
    if (k.startsWith("npx mailstack "))
      assert.ok(
        COMMANDS.some((c) => `npx mailstack ${c.name}` === k),
        `no mailstack command for: ${k}`,
      );
  }
  for (const line of steps) {
    const r = spawnSync("bash", ["-c", line], { cwd: s.projectDir, env: s.env, input: stdinFor(line), encoding: "utf8" });
    assert.equal(r.status, 0, `${line}\n${r.stdout}\n${r.stderr}`);
    if (line.includes("mailstack plan")) assert.match(r.stdout, /^Stack mail: mail host mail\.example\.org, \d+ resources, 1 DNS zones$/m);
  }

  const file = path.join(s.projectDir, "stacks", "Pulumi.mail.yaml");
  const spec = validateValues(readStackFile(file));
  assert.deepEqual(
    spec.users.map((u) => u.address),
    ["alice@example.org", "bob@example.org"],
  );
  assert.deepEqual(spec.aliases[0], { address: "info@example.org", to: ["alice@example.org", "bob@example.org"] });
  const config = (parse(fs.readFileSync(file, "utf8")) as { config: Record<string, { secure: string }> }).config;
  assert.equal(standinPlaintext(config["hcloud:token"].secure), "hetzner-token-123");
  assert.equal(standinPlaintext(config["cloudflare:apiToken"].secure), "cloudflare-token-456");
});
