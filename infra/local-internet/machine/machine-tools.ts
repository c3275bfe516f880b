// The programs a machine runs for its own system (service manager, systemctl, journalctl,
// cloud-init): in-machine/machine-init.ts bundled into one file with esbuild, once per process,
// run by this package's pinned Node.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NODE_VERSION } from "../../../server-bootstrap/install/layout";

/** This package's `node` dev dependency: the Node the box pins (layout.ts NODE_VERSION), and what runs the machine's tools. */
export function pinnedNode(): string {
  const pkg = path.dirname(require.resolve("node/package.json"));
  const bin = path.join(pkg, "bin", "node");
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.stdout.trim() !== `v${NODE_VERSION}`) {
    throw new Error(
      `machine: the "node" dev dependency is ${r.stdout.trim() || "missing"}, but the box pins v${NODE_VERSION} (server-bootstrap/install/layout.ts): make package.json's "node" and NODE_VERSION agree`,
    );
  }
  return bin;
}

let built: { bundle: string; node: string } | undefined;

export function machineTools(): { bundle: string; node: string } {
  if (built) return built;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require("esbuild") as typeof import("esbuild");
  const entry = path.join(__dirname, "in-machine", "machine-init.ts");
  const source = fs.existsSync(entry) ? entry : path.join(__dirname, "in-machine", "machine-init.js");
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-machine-tools-"));
  const bundle = path.join(outDir, "machine-init.js");
  esbuild.buildSync({
    entryPoints: [source],
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    outfile: bundle,
    legalComments: "none",
    logLevel: "error",
  });
  process.on("exit", () => fs.rmSync(outDir, { recursive: true, force: true }));
  built = { bundle, node: pinnedNode() };
  return built;
}
