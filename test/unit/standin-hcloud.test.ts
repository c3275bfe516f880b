import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Secret, Unknown, type CallContext, type PropertyMap } from "../../infra/offline/model";
import {
  FIREWALL,
  hcloudStandIn,
  HcloudWorld,
  PRIMARY_IP,
  RDNS,
  SERVER,
  SSH_KEY,
  STORAGE_BOX,
  STORAGE_BOX_SUBACCOUNT,
  userDataHashSum,
  VOLUME,
  VOLUME_ATTACHMENT,
  type MachineView,
} from "../../infra/offline/providers/hcloud";
import { reveal } from "../../infra/offline/providers/property";
import type { HcloudWorldOptions } from "../../infra/offline/providers/hcloud-world";

const NOW = new Date("2026-11-15T12:00:00Z");
const ctx = (name: string, preview = false, log: string[] = []): CallContext => ({
  urn: `urn:pulumi:dev::mailstack::hcloud:index/x:X::${name}`,
  preview,
  log: (m) => log.push(m),
});
const DEPLOYER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

function setup(options: HcloudWorldOptions = {}) {
  const world = new HcloudWorld({ now: () => NOW, ...options });
  const hcloud = hcloudStandIn(world);
  /** check + create, as the engine does it for a new resource */
  const create = async (type: string, name: string, inputs: PropertyMap) => {
    const checked = await hcloud.check(ctx(name), type, undefined, inputs);
    assert.deepEqual(checked.failures, [], `${type} ${name}: check failures`);
    const { id, outputs } = await hcloud.create(ctx(name), type, checked.inputs);
    return { id: id as string, inputs: checked.inputs, outputs };
  };
  return { world, hcloud, create };
}

/** The MailHost shape: key, two primary IPs, a volume, a firewall, the server on those IPs. */
async function mailHost(s: ReturnType<typeof setup>, location = "fsn1", serverType = "cx23") {
  const key = await s.create(SSH_KEY, "deployer", { publicKey: DEPLOYER });
  const v4 = await s.create(PRIMARY_IP, "ipv4", { type: "ipv4", location, autoDelete: false });
  const v6 = await s.create(PRIMARY_IP, "ipv6", { type: "ipv6", location, autoDelete: false });
  const volume = await s.create(VOLUME, "data", { size: 10, location, format: "ext4", automount: false });
  const firewall = await s.create(FIREWALL, "firewall", {
    rules: [{ direction: "in", protocol: "tcp", port: "25", sourceIps: ["0.0.0.0/0", "::/0"] }],
  });
  const serverInputs: PropertyMap = {
    serverType,
    image: "debian-12",
    location,
    userData: new Secret("#cloud-config\n"),
    sshKeys: [key.id],
    firewallIds: [Number(firewall.id)],
    publicNets: [{ ipv4Enabled: true, ipv4: Number(v4.id), ipv6Enabled: true, ipv6: Number(v6.id) }],
    shutdownBeforeDeletion: true,
  };
  const server = await s.create(SERVER, "server", serverInputs);
  return { key, v4, v6, volume, firewall, server, serverInputs };
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, pattern);
    return true;
  });
}

