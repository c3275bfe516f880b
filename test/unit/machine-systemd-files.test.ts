// The machine's systemd stand-in, the parts that are pure file and text handling: unit files,
// command lines, enablement symlinks, fstab names (infra/local-internet/machine/in-machine/).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  checkDirectives,
  loadUnitFile,
  parseTimeSpan,
  parseUnitText,
  listValues,
  UnitMasked,
  UnitNotFound,
} from "../../infra/local-internet/machine/in-machine/unit-file";
import {
  expandEnvironment,
  parseEnvironmentFile,
  parseExecValue,
  splitWords,
} from "../../infra/local-internet/machine/in-machine/command-line";
import { disableUnits, enableUnits, enablementState } from "../../infra/local-internet/machine/in-machine/unit-install";
import { entriesFor, mountUnitName, parseFstab } from "../../infra/local-internet/machine/in-machine/fstab";
import { serviceOf, orderByAfter } from "../../infra/local-internet/machine/in-machine/service-manager";
import { maildUnit } from "../../server-bootstrap/systemd/maild-unit";
import { tlsReloadPathUnit, tlsReloadServiceUnit } from "../../server-bootstrap/systemd/tls-reload-units";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { redisDropIn } from "../../server-bootstrap/spam/redis-conf";

function tempRoot(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "machine-units-"));
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), content);
  }
  for (const [p, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.symlinkSync(target, path.join(root, p));
  }
  return root;
}

describe("unit file syntax (systemd.syntax(7))", () => {
  test("a trailing backslash joins the next line with a space, skipping comment lines in between", () => {
    const s = parseUnitText(
      "[Section C]\nKeyThree=value 3\\\n# this line is ignored\n; this line is ignored too\n       value 3 continued\n",
      "x",
    );
    assert.deepEqual(
      s.get("Section C")!.map((a) => [a.key, a.value]),
      [["KeyThree", "value 3 value 3 continued"]],
    );
  });

  test("an empty assignment resets a list setting", () => {
    const root = tempRoot({
      "lib/systemd/system/a.service": "[Service]\nExecStart=/bin/true\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n",
    });
    assert.deepEqual(listValues(loadUnitFile("a.service", root), "Service", "Environment"), ["B=2"]);
  });

  test("a drop-in is applied after the unit file, and /etc overrides /lib", () => {
    const root = tempRoot({
      "lib/systemd/system/a.service": "[Service]\nExecStart=/bin/true\nUser=nobody\n",
      "etc/systemd/system/a.service.d/override.conf": "[Service]\nUser=root\n",
    });
    const unit = loadUnitFile("a", root);
    assert.equal(unit.name, "a.service");
    assert.equal(serviceOf(unit).user, "root");
  });

  test("an alias symlink loads the unit it points at; a symlink to /dev/null is a mask", () => {
    const root = tempRoot(
      { "lib/systemd/system/ssh.service": "[Service]\nExecStart=/usr/sbin/sshd -D\n" },
      { "etc/systemd/system/sshd.service": "/lib/systemd/system/ssh.service", "etc/systemd/system/masked.service": "/dev/null" },
    );
    assert.equal(loadUnitFile("sshd.service", root).id, "ssh.service");
    assert.throws(() => loadUnitFile("masked.service", root), UnitMasked);
    assert.throws(() => loadUnitFile("nowhere.service", root), UnitNotFound);
  });

  test("a directive the stand-in does not model is refused before the unit would run, naming file, line and key", () => {
    const root = tempRoot({ "lib/systemd/system/a.service": "[Service]\nExecStart=/bin/true\nWatchdogSec=5\n" });
    assert.throws(() => checkDirectives(loadUnitFile("a.service", root)), /a\.service:3: WatchdogSec= in \[Service\] is not modeled/);
  });

  test("our own units and Debian's ssh and dovecot units load, every directive modeled or knowingly ignored", () => {
    const layout = boxLayout();
    const root = tempRoot({
      "etc/systemd/system/maild.service": maildUnit(layout),
      "etc/systemd/system/maild-tls-reload.path": tlsReloadPathUnit(layout),
      "etc/systemd/system/maild-tls-reload.service": tlsReloadServiceUnit(),
      "lib/systemd/system/ssh.service": fs.readFileSync("/lib/systemd/system/ssh.service", "utf8"),
      "lib/systemd/system/dovecot.service": fs.readFileSync("/lib/systemd/system/dovecot.service", "utf8"),
    });
    const maild = serviceOf(loadUnitFile("maild.service", root));
    assert.equal(maild.type, "simple");
    assert.equal(maild.user, "maild");
    assert.deepEqual(maild.ambientCaps, ["net_bind_service"]);
    assert.equal(maild.restart, "on-failure");
    assert.equal(maild.stopTimeoutMs, 45_000);
    assert.deepEqual(maild.execReload[0].argv, ["/bin/kill", "-HUP", "$MAINPID"]);
    assert.equal(serviceOf(loadUnitFile("ssh.service", root)).type, "notify");
    assert.equal(serviceOf(loadUnitFile("dovecot.service", root)).type, "notify");
    assert.equal(serviceOf(loadUnitFile("maild-tls-reload.service", root)).type, "oneshot");
    assert.equal(loadUnitFile("maild-tls-reload.path", root).type, "path");
    for (const u of ["maild.service", "maild-tls-reload.path", "maild-tls-reload.service", "ssh.service", "dovecot.service"]) {
      assert.doesNotThrow(() => checkDirectives(loadUnitFile(u, root)), u);
    }
  });

  test("the spam filter's units, Debian's with our Redis drop-in, load; their timeouts and capabilities read as systemd reads them", () => {
    const layout = boxLayout();
    const root = tempRoot({
      "lib/systemd/system/redis-server.service": fs.readFileSync("/lib/systemd/system/redis-server.service", "utf8"),
      "etc/systemd/system/redis-server.service.d/50-mailstack.conf": redisDropIn({
        dir: layout.redisDataDir,
        dataDir: layout.dataDir,
        debianConf: layout.redisDebianConf,
        conf: layout.redisConf,
      }),
      "lib/systemd/system/rspamd.service": fs.readFileSync("/lib/systemd/system/rspamd.service", "utf8"),
      "lib/systemd/system/unbound.service": fs.readFileSync("/lib/systemd/system/unbound.service", "utf8"),
    });
    for (const u of ["redis-server.service", "rspamd.service", "unbound.service"]) {
      assert.doesNotThrow(() => checkDirectives(loadUnitFile(u, root)), u);
    }
    const redis = serviceOf(loadUnitFile("redis-server.service", root));
    assert.deepEqual(redis.execStart[0].argv, ["/usr/bin/redis-server", layout.redisConf, "--supervised", "systemd", "--daemonize", "no"]);
    // TimeoutStopSec=0 is no timeout at all (load-fragment.c config_parse_service_timeout)
    assert.equal(redis.stopTimeoutMs, Infinity);
    // CapabilityBoundingSet= (empty): every capability dropped, not the bounding set left alone
    assert.deepEqual(redis.boundingSet, []);
    assert.equal(serviceOf(loadUnitFile("rspamd.service", root)).boundingSet, undefined);
    assert.equal(serviceOf(loadUnitFile("unbound.service", root)).type, "notify");
  });

  test("time spans: bare seconds, units added up, infinity", () => {
    assert.equal(parseTimeSpan("45s", "t"), 45_000);
    assert.equal(parseTimeSpan("2min 200ms", "t"), 120_200);
    assert.equal(parseTimeSpan("50", "t"), 50_000);
    assert.equal(parseTimeSpan("infinity", "t"), Infinity);
    assert.throws(() => parseTimeSpan("5 fortnights", "TimeoutStopSec="), /TimeoutStopSec=: "fortnights"/);
  });
});

