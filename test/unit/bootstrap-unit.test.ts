// The maild systemd unit, checked by systemd's own tools (they work without systemd as PID 1).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maildUnit } from "../../server-bootstrap/systemd/maild-unit";
import { boxLayout } from "../../server-bootstrap/install/layout";

const NODE = path.resolve(__dirname, "../../node_modules/node/bin/node");

function analyze(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8" });
  if (r.error) throw new Error(`systemd-analyze is not installed (Debian package "systemd"): ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const roots: string[] = [];
after(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

/** The unit rendered for a temp root in which its ExecStart binary exists (verify checks it). */
function unitFile(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-unit-"));
  roots.push(root);
  const layout = boxLayout({ root, dataDir: path.join(root, "data") });
  fs.mkdirSync(path.dirname(layout.node), { recursive: true });
  fs.symlinkSync(NODE, layout.node);
  const file = path.join(root, "maild.service");
  fs.writeFileSync(file, maildUnit(layout));
  return file;
}

describe("maild.service", () => {
  test("systemd-analyze verify prints nothing", () => {
    const r = analyze(["verify", unitFile()]);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
  });

  test("systemd-analyze security --offline=yes rates it 2.0 or better", () => {
    const r = analyze(["security", "--offline=yes", unitFile()]);
    const m = /Overall exposure level for maild\.service: (\d+\.\d+)/.exec(r.stdout);
    assert.ok(m, `no rating in:\n${r.stdout}\n${r.stderr}`);
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} > 2.0:\n${r.stdout}`);
  });

  test("runs as maild with CAP_NET_BIND_SERVICE as its only capability, and needs the data volume mounted", () => {
    const unit = maildUnit(boxLayout());
    assert.match(unit, /^User=maild$/m);
    assert.match(unit, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    assert.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    assert.match(unit, /^NoNewPrivileges=yes$/m);
    assert.match(unit, /^RequiresMountsFor=\/var\/lib\/maild$/m);
    assert.match(unit, /^ReadWritePaths=\/var\/lib\/maild$/m);
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/node \/usr\/local\/lib\/maild\/maild\.js --config \/etc\/maild\/config\.json$/m);
  });
});
