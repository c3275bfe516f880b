// Whether the package's build (dist/, `npm run build`) is there and newer than the sources it is
// built from: what runs from dist (the dynamic providers, the `mailstack` bin) must be this checkout's code.
import * as fs from "node:fs";
import * as path from "node:path";

const SOURCE_DIRS = ["components", "server-bootstrap", "infra"];

function newestSource(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
    const file = path.join(dir, e.name);
    return Math.max(m, e.isDirectory() ? newestSource(file) : e.name.endsWith(".ts") ? fs.statSync(file).mtimeMs : 0);
  }, 0);
}

/** Throws, naming the file and the remedy, unless `root`/dist/`built` exists and is newer than every source. */
export function assertFreshBuild(root: string, built: string, why: string): void {
  const file = path.join(root, "dist", built);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: ${why}; run npm run build`);
  const sources = Math.max(...SOURCE_DIRS.map((d) => newestSource(path.join(root, d))));
  if (sources > fs.statSync(file).mtimeMs)
    throw new Error(`${path.join(root, "dist")} is older than the sources (${why}): run npm run build`);
}
