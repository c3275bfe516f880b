// maild's bundle built in the background (server-bootstrap/install/daemon-bundle.ts
// startBundlingDaemon, as `mailstack plan` starts it): bundleDaemon takes it, byte for byte the
// bundle it builds itself, and a background build that cannot finish leaves bundleDaemon to build
// and report as before. A bundle whose sources have not changed is kept (bundle-cache.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bundleDaemon, startBundlingDaemon } from "../../server-bootstrap/install/daemon-bundle";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "daemon-bundle-"));
const foreground = bundleDaemon(path.join(work, "foreground", "maild.js"));

test("the background build writes the bundle by itself, byte for byte bundleDaemon's, and bundleDaemon takes it", async () => {
  const outFile = path.join(work, "background", "maild.js");
  const bundling = startBundlingDaemon(outFile);
  try {
    while (!fs.existsSync(outFile)) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(bundleDaemon(outFile), outFile);
    assert.deepEqual(fs.readFileSync(outFile), fs.readFileSync(foreground));
    // the bundle and the record of what it was built from, no temporary file
    assert.deepEqual(fs.readdirSync(path.dirname(outFile)).sort(), ["maild.js", "maild.js.inputs.json"]);
  } finally {
    await bundling.cancel();
  }
});

test("a background build is taken once: the next bundleDaemon of that file builds it again", async () => {
  const outFile = path.join(work, "once", "maild.js");
  const bundling = startBundlingDaemon(outFile);
  try {
    bundleDaemon(outFile);
    fs.rmSync(outFile);
    bundleDaemon(outFile);
    assert.deepEqual(fs.readFileSync(outFile), fs.readFileSync(foreground));
  } finally {
    await bundling.cancel();
  }
});

test("a cancelled background build leaves no file behind, and bundleDaemon builds in the foreground", async () => {
  const outFile = path.join(work, "cancelled", "maild.js");
  await startBundlingDaemon(outFile).cancel();
  assert.equal(fs.existsSync(path.dirname(outFile)), false);
  bundleDaemon(outFile);
  assert.deepEqual(fs.readFileSync(outFile), fs.readFileSync(foreground));
});

test("a bundle that cannot be written fails in bundleDaemon with the error of a foreground build", async () => {
  // A file where the bundle's directory would go: neither build can create it.
  fs.writeFileSync(path.join(work, "blocked"), "");
  const outFile = path.join(work, "blocked", "maild.js");
  const expected = (() => {
    try {
      bundleDaemon(outFile);
    } catch (err) {
      return (err as Error).message;
    }
    return assert.fail("bundleDaemon wrote under a file");
  })();
  const bundling = startBundlingDaemon(outFile);
  try {
    assert.throws(() => bundleDaemon(outFile), { message: expected });
  } finally {
    await bundling.cancel();
  }
});

/** The bundle file's identity: a rebuilt bundle is a new file renamed over it. */
const identity = (file: string) => {
  const st = fs.statSync(file);
  return `${st.ino}/${st.mtimeMs}`;
};

test("a bundle of unchanged sources is kept, by bundleDaemon and by a background start", async () => {
  const outFile = path.join(work, "kept", "maild.js");
  bundleDaemon(outFile);
  const built = identity(outFile);
  assert.equal(bundleDaemon(outFile), outFile);
  assert.equal(identity(outFile), built);
  const bundling = startBundlingDaemon(outFile);
  try {
    assert.equal(bundleDaemon(outFile), outFile);
    assert.equal(identity(outFile), built);
  } finally {
    await bundling.cancel();
  }
  assert.deepEqual(fs.readFileSync(outFile), fs.readFileSync(foreground));
});

test("a kept bundle that was changed is built again", () => {
  const outFile = path.join(work, "changed", "maild.js");
  bundleDaemon(outFile);
  fs.appendFileSync(outFile, "// edited\n");
  bundleDaemon(outFile);
  assert.deepEqual(fs.readFileSync(outFile), fs.readFileSync(foreground));
});

test("the bundle is ASCII only (V8 then keeps its source as a one-byte string) and keeps the daemon's own names for stack traces", () => {
  const bundle = fs.readFileSync(foreground);
  const outside = bundle.findIndex((byte) => byte > 0x7f);
  assert.equal(outside, -1, `byte ${outside} is not ASCII: ${bundle.subarray(Math.max(0, outside - 40), outside + 40).toString()}`);
  // minified without renaming: the classes keep the names stack traces show (server-bootstrap/maild/spam-check.ts)
  assert.match(bundle.toString("latin1"), /\bSpamCheck=class\b|\bclass SpamCheck\b/);
});

test.after(() => fs.rmSync(work, { recursive: true, force: true }));
