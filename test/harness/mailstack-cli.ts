// Running `mailstack` as a person would, from a project directory of its own, with the Pulumi CLI
// stand-in (pulumi-standin.ts) first on PATH and a fresh diy backend.
import { spawn, spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CheckJson } from "../../infra/cli/check-format";
import { assertFreshBuild } from "../../infra/build-check";

export const ROOT = path.resolve(__dirname, "..", "..");
export const NODE = path.join(ROOT, "node_modules", ".bin", "node");
/** tsx by path: the commands run in directories outside this repository */
export const TSX = path.join(ROOT, "node_modules", "tsx", "dist", "loader.mjs");
/** the package's bin, as `npm install` puts it on a user's PATH: the build of this checkout */
export const MAIN = path.join(ROOT, "dist", "infra", "cli", "main.js");

export interface Sandbox {
  /** the Pulumi project: Pulumi.yaml and stacks/ */
  projectDir: string;
  /** PATH with the stand-in first; the rest of the environment for commands */
  env: NodeJS.ProcessEnv;
  /** every call the stand-in received, in order */
  calls(): { args: string[]; stdin: string | null; cwd: string }[];
  /** the stand-in's bin directory (prepend to PATH) */
  binDir: string;
  remove(): void;
}

/** A project with no stacks, a stand-in `pulumi`, a diy backend and a passphrase. */
export function makeSandbox(options: { pulumi?: boolean; passphrase?: boolean } = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-cli-"));
  const projectDir = path.join(dir, "project");
  fs.mkdirSync(path.join(projectDir, "stacks"), { recursive: true });
  fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
  const binDir = path.join(dir, "bin");
  fs.mkdirSync(binDir);
  if (options.pulumi !== false) {
    fs.writeFileSync(
      path.join(binDir, "pulumi"),
      `#!/bin/sh\nexec "${NODE}" --import "${TSX}" "${path.join(ROOT, "test", "harness", "pulumi-standin.ts")}" "$@"\n`,
      { mode: 0o755 },
    );
  }
  // The node the scripts need (24) and the basic tools, but no other pulumi.
  const nodeDir = path.dirname(fs.realpathSync(NODE));
  const log = path.join(dir, "pulumi-calls.jsonl");
  const env: NodeJS.ProcessEnv = {
    PATH: [binDir, nodeDir, "/usr/bin", "/bin"].join(":"),
    HOME: dir,
    LANG: "C.UTF-8",
    PULUMI_BACKEND_URL: `file://${path.join(dir, "backend")}`,
    PULUMI_STANDIN_LOG: log,
    // tsx reads tsconfig.json from the working directory; without this repository's
    // (useDefineForClassFields: false) the components' declared output fields would shadow the
    // outputs Pulumi registers on them.
    TSX_TSCONFIG_PATH: path.join(ROOT, "tsconfig.json"),
    ...(options.passphrase !== false ? { PULUMI_CONFIG_PASSPHRASE: "correct horse battery staple" } : {}),
  };
  return {
    projectDir,
    env,
    binDir,
    calls: () =>
      fs.existsSync(log)
        ? fs
            .readFileSync(log, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [],
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `mailstack ARGS` in the project, with `stdin` piped in (so not a terminal). */
/** The bin must be this checkout's code: `npm test` builds it first; alone, run `npm run build`. */
function builtMain(): string {
  assertFreshBuild(ROOT, "infra/cli/main.js", "the tests run the mailstack bin from the build");
  return MAIN;
}

export function mailstack(sandbox: Sandbox, args: string[], stdin = ""): Run {
  const r = spawnSync(NODE, [builtMain(), ...args], {
    cwd: sandbox.projectDir,
    env: sandbox.env,
    input: stdin,
    encoding: "utf8",
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The same, asynchronously (for tests that run several at once). */
export function mailstackAsync(sandbox: Sandbox, args: string[], stdin = ""): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [builtMain(), ...args], { cwd: sandbox.projectDir, env: sandbox.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** The stand-in's reversible "ciphertext" back to the value pulumi was given. */
export function standinPlaintext(ciphertext: string): string {
  const prefix = "v1:c3RhbmRpbg==:";
  if (!ciphertext.startsWith(prefix)) throw new Error(`not a stand-in ciphertext: ${ciphertext}`);
  return Buffer.from(ciphertext.slice(prefix.length), "base64").toString("utf8");
}

/** argv for `mailstack <args...>` from this checkout's build, for the check tests that run it in a namespace. */
export function mailstackArgv(...args: string[]): string[] {
  return [NODE, builtMain(), ...args];
}

/** The checks of a `mailstack check --json` report that failed, by name, sorted. */
export function failingChecks(report: CheckJson): string[] {
  return report.checks
    .filter((c) => c.status === "fail")
    .map((c) => c.check)
    .sort();
}

/** Every check that did not pass, one per line, for assertion messages. */
export function notPassingChecks(report: CheckJson): string {
  return (
    report.checks
      .filter((c) => c.status !== "pass")
      .map((c) => `${c.check} ${c.status}: ${c.detail}`)
      .join("\n") || "(every check passes)"
  );
}

/** The report's row for check `name`; fails the test when there is none. */
export function checkRow(report: CheckJson, name: string): CheckJson["checks"][number] {
  const found = report.checks.find((c) => c.check === name);
  assert.ok(found, `no check named ${name} in ${report.checks.map((c) => c.check).join(", ")}`);
  return found;
}