describe("hcloud stand-in: servers and where they are sold", () => {
  test("a server on a primary IP another server holds fails with primary_ip_assigned", async () => {
    const s = setup();
    const host = await mailHost(s);
    const second = { ...host.serverInputs, name: "other" };
    await rejectsWith(
      s.create(SERVER, "server2", second),
      /^primary ip already assigned to another server \(primary_ip_assigned, [0-9a-f]+\)$/,
    );
    assert.equal(s.world.servers.size, 1);
  });

  test("a cx23 in ash is refused by the API as an unsupported location naming type and location, and nothing is created", async () => {
    const s = setup();
    await rejectsWith(
      s.create(SERVER, "server", { serverType: "cx23", image: "debian-12", location: "ash" }),
      /^unsupported location for server type \(invalid_input, [0-9a-f]+\): \[location => \[server type cx23 is not available in ash; it is sold in fsn1, nbg1, hel1\]\]$/,
    );
    assert.equal(s.world.servers.size, 0);
  });

  test("a cx22 fails before the API is asked: unavailable in all locations since 2025-12-31", async () => {
    const s = setup();
    await rejectsWith(
      s.create(SERVER, "server", { serverType: "cx22", image: "debian-12", location: "fsn1" }),
      /^Server Type "cx22" is unavailable in all locations and can no longer be ordered: /,
    );
    assert.deepEqual(s.world.actions, []);
  });

  test("a cpx11 is unavailable in nbg1 but still sold in ash", async () => {
    const s = setup();
    await rejectsWith(
      s.create(SERVER, "eu", { serverType: "cpx11", image: "debian-12", location: "nbg1" }),
      /^Server Type "cpx11" is unavailable in "nbg1" and can no longer be ordered/,
    );
    const us = await s.create(SERVER, "us", { serverType: "cpx11", image: "debian-12", location: "ash" });
    assert.equal(us.outputs.serverType, "cpx11");
  });

  test("a deprecated image warns until three months after its deprecation, then fails before the API is asked", async () => {
    const log: string[] = [];
    const before = setup();
    const checked = await before.hcloud.check(ctx("old"), SERVER, undefined, { serverType: "cx23", image: "debian-11", location: "fsn1" });
    await before.hcloud.create(ctx("old", false, log), SERVER, checked.inputs);
    assert.deepEqual(log, [
      'warning: Image Deprecated: Image "debian-11" is deprecated and will no longer be available for order as of 2026-11-30.',
    ]);
    const afterwards = setup({ now: () => new Date("2026-12-01T00:00:00Z") });
    await rejectsWith(
      afterwards.create(SERVER, "old", { serverType: "cx23", image: "debian-11", location: "fsn1" }),
      /^Image Unavailable: Image "debian-11" is unavailable and can no longer be ordered\.$/,
    );
    assert.deepEqual(afterwards.world.actions, []);
  });

  test("the image is looked up for the type's architecture", async () => {
    const s = setup();
    const arm = await s.create(SERVER, "arm", { serverType: "cax11", image: "debian-12", location: "hel1" });
    assert.equal(s.world.servers.get(Number(arm.id))!.image.architecture, "arm");
    await rejectsWith(
      s.create(SERVER, "x", { serverType: "cax11", image: "debian-99", location: "hel1" }),
      /^image debian-99 for architecture arm not found$/,
    );
  });

  test("the state keeps base64(SHA-1(userData)); the same text again is no change, another one replaces", async () => {
    const s = setup();
    const { server, serverInputs } = await mailHost(s);
    assert.equal(reveal(server.outputs.userData), userDataHashSum("#cloud-config\n"));
    assert.ok(server.outputs.userData instanceof Secret);
    const same = await s.hcloud.diff(
      ctx("server"),
      SERVER,
      server.id,
      server.inputs,
      server.outputs,
      { ...serverInputs, name: server.inputs.name, __defaults: ["name"] },
      [],
    );
    assert.equal(same.changes, "none");
    const other = await s.hcloud.diff(
      ctx("server"),
      SERVER,
      server.id,
      server.inputs,
      server.outputs,
      { ...server.inputs, userData: new Secret("#cloud-config\nx\n") },
      [],
    );
    assert.deepEqual(other.replaceKeys, ["userData"]);
  });

  test("image replaces and serverType updates; an explicit name makes the replacement delete-first", async () => {
    const s = setup();
    const { server } = await mailHost(s);
    const autonamed = await s.hcloud.diff(
      ctx("server"),
      SERVER,
      server.id,
      server.inputs,
      server.outputs,
      { ...server.inputs, image: "debian-13" },
      [],
    );
    assert.deepEqual([autonamed.replaceKeys, autonamed.deleteBeforeReplace], [["image"], false]);
    const resized = await s.hcloud.diff(
      ctx("server"),
      SERVER,
      server.id,
      server.inputs,
      server.outputs,
      { ...server.inputs, serverType: "cx33" },
      [],
    );
    assert.deepEqual([resized.changedKeys, resized.replaceKeys], [["serverType"], []]);
    const named = { ...server.inputs, name: "mail", image: "debian-13", __defaults: [] };
    const explicit = await s.hcloud.diff(ctx("server"), SERVER, server.id, server.inputs, server.outputs, named, []);
    assert.equal(explicit.deleteBeforeReplace, true);
  });

  test("an autoname is <resource name>-<7 hex> and is kept by the next check", async () => {
    const s = setup();
    const first = await s.hcloud.check(ctx("mail-server"), SERVER, undefined, { serverType: "cx23" });
    assert.match(String(first.inputs.name), /^mail-server-[0-9a-f]{7}$/);
    assert.deepEqual(first.inputs.__defaults, ["name"]);
    const again = await s.hcloud.check(ctx("mail-server"), SERVER, first.inputs, { serverType: "cx33" });
    assert.equal(again.inputs.name, first.inputs.name);
  });

  test("preview create: unknown id and computed attributes, the inputs known", async () => {
    const s = setup();
    const { id, outputs } = await s.hcloud.create(ctx("server", true), SERVER, {
      name: "mail",
      serverType: "cx23",
      image: "debian-12",
      location: "fsn1",
    });
    assert.equal(id, Unknown);
    assert.deepEqual(
      [outputs.ipv4Address, outputs.ipv6Address, outputs.status, outputs.primaryDiskSize],
      [Unknown, Unknown, Unknown, Unknown],
    );
    assert.deepEqual([outputs.serverType, outputs.image, outputs.location], ["cx23", "debian-12", "fsn1"]);
    assert.equal(s.world.servers.size, 0);
  });

  test("a changed server type powers off, changes type and runs again; after a disk upgrade no smaller type", async () => {
    const events: string[] = [];
    const s = setup({
      backend: {
        serverPoweredOff: async (m, how) => void events.push(`off:${how}:${m.serverType}`),
        serverTypeChanged: async (m, from) => void events.push(`type:${from}->${m.serverType}`),
        serverPoweredOn: async (m) => void events.push(`on:${m.serverType}`),
      },
    });
    const { server } = await mailHost(s);
    const bigger = { ...server.inputs, serverType: "cx33" };
    const up = await s.hcloud.update(ctx("server"), SERVER, server.id, server.inputs, server.outputs, bigger, []);
    assert.deepEqual(events, ["off:poweroff:cx23", "type:cx23->cx33", "on:cx33"]);
    assert.deepEqual([up.outputs.serverType, up.outputs.primaryDiskSize, up.outputs.status], ["cx33", 80, "running"]);
    await rejectsWith(
      s.hcloud.update(ctx("server"), SERVER, server.id, bigger, up.outputs, { ...bigger, serverType: "cx23" }, []),
      /cannot migrate to a server type with a smaller disk .*\(invalid_server_type, /,
    );
  });

  test("with keepDisk the disk stays, so the type can go back down", async () => {
    const s = setup();
    const { server } = await mailHost(s);
    const bigger = { ...server.inputs, serverType: "cx33", keepDisk: true };
    const up = await s.hcloud.update(ctx("server"), SERVER, server.id, server.inputs, server.outputs, bigger, []);
    assert.equal(up.outputs.primaryDiskSize, 40);
    const down = await s.hcloud.update(ctx("server"), SERVER, server.id, bigger, up.outputs, { ...bigger, serverType: "cx23" }, []);
    assert.equal(down.outputs.serverType, "cx23");
  });

  test("a publicNets change powers the server off, swaps the IPv4 and powers it on", async () => {
    const s = setup();
    const { server, v4, v6 } = await mailHost(s);
    const newV4 = await s.create(PRIMARY_IP, "ipv4b", { type: "ipv4", location: "fsn1" });
    const news = { ...server.inputs, publicNets: [{ ipv4Enabled: true, ipv4: Number(newV4.id), ipv6Enabled: true, ipv6: Number(v6.id) }] };
    const from = s.world.actions.length;
    await s.hcloud.update(ctx("server"), SERVER, server.id, server.inputs, server.outputs, news, []);
    assert.deepEqual(
      s.world.actions.slice(from).map((a) => `${a.command} ${a.resource}`),
      [
        `stop_server server/${server.id}`,
        `unassign_primary_ip primary_ip/${v4.id}`,
        `assign_primary_ip primary_ip/${newV4.id}`,
        `start_server server/${server.id}`,
      ],
    );
    assert.equal(s.world.getPrimaryIp(Number(v4.id))!.assigneeId, undefined);
    assert.equal(s.world.servers.get(Number(server.id))!.status, "running");
  });

  test("leaving publicNets out of the program is no change (TF suppresses the diff while the block is absent)", async () => {
    const s = setup();
    const { server } = await mailHost(s);
    const news = { ...server.inputs };
    delete news.publicNets;
    const diff = await s.hcloud.diff(ctx("server"), SERVER, server.id, server.inputs, server.outputs, news, []);
    assert.equal(diff.changes, "none");
  });

  test("switching to an IPv4-less public net unassigns and DELETES the server's IPv4 when the old block did not name it", async () => {
    const s = setup();
    const bare = await s.create(SERVER, "bare", {
      serverType: "cx23",
      image: "debian-12",
      location: "fsn1",
      publicNets: [{ ipv4Enabled: true, ipv6Enabled: true }],
    });
    const v4 = s.world.servers.get(Number(bare.id))!.ipv4Id!;
    const news = { ...bare.inputs, publicNets: [{ ipv4Enabled: false, ipv6Enabled: true }] };
    await s.hcloud.update(ctx("bare"), SERVER, bare.id, bare.inputs, bare.outputs, news, []);
    assert.equal(s.world.getPrimaryIp(v4), undefined);
    assert.equal(s.world.servers.get(Number(bare.id))!.ipv4Id, undefined);
    assert.equal(s.world.servers.get(Number(bare.id))!.status, "running");
  });

  test("the backend hears of a new server with its addresses and user data before the create returns", async () => {
    const seen: MachineView[] = [];
    const s = setup({
      backend: {
        serverCreated: async (m) => {
          await new Promise((r) => setTimeout(r, 20));
          seen.push(m);
        },
      },
    });
    const { server, v4, v6 } = await mailHost(s);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].id, Number(server.id));
    assert.equal(seen[0].ipv4, reveal(v4.outputs.ipAddress));
    assert.equal(seen[0].ipv6Network, reveal(v6.outputs.ipAddress));
    assert.equal(seen[0].ipv6, `${reveal(v6.outputs.ipAddress)}1`);
    assert.equal(seen[0].userData, "#cloud-config\n");
    assert.deepEqual(seen[0].sshKeys, [DEPLOYER]);
  });

  test("deleting the server shuts it down first, detaches its volume and frees its primary IPs", async () => {
    const events: string[] = [];
    const s = setup({
      backend: {
        serverPoweredOff: async (_m, how) => void events.push(how),
        volumeAttached: async (v) => void events.push(`attach ${v.id}`),
        volumeDetached: async (v) => void events.push(`detach ${v.id}`),
        serverDeleted: async (m) => void events.push(`deleted ${m.id}`),
      },
    });
    const { server, volume, v4 } = await mailHost(s);
    await s.create(VOLUME_ATTACHMENT, "attach", { volumeId: Number(volume.id), serverId: Number(server.id), automount: false });
    await s.hcloud.delete(ctx("server"), SERVER, server.id, server.inputs, server.outputs);
    assert.deepEqual(events, [`attach ${volume.id}`, "shutdown", `detach ${volume.id}`, `deleted ${server.id}`]);
    assert.equal(s.world.getPrimaryIp(Number(v4.id))!.assigneeId, undefined);
    assert.equal(s.world.getVolume(Number(volume.id))!.serverId, undefined);
  });
});