describe("command lines (systemd.service(5) COMMAND LINES)", () => {
  test("the man page's first example: $ONE $TWO ${TWO} gives four arguments", () => {
    const [cmd] = parseExecValue("echo $ONE $TWO ${TWO}", { unitName: "x.service" }, "x");
    const env = { ONE: "one", TWO: "two two" };
    assert.deepEqual(expandEnvironment(cmd.argv, env, "x"), ["echo", "one", "two", "two", "two two"]);
  });

  test("the man page's second example: ${} keeps quotes and whitespace, $ splits respecting quotes", () => {
    const env = { ONE: "'one'", TWO: "'two two' too", THREE: "" };
    const [braced] = parseExecValue("/bin/echo ${ONE} ${TWO} ${THREE}", { unitName: "x.service" }, "x");
    const [bare] = parseExecValue("/bin/echo $ONE $TWO $THREE", { unitName: "x.service" }, "x");
    assert.deepEqual(expandEnvironment(braced.argv, env, "x"), ["/bin/echo", "'one'", "'two two' too", ""]);
    assert.deepEqual(expandEnvironment(bare.argv, env, "x"), ["/bin/echo", "one", "two two", "too"]);
  });

  test("a lone semicolon separates commands, an escaped one is an argument", () => {
    const cmds = parseExecValue('echo one ; echo "two two"', { unitName: "x.service" }, "x");
    assert.deepEqual(
      cmds.map((c) => c.argv),
      [
        ["echo", "one"],
        ["echo", "two two"],
      ],
    );
    const [one] = parseExecValue("echo / >/dev/null & \\; ls", { unitName: "x.service" }, "x");
    assert.deepEqual(one.argv, ["echo", "/", ">/dev/null", "&", ";", "ls"]);
  });

  test("prefixes: - ignores failure, : skips expansion, + runs privileged; a relative path with a slash is refused", () => {
    const [c] = parseExecValue("-:+/bin/true $X", { unitName: "x.service" }, "x");
    assert.deepEqual([c.ignoreFailure, c.noEnvExpansion, c.privileged, c.path], [true, true, "+", "/bin/true"]);
    assert.throws(() => parseExecValue("bin/true", { unitName: "x.service" }, "ExecStart="), /must be an absolute path/);
  });

  test("quotes must close before whitespace; C escapes are decoded", () => {
    assert.deepEqual(splitWords(`"a b" 'c' d\\te`, "x"), ["a b", "c", "d\te"]);
    assert.throws(() => splitWords(`"a"b`, "x"), /closing quote must be followed by whitespace/);
  });

  test("an EnvironmentFile: comments and lines without = ignored, quotes around a value removed", () => {
    assert.deepEqual(parseEnvironmentFile('# c\n; c\nSSHD_OPTS=\nA="x y"\nnot an assignment\nB=a\\ b\n'), {
      SSHD_OPTS: "",
      A: "x y",
      B: "a b",
    });
  });
});

