// Issue 19: `npm start -- --keep-running` prints a `mailstack check` command for the system it
// runs, and that command, run exactly as printed, passes every row, CAA included (the demo's CA is
// pebble, not the example stack's Let's Encrypt).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { runDemo, type DemoHandle } from "../../infra/demo/run-demo";
import { checkCommand, howToReach } from "../../infra/demo/how-to-reach";

const ROOT = path.resolve(__dirname, "..", "..");
let demo: DemoHandle;

before(async () => {
  demo = await runDemo({ write: () => undefined });
});
after(async () => {
  await demo?.stop();
});

test("the check command npm start prints passes every row against the running system", () => {
  const lines = howToReach(demo).split("\n");
  const at = lines.findIndex((l) => l.includes("check it from outside"));
  assert.ok(at >= 0, "npm start prints no check command");
  const printed = lines[at + 1].trim();
  assert.equal(printed, checkCommand(demo));
  assert.match(printed, /^npx mailstack check example\.org --stack dev --project \S+ --resolver /);

  // As a person would: the printed line, in a shell, from the project directory.
  const r = spawnSync("bash", ["-c", printed], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
  const rows = r.stdout.split("\n").filter((l) => /^\S+\s+(pass|warn|fail)\s/.test(l));
  const notPassing = rows.filter((l) => !/^\S+\s+pass\s/.test(l));
  assert.deepEqual(notPassing, [], `${r.stdout}\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(
    rows.some((l) => /^caa\s+pass\s.*issue: pebble\.internet\.test\b/.test(l)),
    r.stdout,
  );
  assert.match(r.stdout, /^(\d+) checks: \1 pass, 0 warn, 0 fail$/m);
  assert.ok(rows.length >= 20, `only ${rows.length} rows`);
});
