// A small emulation of the engine's Node dynamic provider host, for calls against state written
// elsewhere: a fresh Node process (no TypeScript loader) with the Pulumi project as its working
// directory, as the engine starts it; @pulumi/pulumi resolved from there, as its launcher
// (pulumi-resource-pulumi-nodejs) does; each provider deserialised from the state's `__provider`
// with require-from-string and `.handler()`, as cmd/dynamic-provider/index.js getProvider does;
// methods called with the arguments the host passes (check(olds, news), diff(id, olds, news),
// create(props), update(id, olds, news), delete(id, props)). gRPC, configure and the provider
// cache are left out. (infra/offline's engine emulation is the full one.)
//
// With `isolateFrom` (root only), the host runs as on another machine: in a private mount
// namespace where that directory (the checkout that wrote the state) is hidden under an empty
// tmpfs, and the project's node_modules is that checkout's node_modules, bind-mounted.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCommand } from "../../infra/local-internet/netns";

export type HostCall =
  | { method: "check"; provider: string; olds: Record<string, unknown>; news: Record<string, unknown> }
  | { method: "diff" | "update"; provider: string; id: string; olds: Record<string, unknown>; news: Record<string, unknown> }
  | { method: "create"; provider: string; props: Record<string, unknown> }
  | { method: "delete"; provider: string; id: string; props: Record<string, unknown> }
  /** where `require` rooted at the project resolves a specifier (to see which copy is loaded) */
  | { method: "resolve"; specifier: string }
  /** whether a path exists for the host (to see what it can reach) */
  | { method: "exists"; path: string };

export type HostResult = { ok: true; result: unknown } | { ok: false; error: string };

const HOST = `
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");
const [jobFile, outFile] = process.argv.slice(2);
const calls = JSON.parse(fs.readFileSync(jobFile, "utf8"));
const hostEntry = require.resolve("@pulumi/pulumi/cmd/dynamic-provider/index.js", { paths: [process.cwd()] });
const requireFromString = createRequire(hostEntry)("require-from-string");
(async () => {
  const results = [];
  for (const c of calls) {
    try {
      let result;
      if (c.method === "resolve") {
        result = createRequire(path.join(process.cwd(), "package.json")).resolve(c.specifier);
      } else if (c.method === "exists") {
        result = fs.existsSync(c.path);
      } else {
        const provider = requireFromString(c.provider).handler();
        if (c.method === "check") result = await provider.check(c.olds, c.news);
        else if (c.method === "diff") result = await provider.diff(c.id, c.olds, c.news);
        else if (c.method === "create") result = await provider.create(c.props);
        else if (c.method === "update") result = await provider.update(c.id, c.olds, c.news);
        else if (c.method === "delete") result = (await provider.delete(c.id, c.props)) ?? null;
      }
      results.push({ ok: true, result });
    } catch (e) {
      results.push({ ok: false, error: String(e && e.message || e) });
    }
  }
  fs.writeFileSync(outFile, JSON.stringify(results));
})();
`;

export interface HostOptions {
  /** hide this directory from the host, and bind its node_modules onto the project's (an empty directory) */
  isolateFrom?: string;
  timeoutMs?: number;
}

/** Runs the calls in order in one host process whose working directory is `projectDir`. */
export async function runInProviderHost(projectDir: string, calls: HostCall[], opts: HostOptions = {}): Promise<HostResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "provider-host-"));
  try {
    fs.writeFileSync(path.join(dir, "host.js"), HOST);
    fs.writeFileSync(path.join(dir, "calls.json"), JSON.stringify(calls));
    const out = path.join(dir, "results.json");
    const { NODE_OPTIONS: _loader, ...env } = process.env;
    const host = [path.join(dir, "host.js"), path.join(dir, "calls.json"), out];
    const argv = opts.isolateFrom
      ? [
          "unshare",
          "--mount",
          "--propagation",
          "private",
          "bash",
          "-ec",
          'mount --bind "$1/node_modules" "$2/node_modules"; mount -t tmpfs tmpfs "$1"; cd "$2"; shift 2; exec "$@"',
          "--",
          opts.isolateFrom,
          projectDir,
          // the project's Node 24 (the devDependency), reached through the bind mount
          path.join(projectDir, "node_modules", ".bin", "node"),
          ...host,
        ]
      : [process.execPath, ...host];
    const r = await runCommand(argv, { cwd: projectDir, env, timeoutMs: opts.timeoutMs ?? 180_000 });
    if (!fs.existsSync(out)) throw new Error(`the provider host exited ${r.code} without results:\n${r.stderr}`);
    return JSON.parse(fs.readFileSync(out, "utf8")) as HostResult[];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
