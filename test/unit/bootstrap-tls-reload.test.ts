// The units that reload Dovecot after maild renewed the certificate on the box, checked by
// systemd's own tools (they work without systemd as PID 1).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  TLS_RELOAD_PATH_UNIT,
  TLS_RELOAD_SERVICE_UNIT,
  tlsReloadPathUnit,
  tlsReloadServiceUnit,
} from "../../server-bootstrap/systemd/tls-reload-units";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles } from "../../server-bootstrap/install/deploy-files";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-tls-reload-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("maild-tls-reload.path and .service", () => {
  const layout = boxLayout();

  test("systemd-analyze verify prints nothing for the pair", () => {
    fs.writeFileSync(path.join(dir, TLS_RELOAD_PATH_UNIT), tlsReloadPathUnit(layout));
    fs.writeFileSync(path.join(dir, TLS_RELOAD_SERVICE_UNIT), tlsReloadServiceUnit());
    const r = spawnSync("systemd-analyze", ["verify", TLS_RELOAD_PATH_UNIT, TLS_RELOAD_SERVICE_UNIT], { cwd: dir, encoding: "utf8" });
    if (r.error) throw new Error(`systemd-analyze is not installed (Debian package "systemd"): ${r.error.message}`);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });

  test("the path unit watches the certificate maild serves and renews, and starts the reload service", () => {
    const unit = tlsReloadPathUnit(layout);
    assert.match(unit, /^PathChanged=\/var\/lib\/maild\/tls\/cert\.pem$/m);
    assert.equal(layout.tlsCert, "/var/lib/maild/tls/cert.pem");
    assert.match(unit, new RegExp(`^Unit=${TLS_RELOAD_SERVICE_UNIT.replace(".", "\\.")}$`, "m"));
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
  });

  test("the service reloads a running Dovecot and nothing else", () => {
    const exec = tlsReloadServiceUnit()
      .split("\n")
      .filter((l) => l.startsWith("ExecStart"));
    assert.deepEqual(exec, ["ExecStart=/bin/systemctl try-reload-or-restart dovecot.service"]);
  });

  test("every deploy installs both units as root-owned 0644 files", () => {
    const files = deployFiles(layout, {
      hostname: "mail.example.org",
      domains: [{ name: "example.org", dkim: [] }],
      users: [],
      aliases: [],
      tls: { certificatePem: "CERT", privateKeyPem: "KEY" },
      spam: TEST_DEPLOY_SPAM,
    });
    const units = files.filter((f) => f.path === layout.tlsReloadPathFile || f.path === layout.tlsReloadServiceFile);
    assert.deepEqual(
      units.map((f) => ({ path: f.path, mode: f.mode, owner: f.owner, effect: f.effect })),
      [
        { path: "/etc/systemd/system/maild-tls-reload.service", mode: "0644", owner: "0:0", effect: "tls-watch" },
        { path: "/etc/systemd/system/maild-tls-reload.path", mode: "0644", owner: "0:0", effect: "tls-watch" },
      ],
    );
  });
});
