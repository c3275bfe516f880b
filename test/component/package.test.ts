// The npm package as a user consumes it: `import { MailStack } from "mailstack"`, its types, the
// `mailstack` bin, and the Pulumi project file. `npm test` builds dist/ before running this.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const root = path.resolve(__dirname, "..", "..");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));

test('"mailstack" resolves to the built component library with its classes', () => {
  const entry = require.resolve("mailstack");
  assert.equal(entry, path.join(root, "dist", "components", "index.js"));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lib = require("mailstack") as Record<string, unknown>;
  for (const name of ["MailStack", "MailHost", "MailDomain", "validateStackConfig", "planDomainRecords"]) {
    assert.equal(typeof lib[name], "function", name);
  }
});

test("the package ships type declarations for the components", () => {
  const types = path.join(root, pkg.exports["."].types);
  assert.ok(fs.existsSync(types), types);
  const dts = fs.readFileSync(path.join(root, "dist", "components", "mail-stack.d.ts"), "utf8");
  assert.match(dts, /export declare class MailStack extends pulumi\.ComponentResource/);
  assert.match(dts, /export interface MailStackArgs/);
});

test("the mailstack bin runs `plan` on the packaged example stack", () => {
  const bin = path.join(root, pkg.bin.mailstack);
  assert.match(fs.readFileSync(bin, "utf8"), /^#!\/usr\/bin\/env node\n/);
  const r = spawnSync(process.execPath, [bin, "plan", "--stack", "prod", "--format", "json"], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { hostname: string; ipv4: string | null };
  assert.equal(plan.hostname, "mail.example.com");
  assert.equal(plan.ipv4, null);
});

test("Pulumi.yaml: nodejs runtime, main infra/index.ts, stacks in stacks/, project (config namespace) mailstack", () => {
  const project = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"));
  assert.equal(project.name, "mailstack");
  assert.equal(project.runtime.name, "nodejs");
  assert.equal(project.main, "infra/index.ts");
  assert.equal(project.stackConfigDir, "stacks");
});

test("@pulumi/command is pinned to the 1.2 line (npm's latest tag is a stale 4.x build)", () => {
  assert.match(pkg.dependencies["@pulumi/command"], /^\^1\.2\.\d+$/);
});
