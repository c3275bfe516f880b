// Hetzner servers and volumes made real for the offline hcloud stand-in (HcloudWorld's
// MachineBackend, infra/offline/providers/hcloud-world.ts): each server is a Machine in the box
// namespace, whose addresses are the primary IPs; each volume an image on a loop device.
import * as path from "node:path";
import type { NetHost } from "../netns";
import type { MachineBackend, MachineView, VolumeView as HcloudVolumeView } from "../../offline/providers/hcloud-world";
import { Machine } from "./machine";
import { MachineVolume } from "./machine-volume";

/** The fields of HcloudWorld's MachineView this backend reads. */
export type ServerView = Pick<
  MachineView,
  "id" | "name" | "serverType" | "image" | "userData" | "sshKeys" | "status" | "ipv4" | "ipv6Network"
>;

/** The fields of HcloudWorld's VolumeView this backend reads. */
export type VolumeView = Pick<HcloudVolumeView, "id" | "size" | "linuxDevice" | "format">;

export interface MachineEvent {
  at: string;
  event: string;
  detail: string;
}

export interface NamespaceMachineBackendOptions {
  /** the namespace that holds the primary IPs (infra/demo/demo-network.ts `box`) */
  host: NetHost;
  /** the IPv6 /64 whose ::1 the namespace holds, as the primary IPv6 records it (`2001:db8:1:1::`) */
  ipv6Network: string;
  /** the resolver the servers' /etc/resolv.conf names */
  resolver: string;
  /** where server disks and volume images live */
  dir: string;
  /** images this computer's Debian can stand in for; another one is refused (default: debian-12) */
  images?: string[];
  /** reverse DNS set or reset through the API (HcloudWorld's ptrChanged): where the PTR records live */
  ptrChanged?: (ip: string, ptr: string | undefined) => Promise<void>;
}

export class NamespaceMachineBackend implements MachineBackend {
  private readonly machines = new Map<number, Machine>();
  private readonly volumes = new Map<number, MachineVolume>();
  /** what happened, in order (tests read it) */
  readonly events: MachineEvent[] = [];
  /** volumes detached while a file system of theirs was mounted: on a real server, a mistake */
  readonly detachedWhileMounted: { volumeId: number; serverId: number }[] = [];

  constructor(private readonly opts: NamespaceMachineBackendOptions) {}

  private note(event: string, detail: string): void {
    this.events.push({ at: new Date().toISOString(), event, detail });
  }

  machine(serverId: number): Machine | undefined {
    return this.machines.get(serverId);
  }

  volume(volumeId: number): MachineVolume | undefined {
    return this.volumes.get(volumeId);
  }

  /** The one machine that holds the namespace's addresses now, if any. */
  current(): Machine | undefined {
    return [...this.machines.values()].find((m) => m.running);
  }

  async serverCreated(server: ServerView): Promise<void> {
    const { host, ipv6Network } = this.opts;
    if (server.ipv4 !== host.ipv4 || (server.ipv6Network !== undefined && server.ipv6Network !== ipv6Network)) {
      throw new Error(
        `server ${server.name}: its primary IPs (${server.ipv4}, ${server.ipv6Network}) are not the box namespace's (${host.ipv4}, ${ipv6Network}); ` +
          `give the hcloud stand-in allocateIpv4/allocateIpv6Network that hand out these`,
      );
    }
    const images = this.opts.images ?? ["debian-12"];
    if (!images.includes(server.image)) {
      throw new Error(
        `server ${server.name}: image ${server.image} cannot be stood in for by this computer's system (it stands in for ${images.join(", ")})`,
      );
    }
    const holder = [...this.machines.entries()].find(([, m]) => m.running);
    if (holder) throw new Error(`server ${server.name}: the box namespace's addresses are in use by server ${holder[0]}, which still runs`);
    const machine = await Machine.create({
      host,
      name: server.name,
      instanceId: String(server.id),
      userData: server.userData,
      publicKeys: server.sshKeys,
      resolver: this.opts.resolver,
      dir: path.join(this.opts.dir, "servers", String(server.id)),
    });
    this.machines.set(server.id, machine);
    this.note("server-created", `${server.id} ${server.name} ${server.serverType} ${server.image} machine-id ${machine.machineId}`);
    if (server.status === "running") await machine.powerOn();
  }

  async serverDeleted(server: ServerView): Promise<void> {
    const machine = this.machines.get(server.id);
    if (!machine) return;
    const held = [...this.volumes.values()].filter((v) => v.machine === machine);
    await machine.destroy();
    for (const v of held) await v.forget();
    this.machines.delete(server.id);
    this.note("server-deleted", `${server.id} ${server.name}`);
  }

  async serverPoweredOff(server: ServerView, how: "poweroff" | "shutdown"): Promise<void> {
    const machine = this.mustMachine(server);
    if (how === "shutdown") await machine.shutdown();
    else await machine.powerOff();
    this.note(how === "shutdown" ? "server-shutdown" : "server-poweroff", `${server.id}`);
  }

  async serverPoweredOn(server: ServerView): Promise<void> {
    await this.mustMachine(server).powerOn();
    this.note("server-poweron", `${server.id}`);
  }

  async serverTypeChanged(server: ServerView, previousType: string): Promise<void> {
    this.note("server-type-changed", `${server.id} ${previousType} -> ${server.serverType}`);
  }

  async volumeAttached(volume: VolumeView, server: ServerView): Promise<void> {
    let v = this.volumes.get(volume.id);
    if (!v) {
      if (volume.format !== undefined && volume.format !== "ext4")
        throw new Error(`volume ${volume.id}: format ${volume.format} is not modeled (ext4)`);
      v = await MachineVolume.create({
        dir: path.join(this.opts.dir, "volumes"),
        id: String(volume.id),
        sizeGb: volume.size,
        format: volume.format as "ext4" | undefined,
      });
      this.volumes.set(volume.id, v);
    }
    if (`/dev/disk/by-id/${v.byId}` !== volume.linuxDevice) {
      throw new Error(`volume ${volume.id}: the API names it ${volume.linuxDevice}, the machine would show ${v.devicePath}`);
    }
    await v.attach(this.mustMachine(server));
    this.note("volume-attached", `${volume.id} -> ${server.id}`);
  }

  async volumeDetached(volume: VolumeView, server: ServerView): Promise<void> {
    const v = this.volumes.get(volume.id);
    if (!v || !v.machine) return;
    const { wasMounted } = await v.detach();
    if (wasMounted) this.detachedWhileMounted.push({ volumeId: volume.id, serverId: server.id });
    this.note("volume-detached", `${volume.id} <- ${server.id}${wasMounted ? " (was mounted)" : ""}`);
  }

  async ptrChanged(ip: string, ptr: string | undefined): Promise<void> {
    this.note("ptr", `${ip} ${ptr ?? "(none)"}`);
    await this.opts.ptrChanged?.(ip, ptr);
  }

  private mustMachine(server: ServerView): Machine {
    const m = this.machines.get(server.id);
    if (!m) throw new Error(`server ${server.id} (${server.name}) has no machine: serverCreated was not called for it`);
    return m;
  }

  /** Powers everything off and releases the loop devices (the test is over). */
  async close(): Promise<void> {
    for (const m of this.machines.values()) await m.destroy();
    for (const v of this.volumes.values()) if (v.machine) await v.forget();
    this.machines.clear();
  }
}
