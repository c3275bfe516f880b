// What a bundle was built from, kept beside it (`<bundle>.inputs.json`), so that the next build of
// the same entry with the same esbuild and options can keep the bundle when nothing it was built
// from has changed: esbuild's output depends only on what it reads and on its options (the bundle
// is deterministic, daemon-bundle.ts), and bundling maild took about a second of every
// `mailstack plan` and `pulumi up`.
//
// What esbuild reads, and so what is fingerprinted:
// - every input file (its metafile's `inputs`), by content;
// - what decides how an import resolves, for every directory from an input's up to the root:
//   package.json (main, exports, browser, sideEffects), tsconfig.json and jsconfig.json (TypeScript
//   settings, paths), by content or absence; the directory's entries (a new file can shadow the one
//   an import found: `./x` is x.ts before x.js, a package in a nearer node_modules); its
//   node_modules and the scopes in it (a package added where a bare import looks first).
// A symlink's entry holds its target. Any difference, or a record that cannot be read, is a build.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BuildOptions, Metafile } from "esbuild";

const RESOLUTION_FILES = ["package.json", "tsconfig.json", "jsconfig.json"];
const ABSENT = "absent";

interface BundleRecord {
  /** esbuild's version and the build options (cacheKey) */
  key: string;
  /** the bundle's own fingerprint: another writer's bundle is not this record's */
  bundle: string;
  /** path -> fingerprint of a file (`f:`) or a directory's entries (`d:`) */
  watched: Record<string, string>;
}

const recordFileOf = (bundle: string) => `${bundle}.inputs.json`;
const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** esbuild's version and the options but for the temporary output file (the bundle's name stands for it). */
export function bundleCacheKey(esbuildVersion: string, options: BuildOptions, bundle: string): string {
  return sha256(JSON.stringify({ esbuild: esbuildVersion, options: { ...options, outfile: path.resolve(bundle) } }));
}

function fileFingerprint(file: string): string {
  try {
    return `f:${sha256(fs.readFileSync(file))}`;
  } catch {
    return `f:${ABSENT}`;
  }
}

function dirFingerprint(dir: string): string {
  try {
    const entries = fs
      .readdirSync(dir, { withFileTypes: true })
      .map((e) => (e.isSymbolicLink() ? `${e.name} -> ${fs.readlinkSync(path.join(dir, e.name))}` : e.name))
      .sort();
    return `d:${sha256(entries.join("\n"))}`;
  } catch {
    return `d:${ABSENT}`;
  }
}

const fingerprintAs = (p: string, like: string) => (like.startsWith("d:") ? dirFingerprint(p) : fileFingerprint(p));

/** True when `bundle` is the one its record describes and nothing the record watches has changed. */
export function isCurrentBundle(bundle: string, key: string): boolean {
  let record: BundleRecord;
  try {
    record = JSON.parse(fs.readFileSync(recordFileOf(bundle), "utf8")) as BundleRecord;
  } catch {
    return false;
  }
  if (record.key !== key || typeof record.watched !== "object" || record.watched === null) return false;
  if (fileFingerprint(bundle) !== record.bundle) return false;
  return Object.entries(record.watched).every(([p, fingerprint]) => fingerprintAs(p, fingerprint) === fingerprint);
}

/** Writes the record of a bundle just built from `metafile` (paths relative to `root`, esbuild's absWorkingDir). */
export function recordBundle(bundle: string, key: string, metafile: Metafile, root: string): void {
  const watched = new Map<string, string>();
  const watchDir = (dir: string) => watched.set(dir, dirFingerprint(dir));
  for (const input of Object.keys(metafile.inputs)) {
    const file = path.resolve(root, input);
    // esbuild's own namespaces (a module disabled by a package's `browser` field) are no files
    if (!fs.existsSync(file)) continue;
    watched.set(file, fileFingerprint(file));
    for (let dir = path.dirname(file); !watched.has(dir); dir = path.dirname(dir)) {
      watchDir(dir);
      for (const name of RESOLUTION_FILES) watched.set(path.join(dir, name), fileFingerprint(path.join(dir, name)));
      const nodeModules = path.join(dir, "node_modules");
      if (fs.existsSync(nodeModules) && !watched.has(nodeModules)) {
        watchDir(nodeModules);
        for (const scope of fs.readdirSync(nodeModules).filter((name) => name.startsWith("@"))) watchDir(path.join(nodeModules, scope));
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  const record: BundleRecord = { key, bundle: fileFingerprint(bundle), watched: Object.fromEntries(watched) };
  const target = recordFileOf(bundle);
  const temp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(record));
  fs.renameSync(temp, target);
}
