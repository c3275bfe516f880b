// The offline engine's Node dynamic provider host (infra/offline/providers/dynamic-host.ts), run as
// the engine starts its host: a separate Node process (no TypeScript loader) whose working
// directory is the Pulumi project. The host is the compiled one of a build (`hostDir`, usually a
// fresh copy of the committed tree: dist/infra/offline/providers/dynamic-host.js), called the way
// the engine calls a provider (check, diff, update, delete with the old outputs), with the state's
// serialised providers (`__provider`) deciding what runs.
//
// With `isolateFrom` (root only), the process runs as on another machine: in a private mount
// namespace where that directory (the checkout that wrote the state) is hidden under an empty
// tmpfs; the node_modules of the host's build and of the project are that checkout's
// node_modules, bind-mounted (both must exist, empty).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCommand } from "../../infra/local-internet/netns";

type Properties = Record<string, unknown>;

/** One call, as the engine makes it (model.ts ProviderStandIn), on the resource `type`/`name`. */
export type HostCall =
  | { method: "check"; type: string; name: string; olds?: Properties; news: Properties }
  | { method: "diff" | "update"; type: string; name: string; id: string; oldOutputs: Properties; news: Properties }
  | { method: "delete"; type: string; name: string; id: string; oldOutputs: Properties }
  /** where `require` rooted at the project resolves a specifier (to see which copy is loaded) */
  | { method: "resolve"; specifier: string }
  /** whether a path exists for the host (to see what it can reach) */
  | { method: "exists"; path: string };

export type HostResult = { ok: true; result: unknown } | { ok: false; error: string };

const RUNNER = `
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");
const [hostModule, jobFile, outFile] = process.argv.slice(2);
const calls = JSON.parse(fs.readFileSync(jobFile, "utf8"));
const { dynamicProviderHost } = require(hostModule);
const host = dynamicProviderHost({ projectDir: process.cwd() });
(async () => {
  const results = [];
  for (const c of calls) {
    const ctx = { urn: "urn:pulumi:dev::mailstack::" + c.type + "::" + c.name, preview: false, log: () => undefined };
    try {
      let result;
      if (c.method === "resolve") result = createRequire(path.join(process.cwd(), "package.json")).resolve(c.specifier);
      else if (c.method === "exists") result = fs.existsSync(c.path);
      else if (c.method === "check") result = await host.check(ctx, c.type, c.olds, c.news);
      else if (c.method === "diff") result = await host.diff(ctx, c.type, c.id, {}, c.oldOutputs, c.news, []);
      else if (c.method === "update") result = await host.update(ctx, c.type, c.id, {}, c.oldOutputs, c.news, []);
      else if (c.method === "delete") result = (await host.delete(ctx, c.type, c.id, {}, c.oldOutputs)) ?? null;
      results.push({ ok: true, result });
    } catch (e) {
      results.push({ ok: false, error: String((e && e.message) || e) });
    }
  }
  fs.writeFileSync(outFile, JSON.stringify(results));
})();
`;

export interface HostOptions {
  /** the build whose dist/infra/offline/providers/dynamic-host.js is the host */
  hostDir: string;
  /** hide this directory from the host, and bind its node_modules onto the host build's and the project's */
  isolateFrom?: string;
  timeoutMs?: number;
}

/** Runs the calls in order in one host process whose working directory is `projectDir`. */
export async function runInProviderHost(projectDir: string, calls: HostCall[], opts: HostOptions): Promise<HostResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "provider-host-"));
  try {
    fs.writeFileSync(path.join(dir, "runner.js"), RUNNER);
    fs.writeFileSync(path.join(dir, "calls.json"), JSON.stringify(calls));
    const out = path.join(dir, "results.json");
    const { NODE_OPTIONS: _loader, ...env } = process.env;
    const hostModule = path.join(opts.hostDir, "dist", "infra", "offline", "providers", "dynamic-host.js");
    const runner = [path.join(dir, "runner.js"), hostModule, path.join(dir, "calls.json"), out];
    const argv = opts.isolateFrom
      ? [
          "unshare",
          "--mount",
          "--propagation",
          "private",
          "bash",
          "-ec",
          'for d in "$2" "$3"; do mount --bind "$1/node_modules" "$d/node_modules"; done; mount -t tmpfs tmpfs "$1"; cd "$3"; shift 3; exec "$@"',
          "--",
          opts.isolateFrom,
          opts.hostDir,
          projectDir,
          // the build's Node 24 (the devDependency), reached through the bind mount
          path.join(opts.hostDir, "node_modules", ".bin", "node"),
          ...runner,
        ]
      : [process.execPath, ...runner];
    const r = await runCommand(argv, { cwd: projectDir, env, timeoutMs: opts.timeoutMs ?? 180_000 });
    if (!fs.existsSync(out)) throw new Error(`the provider host exited ${r.code} without results:\n${r.stderr}`);
    return JSON.parse(fs.readFileSync(out, "utf8")) as HostResult[];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
