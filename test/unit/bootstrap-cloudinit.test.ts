// cloud-init user data: the rendered YAML, and its shell steps run for real against a fake root
// (account database in a temp dir, a loop device standing in for the Hetzner volume).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import {
  BOOTSTRAP_SCRIPT,
  FIRST_BOOT_PACKAGES,
  hetznerVolumeDevice,
  renderCloudInit,
  SSHD_DROP_IN,
  bootstrapScript,
} from "../../server-bootstrap/cloud-init";
import { boxLayout, NODE_TARBALLS, NODE_VERSION, type BoxLayout } from "../../server-bootstrap/install/layout";
import { ensureAccount, ensureDataVolume, ensureNode, shellHeader, shellPrelude } from "../../server-bootstrap/install/shell-steps";
import { installScript } from "../../server-bootstrap/install/install-script";

const NODE = path.resolve(__dirname, "../../node_modules/node/bin/node");
const HOST_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACD0test0key0material0only0for0yaml0shape0AAAA=\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPR0ZXN0a2V5bWF0ZXJpYWxvbmx5Zm9yeWFtbHNoYXBl";

const temps: string[] = [];
const loops: string[] = [];
after(() => {
  for (const l of loops) {
    spawnSync("umount", [l]);
    spawnSync("losetup", ["-d", l]);
  }
  for (const t of temps) fs.rmSync(t, { recursive: true, force: true });
});
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-bootstrap-"));
  temps.push(d);
  return d;
};

function render(volumeId = "4711") {
  return renderCloudInit({ hostKeyPrivateOpenssh: HOST_KEY, hostKeyPublicOpenssh: HOST_PUB, volumeId });
}

describe("cloud-init user data (YAML)", () => {
  const text = render();
  const doc = YAML.parse(text) as Record<string, any>;

  test("is #cloud-config YAML that installs exactly the host key MailHost generated and no other", () => {
    assert.equal(text.split("\n")[0], "#cloud-config");
    assert.equal(doc.ssh_keys.ed25519_private, HOST_KEY);
    assert.equal(doc.ssh_keys.ed25519_public, HOST_PUB);
    assert.equal(doc.ssh_deletekeys, true);
    assert.deepEqual(doc.ssh_genkeytypes, []);
  });

  test("disables password logins (cloud-init and an sshd drop-in)", () => {
    assert.equal(doc.ssh_pwauth, false);
    const dropIn = doc.write_files.find((f: { path: string }) => f.path === SSHD_DROP_IN);
    assert.match(dropIn.content, /^PasswordAuthentication no$/m);
    assert.match(dropIn.content, /^KbdInteractiveAuthentication no$/m);
    assert.match(dropIn.content, /^PermitRootLogin prohibit-password$/m);
  });

  test("installs Dovecot and unattended upgrades, and turns the upgrades on", () => {
    assert.equal(doc.package_update, true);
    assert.deepEqual(doc.packages, FIRST_BOOT_PACKAGES);
    assert.ok(doc.packages.includes("dovecot-imapd") && doc.packages.includes("unattended-upgrades"));
    const auto = doc.write_files.find((f: { path: string }) => f.path === "/etc/apt/apt.conf.d/20auto-upgrades");
    assert.equal(auto.content, 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n');
  });

  test("runs the bootstrap script, which mounts the volume by its Hetzner id and pins Node's checksums", () => {
    assert.deepEqual(doc.runcmd, [[BOOTSTRAP_SCRIPT]]);
    const script = doc.write_files.find((f: { path: string }) => f.path === BOOTSTRAP_SCRIPT);
    assert.equal(script.permissions, "0755");
    assert.equal(script.content, bootstrapScript(boxLayout(), "/dev/disk/by-id/scsi-0HC_Volume_4711"));
    assert.match(script.content, /^ensure_data_volume \/dev\/disk\/by-id\/scsi-0HC_Volume_4711 /m);
    assert.match(script.content, new RegExp(`NODE_X64_SHA256='${NODE_TARBALLS.x86_64.sha256}'`));
    assert.match(script.content, new RegExp(`NODE_ARM64_SHA256='${NODE_TARBALLS.aarch64.sha256}'`));
    assert.match(script.content, new RegExp(`NODE_VERSION='${NODE_VERSION}'`));
  });

  test("is stable: the same inputs render byte-identical user data (a change would replace the server)", () => {
    assert.equal(render(), text);
    assert.notEqual(render("4712"), text);
  });

  test("the bootstrap and install scripts are valid bash", () => {
    for (const [name, body] of [
      ["bootstrap", bootstrapScript(boxLayout(), hetznerVolumeDevice("1"))],
      ["install", installScript(boxLayout())],
    ]) {
      const r = spawnSync("bash", ["-n"], { input: body, encoding: "utf8" });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    }
  });

  test("a volume id that is not a Hetzner id is refused", () => {
    assert.throws(() => hetznerVolumeDevice("../sda"), /volumeId: "\.\.\/sda" is not a Hetzner volume id \(digits\)/);
  });
});

/** Runs the shared shell steps with `calls`, in bash, against `layout`'s root. */
function steps(layout: BoxLayout, calls: string, env: NodeJS.ProcessEnv = {}) {
  const fstab = path.join(layout.root, "etc/fstab");
  const script = [
    "set -euo pipefail",
    shellHeader(layout, { FSTAB: fstab }),
    shellPrelude("test"),
    ensureAccount,
    ensureNode,
    ensureDataVolume,
    calls,
  ].join("\n");
  return spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, ...env } });
}

