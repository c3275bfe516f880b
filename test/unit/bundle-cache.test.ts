// server-bootstrap/install/bundle-cache.ts on a small project bundled by esbuild: a bundle is kept
// only while everything esbuild read, and everything that could change how an import resolves, is
// as it was when it was built.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as esbuild from "esbuild";
import { bundleCacheKey, isCurrentBundle, recordBundle } from "../../server-bootstrap/install/bundle-cache";

/** A project: src/main.ts imports ./greeting (greeting.js) and the package `shout`. */
function project(): { root: string; options: esbuild.BuildOptions; bundle: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-cache-"));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  };
  write("src/main.ts", 'import { greeting } from "./greeting";\nimport { shout } from "shout";\nconsole.log(shout(greeting));\n');
  write("src/greeting.js", 'exports.greeting = "hello";\n');
  write("node_modules/shout/package.json", JSON.stringify({ name: "shout", main: "index.js" }));
  write("node_modules/shout/index.js", "exports.shout = (s) => s.toUpperCase();\n");
  write("node_modules/shout/loud.js", 'exports.shout = (s) => s.toUpperCase() + "!";\n');
  write("tsconfig.json", "{}\n");
  const bundle = path.join(root, "out", "main.js");
  const options: esbuild.BuildOptions = {
    absWorkingDir: root,
    entryPoints: ["src/main.ts"],
    bundle: true,
    platform: "node",
    format: "cjs",
    outfile: `${bundle}.tmp`,
    logLevel: "silent",
  };
  return { root, options, bundle };
}

function build(p: ReturnType<typeof project>): string {
  const key = bundleCacheKey(esbuild.version, p.options, p.bundle);
  fs.mkdirSync(path.dirname(p.bundle), { recursive: true });
  const { metafile } = esbuild.buildSync({ ...p.options, metafile: true });
  fs.renameSync(`${p.bundle}.tmp`, p.bundle);
  recordBundle(p.bundle, key, metafile, p.root);
  return key;
}

const changes: [string, (root: string, bundle: string) => void][] = [
  ["an input is edited", (root) => fs.appendFileSync(path.join(root, "src/greeting.js"), "// edited\n")],
  ["a file of a package is edited", (root) => fs.appendFileSync(path.join(root, "node_modules/shout/index.js"), "// edited\n")],
  [
    "a file appears that an import finds first (./greeting: greeting.ts before greeting.js)",
    (root) => fs.writeFileSync(path.join(root, "src/greeting.ts"), 'export const greeting = "hi";\n'),
  ],
  [
    "a package.json's main field changes",
    (root) => fs.writeFileSync(path.join(root, "node_modules/shout/package.json"), JSON.stringify({ name: "shout", main: "loud.js" })),
  ],
  [
    "a package.json appears between an input and its package",
    (root) => fs.writeFileSync(path.join(root, "src/package.json"), JSON.stringify({ type: "module" })),
  ],
  [
    "the tsconfig.json changes",
    (root) => fs.writeFileSync(path.join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: { useDefineForClassFields: false } })),
  ],
  [
    "the package appears in a nearer node_modules",
    (root) => {
      fs.mkdirSync(path.join(root, "src/node_modules/shout"), { recursive: true });
      fs.writeFileSync(path.join(root, "src/node_modules/shout/index.js"), "exports.shout = (s) => s;\n");
    },
  ],
  ["a scoped package appears", (root) => fs.mkdirSync(path.join(root, "node_modules/@scope/shout"), { recursive: true })],
  ["the bundle is edited", (_root, bundle) => fs.appendFileSync(bundle, "// edited\n")],
  ["the bundle's record is damaged", (_root, bundle) => fs.writeFileSync(`${bundle}.inputs.json`, "{")],
];

test("a bundle is current while nothing it was built from has changed", () => {
  const p = project();
  const key = build(p);
  assert.equal(isCurrentBundle(p.bundle, key), true);
  // a file elsewhere in the project, and the bundle's own directory, are not what esbuild read
  fs.writeFileSync(path.join(p.root, "out", "notes.txt"), "");
  assert.equal(isCurrentBundle(p.bundle, key), true);
});

for (const [what, change] of changes) {
  test(`a bundle is no longer current when ${what}`, () => {
    const p = project();
    const key = build(p);
    change(p.root, p.bundle);
    assert.equal(isCurrentBundle(p.bundle, key), false);
  });
}

test("a bundle is not current for another esbuild or other options", () => {
  const p = project();
  const key = build(p);
  assert.equal(isCurrentBundle(p.bundle, bundleCacheKey("0.0.0", p.options, p.bundle)), false);
  assert.equal(isCurrentBundle(p.bundle, bundleCacheKey(esbuild.version, { ...p.options, minify: true }, p.bundle)), false);
  // the temporary output file's name is no option of the bundle
  assert.equal(bundleCacheKey(esbuild.version, { ...p.options, outfile: `${p.bundle}.other.tmp` }, p.bundle), key);
});

test("a bundle without a record is not current", () => {
  const p = project();
  fs.mkdirSync(path.dirname(p.bundle), { recursive: true });
  esbuild.buildSync(p.options);
  fs.renameSync(`${p.bundle}.tmp`, p.bundle);
  assert.equal(isCurrentBundle(p.bundle, bundleCacheKey(esbuild.version, p.options, p.bundle)), false);
});
