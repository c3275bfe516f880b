// maild as one file: server-bootstrap/maild/main.ts and every dependency bundled by esbuild on
// the deployer's machine when the Pulumi program runs. The box needs only Node, no npm install.
//
// The output is deterministic (same sources, same esbuild: same bytes), so its content hash, and
// with it the deployment, changes only when the daemon really does.
import * as fs from "node:fs";
import * as path from "node:path";

const ENTRY = "server-bootstrap/maild/main.ts";
/** The backup job (server-bootstrap/backup/main.ts), bundled the same way. */
const BACKUP_ENTRY = "server-bootstrap/backup/main.ts";

/** The directory holding server-bootstrap/maild/ (the package root, from sources or from dist/). */
export function packageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, ENTRY))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find ${ENTRY} above ${from}: is the mailstack package complete?`);
  }
}

/**
 * The status page's chart library as strings for the bundle (esbuild `define`): uPlot's prebuilt
 * files from its npm package (server-bootstrap/maild/web/status/status-assets.ts reads them from
 * node_modules when run from sources). The box then needs no file beside maild.js.
 */
export function maildAssetDefines(root: string = packageRoot()): Record<string, string> {
  const file = (name: string) => fs.readFileSync(require.resolve(`uplot/dist/${name}`, { paths: [root] }), "utf8");
  return { MAILD_UPLOT_JS: JSON.stringify(file("uPlot.iife.min.js")), MAILD_UPLOT_CSS: JSON.stringify(file("uPlot.min.css")) };
}

/**
 * Bundles the daemon into `outFile` (default: node_modules/.cache/mailstack/maild.js under the
 * working directory, i.e. the Pulumi project) and returns that path as given, so a relative path
 * stays relative in the Pulumi state and is the same on every deployer's machine.
 */
export function bundleDaemon(outFile = path.join("node_modules", ".cache", "mailstack", "maild.js")): string {
  return bundle(ENTRY, outFile);
}

/** The backup job as one file, like bundleDaemon; returns the path as given. */
export function bundleBackupJob(outFile = path.join("node_modules", ".cache", "mailstack", "backup.js")): string {
  return bundle(BACKUP_ENTRY, outFile);
}

function bundle(entry: string, outFile: string): string {
  // Loaded here, not at the top: esbuild is needed only where a deployment is built.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require("esbuild") as typeof import("esbuild");
  const root = packageRoot();
  const target = path.resolve(outFile);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  // Built beside the target and renamed over it: a concurrent reader (another program run in
  // the same project) sees the old bundle or the new one, never half of one.
  const temp = `${target}.${process.pid}.tmp`;
  esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    outfile: temp,
    legalComments: "none",
    logLevel: "error",
    define: maildAssetDefines(root),
  });
  fs.renameSync(temp, target);
  return outFile;
}