describe("hcloud stand-in: primary IPs", () => {
  test("deleting an IP a server still holds fails must_be_unassigned (the state says unassigned, so no unassign is tried)", async () => {
    const s = setup();
    const { v4 } = await mailHost(s);
    assert.equal(v4.outputs.assigneeId, 0);
    await rejectsWith(
      s.hcloud.delete(ctx("ipv4"), PRIMARY_IP, v4.id, v4.inputs, v4.outputs),
      /Error when IP is still assigned to a Resource \(must_be_unassigned, [0-9a-f]+\)/,
    );
    assert.ok(s.world.getPrimaryIp(Number(v4.id)));
  });

  test("with the server in the state's assignee: power off, unassign, power on, then delete", async () => {
    const s = setup();
    const { v4, server } = await mailHost(s);
    const refreshed = await s.hcloud.read(ctx("ipv4"), PRIMARY_IP, v4.id, v4.inputs, v4.outputs);
    assert.equal(refreshed!.outputs.assigneeId, Number(server.id));
    const from = s.world.actions.length;
    await s.hcloud.delete(ctx("ipv4"), PRIMARY_IP, v4.id, v4.inputs, refreshed!.outputs);
    assert.deepEqual(
      s.world.actions.slice(from).map((a) => a.command),
      ["stop_server", "unassign_primary_ip", "start_server", "delete_primary_ip"],
    );
  });

  test("an ipv6 primary IP's ipAddress is the /64 network address; a free IP reads assigneeType unassigned after 2026-08-01", async () => {
    const s = setup();
    const v6 = await s.create(PRIMARY_IP, "ipv6", { type: "ipv6", location: "fsn1" });
    assert.match(String(v6.outputs.ipAddress), /::$/);
    assert.equal(v6.outputs.ipNetwork, `${v6.outputs.ipAddress}/64`);
    assert.equal(v6.outputs.assigneeType, "unassigned");
  });

  test("check demands exactly one of location and assigneeId", async () => {
    const { hcloud } = setup();
    const { failures } = await hcloud.check(ctx("ip"), PRIMARY_IP, undefined, { type: "ipv4" });
    assert.deepEqual(failures, [{ property: "", reason: "Exactly one of these attributes must be configured: [location,assignee_id]" }]);
  });

  test("import takes an integer id only; the imported inputs carry what Read found", async () => {
    const s = setup();
    const ip = await s.create(PRIMARY_IP, "ipv4", { type: "ipv4", location: "fsn1" });
    await rejectsWith(
      s.hcloud.read(ctx("ipv4"), PRIMARY_IP, "ipv4-address"),
      /^Invalid import ID: Expected import identifier with format: \$PRIMARY_IP_ID\. Got: ipv4-address$/,
    );
    const imported = await s.hcloud.read(ctx("ipv4"), PRIMARY_IP, ip.id);
    assert.deepEqual(imported!.inputs, {
      name: ip.inputs.name,
      type: "ipv4",
      location: "fsn1",
      assigneeType: "unassigned",
      __defaults: [],
    });
    assert.equal(imported!.outputs.ipAddress, ip.outputs.ipAddress);
  });
});

