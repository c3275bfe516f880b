// The maild systemd unit, Dovecot's and Redis's drop-ins and the metadata guard, checked by systemd's and
// nftables' own tools (systemd-analyze works without systemd as PID 1; nft -c checks a ruleset
// against the kernel without loading it).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maildUnit } from "../../server-bootstrap/systemd/maild-unit";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { dovecotDropIn, metadataGuardRules, metadataGuardUnit } from "../../server-bootstrap/systemd/metadata-guard";
import { redisDropIn } from "../../server-bootstrap/spam/redis-conf";

const NODE = path.resolve(__dirname, "../../node_modules/node/bin/node");

function analyze(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8" });
  if (r.error) throw new Error(`systemd-analyze is not installed (Debian package "systemd"): ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const roots: string[] = [];
after(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

function exposure(stdout: string, unit: string): number {
  const m = new RegExp(`Overall exposure level for ${unit.replace(".", "\\.")}: (\\d+\\.\\d+)`).exec(stdout);
  assert.ok(m, `no rating in:\n${stdout}`);
  return Number(m[1]);
}

function tempRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-unit-"));
  roots.push(root);
  return root;
}

/** The unit rendered for a temp root in which its ExecStart binary exists (verify checks it). */
function unitFile(): string {
  const root = tempRoot();
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

  test("systemd-analyze security --offline=yes rates it 1.6 or better", () => {
    const r = analyze(["security", "--offline=yes", unitFile()]);
    assert.ok(exposure(r.stdout, "maild.service") <= 1.6, r.stdout);
  });

  test("denies link-local IPv4, where the metadata service hands out the SSH host key", () => {
    assert.match(maildUnit(boxLayout()), /^IPAddressDeny=169\.254\.0\.0\/16$/m);
  });

  test("runs as maild with CAP_NET_BIND_SERVICE as its only capability, and needs the data volume mounted", () => {
    const unit = maildUnit(boxLayout());
    assert.match(unit, /^User=maild$/m);
    assert.match(unit, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    assert.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    assert.match(unit, /^NoNewPrivileges=yes$/m);
    assert.match(unit, /^RequiresMountsFor=\/var\/lib\/maild$/m);
    assert.match(unit, /^ReadWritePaths=\/var\/lib\/maild$/m);
    assert.match(
      unit,
      /^ExecStart=\/usr\/local\/bin\/node --max-semi-space-size=4 --initial-old-space-size=32 --heap-growing-percent=30 \/usr\/local\/lib\/maild\/maild\.js --config \/etc\/maild\/config\.json$/m,
    );
  });
});

describe("Dovecot's drop-in", () => {
  const debianUnit = "/lib/systemd/system/dovecot.service";

  /** Debian's dovecot.service in a temp directory, with our drop-in beside it when asked. */
  function dovecotUnit(withDropIn: boolean): string {
    const dir = tempRoot();
    const unit = path.join(dir, "dovecot.service");
    fs.copyFileSync(debianUnit, unit);
    if (withDropIn) {
      fs.mkdirSync(`${unit}.d`);
      fs.writeFileSync(path.join(`${unit}.d`, path.basename(boxLayout().dovecotDropIn)), dovecotDropIn());
    }
    return unit;
  }

  test("is read by systemd without a complaint, and denies link-local IPv4", () => {
    const r = analyze(["verify", dovecotUnit(true)]);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    assert.match(dovecotDropIn(), /^\[Service\]\n(#.*\n)*IPAddressDeny=169\.254\.0\.0\/16\n$/m);
  });

  test("lands where systemd reads drop-ins for dovecot.service", () => {
    assert.equal(boxLayout().dovecotDropIn, "/etc/systemd/system/dovecot.service.d/50-mailstack.conf");
  });

  test("leaves Dovecot's security exposure no worse than Debian's unit alone", () => {
    const without = exposure(analyze(["security", "--offline=yes", dovecotUnit(false)]).stdout, "dovecot.service");
    const withDropIn = exposure(analyze(["security", "--offline=yes", dovecotUnit(true)]).stdout, "dovecot.service");
    assert.ok(withDropIn <= without, `${withDropIn} > ${without}`);
  });
});

describe("Redis's drop-in (the spam filter's data on the volume)", () => {
  const debianUnit = "/lib/systemd/system/redis-server.service";
  const layout = boxLayout();
  const dropIn = redisDropIn({
    dir: layout.redisDataDir,
    dataDir: layout.dataDir,
    debianConf: layout.redisDebianConf,
    conf: layout.redisConf,
  });

  function redisUnit(withDropIn: boolean): string {
    const dir = tempRoot();
    const unit = path.join(dir, "redis-server.service");
    fs.copyFileSync(debianUnit, unit);
    if (withDropIn) {
      fs.mkdirSync(`${unit}.d`);
      fs.writeFileSync(path.join(`${unit}.d`, path.basename(layout.redisDropIn)), dropIn);
    }
    return unit;
  }

  test("is read by systemd without a complaint", () => {
    const r = analyze(["verify", redisUnit(true)]);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
  });

  test("lands where systemd reads drop-ins for redis-server.service", () => {
    assert.equal(layout.redisDropIn, "/etc/systemd/system/redis-server.service.d/50-mailstack.conf");
  });

  test("runs our configuration in place of Debian's command line, writes only its directory on the volume, once the volume is mounted", () => {
    const lines = dropIn.split("\n").filter((l) => /^[A-Z]/.test(l));
    assert.deepEqual(lines, [
      "RequiresMountsFor=/var/lib/maild",
      "ExecStart=",
      "ExecStart=/usr/bin/redis-server /etc/mailstack/redis.conf --supervised systemd --daemonize no",
      "ReadWritePaths=/var/lib/maild/redis",
    ]);
  });

  test("leaves Redis's security exposure no worse than Debian's unit alone", () => {
    const without = exposure(analyze(["security", "--offline=yes", redisUnit(false)]).stdout, "redis-server.service");
    const withDropIn = exposure(analyze(["security", "--offline=yes", redisUnit(true)]).stdout, "redis-server.service");
    assert.ok(withDropIn <= without, `${withDropIn} > ${without}`);
  });
});

describe("the metadata guard", () => {
  test("its ruleset passes nft's check", () => {
    const file = path.join(tempRoot(), "guard.nft");
    fs.writeFileSync(file, metadataGuardRules());
    const r = spawnSync("nft", ["-c", "-f", file], { encoding: "utf8" });
    if (r.error) throw new Error(`nft is not installed (Debian package "nftables"): ${r.error.message}`);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });

  test("rejects the metadata address for every socket not owned by root, in a table of its own that each load replaces", () => {
    const rules = metadataGuardRules();
    assert.match(rules, /^\s+ip daddr 169\.254\.169\.254 meta skuid != 0 counter reject$/m);
    assert.deepEqual(
      rules.split("\n").filter((l) => /^(table|delete table)/.test(l)),
      ["table inet mailstack_metadata", "delete table inet mailstack_metadata", "table inet mailstack_metadata {"],
    );
  });

  test("its unit passes systemd-analyze verify and loads the rules at every boot, before the network", () => {
    const root = tempRoot();
    const layout = boxLayout({ root });
    const unit = path.join(root, "mailstack-metadata-guard.service");
    fs.writeFileSync(unit, metadataGuardUnit(layout));
    const r = analyze(["verify", unit]);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    const text = metadataGuardUnit(boxLayout());
    assert.match(text, /^ExecStart=\/usr\/sbin\/nft -f \/etc\/mailstack\/metadata-guard\.nft$/m);
    assert.match(text, /^Before=network-pre\.target/m);
    assert.match(text, /^WantedBy=sysinit\.target$/m);
  });
});
