// maild as one file: server-bootstrap/maild/main.ts and every dependency bundled by esbuild on
// the deployer's machine when the Pulumi program runs. The box needs only Node, no npm install.
//
// The output is deterministic (same sources, same esbuild: same bytes), so its content hash, and
// with it the deployment, changes only when the daemon really does; and a bundle is kept while
// nothing it was built from has changed (bundle-cache.ts).
import * as fs from "node:fs";
import * as path from "node:path";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import type { BuildOptions, Metafile } from "esbuild";
import { bundleCacheKey, isCurrentBundle, recordBundle } from "./bundle-cache";

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
export function bundleDaemon(outFile = DAEMON_OUT_FILE): string {
  return bundle(ENTRY, outFile);
}

const DAEMON_OUT_FILE = path.join("node_modules", ".cache", "mailstack", "maild.js");

/** The backup job as one file, like bundleDaemon; returns the path as given. */
export function bundleBackupJob(outFile = path.join("node_modules", ".cache", "mailstack", "backup.js")): string {
  return bundle(BACKUP_ENTRY, outFile);
}

// Node keeps a script's whole source text in V8's heap for as long as the script lives (functions
// are compiled lazily, from that text). Node reads the bundle as UTF-8, and one character outside
// Latin-1 anywhere in it (comments included) makes V8 store all of it as a two-byte string: the
// 4.6 MiB unminified bundle took 9.2 MiB of heap. Without comments and whitespace, with non-ASCII
// escaped (`charset: "ascii"`), it is 3.2 MiB of one-byte string. Identifiers are kept on purpose:
// an error's stack still names every function and class (`at SpamCheck.check (maild.js:52:1234)`);
// what it loses is a meaningful line number, since whole modules share a line.
const MINIFY: BuildOptions = { minifyWhitespace: true, minifySyntax: true, minifyIdentifiers: false, charset: "ascii" };

/** esbuild's options for the daemon as the box runs it; the tests' harness (test/harness/maild.ts) bundles with these too. */
export function daemonBuildOptions(outfile: string, root: string = packageRoot()): BuildOptions {
  return buildOptions(ENTRY, outfile, root);
}

function buildOptions(entry: string, outfile: string, root: string): BuildOptions {
  return {
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    outfile,
    legalComments: "none",
    ...MINIFY,
    logLevel: "error",
    define: maildAssetDefines(root),
  };
}

/** Built beside the target and renamed over it: a concurrent reader (another program run in the same project) sees the old bundle or the new one, never half of one. */
const tempFileOf = (target: string) => `${target}.${process.pid}.tmp`;

/** esbuild, loaded where a deployment is built and not before. */
function loadEsbuild(): typeof import("esbuild") {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("esbuild") as typeof import("esbuild");
}

function bundle(entry: string, outFile: string): string {
  const target = path.resolve(outFile);
  if (awaitBackgroundBundle(target)) return outFile;
  const esbuild = loadEsbuild();
  const root = packageRoot();
  const options = buildOptions(entry, tempFileOf(target), root);
  const key = bundleCacheKey(esbuild.version, options, target);
  if (isCurrentBundle(target, key)) return outFile;
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const { metafile } = esbuild.buildSync({ ...options, metafile: true });
  fs.renameSync(tempFileOf(target), target);
  recordBundle(target, key, metafile, root);
  return outFile;
}

// Bundling in the background: `mailstack plan` starts the daemon's bundle on a worker thread
// before it loads Pulumi and the program (about a second of the main thread), and bundleDaemon
// then finds it done instead of building it there. The worker runs the same esbuild build with the
// same options (`write: false`: esbuild hands back the bytes it would write) and writes the file
// the same way, so the bundle, its digest and the deployment are the same; bundleDaemon records
// what it was built from. A bundle that is current needs no worker.
//
// bundleDaemon runs inside the synchronous program, so it waits for the worker with Atomics.wait
// on a shared flag (esbuild's own buildSync waits for its worker the same way). The worker sets the
// flag whatever happens; a failed background build, or one that has not finished in
// BACKGROUND_WAIT_MS, is built again in the foreground, which reports the error as before.
const PENDING = 0;
const WRITTEN = 1;
const FAILED = 2;
const BACKGROUND_WAIT_MS = 120_000;