describe("hcloud stand-in: reverse DNS", () => {
  async function ptrs(options: HcloudWorldOptions = {}) {
    const s = setup(options);
    const host = await mailHost(s);
    const v4ip = String(host.v4.outputs.ipAddress);
    const v6ip = `${host.v6.outputs.ipAddress}1`;
    const p4 = await s.create(RDNS, "ptr4", { primaryIpId: Number(host.v4.id), ipAddress: v4ip, dnsPtr: "mail.example.org" });
    const p6 = await s.create(RDNS, "ptr6", { primaryIpId: Number(host.v6.id), ipAddress: v6ip, dnsPtr: "mail.example.org" });
    return { s, host, v4ip, v6ip, p4, p6 };
  }

  test("ids are p-<primary ip id>-<canonical ip>", async () => {
    const { host, v4ip, v6ip, p4, p6 } = await ptrs();
    assert.equal(p4.id, `p-${host.v4.id}-${v4ip}`);
    assert.equal(p6.id, `p-${host.v6.id}-${v6ip}`);
  });

  test("deleting an IPv4 PTR resets it to Hetzner's default name; an IPv6 one disappears", async () => {
    const changes: [string, string | undefined][] = [];
    const { s, host, v4ip, v6ip, p4, p6 } = await ptrs({ backend: { ptrChanged: async (ip, ptr) => void changes.push([ip, ptr]) } });
    assert.equal(s.world.getPrimaryIp(Number(host.v4.id))!.dnsPtr.get(v4ip), "mail.example.org");
    await s.hcloud.delete(ctx("ptr4"), RDNS, p4.id, p4.inputs, p4.outputs);
    await s.hcloud.delete(ctx("ptr6"), RDNS, p6.id, p6.inputs, p6.outputs);
    const reversed = v4ip.split(".").reverse().join(".");
    assert.equal(s.world.getPrimaryIp(Number(host.v4.id))!.dnsPtr.get(v4ip), `static.${reversed}.clients.your-server.de`);
    assert.equal(s.world.getPrimaryIp(Number(host.v6.id))!.dnsPtr.has(v6ip), false);
    assert.deepEqual(changes.slice(-2), [
      [v4ip, `static.${reversed}.clients.your-server.de`],
      [v6ip, undefined],
    ]);
    assert.equal(await s.hcloud.read(ctx("ptr6"), RDNS, p6.id, p6.inputs, p6.outputs), undefined);
  });

  test("a PTR for an address outside the primary IP (or its /64) is forbidden", async () => {
    const s = setup();
    const host = await mailHost(s);
    await rejectsWith(
      s.create(RDNS, "wrong", { primaryIpId: Number(host.v4.id), ipAddress: "198.51.100.9", dnsPtr: "mail.example.org" }),
      /\(forbidden, [0-9a-f]+\)/,
    );
    const net = String(host.v6.outputs.ipAddress);
    const inside = await s.create(RDNS, "inside", {
      primaryIpId: Number(host.v6.id),
      ipAddress: `${net}beef`,
      dnsPtr: "other.example.org",
    });
    assert.equal(inside.id, `p-${host.v6.id}-${net}beef`);
    await rejectsWith(
      s.create(RDNS, "outside", { primaryIpId: Number(host.v6.id), ipAddress: "2001:db8:ffff::1", dnsPtr: "x.example.org" }),
      /forbidden/,
    );
  });

  test("the PTR updates in place; the address or the parent replaces", async () => {
    const { s, p4 } = await ptrs();
    const ptr = await s.hcloud.diff(ctx("ptr4"), RDNS, p4.id, p4.inputs, p4.outputs, { ...p4.inputs, dnsPtr: "mx.example.org" }, []);
    assert.deepEqual([ptr.changedKeys, ptr.replaceKeys], [["dnsPtr"], []]);
    const parent = await s.hcloud.diff(ctx("ptr4"), RDNS, p4.id, p4.inputs, p4.outputs, { ...p4.inputs, primaryIpId: 1 }, []);
    assert.deepEqual(parent.replaceKeys, ["primaryIpId"]);
  });
});