function fakeRoot(): { layout: BoxLayout; root: string } {
  const root = tempDir();
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  for (const f of ["passwd", "group", "shadow", "gshadow"]) fs.copyFileSync(`/etc/${f}`, path.join(root, "etc", f));
  return { root, layout: boxLayout({ root, dataDir: path.join(root, "var/lib/maild") }) };
}

function loopDevice(dir: string, withFs: boolean): string {
  const img = path.join(dir, "volume.img");
  fs.writeFileSync(img, Buffer.alloc(0));
  fs.truncateSync(img, 32 * 1024 * 1024);
  if (withFs) assert.equal(spawnSync("mkfs.ext4", ["-q", img]).status, 0);
  const r = spawnSync("losetup", ["--find", "--show", img], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`losetup failed (root and loop devices needed): ${r.stderr}`);
  const dev = r.stdout.trim();
  loops.push(dev);
  // Hetzner's by-id name, pointing at the loop device.
  const byId = path.join(dir, "scsi-0HC_Volume_4711");
  fs.symlinkSync(dev, byId);
  return byId;
}

const uuid = (dev: string) => spawnSync("blkid", ["-o", "value", "-s", "UUID", dev], { encoding: "utf8" }).stdout.trim();

describe("first-boot shell steps against a fake root", () => {
  test("ensure_account creates maild (2525) and vmail (2526) once, maild in vmail's group, and refuses an account with other ids", () => {
    const { layout, root } = fakeRoot();
    const first = steps(layout, "ensure_account; ensure_account");
    assert.equal(first.status, 0, first.stderr);
    assert.equal(
      fs
        .readFileSync(path.join(root, "etc/passwd"), "utf8")
        .match(/^maild:.*$/gm)!
        .join("\n"),
      `maild:x:2525:2525:mailstack mail daemon:${layout.dataDir}:/usr/sbin/nologin`,
    );
    assert.equal(fs.readFileSync(path.join(root, "etc/group"), "utf8").match(/^maild:.*$/gm)!.length, 1);
    // Dovecot's mail processes get an account of their own, whose group maild joins (once)
    assert.equal(
      fs
        .readFileSync(path.join(root, "etc/passwd"), "utf8")
        .match(/^vmail:.*$/gm)!
        .join("\n"),
      "vmail:x:2526:2526:mailstack mail store (Dovecot):/nonexistent:/usr/sbin/nologin",
    );
    assert.equal(
      fs
        .readFileSync(path.join(root, "etc/group"), "utf8")
        .match(/^vmail:.*$/gm)!
        .join("\n"),
      "vmail:x:2526:maild",
    );
    const other = fakeRoot();
    fs.appendFileSync(path.join(other.root, "etc/group"), "maild:x:3000:\n");
    const r = steps(other.layout, "ensure_account");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /group maild has gid 3000; mail on the data volume is owned by gid 2525/);
  });

  test("ensure_node leaves a pinned Node alone and refuses a download whose SHA-256 does not match", () => {
    const { layout, root } = fakeRoot();
    fs.mkdirSync(path.dirname(layout.node), { recursive: true });
    fs.symlinkSync(NODE, layout.node);
    assert.equal(steps(layout, "ensure_node").status, 0);
    fs.unlinkSync(layout.node);
    // A curl that "downloads" something else: the checksum must stop it.
    const bin = path.join(root, "fakebin");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "curl"), '#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\necho tampered > "$2"\n', { mode: 0o755 });
    const r = steps(layout, "ensure_node", { PATH: `${bin}:${process.env.PATH}` });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /SHA-256 is [0-9a-f]{64}, expected [0-9a-f]{64}; not installing it/);
    assert.equal(fs.existsSync(layout.node), false);
  });

  test("ensure_data_volume formats a blank volume once, mounts it by id and writes one fstab line", () => {
    const { layout, root } = fakeRoot();
    const dev = loopDevice(root, false);
    const r1 = steps(layout, `ensure_data_volume ${dev} "$FSTAB"`);
    assert.equal(r1.status, 0, r1.stderr);
    assert.match(r1.stderr, /formatted empty data volume/);
    const id = uuid(dev);
    assert.match(id, /^[0-9a-f-]{36}$/);
    fs.writeFileSync(path.join(layout.dataDir, "mail-survives"), "x");
    const r2 = steps(layout, `ensure_data_volume ${dev} "$FSTAB"`);
    assert.equal(r2.status, 0, r2.stderr);
    assert.doesNotMatch(r2.stderr, /formatted/);
    assert.equal(uuid(dev), id);
    assert.equal(fs.readFileSync(path.join(layout.dataDir, "mail-survives"), "utf8"), "x");
    assert.deepEqual(fs.readFileSync(path.join(root, "etc/fstab"), "utf8").split("\n").filter(Boolean), [
      `${dev} ${layout.dataDir} ext4 defaults,nofail,discard,x-systemd.device-timeout=30s 0 2`,
    ]);
  });

  test("ensure_data_volume never formats a volume that already holds a filesystem", () => {
    const { layout, root } = fakeRoot();
    const dev = loopDevice(root, true);
    const id = uuid(dev);
    const r = steps(layout, `ensure_data_volume ${dev} "$FSTAB"`);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /formatted/);
    assert.equal(uuid(dev), id);
    assert.ok(fs.existsSync(path.join(layout.dataDir, "lost+found")), "the existing filesystem is mounted");
  });
});