const WORKER_SOURCE = `
const fs = require("node:fs");
const { workerData } = require("node:worker_threads");
const state = new Int32Array(workerData.state);
(async () => {
  let status = ${FAILED};
  let esbuild;
  try {
    esbuild = require(workerData.esbuild);
    const result = await esbuild.build({ ...workerData.options, metafile: true, write: false });
    fs.mkdirSync(workerData.dir, { recursive: true });
    fs.writeFileSync(workerData.temp, result.outputFiles[0].contents);
    fs.renameSync(workerData.temp, workerData.target);
    workerData.port.postMessage(result.metafile);
    status = ${WRITTEN};
  } catch {
    try {
      fs.rmSync(workerData.temp, { force: true });
    } catch {}
  }
  Atomics.store(state, 0, status);
  Atomics.notify(state, 0);
  await esbuild?.stop();
})();
`;

type BackgroundBundle =
  { current: true } | { current: false; state: Int32Array; worker: Worker; port: MessagePort; key: string; root: string };

const backgroundBundles = new Map<string, BackgroundBundle>();

export interface BundleInBackground {
  /** Stops the build if it is still running (the bundle was not needed after all). */
  cancel(): Promise<void>;
}

/**
 * Starts bundling the daemon as bundleDaemon(outFile) would, on a worker thread (unless the bundle
 * there is current); bundleDaemon(outFile) then takes the result.
 */
export function startBundlingDaemon(outFile = DAEMON_OUT_FILE): BundleInBackground {
  try {
    return bundleInBackground(outFile);
  } catch {
    // Whatever stops it here (an incomplete package) stops bundleDaemon too, which says so.
    return { cancel: async () => undefined };
  }
}

function bundleInBackground(outFile: string): BundleInBackground {
  const target = path.resolve(outFile);
  const root = packageRoot();
  const esbuild = loadEsbuild();
  const options = buildOptions(ENTRY, tempFileOf(target), root);
  const key = bundleCacheKey(esbuild.version, options, target);
  if (isCurrentBundle(target, key)) {
    const current: BackgroundBundle = { current: true };
    backgroundBundles.set(target, current);
    return {
      async cancel() {
        if (backgroundBundles.get(target) === current) backgroundBundles.delete(target);
      },
    };
  }
  const state = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  // Its own temporary file: should the foreground build run too, neither writes into the other's.
  const temp = `${tempFileOf(target)}.background`;
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      state: state.buffer,
      esbuild: require.resolve("esbuild"),
      options,
      dir: path.dirname(target),
      temp,
      target,
      port: port2,
    },
    transferList: [port2],
  });
  // Never keeps the process alive; its failure shows as FAILED or as a foreground build.
  worker.unref();
  worker.on("error", () => undefined);
  const entry: BackgroundBundle = { current: false, state, worker, port: port1, key, root };
  backgroundBundles.set(target, entry);
  return {
    async cancel() {
      if (backgroundBundles.get(target) === entry) backgroundBundles.delete(target);
      port1.close();
      await worker.terminate();
      try {
        fs.rmSync(temp, { force: true });
      } catch {
        // nothing was written there (its directory could not be made)
      }
    },
  };
}

/** Waits for a background build of `target`; true when it wrote the file. */
function awaitBackgroundBundle(target: string): boolean {
  const background = backgroundBundles.get(target);
  if (background === undefined) return false;
  backgroundBundles.delete(target);
  if (background.current) return true;
  Atomics.wait(background.state, 0, PENDING, BACKGROUND_WAIT_MS);
  if (Atomics.load(background.state, 0) !== WRITTEN) return false;
  const metafile = receiveMessageOnPort(background.port)?.message as Metafile | undefined;
  if (metafile) recordBundle(target, background.key, metafile, background.root);
  return true;
}