describe("hcloud stand-in: volumes", () => {
  test("a second attachment of an attached volume fails volume_already_attached", async () => {
    const s = setup();
    const { volume, server } = await mailHost(s);
    await s.create(VOLUME_ATTACHMENT, "a", { volumeId: Number(volume.id), serverId: Number(server.id) });
    await rejectsWith(
      s.create(VOLUME_ATTACHMENT, "b", { volumeId: Number(volume.id), serverId: Number(server.id) }),
      /^Volume is already attached to a server, detach first \(volume_already_attached, [0-9a-f]+\)$/,
    );
  });

  test("a volume grows in place and never shrinks", async () => {
    const s = setup();
    const { volume } = await mailHost(s);
    const grown = await s.hcloud.update(ctx("data"), VOLUME, volume.id, volume.inputs, volume.outputs, { ...volume.inputs, size: 20 }, []);
    assert.equal(grown.outputs.size, 20);
    await rejectsWith(
      s.hcloud.update(ctx("data"), VOLUME, volume.id, { ...volume.inputs, size: 20 }, grown.outputs, { ...volume.inputs, size: 15 }, []),
      /downsizing a Volume is not possible \(invalid_input, [0-9a-f]+\): \[size => /,
    );
  });

  test("a VolumeAttachment has no update: an automount-only change fails", async () => {
    const s = setup();
    const { volume, server } = await mailHost(s);
    const a = await s.create(VOLUME_ATTACHMENT, "a", { volumeId: Number(volume.id), serverId: Number(server.id), automount: false });
    const diff = await s.hcloud.diff(ctx("a"), VOLUME_ATTACHMENT, a.id, a.inputs, a.outputs, { ...a.inputs, automount: true }, []);
    assert.deepEqual([diff.changedKeys, diff.replaceKeys], [["automount"], []]);
    await rejectsWith(
      s.hcloud.update(ctx("a"), VOLUME_ATTACHMENT, a.id, a.inputs, a.outputs, { ...a.inputs, automount: true }, []),
      /^doesn't support update/,
    );
  });

  test("a volume is created only where it is asked for, and a location change replaces it", async () => {
    const s = setup();
    const { volume } = await mailHost(s);
    assert.equal(volume.outputs.linuxDevice, `/dev/disk/by-id/scsi-0HC_Volume_${volume.id}`);
    const moved = await s.hcloud.diff(
      ctx("data"),
      VOLUME,
      volume.id,
      volume.inputs,
      volume.outputs,
      { ...volume.inputs, location: "nbg1" },
      [],
    );
    assert.deepEqual(moved.replaceKeys, ["location"]);
  });
});

describe("hcloud stand-in: firewalls and SSH keys", () => {
  test("rules compare as a set, and a firewall in use is removed from its servers before it is deleted", async () => {
    const s = setup();
    const { firewall, server } = await mailHost(s);
    const twoRules = {
      ...firewall.inputs,
      rules: [
        { direction: "in", protocol: "tcp", port: "25", sourceIps: ["0.0.0.0/0", "::/0"] },
        { direction: "in", protocol: "icmp", sourceIps: ["0.0.0.0/0"] },
      ],
    };
    await s.hcloud.update(ctx("firewall"), FIREWALL, firewall.id, firewall.inputs, firewall.outputs, twoRules, []);
    const state = (await s.hcloud.read(ctx("firewall"), FIREWALL, firewall.id, twoRules, firewall.outputs))!.outputs;
    const shuffled = { ...twoRules, rules: [{ ...twoRules.rules[1] }, { ...twoRules.rules[0], sourceIps: ["::/0", "0.0.0.0/0"] }] };
    assert.equal((await s.hcloud.diff(ctx("firewall"), FIREWALL, firewall.id, twoRules, state, shuffled, [])).changes, "none");
    const opened = { ...twoRules, rules: [...twoRules.rules, { direction: "in", protocol: "tcp", port: "22", sourceIps: ["0.0.0.0/0"] }] };
    assert.deepEqual((await s.hcloud.diff(ctx("firewall"), FIREWALL, firewall.id, twoRules, state, opened, [])).changedKeys, ["rules"]);
    await s.hcloud.delete(ctx("firewall"), FIREWALL, firewall.id, firewall.inputs, firewall.outputs);
    assert.deepEqual(s.world.servers.get(Number(server.id))!.firewallIds, []);
    assert.equal(s.world.getFirewall(Number(firewall.id)), undefined);
  });

  test("a second key with the same public key is refused; a new public key replaces the resource", async () => {
    const s = setup();
    const key = await s.create(SSH_KEY, "deployer", { publicKey: DEPLOYER });
    await rejectsWith(
      s.create(SSH_KEY, "again", { publicKey: DEPLOYER }),
      /^API request failed: .*\n\nSSH key with the same fingerprint already exists .*\(uniqueness_error, /s,
    );
    const diff = await s.hcloud.diff(
      ctx("deployer"),
      SSH_KEY,
      key.id,
      key.inputs,
      key.outputs,
      { ...key.inputs, publicKey: DEPLOYER.replace("AAAAC", "AAAAD") },
      [],
    );
    assert.deepEqual(diff.replaceKeys, ["publicKey"]);
  });
});

describe("hcloud stand-in: import of a server", () => {
  test("Read does not return userData, sshKeys or publicNets, so the program's values replace the imported server", async () => {
    const s = setup();
    const { server, serverInputs } = await mailHost(s);
    const imported = await s.hcloud.read(ctx("server"), SERVER, server.id);
    assert.deepEqual(Object.keys(imported!.inputs!).sort(), ["__defaults", "firewallIds", "image", "location", "name", "serverType"]);
    const program = { ...serverInputs, name: server.inputs.name, __defaults: [] };
    const diff = await s.hcloud.diff(ctx("server"), SERVER, imported!.id, imported!.inputs!, imported!.outputs, program, []);
    assert.deepEqual(diff.replaceKeys.sort(), ["sshKeys", "userData"]);
    assert.ok(diff.changedKeys.includes("publicNets"));
  });
});

describe("hcloud stand-in: auto-deleted IPs, assignments and imports", () => {
  test("a server without primary IPs gets auto-deleted ones that go with it; autoDelete false IPs stay", async () => {
    const s = setup();
    const bare = await s.create(SERVER, "bare", { serverType: "cx23", image: "debian-12", location: "fsn1" });
    const own = [...s.world.primaryIps.values()].filter((ip) => ip.assigneeId === Number(bare.id));
    assert.deepEqual(
      own.map((ip) => [ip.type, ip.autoDelete]),
      [
        ["ipv4", true],
        ["ipv6", true],
      ],
    );
    const host = await mailHost(s);
    await s.hcloud.delete(ctx("bare"), SERVER, bare.id, bare.inputs, bare.outputs);
    await s.hcloud.delete(ctx("server"), SERVER, host.server.id, host.server.inputs, host.server.outputs);
    assert.deepEqual([...s.world.primaryIps.keys()].sort(), [Number(host.v4.id), Number(host.v6.id)].sort());
  });

  test("assigning a primary IP to a running server fails server_not_stopped (the PrimaryIp update does not power off)", async () => {
    const s = setup();
    const bare = await s.create(SERVER, "bare", {
      serverType: "cx23",
      image: "debian-12",
      location: "fsn1",
      publicNets: [{ ipv4Enabled: false, ipv6Enabled: true }],
    });
    const ip = await s.create(PRIMARY_IP, "ip", { type: "ipv4", location: "fsn1" });
    const news = { ...ip.inputs, location: undefined, assigneeId: Number(bare.id), assigneeType: "server" };
    await rejectsWith(
      s.hcloud.update(ctx("ip"), PRIMARY_IP, ip.id, ip.inputs, ip.outputs, news, []),
      /The Server is running, but needs to be powered off \(server_not_stopped, /,
    );
  });

  test("Volume, VolumeAttachment, Firewall, SshKey and Rdns import by their documented ids", async () => {
    const s = setup();
    const host = await mailHost(s);
    await s.create(VOLUME_ATTACHMENT, "a", { volumeId: Number(host.volume.id), serverId: Number(host.server.id) });
    const ptr = await s.create(RDNS, "ptr", {
      primaryIpId: Number(host.v4.id),
      ipAddress: String(host.v4.outputs.ipAddress),
      dnsPtr: "mail.example.org",
    });
    const volume = await s.hcloud.read(ctx("v"), VOLUME, host.volume.id);
    assert.deepEqual([volume!.outputs.size, volume!.outputs.serverId, volume!.inputs!.format], [10, Number(host.server.id), undefined]);
    const attachment = await s.hcloud.read(ctx("a"), VOLUME_ATTACHMENT, host.volume.id);
    assert.deepEqual([attachment!.outputs.volumeId, attachment!.outputs.serverId], [Number(host.volume.id), Number(host.server.id)]);
    const firewall = await s.hcloud.read(ctx("f"), FIREWALL, host.firewall.id);
    assert.deepEqual(firewall!.outputs.applyTos, [{ server: Number(host.server.id) }]);
    const key = await s.hcloud.read(ctx("k"), SSH_KEY, host.key.id);
    assert.equal(key!.inputs!.publicKey, DEPLOYER);
    const rdns = await s.hcloud.read(ctx("ptr"), RDNS, ptr.id);
    assert.deepEqual(rdns!.inputs, {
      primaryIpId: Number(host.v4.id),
      ipAddress: host.v4.outputs.ipAddress,
      dnsPtr: "mail.example.org",
      __defaults: [],
    });
    await rejectsWith(s.hcloud.read(ctx("v"), VOLUME, "data"), /Expected import identifier with format: \$VOLUME_ID/);
  });
});

describe("hcloud stand-in: an unchanged program", () => {
  test("every MailHost resource, checked again with its old inputs, diffs to nothing", async () => {
    const s = setup();
    const host = await mailHost(s);
    const attachment = await s.create(VOLUME_ATTACHMENT, "a", {
      volumeId: Number(host.volume.id),
      serverId: Number(host.server.id),
      automount: false,
    });
    const ptr = await s.create(RDNS, "ptr", {
      primaryIpId: Number(host.v4.id),
      ipAddress: String(host.v4.outputs.ipAddress),
      dnsPtr: "mail.example.org",
    });
    const program: [string, string, { id: string; inputs: PropertyMap; outputs: PropertyMap }, PropertyMap][] = [
      [SSH_KEY, "deployer", host.key, { publicKey: DEPLOYER }],
      [PRIMARY_IP, "ipv4", host.v4, { type: "ipv4", location: "fsn1", autoDelete: false }],
      [VOLUME, "data", host.volume, { size: 10, location: "fsn1", format: "ext4", automount: false }],
      [
        FIREWALL,
        "firewall",
        host.firewall,
        { rules: [{ direction: "in", protocol: "tcp", port: "25", sourceIps: ["0.0.0.0/0", "::/0"] }] },
      ],
      [SERVER, "server", host.server, host.serverInputs],
      [VOLUME_ATTACHMENT, "a", attachment, { volumeId: Number(host.volume.id), serverId: Number(host.server.id), automount: false }],
      [RDNS, "ptr", ptr, { primaryIpId: Number(host.v4.id), ipAddress: String(host.v4.outputs.ipAddress), dnsPtr: "mail.example.org" }],
    ];
    for (const [type, name, state, inputs] of program) {
      const checked = await s.hcloud.check(ctx(name), type, state.inputs, inputs);
      const diff = await s.hcloud.diff(ctx(name), type, state.id, state.inputs, state.outputs, checked.inputs, []);
      assert.deepEqual([type, diff.changes, diff.changedKeys], [type, "none", []]);
    }
  });
});

describe("hcloud stand-in: Storage Box", () => {
  const password = "Corr3ct-Horse-Battery";

  test("import by id sets sshKeys to [] and reads no password; location and sshKeys replace", async () => {
    const s = setup();
    const box = await s.create(STORAGE_BOX, "backup", {
      storageBoxType: "bx11",
      location: "hel1",
      password: new Secret(password),
      sshKeys: [DEPLOYER],
    });
    assert.ok(box.outputs.password instanceof Secret);
    const imported = await s.hcloud.read(ctx("backup"), STORAGE_BOX, box.id);
    assert.deepEqual(imported!.outputs.sshKeys, []);
    assert.equal("password" in imported!.inputs!, false);
    const program = { ...box.inputs };
    const diff = await s.hcloud.diff(ctx("backup"), STORAGE_BOX, box.id, imported!.inputs!, imported!.outputs, program, []);
    assert.deepEqual(diff.replaceKeys, ["sshKeys"]);
    assert.ok(diff.changedKeys.includes("password"));
    const moved = await s.hcloud.diff(ctx("backup"), STORAGE_BOX, box.id, box.inputs, box.outputs, { ...box.inputs, location: "fsn1" }, []);
    assert.deepEqual(moved.replaceKeys, ["location"]);
  });

  test("a weak password and a location without Storage Boxes are refused by the API", async () => {
    const s = setup();
    await rejectsWith(
      s.create(STORAGE_BOX, "weak", { storageBoxType: "bx11", location: "hel1", password: "short" }),
      /password does not meet the policy/,
    );
    await rejectsWith(s.create(STORAGE_BOX, "us", { storageBoxType: "bx11", location: "ash", password }), /not offered in ash/);
  });

  test("a subaccount's home directory has no leading slash; its import id is <box>/<subaccount>", async () => {
    const s = setup();
    const box = await s.create(STORAGE_BOX, "backup", { storageBoxType: "bx11", location: "hel1", password });
    const bad = await s.hcloud.check(ctx("sub"), STORAGE_BOX_SUBACCOUNT, undefined, {
      storageBoxId: Number(box.id),
      homeDirectory: "/mail",
      password,
    });
    assert.deepEqual(bad.failures, [{ property: "homeDirectory", reason: "Attribute home_directory must not include a leading slash" }]);
    const sub = await s.create(STORAGE_BOX_SUBACCOUNT, "sub", { storageBoxId: Number(box.id), homeDirectory: "mail", password });
    const imported = await s.hcloud.read(ctx("sub"), STORAGE_BOX_SUBACCOUNT, `${box.id}/${sub.id}`);
    assert.equal(imported!.outputs.homeDirectory, "mail");
    await rejectsWith(s.hcloud.read(ctx("sub"), STORAGE_BOX_SUBACCOUNT, "sub"), /\$STORAGE_BOX_ID\/\$SUBACCOUNT_ID/);
  });
});
