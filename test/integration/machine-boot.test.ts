// A machine of the local internet boots from the user data the program renders (MailHost's
// renderCloudInit, a fresh Ed25519 host key, the volume's id) the way a Hetzner server does, and
// writes nothing of it to this computer's own /etc, /usr, /root or /var.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { connectPinned, ed25519KeyPair, exec, HostKeyMismatch } from "../../infra/local-internet/sshd";
import { Machine } from "../../infra/local-internet/machine/machine";
import { MachineVolume } from "../../infra/local-internet/machine/machine-volume";
import { MAILD_GID, MAILD_UID } from "../../server-bootstrap/install/layout";
import { bootServer, differences, fingerprint, onServer, serverKeys, sshTarget, type ServerKeys } from "./machine-fixture";

describe("a machine boots from the program's user data", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let keys: ServerKeys;
  let volume: MachineVolume;
  let machine: Machine;
  let hostBefore: Record<string, string>;

  before(async () => {
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    keys = await serverKeys(internet.workDir);
    // Blank, as a volume created without `format`: the first-boot script formats it.
    volume = await MachineVolume.create({ dir: path.join(internet.workDir, "volumes"), id: "31000001", sizeGb: 10 });
    hostBefore = fingerprint();
    machine = await bootServer({ internet, host: box, keys, volume, serverId: "10000001" });
  });

  after(async () => {
    await machine?.destroy();
    await volume?.forget();
    await internet?.destroy();
  });

  test("sshd presents exactly the pinned host key; a client pinning another key is refused", async () => {
    const conn = await connectPinned(sshTarget(box, keys));
    const r = await exec(conn, "id -u");
    conn.end();
    assert.equal(r.stdout.trim(), "0");
    const other = await ed25519KeyPair(internet.workDir, "another-host-key");
    await assert.rejects(connectPinned({ ...sshTarget(box, keys), hostKey: other.publicKey }), HostKeyMismatch);
    const hostKeys = await onServer(sshTarget(box, keys), "ls /etc/ssh | grep ssh_host_");
    assert.deepEqual(hostKeys.stdout.trim().split("\n"), ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]);
  });

  test("`cloud-init status --wait` reports done, and /etc/machine-id is this machine's own", async () => {
    const r = await onServer(sshTarget(box, keys), "cloud-init status --wait; echo exit=$?; cat /etc/machine-id");
    assert.match(r.stdout, /status: done\nexit=0\n/);
    assert.equal(r.stdout.trim().split("\n").pop(), machine.machineId);
    assert.notEqual(machine.machineId, fs.readFileSync("/etc/machine-id", "utf8").trim());
  });

  test("the first-boot script made the maild account and mounted the volume, formatted as it was blank, from its by-id name", async () => {
    const r = await onServer(
      sshTarget(box, keys),
      "getent passwd maild; findmnt -n -o SOURCE,FSTYPE /var/lib/maild; readlink -f /dev/disk/by-id/scsi-0HC_Volume_31000001; grep maild /etc/fstab",
    );
    const [passwd, mount, device, fstab] = r.stdout.trim().split("\n");
    assert.match(passwd, new RegExp(`^maild:x:${MAILD_UID}:${MAILD_GID}:`));
    assert.equal(mount.replace(/\s+/g, " "), "/dev/sdb ext4");
    assert.equal(device, "/dev/sdb");
    assert.match(fstab, /^\/dev\/disk\/by-id\/scsi-0HC_Volume_31000001 \/var\/lib\/maild ext4 defaults,nofail/);
  });

  test("the machine runs sshd and what the user data installs, not this computer's own servers", async () => {
    const r = await onServer(
      sshTarget(box, keys),
      "systemctl is-enabled ssh dovecot postfix knot unbound; systemctl is-active ssh postfix knot",
    );
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "enabled",
      "enabled",
      "disabled",
      "disabled",
      "disabled",
      "active",
      "inactive",
      "inactive",
    ]);
  });

  test("nothing of the machine is written to this computer's /etc, /usr, /root or /var; the machine's own view did change", () => {
    assert.deepEqual(differences(hostBefore, fingerprint()), []);
    const inside = differences(hostBefore, fingerprint(undefined, machine.rootPath()));
    for (const p of [
      "/etc/passwd",
      "/etc/machine-id",
      "/etc/ssh/ssh_host_ed25519_key",
      "/etc/fstab",
      "/usr/local/sbin/mailstack-bootstrap",
      "/root/.ssh/authorized_keys",
    ]) {
      assert.ok(inside.includes(p), `the machine's ${p} should differ from this computer's (the control for the check above)`);
    }
  });

  test("a user data installing a package this computer lacks is refused before the machine exists, naming the package", async () => {
    const dir = path.join(internet.workDir, "refused");
    await assert.rejects(
      Machine.create({
        host: box,
        name: "mail-2",
        instanceId: "10000002",
        userData: "#cloud-config\npackages: [mailstack-no-such-package]\n",
        publicKeys: [],
        resolver: internet.localIpv4,
        dir,
      }),
      /installs mailstack-no-such-package, which this computer does not have; a machine cannot run apt/,
    );
    assert.equal(fs.existsSync(dir), false);
  });
});