describe("enable, disable, is-enabled (systemctl(1))", () => {
  const unit = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=y.service\n";

  test("enable creates the WantedBy= and Alias= symlinks to the unit file; disable removes them all", () => {
    const root = tempRoot({ "etc/systemd/system/x.service": unit });
    const changes = enableUnits(["x"], root);
    assert.deepEqual(
      changes.map((c) => [c.path, c.target]),
      [
        ["/etc/systemd/system/multi-user.target.wants/x.service", "/etc/systemd/system/x.service"],
        ["/etc/systemd/system/y.service", "/etc/systemd/system/x.service"],
      ],
    );
    assert.equal(enablementState("x", root), "enabled");
    assert.equal(enablementState("y.service", root), "alias");
    disableUnits(["x.service"], root);
    assert.equal(enablementState("x", root), "disabled");
    assert.equal(fs.existsSync(path.join(root, "etc/systemd/system/y.service")), false);
  });

  test("a unit without [Install] is static; an unknown one not-found; enabling a masked one fails", () => {
    const root = tempRoot(
      { "etc/systemd/system/s.service": "[Service]\nExecStart=/bin/true\n", "lib/systemd/system/m.service": unit },
      { "etc/systemd/system/m.service": "/dev/null" },
    );
    assert.equal(enablementState("s", root), "static");
    assert.equal(enablementState("nope", root), "not-found");
    assert.equal(enablementState("m", root), "masked");
    assert.throws(() => enableUnits(["m"], root), /Failed to enable unit: Unit file m\.service is masked\./);
  });

  test("boot order follows After=: maild after the network, dovecot after local-fs", () => {
    const root = tempRoot({
      "lib/systemd/system/b.service": "[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/true\n",
      "lib/systemd/system/a.service": "[Unit]\nBefore=c.service\n[Service]\nExecStart=/bin/true\n",
      "lib/systemd/system/c.service": "[Service]\nExecStart=/bin/true\n",
    });
    const units = ["c", "b", "a"].map((n) => ({ file: loadUnitFile(n, root) }));
    assert.deepEqual(
      orderByAfter(units).map((u) => u.file.id),
      ["a.service", "c.service", "b.service"],
    );
  });
});

describe("fstab (systemd-fstab-generator(8), systemd.unit(5) RequiresMountsFor=)", () => {
  test("mount unit names are the escaped path", () => {
    assert.equal(mountUnitName("/var/lib/maild"), "var-lib-maild.mount");
    assert.equal(mountUnitName("/srv/my-data"), "srv-my\\x2ddata.mount");
  });

  test("RequiresMountsFor= pulls in every fstab mount on the path, outermost first", () => {
    const entries = parseFstab(
      "# comment\n/dev/disk/by-id/scsi-0HC_Volume_1 /var/lib/maild ext4 defaults,nofail 0 2\n/dev/sdc /var ext4 defaults 0 2\n/dev/sdd /srv ext4 defaults 0 2\n",
    );
    assert.deepEqual(
      entriesFor("/var/lib/maild/tls", entries).map((e) => e.mountPoint),
      ["/var", "/var/lib/maild"],
    );
    assert.deepEqual(
      entriesFor("/var/lib/maildir", entries).map((e) => e.mountPoint),
      ["/var"],
    );
  });
});
