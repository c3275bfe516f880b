// The hooks the hcloud stand-in calls (HcloudWorld's MachineBackend) drive machines in the box
// namespace: a created server boots with the namespace's addresses as its primary IPs, power
// actions and type changes act on the same machine, volumes come and go, and a server created
// after a deletion is a new machine with the volume's data intact.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { NamespaceMachineBackend, type ServerView, type VolumeView } from "../../infra/local-internet/machine/machine-backend";
import { renderCloudInit } from "../../server-bootstrap/cloud-init";
import { onServer, serverKeys, sshTarget, type ServerKeys } from "./machine-fixture";

const IPV6_NETWORK = "2001:db8:1:ff::";

describe("the machine backend of the hcloud stand-in", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let keys: ServerKeys;
  let backend: NamespaceMachineBackend;
  let server: ServerView;
  const volume: VolumeView = { id: 33000001, size: 10, linuxDevice: "/dev/disk/by-id/scsi-0HC_Volume_33000001", format: "ext4" };
  const onBox = (command: string) => onServer(sshTarget(box, keys), command);

  /** The console lines of the machine's last boot. */
  function lastBootConsole(serverId: number): string {
    const lines = backend.machine(serverId)!.consoleLog().split("\n");
    const start = lines.map((l) => /\] image: |\] reached target multi-user/.test(l)).lastIndexOf(true);
    return lines.slice(Math.max(0, start)).join("\n");
  }

  before(async () => {
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    keys = await serverKeys(internet.workDir);
    backend = new NamespaceMachineBackend({
      host: box,
      ipv6Network: IPV6_NETWORK,
      resolver: internet.localIpv4,
      dir: path.join(internet.workDir, "hcloud"),
    });
    server = {
      id: 12000001,
      name: "mail-1",
      serverType: "cx23",
      image: "debian-12",
      userData: renderCloudInit({
        hostKeyPrivateOpenssh: keys.hostKey.privateKey,
        hostKeyPublicOpenssh: keys.hostKey.publicKey,
        volumeId: String(volume.id),
      }),
      sshKeys: [keys.deployer.publicKey],
      status: "running",
      ipv4: box.ipv4,
      ipv6Network: IPV6_NETWORK,
    };
  });

  after(async () => {
    await backend?.close();
    await internet?.destroy();
  });

  test("a server whose primary IP is not the box namespace's is refused, naming both", async () => {
    await assert.rejects(
      backend.serverCreated({ ...server, id: 12000009, ipv4: "203.0.113.2" }),
      /primary IPs \(203\.0\.113\.2, .*\) are not the box namespace's/,
    );
    await assert.rejects(
      backend.serverCreated({ ...server, id: 12000009, image: "ubuntu-24.04" }),
      /image ubuntu-24\.04 cannot be stood in for/,
    );
    assert.equal(backend.machine(12000009), undefined);
  });

  test("a created server boots; the volume attached after it is mounted by the first-boot script", async () => {
    await backend.serverCreated(server);
    await backend.volumeAttached(volume, server);
    await backend.machine(server.id)!.waitForBoot();
    const r = await onBox("hostname; findmnt -n -o SOURCE /var/lib/maild; cloud-init status");
    assert.deepEqual(r.stdout.trim().split("\n"), ["mail-1", "/dev/sdb", "status: done"]);
  });

  test("a second server on the same addresses while the first runs is refused", async () => {
    await assert.rejects(backend.serverCreated({ ...server, id: 12000002, name: "mail-2" }), /in use by server 12000001, which still runs/);
  });

  test("an ACPI shutdown stops every unit and unmounts the volume before the power goes; a power cut does neither", async () => {
    const machineId = backend.machine(server.id)!.machineId;
    await backend.serverPoweredOff(server, "shutdown");
    const shutdown = lastBootConsole(server.id);
    assert.match(shutdown, /\[ {2}OK {2}\] Stopped OpenBSD Secure Shell server\./);
    assert.match(shutdown, /\[ {2}OK {2}\] Unmounted \/var\/lib\/maild\./);
    assert.match(shutdown, /reached target power-off/);
    await backend.serverPoweredOn(server);
    await backend.machine(server.id)!.waitForBoot();
    assert.equal((await onBox("cat /etc/machine-id")).stdout.trim(), machineId, "a power cycle keeps the machine");
    await backend.serverPoweredOff(server, "poweroff");
    const cut = lastBootConsole(server.id);
    assert.doesNotMatch(cut, /Stopped|Unmounted|power-off/);
  });

  test("a type change powers the same machine on again", async () => {
    const machineId = backend.machine(server.id)!.machineId;
    await backend.serverTypeChanged({ ...server, serverType: "cx33" }, "cx23");
    await backend.serverPoweredOn({ ...server, serverType: "cx33" });
    await backend.machine(server.id)!.waitForBoot();
    assert.equal((await onBox("cat /etc/machine-id")).stdout.trim(), machineId);
    assert.deepEqual(backend.events.map((e) => e.event).slice(-2), ["server-type-changed", "server-poweron"]);
  });

  test("after the server is deleted, a new one is a new machine that finds the volume's data", async () => {
    await onBox("touch /var/lib/maild/written-by-the-first-server && umount /var/lib/maild");
    await backend.volumeDetached(volume, server);
    await backend.serverDeleted(server);
    assert.equal(backend.machine(server.id), undefined);
    assert.deepEqual(backend.detachedWhileMounted, []);
    const next = { ...server, id: 12000003, name: "mail-3" };
    await backend.serverCreated(next);
    await backend.volumeAttached(volume, next);
    await backend.machine(next.id)!.waitForBoot();
    const r = await onBox("hostname; ls /var/lib/maild");
    assert.equal(r.stdout.split("\n")[0], "mail-3");
    assert.match(r.stdout, /written-by-the-first-server/);
  });

  test("a volume detached while still mounted is recorded as the mistake it would be on a real server", async () => {
    const next = { ...server, id: 12000003, name: "mail-3" };
    await backend.volumeDetached(volume, next);
    assert.deepEqual(backend.detachedWhileMounted, [{ volumeId: volume.id, serverId: next.id }]);
    const r = await onBox("findmnt -n /var/lib/maild; ls /dev/disk/by-id/");
    assert.equal(r.stdout.trim(), "");
  });
});
