// The Hetzner Cloud API as state and rules: servers, primary IPs, volumes, firewalls, SSH keys,
// reverse DNS, Storage Boxes and their subaccounts. Each method is one API call (or one action,
// which the real API runs asynchronously; here it has finished when the call returns, as it has
// when terraform-provider-hcloud's `Action.WaitFor` returns). The provider stand-in (hcloud.ts)
// makes the calls terraform-provider-hcloud makes, in its order.
//
// Facts and sources: /work/research/hetzner.md (sections cited beside each rule). Error codes are
// hcloud-go's (hcloud/error.go); messages marked UNCONFIRMED are the stand-in's wording.
import { createHash, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import {
  DATACENTERS,
  IMAGES,
  LOCATIONS,
  STORAGE_BOX_LOCATIONS,
  STORAGE_BOX_TYPES,
  orderableLocations,
  serverTypeByName,
  type ImageInfo,
  type Location,
  type ServerTypeInfo,
} from "./hcloud-catalogue";

/** An API error: hcloud-go formats it `<message> (<code>, <correlation id>)` (hcloud/error.go `Error.Error`). */
export class HcloudApiError extends Error {
  readonly correlationId = randomBytes(8).toString("hex");
  constructor(
    readonly code: string,
    readonly apiMessage: string,
    readonly status: number,
    /** invalid_input details: which field, and why */
    readonly fields: { name: string; messages: string[] }[] = [],
  ) {
    super("");
    this.message = `${apiMessage} (${code}, ${this.correlationId})`;
    this.name = "HcloudApiError";
  }
}

/** A server as a machine backend sees it. */
export interface MachineView {
  id: number;
  name: string;
  serverType: string;
  architecture: "x86" | "arm";
  image: string;
  location: string;
  datacenter: string;
  /** cloud-init user data as sent */
  userData: string;
  /** the public keys of the server's SSH keys (authorized for root at first boot) */
  sshKeys: string[];
  status: "running" | "off";
  /** the assigned primary IPv4, if any */
  ipv4?: string;
  /** the assigned primary IPv6 /64 network address (`2001:db8:1::`), if any */
  ipv6Network?: string;
  /** the server's own IPv6 address: the network plus `1` */
  ipv6?: string;
  volumes: VolumeView[];
  firewallIds: number[];
}

export interface VolumeView {
  id: number;
  name: string;
  size: number;
  /** `/dev/disk/by-id/scsi-0HC_Volume_<id>` */
  linuxDevice: string;
  format?: string;
}

/**
 * What makes the model real: a lifecycle test gives servers a machine (a network namespace) and
 * reverse DNS a zone. Every method is awaited by the API call that causes it, before the call
 * returns, as the real API's action completes before terraform-provider-hcloud moves on.
 */
export interface MachineBackend {
  /** after the server exists with its addresses, volumes (none yet) and firewalls; running unless created stopped */
  serverCreated?(server: MachineView): Promise<void>;
  /** the server is gone; its volumes were detached (volumeDetached came first) and its IPs unassigned */
  serverDeleted?(server: MachineView): Promise<void>;
  /** `poweroff` is a hard power cut; `shutdown` is an ACPI request to shut down */
  serverPoweredOff?(server: MachineView, how: "poweroff" | "shutdown"): Promise<void>;
  /** the server runs again, with its current addresses and type */
  serverPoweredOn?(server: MachineView): Promise<void>;
  /** the server (off) has a new type; it is started again afterwards (serverPoweredOn follows) */
  serverTypeChanged?(server: MachineView, previousType: string): Promise<void>;
  volumeAttached?(volume: VolumeView, server: MachineView): Promise<void>;
  volumeDetached?(volume: VolumeView, server: MachineView): Promise<void>;
  /** a PTR was set (`ptr`) or reset (`ptr` is Hetzner's default for IPv4, undefined for IPv6 or a deleted address) */
  ptrChanged?(ip: string, ptr: string | undefined): Promise<void>;
}

export interface HcloudWorldOptions {
  backend?: MachineBackend;
  /** the API's clock: deprecations and the 2026 API changes are judged by it; default: now */
  now?: () => Date;
  /** the IPv4 the next primary IP gets; default 203.0.113.2, .3, ... (RFC 5737 TEST-NET-3) */
  allocateIpv4?: (location: string) => string;
  /** the IPv6 /64 network address the next primary IP gets (`2001:db8:1::`); default 2001:db8:<n>:: */
  allocateIpv6Network?: (location: string) => string;
  /** type/location pairs that are listed but out of stock */
  soldOut?: { serverType: string; location: string }[];
}

export interface PublicNetOpts {
  enableIpv4: boolean;
  enableIpv6: boolean;
  ipv4?: number;
  ipv6?: number;
}

export interface ServerRecord {
  id: number;
  name: string;
  type: ServerTypeInfo;
  image: ImageInfo;
  location: Location;
  userData: string;
  sshKeyIds: number[];
  labels: Record<string, string>;
  status: "running" | "off";
  ipv4Id?: number;
  ipv6Id?: number;
  firewallIds: number[];
  deleteProtection: boolean;
  rebuildProtection: boolean;
  primaryDiskSize: number;
  backupWindow?: string;
  created: string;
}

export interface PrimaryIpRecord {
  id: number;
  name: string;
  type: "ipv4" | "ipv6";
  /** ipv4: the address; ipv6: the /64 network address (`2001:db8:1::`) */
  ip: string;
  location: Location;
  assigneeId?: number;
  autoDelete: boolean;
  deleteProtection: boolean;
  labels: Record<string, string>;
  /** reverse DNS by address (canonical text) */
  dnsPtr: Map<string, string>;
  created: string;
}

export interface VolumeRecord {
  id: number;
  name: string;
  size: number;
  location: Location;
  serverId?: number;
  format?: string;
  labels: Record<string, string>;
  deleteProtection: boolean;
  created: string;
}

export interface FirewallRule {
  direction: "in" | "out";
  protocol: "tcp" | "udp" | "icmp" | "esp" | "gre";
  port?: string;
  sourceIps: string[];
  destinationIps: string[];
  description?: string;
}

export interface FirewallRecord {
  id: number;
  name: string;
  rules: FirewallRule[];
  labels: Record<string, string>;
  created: string;
}

export interface SshKeyRecord {
  id: number;
  name: string;
  publicKey: string;
  fingerprint: string;
  labels: Record<string, string>;
  created: string;
}

export interface StorageBoxAccessSettings {
  reachableExternally: boolean;
  sambaEnabled: boolean;
  sshEnabled: boolean;
  webdavEnabled: boolean;
  zfsEnabled: boolean;
}

export interface SnapshotPlan {
  maxSnapshots: number;
  minute?: number;
  hour?: number;
  dayOfWeek?: number;
  dayOfMonth?: number;
}

export interface StorageBoxRecord {
  id: number;
  name: string;
  type: string;
  location: string;
  password: string;
  /** as sent at creation: the API cannot change them later */
  sshKeys: string[];
  accessSettings: StorageBoxAccessSettings;
  snapshotPlan?: SnapshotPlan;
  labels: Record<string, string>;
  deleteProtection: boolean;
  username: string;
  server: string;
  system: string;
  subaccounts: Map<number, SubaccountRecord>;
  created: string;
}

export interface SubaccountAccessSettings {
  reachableExternally: boolean;
  sambaEnabled: boolean;
  sshEnabled: boolean;
  webdavEnabled: boolean;
  readonly: boolean;
}

export interface SubaccountRecord {
  id: number;
  storageBoxId: number;
  name: string;
  username: string;
  homeDirectory: string;
  password: string;
  accessSettings: SubaccountAccessSettings;
  description: string;
  labels: Record<string, string>;
  server: string;
}

/** One action the API ran, in order: what tests assert ("the server was powered off before the assign"). */
export interface HcloudAction {
  command: string;
  resource: string;
}

/** RFC 1123 host name (OAS servers create: "must be unique per Project and a valid hostname as per RFC 1123"). */
const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export class HcloudWorld {
  readonly servers = new Map<number, ServerRecord>();
  readonly primaryIps = new Map<number, PrimaryIpRecord>();
  readonly volumes = new Map<number, VolumeRecord>();
  readonly firewalls = new Map<number, FirewallRecord>();
  readonly sshKeys = new Map<number, SshKeyRecord>();
  readonly storageBoxes = new Map<number, StorageBoxRecord>();
  readonly actions: HcloudAction[] = [];
  backend: MachineBackend;
  private readonly nextIds = {
    server: 10_000_001,
    primaryIp: 20_000_001,
    volume: 30_000_001,
    firewall: 40_000_001,
    sshKey: 50_000_001,
    storageBox: 600_001,
  };
  private nextV4 = 2;
  private nextV6 = 1;

  constructor(private readonly options: HcloudWorldOptions = {}) {
    this.backend = options.backend ?? {};
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private record(command: string, resource: string): void {
    this.actions.push({ command, resource });
  }

  // ---------------------------------------------------------------- servers

  /** POST /servers (OAS servers.py create; hetzner.md sec. 1, 3, 7). */
  async createServer(opts: {
    name: string;
    serverType: string;
    image: string;
    location?: string;
    userData?: string;
    sshKeys?: (number | string)[];
    labels?: Record<string, string>;
    firewalls?: number[];
    publicNet?: PublicNetOpts;
    startAfterCreate?: boolean;
  }): Promise<ServerRecord> {
    if (!HOSTNAME.test(opts.name)) {
      throw invalidInput("name", `invalid name: must be a valid hostname as per RFC 1123 (UNCONFIRMED wording), got "${opts.name}"`);
    }
    if ([...this.servers.values()].some((s) => s.name === opts.name)) {
      throw new HcloudApiError("uniqueness_error", "server name is already used", 409);
    }
    const type = serverTypeByName(opts.serverType);
    if (!type) throw invalidInput("server_type", `server type ${opts.serverType} not found`);
    const location = (opts.location ?? this.defaultLocationFor(type)) as Location;
    if (!(LOCATIONS as readonly string[]).includes(location)) throw invalidInput("location", `location ${location} not found`);
    // trellis-cli #622: a type not offered at the location -> invalid_input "unsupported location for
    // server type". invalid_input errors carry field details, which TF's SDKv2 resources append to the
    // message (error_sdk.go enrichInvalidInput); the detail's wording is the stand-in's (UNCONFIRMED),
    // naming the type, the location and where the type is sold.
    const orderable = orderableLocations(type, this.now());
    if (!type.locations[location] || !orderable.includes(location)) {
      const where = orderable.length > 0 ? `it is sold in ${orderable.join(", ")}` : "it is sold nowhere";
      throw new HcloudApiError("invalid_input", "unsupported location for server type", 422, [
        { name: "location", messages: [`server type ${type.name} is not available in ${location}; ${where}`] },
      ]);
    }
    if (this.options.soldOut?.some((s) => s.serverType === type.name && s.location === location)) {
      // TENT / algo #14562: sold out -> 412 resource_unavailable ("error during placement").
      throw new HcloudApiError("resource_unavailable", "error during placement", 412);
    }
    const img = this.imageFor(opts.image, type.architecture);
    if (!img) throw invalidInput("image", `image ${opts.image} not found`);
    const userData = opts.userData ?? "";
    // OAS servers create: user_data is "limited to 32KiB".
    if (Buffer.byteLength(userData) > 32 * 1024)
      throw invalidInput("user_data", "user_data is too long (limited to 32KiB) (UNCONFIRMED wording)");
    const sshKeyIds = (opts.sshKeys ?? []).map((k) => {
      const key = this.getSshKey(k);
      if (!key) throw new HcloudApiError("not_found", `SSH key not found: ${k} (UNCONFIRMED wording)`, 404);
      return key.id;
    });
    for (const f of opts.firewalls ?? []) {
      if (!this.firewalls.has(f))
        throw new HcloudApiError("firewall_resource_not_found", `firewall with ID ${f} not found (UNCONFIRMED wording)`, 404);
    }
    const net = opts.publicNet ?? { enableIpv4: true, enableIpv6: true };
    const claims: { family: "ipv4" | "ipv6"; ip: PrimaryIpRecord }[] = [];
    for (const family of ["ipv4", "ipv6"] as const) {
      const id = net[family];
      if (id === undefined) continue;
      const ip = this.primaryIps.get(id);
      // hetzner.md sec. 3: TF #1093 `primary_ip_not_found`; cli #1109 `primary_ip_assigned`
      // "primary ip already assigned to another server"; GO error.go datacenter/version mismatch.
      if (!ip) throw new HcloudApiError("primary_ip_not_found", "primary ip not found", 404);
      if (ip.assigneeId !== undefined)
        throw new HcloudApiError("primary_ip_assigned", "primary ip already assigned to another server", 422);
      if (ip.location !== location)
        throw new HcloudApiError("primary_ip_datacenter_mismatch", "primary ip is in a different datacenter (UNCONFIRMED wording)", 422);
      if (ip.type !== family)
        throw new HcloudApiError("primary_ip_version_mismatch", "primary ip has the wrong IP version (UNCONFIRMED wording)", 422);
      claims.push({ family, ip });
    }
    const server: ServerRecord = {
      id: this.nextIds.server++,
      name: opts.name,
      type,
      image: img,
      location,
      userData,
      sshKeyIds,
      labels: { ...(opts.labels ?? {}) },
      status: opts.startAfterCreate === false ? "off" : "running",
      firewallIds: [...(opts.firewalls ?? [])],
      deleteProtection: false,
      rebuildProtection: false,
      primaryDiskSize: type.diskGb,
      created: this.now().toISOString(),
    };
    for (const { family, ip } of claims) {
      ip.assigneeId = server.id;
      server[family === "ipv4" ? "ipv4Id" : "ipv6Id"] = ip.id;
    }
    // A family enabled without an id gets a new primary IP that dies with the server (API create: auto_delete true).
    for (const family of ["ipv4", "ipv6"] as const) {
      const enabled = family === "ipv4" ? net.enableIpv4 : net.enableIpv6;
      if (enabled && net[family] === undefined) {
        const ip = this.newPrimaryIp({ name: `primary_ip-${this.nextIds.primaryIp}`, type: family, location, autoDelete: true });
        ip.assigneeId = server.id;
        server[family === "ipv4" ? "ipv4Id" : "ipv6Id"] = ip.id;
      }
    }
    this.servers.set(server.id, server);
    this.record("create_server", `server/${server.id}`);
    await this.backend.serverCreated?.(this.machineView(server));
    return server;
  }

  private defaultLocationFor(type: ServerTypeInfo): string {
    return orderableLocations(type, this.now())[0] ?? "fsn1";
  }

  /** GET /images?name=&architecture= (TF resource.go L321-331 resolves the name per architecture). */
  imageFor(nameOrId: string, architecture: "x86" | "arm"): ImageInfo | undefined {
    return IMAGES.find((i) => (i.name === nameOrId || String(i.id) === nameOrId) && i.architecture === architecture);
  }

  /** GET /servers/{id}, or by name as hcloud-go's `Server.Get` does. */
  getServer(idOrName: number | string): ServerRecord | undefined {
    const id = Number(idOrName);
    if (Number.isInteger(id) && this.servers.has(id)) return this.servers.get(id);
    return [...this.servers.values()].find((s) => s.name === String(idOrName));
  }

  private mustServer(id: number): ServerRecord {
    const server = this.servers.get(id);
    if (!server) throw new HcloudApiError("not_found", `server with ID ${id} not found`, 404);
    return server;
  }

  /** POST /servers/{id}/actions/poweroff: a hard cut. */
  async poweroffServer(id: number): Promise<void> {
    const server = this.mustServer(id);
    this.record("stop_server", `server/${id}`);
    if (server.status === "off") return;
    server.status = "off";
    await this.backend.serverPoweredOff?.(this.machineView(server), "poweroff");
  }

  /** POST /servers/{id}/actions/shutdown: ACPI; the machine decides when it is off. */
  async shutdownServer(id: number): Promise<void> {
    const server = this.mustServer(id);
    this.record("shutdown_server", `server/${id}`);
    if (server.status === "off") return;
    server.status = "off";
    await this.backend.serverPoweredOff?.(this.machineView(server), "shutdown");
  }

  /** POST /servers/{id}/actions/poweron. A server without any network interface cannot start (OAS primary IP unassign). */
  async poweronServer(id: number): Promise<void> {
    const server = this.mustServer(id);
    this.record("start_server", `server/${id}`);
    if (server.status === "running") return;
    if (server.ipv4Id === undefined && server.ipv6Id === undefined) {
      throw new HcloudApiError(
        "invalid_input",
        "A Server requires at least one network interface (public or private) to be powered on",
        422,
      );
    }
    server.status = "running";
    await this.backend.serverPoweredOn?.(this.machineView(server));
  }

  /**
   * POST /servers/{id}/actions/change_type (OAS servers/actions change_type, hetzner.md sec. 7):
   * the server must be off; only types with the same storage type and an equal or bigger disk; once
   * the disk was upgraded no type with a smaller disk; the type must be offered where the server is.
   * The API copies the disk and starts the server again (UNCONFIRMED, partly truncated doc).
   */
  async changeServerType(id: number, serverType: string, upgradeDisk: boolean): Promise<void> {
    const server = this.mustServer(id);
    if (server.status !== "off") throw new HcloudApiError("server_not_stopped", "The Server is running, but needs to be powered off", 422);
    const target = serverTypeByName(serverType);
    if (!target) throw invalidInput("server_type", `server type ${serverType} not found`);
    if (target.architecture !== server.type.architecture) {
      throw new HcloudApiError(
        "invalid_server_type",
        `cannot change from ${server.type.architecture} to ${target.architecture} (UNCONFIRMED wording)`,
        422,
      );
    }
    if (!orderableLocations(target, this.now()).includes(server.location)) {
      throw new HcloudApiError(
        "invalid_server_type",
        `server type ${serverType} is not available in ${server.location} (UNCONFIRMED wording)`,
        422,
      );
    }
    if (target.diskGb < server.primaryDiskSize) {
      throw new HcloudApiError(
        "invalid_server_type",
        `cannot migrate to a server type with a smaller disk (${target.diskGb} GB < ${server.primaryDiskSize} GB): shrinking disks is not possible (UNCONFIRMED wording)`,
        422,
      );
    }
    const previous = server.type.name;
    server.type = target;
    if (upgradeDisk) server.primaryDiskSize = target.diskGb;
    this.record("change_server_type", `server/${id}`);
    await this.backend.serverTypeChanged?.(this.machineView(server), previous);
    server.status = "running";
    await this.backend.serverPoweredOn?.(this.machineView(server));
  }

  /** PUT /servers/{id}. */
  updateServer(id: number, opts: { name?: string; labels?: Record<string, string> }): ServerRecord {
    const server = this.mustServer(id);
    if (opts.name !== undefined) {
      if (!HOSTNAME.test(opts.name)) throw invalidInput("name", `invalid name (UNCONFIRMED wording): "${opts.name}"`);
      if ([...this.servers.values()].some((s) => s.id !== id && s.name === opts.name)) {
        throw new HcloudApiError("uniqueness_error", "server name is already used", 409);
      }
      server.name = opts.name;
    }
    if (opts.labels !== undefined) server.labels = { ...opts.labels };
    return server;
  }

  /** POST /servers/{id}/actions/change_protection. */
  changeServerProtection(id: number, protection: { delete: boolean; rebuild: boolean }): void {
    const server = this.mustServer(id);
    server.deleteProtection = protection.delete;
    server.rebuildProtection = protection.rebuild;
    this.record("change_protection", `server/${id}`);
  }

  /**
   * DELETE /servers/{id}: "detaches volumes, primary IPs, floating IPs, firewalls" (TENT); a primary
   * IP with auto_delete goes with the server (hetzner.md sec. 3); a protected server is refused.
   */
  async deleteServer(id: number): Promise<void> {
    const server = this.mustServer(id);
    if (server.deleteProtection) throw new HcloudApiError("protected", "server is delete protected (UNCONFIRMED wording)", 423);
    const view = this.machineView(server);
    for (const volume of this.volumes.values()) {
      if (volume.serverId !== id) continue;
      volume.serverId = undefined;
      await this.backend.volumeDetached?.(volumeView(volume), view);
    }
    for (const ipId of [server.ipv4Id, server.ipv6Id]) {
      if (ipId === undefined) continue;
      const ip = this.primaryIps.get(ipId)!;
      ip.assigneeId = undefined;
      if (ip.autoDelete) await this.dropPrimaryIp(ip);
    }
    this.servers.delete(id);
    this.record("delete_server", `server/${id}`);
    await this.backend.serverDeleted?.(view);
  }

  machineView(server: ServerRecord): MachineView {
    const v4 = server.ipv4Id !== undefined ? this.primaryIps.get(server.ipv4Id) : undefined;
    const v6 = server.ipv6Id !== undefined ? this.primaryIps.get(server.ipv6Id) : undefined;
    return {
      id: server.id,
      name: server.name,
      serverType: server.type.name,
      architecture: server.type.architecture,
      image: server.image.name,
      location: server.location,
      datacenter: DATACENTERS[server.location],
      userData: server.userData,
      sshKeys: server.sshKeyIds.map((k) => this.sshKeys.get(k)?.publicKey ?? "").filter(Boolean),
      status: server.status,
      ...(v4 ? { ipv4: v4.ip } : {}),
      ...(v6 ? { ipv6Network: v6.ip, ipv6: `${v6.ip}1` } : {}),
      volumes: [...this.volumes.values()].filter((v) => v.serverId === server.id).map(volumeView),
      firewallIds: [...server.firewallIds],
    };
  }

  // ---------------------------------------------------------------- primary IPs

  private newPrimaryIp(opts: {
    name: string;
    type: "ipv4" | "ipv6";
    location: Location;
    autoDelete: boolean;
    labels?: Record<string, string>;
  }): PrimaryIpRecord {
    const ip =
      opts.type === "ipv4"
        ? (this.options.allocateIpv4?.(opts.location) ?? `203.0.113.${this.nextV4++}`)
        : canonicalIp(this.options.allocateIpv6Network?.(opts.location) ?? `2001:db8:${(this.nextV6++).toString(16)}::`);
    const record: PrimaryIpRecord = {
      id: this.nextIds.primaryIp++,
      name: opts.name,
      type: opts.type,
      ip,
      location: opts.location,
      autoDelete: opts.autoDelete,
      deleteProtection: false,
      labels: { ...(opts.labels ?? {}) },
      // docs.hetzner.com/networking/dns/record-types/ptr-record: an IPv4 points at
      // `static.<reversed ip>.clients.your-server.de` until changed; an IPv6 /64 has no entries.
      dnsPtr: new Map(opts.type === "ipv4" ? [[ip, defaultPtr(ip)]] : []),
      created: this.now().toISOString(),
    };
    this.primaryIps.set(record.id, record);
    return record;
  }

  /** POST /primary_ips (GLAMA create_primary_ip; hetzner.md sec. 3). */
  async createPrimaryIp(opts: {
    name: string;
    type: "ipv4" | "ipv6";
    location?: string;
    assigneeId?: number;
    autoDelete?: boolean;
    labels?: Record<string, string>;
  }): Promise<PrimaryIpRecord> {
    if (opts.type !== "ipv4" && opts.type !== "ipv6") throw invalidInput("type", `type must be ipv4 or ipv6, got "${opts.type}"`);
    if ([...this.primaryIps.values()].some((p) => p.name === opts.name))
      throw new HcloudApiError("uniqueness_error", "name is already used (UNCONFIRMED wording)", 409);
    let location = opts.location as Location | undefined;
    let server: ServerRecord | undefined;
    if (opts.assigneeId !== undefined) {
      server = this.mustServer(opts.assigneeId);
      location = server.location;
      if (server.status !== "off")
        throw new HcloudApiError("server_not_stopped", "The Server is running, but needs to be powered off", 422);
      if ((opts.type === "ipv4" ? server.ipv4Id : server.ipv6Id) !== undefined) {
        throw new HcloudApiError(
          opts.type === "ipv4" ? "server_has_ipv4" : "server_has_ipv6",
          `The Server already has an ${opts.type} address`,
          422,
        );
      }
    }
    if (!location || !(LOCATIONS as readonly string[]).includes(location))
      throw invalidInput("location", `location ${location ?? "(none)"} not found`);
    const ip = this.newPrimaryIp({ name: opts.name, type: opts.type, location, autoDelete: opts.autoDelete ?? false, labels: opts.labels });
    if (server) {
      ip.assigneeId = server.id;
      server[opts.type === "ipv4" ? "ipv4Id" : "ipv6Id"] = ip.id;
    }
    this.record("create_primary_ip", `primary_ip/${ip.id}`);
    return ip;
  }

  getPrimaryIp(id: number): PrimaryIpRecord | undefined {
    return this.primaryIps.get(id);
  }

  private mustPrimaryIp(id: number): PrimaryIpRecord {
    const ip = this.primaryIps.get(id);
    if (!ip) throw new HcloudApiError("not_found", `primary ip with ID ${id} not found`, 404);
    return ip;
  }

  /**
   * POST /primary_ips/{id}/actions/assign (GLAMA assign_action): the server must be off, may hold one
   * IP per family, and the IP must be free and in the server's location.
   */
  async assignPrimaryIp(id: number, serverId: number): Promise<void> {
    const ip = this.mustPrimaryIp(id);
    const server = this.mustServer(serverId);
    if (ip.assigneeId !== undefined && ip.assigneeId !== serverId) {
      throw new HcloudApiError("primary_ip_already_assigned", "Primary IP is already assigned to a different Server", 422);
    }
    if (server.status !== "off") throw new HcloudApiError("server_not_stopped", "The Server is running, but needs to be powered off", 422);
    const slot = ip.type === "ipv4" ? "ipv4Id" : "ipv6Id";
    if (server[slot] !== undefined && server[slot] !== id) {
      throw new HcloudApiError(
        ip.type === "ipv4" ? "server_has_ipv4" : "server_has_ipv6",
        `The Server already has an ${ip.type} address`,
        422,
      );
    }
    if (ip.location !== server.location) {
      throw new HcloudApiError("primary_ip_datacenter_mismatch", "A Primary IP can only be assigned to resource in the same Location", 422);
    }
    ip.assigneeId = serverId;
    server[slot] = id;
    this.record("assign_primary_ip", `primary_ip/${id}`);
  }

  /** POST /primary_ips/{id}/actions/unassign (GLAMA unassign_action): the server must be off. */
  async unassignPrimaryIp(id: number): Promise<void> {
    const ip = this.mustPrimaryIp(id);
    if (ip.assigneeId === undefined) return;
    const server = this.servers.get(ip.assigneeId);
    if (server && server.status !== "off")
      throw new HcloudApiError("server_not_stopped", "The Server is running, but needs to be powered off", 422);
    if (server) server[ip.type === "ipv4" ? "ipv4Id" : "ipv6Id"] = undefined;
    ip.assigneeId = undefined;
    this.record("unassign_primary_ip", `primary_ip/${id}`);
  }

  /** PUT /primary_ips/{id}. */
  updatePrimaryIp(id: number, opts: { name?: string; labels?: Record<string, string>; autoDelete?: boolean }): PrimaryIpRecord {
    const ip = this.mustPrimaryIp(id);
    if (opts.name !== undefined) ip.name = opts.name;
    if (opts.labels !== undefined) ip.labels = { ...opts.labels };
    if (opts.autoDelete !== undefined) {
      if (opts.autoDelete && ip.deleteProtection) {
        throw invalidInput("auto_delete", "A Primary IP can only be delete protected if its auto_delete property is set to false");
      }
      ip.autoDelete = opts.autoDelete;
    }
    return ip;
  }

  /** POST /primary_ips/{id}/actions/change_protection (OAS: only when auto_delete is false). */
  changePrimaryIpProtection(id: number, deleteProtection: boolean): void {
    const ip = this.mustPrimaryIp(id);
    if (deleteProtection && ip.autoDelete) {
      throw invalidInput("delete", "A Primary IP can only be delete protected if its auto_delete property is set to false");
    }
    ip.deleteProtection = deleteProtection;
    this.record("change_protection", `primary_ip/${id}`);
  }

  /**
   * DELETE /primary_ips/{id}: protected -> `protected`; since 2026-05-01 an assigned IP is refused
   * with `must_be_unassigned` (CHG 2026-01-29; GLAMA delete_primary_ip), before that the API
   * unassigned it (its server had to be off).
   */
  async deletePrimaryIp(id: number): Promise<void> {
    const ip = this.mustPrimaryIp(id);
    if (ip.deleteProtection) throw new HcloudApiError("protected", "Primary IP is delete protected (UNCONFIRMED wording)", 423);
    if (ip.assigneeId !== undefined) {
      if (this.now() >= new Date("2026-05-01T00:00:00Z")) {
        throw new HcloudApiError("must_be_unassigned", "Error when IP is still assigned to a Resource", 422);
      }
      await this.unassignPrimaryIp(id);
    }
    await this.dropPrimaryIp(ip);
  }

  private async dropPrimaryIp(ip: PrimaryIpRecord): Promise<void> {
    this.primaryIps.delete(ip.id);
    this.record("delete_primary_ip", `primary_ip/${ip.id}`);
    for (const address of ip.dnsPtr.keys()) await this.backend.ptrChanged?.(address, undefined);
  }

  /** `assignee_type` as the API returns it: `unassigned` for a free IP from 2026-08-01 (CHG 2026-04-27), `server` before. */
  assigneeType(ip: PrimaryIpRecord): string {
    return ip.assigneeId === undefined && this.now() >= new Date("2026-08-01T00:00:00Z") ? "unassigned" : "server";
  }

  /**
   * POST /primary_ips/{id}/actions/change_dns_ptr. The address must be the IP itself (IPv4) or lie in
   * its /64 (IPv6); otherwise `forbidden` (TF #33 "IP does not belong to the server"; wording for
   * primary IPs UNCONFIRMED). A null PTR resets it: an IPv4 gets Hetzner's default name back, an
   * IPv6 entry disappears (OAS change_dns_ptr: "will reset to original default value if null").
   */
  async changePrimaryIpDnsPtr(id: number, address: string, ptr: string | null): Promise<void> {
    const ip = this.mustPrimaryIp(id);
    const canonical = canonicalIp(address);
    if (!ipBelongs(ip, canonical)) throw new HcloudApiError("forbidden", "IP does not belong to the primary IP (UNCONFIRMED wording)", 403);
    await this.setPtr(ip.dnsPtr, ip.type, canonical, ptr);
    this.record("change_dns_ptr", `primary_ip/${id}`);
  }

  /** POST /servers/{id}/actions/change_dns_ptr: the address must be one of the server's. */
  async changeServerDnsPtr(serverId: number, address: string, ptr: string | null): Promise<void> {
    const server = this.mustServer(serverId);
    const canonical = canonicalIp(address);
    const ip = [server.ipv4Id, server.ipv6Id]
      .map((i) => (i === undefined ? undefined : this.primaryIps.get(i)))
      .find((p) => p && ipBelongs(p, canonical));
    if (!ip) throw new HcloudApiError("forbidden", "IP does not belong to the server", 403);
    await this.setPtr(ip.dnsPtr, ip.type, canonical, ptr);
    this.record("change_dns_ptr", `server/${serverId}`);
  }

  private async setPtr(map: Map<string, string>, family: "ipv4" | "ipv6", address: string, ptr: string | null): Promise<void> {
    if (ptr !== null) {
      if (!HOSTNAME.test(ptr.replace(/\.$/, "")))
        throw invalidInput("dns_ptr", `dns_ptr must be a valid hostname (UNCONFIRMED wording), got "${ptr}"`);
      map.set(address, ptr);
      await this.backend.ptrChanged?.(address, ptr);
      return;
    }
    if (family === "ipv4") {
      map.set(address, defaultPtr(address));
      await this.backend.ptrChanged?.(address, defaultPtr(address));
    } else {
      map.delete(address);
      await this.backend.ptrChanged?.(address, undefined);
    }
  }

  // ---------------------------------------------------------------- volumes

  /** POST /volumes (OAS volumes create: 10 GB .. 10 TB; a location or a server). */
  async createVolume(opts: {
    name: string;
    size: number;
    location?: string;
    serverId?: number;
    automount?: boolean;
    format?: string;
    labels?: Record<string, string>;
  }): Promise<VolumeRecord> {
    if (!Number.isInteger(opts.size) || opts.size < 10 || opts.size > 10240) {
      throw invalidInput("size", `size must be between 10 and 10240 GB (UNCONFIRMED wording), got ${opts.size}`);
    }
    if (opts.format !== undefined && opts.format !== "ext4" && opts.format !== "xfs")
      throw invalidInput("format", `format must be ext4 or xfs, got "${opts.format}"`);
    if ([...this.volumes.values()].some((v) => v.name === opts.name))
      throw new HcloudApiError("uniqueness_error", "name is already used (UNCONFIRMED wording)", 409);
    const server = opts.serverId !== undefined ? this.mustServer(opts.serverId) : undefined;
    const location = (server?.location ?? opts.location) as Location | undefined;
    if (!location || !(LOCATIONS as readonly string[]).includes(location))
      throw invalidInput("location", `location ${location ?? "(none)"} not found`);
    const volume: VolumeRecord = {
      id: this.nextIds.volume++,
      name: opts.name,
      size: opts.size,
      location,
      ...(opts.format ? { format: opts.format } : {}),
      labels: { ...(opts.labels ?? {}) },
      deleteProtection: false,
      created: this.now().toISOString(),
    };
    this.volumes.set(volume.id, volume);
    this.record("create_volume", `volume/${volume.id}`);
    if (server) await this.attachVolume(volume.id, server.id);
    return volume;
  }

  getVolume(id: number): VolumeRecord | undefined {
    return this.volumes.get(id);
  }

  private mustVolume(id: number): VolumeRecord {
    const volume = this.volumes.get(id);
    if (!volume) throw new HcloudApiError("not_found", `volume with ID ${id} not found`, 404);
    return volume;
  }

  /** POST /volumes/{id}/actions/attach: same location only; an attached volume -> `volume_already_attached` (GO error.go; TF #111). */
  async attachVolume(id: number, serverId: number): Promise<void> {
    const volume = this.mustVolume(id);
    const server = this.mustServer(serverId);
    if (volume.serverId !== undefined)
      throw new HcloudApiError("volume_already_attached", "Volume is already attached to a server, detach first", 422);
    if (volume.location !== server.location) {
      throw new HcloudApiError("invalid_input", "volume and server are not in the same location (UNCONFIRMED wording)", 422);
    }
    volume.serverId = serverId;
    this.record("attach_volume", `volume/${id}`);
    await this.backend.volumeAttached?.(volumeView(volume), this.machineView(server));
  }

  /** POST /volumes/{id}/actions/detach. */
  async detachVolume(id: number): Promise<void> {
    const volume = this.mustVolume(id);
    if (volume.serverId === undefined) return;
    const server = this.servers.get(volume.serverId);
    volume.serverId = undefined;
    this.record("detach_volume", `volume/${id}`);
    if (server) await this.backend.volumeDetached?.(volumeView(volume), this.machineView(server));
  }

  /** POST /volumes/{id}/actions/resize: "downsizing a Volume is not possible" (OAS volumes/actions resize). */
  resizeVolume(id: number, size: number): void {
    const volume = this.mustVolume(id);
    if (size <= volume.size)
      throw invalidInput("size", `size must be greater than current size (${volume.size}): downsizing a Volume is not possible`);
    if (size > 10240) throw invalidInput("size", `size must be at most 10240 GB (UNCONFIRMED wording), got ${size}`);
    volume.size = size;
    this.record("resize_volume", `volume/${id}`);
  }

  updateVolume(id: number, opts: { name?: string; labels?: Record<string, string> }): VolumeRecord {
    const volume = this.mustVolume(id);
    if (opts.name !== undefined) volume.name = opts.name;
    if (opts.labels !== undefined) volume.labels = { ...opts.labels };
    return volume;
  }

  changeVolumeProtection(id: number, deleteProtection: boolean): void {
    this.mustVolume(id).deleteProtection = deleteProtection;
    this.record("change_protection", `volume/${id}`);
  }

  /** DELETE /volumes/{id}: not protected and not attached (OAS volumes delete). */
  deleteVolume(id: number): void {
    const volume = this.mustVolume(id);
    if (volume.deleteProtection) throw new HcloudApiError("protected", "volume is delete protected (UNCONFIRMED wording)", 423);
    if (volume.serverId !== undefined)
      throw new HcloudApiError("invalid_input", "volume is still attached to a server (UNCONFIRMED wording)", 422);
    this.volumes.delete(id);
    this.record("delete_volume", `volume/${id}`);
  }

  // ---------------------------------------------------------------- firewalls

  /** POST /firewalls. */
  createFirewall(opts: { name: string; rules: FirewallRule[]; labels?: Record<string, string>; applyTo?: number[] }): FirewallRecord {
    if ([...this.firewalls.values()].some((f) => f.name === opts.name))
      throw new HcloudApiError("uniqueness_error", "name is already used (UNCONFIRMED wording)", 409);
    opts.rules.forEach(validateRule);
    const firewall: FirewallRecord = {
      id: this.nextIds.firewall++,
      name: opts.name,
      rules: opts.rules.map((r) => ({ ...r })),
      labels: { ...(opts.labels ?? {}) },
      created: this.now().toISOString(),
    };
    this.firewalls.set(firewall.id, firewall);
    this.record("create_firewall", `firewall/${firewall.id}`);
    for (const s of opts.applyTo ?? []) this.applyFirewall(firewall.id, s);
    return firewall;
  }

  getFirewall(id: number): FirewallRecord | undefined {
    return this.firewalls.get(id);
  }

  private mustFirewall(id: number): FirewallRecord {
    const f = this.firewalls.get(id);
    if (!f) throw new HcloudApiError("not_found", `firewall with ID ${id} not found`, 404);
    return f;
  }

  /** The servers a firewall is applied to. */
  firewallAppliedTo(id: number): number[] {
    return [...this.servers.values()].filter((s) => s.firewallIds.includes(id)).map((s) => s.id);
  }

  setFirewallRules(id: number, rules: FirewallRule[]): void {
    rules.forEach(validateRule);
    this.mustFirewall(id).rules = rules.map((r) => ({ ...r }));
    this.record("set_firewall_rules", `firewall/${id}`);
  }

  applyFirewall(id: number, serverId: number): void {
    this.mustFirewall(id);
    const server = this.servers.get(serverId);
    if (!server) throw new HcloudApiError("firewall_resource_not_found", `server with ID ${serverId} not found`, 404);
    if (server.firewallIds.includes(id))
      throw new HcloudApiError("firewall_already_applied", "Firewall was already applied on resource", 422);
    server.firewallIds.push(id);
    this.record("apply_firewall", `firewall/${id}`);
  }

  removeFirewall(id: number, serverId: number): void {
    this.mustFirewall(id);
    const server = this.servers.get(serverId);
    if (!server || !server.firewallIds.includes(id))
      throw new HcloudApiError("firewall_already_removed", "Firewall was already removed from the resource", 422);
    server.firewallIds = server.firewallIds.filter((f) => f !== id);
    this.record("remove_firewall", `firewall/${id}`);
  }

  updateFirewall(id: number, opts: { name?: string; labels?: Record<string, string> }): FirewallRecord {
    const f = this.mustFirewall(id);
    if (opts.name !== undefined) f.name = opts.name;
    if (opts.labels !== undefined) f.labels = { ...opts.labels };
    return f;
  }

  /** DELETE /firewalls/{id}: refused while applied (`resource_in_use`, GO error.go). */
  deleteFirewall(id: number): void {
    this.mustFirewall(id);
    if (this.firewallAppliedTo(id).length > 0)
      throw new HcloudApiError("resource_in_use", "Firewall must not be in use to be deleted", 422);
    this.firewalls.delete(id);
    this.record("delete_firewall", `firewall/${id}`);
  }

  // ---------------------------------------------------------------- SSH keys

  /** POST /ssh_keys: name and fingerprint unique per project (messages UNCONFIRMED). */
  createSshKey(opts: { name: string; publicKey: string; labels?: Record<string, string> }): SshKeyRecord {
    const fingerprint = sshFingerprint(opts.publicKey);
    if (!fingerprint) throw invalidInput("public_key", "invalid public key (UNCONFIRMED wording)");
    if ([...this.sshKeys.values()].some((k) => k.name === opts.name))
      throw new HcloudApiError("uniqueness_error", "SSH key with the same name already exists (UNCONFIRMED wording)", 409);
    if ([...this.sshKeys.values()].some((k) => k.fingerprint === fingerprint)) {
      throw new HcloudApiError("uniqueness_error", "SSH key with the same fingerprint already exists (UNCONFIRMED wording)", 409);
    }
    const key: SshKeyRecord = {
      id: this.nextIds.sshKey++,
      name: opts.name,
      publicKey: opts.publicKey,
      fingerprint,
      labels: { ...(opts.labels ?? {}) },
      created: this.now().toISOString(),
    };
    this.sshKeys.set(key.id, key);
    this.record("create_ssh_key", `ssh_key/${key.id}`);
    return key;
  }

  getSshKey(idOrName: number | string): SshKeyRecord | undefined {
    const id = Number(idOrName);
    if (Number.isInteger(id) && this.sshKeys.has(id)) return this.sshKeys.get(id);
    return [...this.sshKeys.values()].find((k) => k.name === String(idOrName));
  }

  updateSshKey(id: number, opts: { name?: string; labels?: Record<string, string> }): SshKeyRecord {
    const key = this.sshKeys.get(id);
    if (!key) throw new HcloudApiError("not_found", `ssh key with ID ${id} not found`, 404);
    if (opts.name !== undefined) key.name = opts.name;
    if (opts.labels !== undefined) key.labels = { ...opts.labels };
    return key;
  }

  deleteSshKey(id: number): void {
    if (!this.sshKeys.delete(id)) throw new HcloudApiError("not_found", `ssh key with ID ${id} not found`, 404);
    this.record("delete_ssh_key", `ssh_key/${id}`);
  }

  // ---------------------------------------------------------------- Storage Boxes (api.hetzner.com/v1)

  /** POST /storage_boxes (hetzner.md sec. 9: types, locations, password policy). */
  createStorageBox(opts: {
    name: string;
    type: string;
    location: string;
    password: string;
    sshKeys?: string[];
    accessSettings?: Partial<StorageBoxAccessSettings>;
    labels?: Record<string, string>;
  }): StorageBoxRecord {
    if (!STORAGE_BOX_TYPES.includes(opts.type)) throw invalidInput("storage_box_type", `storage box type ${opts.type} not found`);
    if (!STORAGE_BOX_LOCATIONS.includes(opts.location))
      throw invalidInput("location", `storage boxes are not offered in ${opts.location} (UNCONFIRMED)`);
    checkStorageBoxPassword(opts.password);
    if ([...this.storageBoxes.values()].some((b) => b.name === opts.name))
      throw new HcloudApiError("uniqueness_error", "name is already used (UNCONFIRMED wording)", 409);
    for (const key of opts.sshKeys ?? [])
      if (!sshFingerprint(key)) throw invalidInput("ssh_keys", `invalid public key (UNCONFIRMED wording): ${key.slice(0, 30)}`);
    const id = this.nextIds.storageBox++;
    const box: StorageBoxRecord = {
      id,
      name: opts.name,
      type: opts.type,
      location: opts.location,
      password: opts.password,
      sshKeys: [...(opts.sshKeys ?? [])],
      accessSettings: {
        reachableExternally: false,
        sambaEnabled: false,
        sshEnabled: false,
        webdavEnabled: false,
        zfsEnabled: false,
        ...opts.accessSettings,
      },
      labels: { ...(opts.labels ?? {}) },
      deleteProtection: false,
      username: `u${id}`,
      server: `u${id}.your-storagebox.de`,
      system: `${opts.location.toUpperCase()}-BX${(id % 900) + 100}`,
      subaccounts: new Map(),
      created: this.now().toISOString(),
    };
    this.storageBoxes.set(id, box);
    this.record("create_storage_box", `storage_box/${id}`);
    return box;
  }

  getStorageBox(idOrName: number | string): StorageBoxRecord | undefined {
    const id = Number(idOrName);
    if (Number.isInteger(id) && this.storageBoxes.has(id)) return this.storageBoxes.get(id);
    return [...this.storageBoxes.values()].find((b) => b.name === String(idOrName));
  }

  mustStorageBox(id: number): StorageBoxRecord {
    const box = this.storageBoxes.get(id);
    if (!box) throw new HcloudApiError("not_found", `storage box with ID ${id} not found`, 404);
    return box;
  }

  updateStorageBox(id: number, opts: { name?: string; labels?: Record<string, string> }): void {
    const box = this.mustStorageBox(id);
    if (opts.name !== undefined) box.name = opts.name;
    if (opts.labels !== undefined) box.labels = { ...opts.labels };
  }

  changeStorageBoxType(id: number, type: string): void {
    if (!STORAGE_BOX_TYPES.includes(type)) throw invalidInput("storage_box_type", `storage box type ${type} not found`);
    this.mustStorageBox(id).type = type;
    this.record("change_type", `storage_box/${id}`);
  }

  resetStorageBoxPassword(id: number, password: string): void {
    checkStorageBoxPassword(password);
    this.mustStorageBox(id).password = password;
    this.record("reset_password", `storage_box/${id}`);
  }

  updateStorageBoxAccessSettings(id: number, settings: Partial<StorageBoxAccessSettings>): void {
    const box = this.mustStorageBox(id);
    box.accessSettings = { ...box.accessSettings, ...settings };
    this.record("update_access_settings", `storage_box/${id}`);
  }

  setStorageBoxSnapshotPlan(id: number, plan: SnapshotPlan | undefined): void {
    this.mustStorageBox(id).snapshotPlan = plan ? { ...plan } : undefined;
    this.record(plan ? "enable_snapshot_plan" : "disable_snapshot_plan", `storage_box/${id}`);
  }

  changeStorageBoxProtection(id: number, deleteProtection: boolean): void {
    this.mustStorageBox(id).deleteProtection = deleteProtection;
    this.record("change_protection", `storage_box/${id}`);
  }

  deleteStorageBox(id: number): void {
    const box = this.mustStorageBox(id);
    if (box.deleteProtection) throw new HcloudApiError("protected", "storage box is delete protected (UNCONFIRMED wording)", 423);
    this.storageBoxes.delete(id);
    this.record("delete_storage_box", `storage_box/${id}`);
  }

  /** POST /storage_boxes/{id}/subaccounts (TF storageboxsubaccount: home directory without a leading slash). */
  createSubaccount(
    boxId: number,
    opts: {
      name?: string;
      homeDirectory: string;
      password: string;
      accessSettings?: Partial<SubaccountAccessSettings>;
      description?: string;
      labels?: Record<string, string>;
    },
  ): SubaccountRecord {
    const box = this.mustStorageBox(boxId);
    if (opts.homeDirectory.startsWith("/")) throw invalidInput("home_directory", "home_directory must not include a leading slash");
    checkStorageBoxPassword(opts.password);
    const n = box.subaccounts.size + 1;
    const sub: SubaccountRecord = {
      id: boxId * 100 + n,
      storageBoxId: boxId,
      name: opts.name ?? `${box.username}-sub${n}`,
      username: `${box.username}-sub${n}`,
      homeDirectory: opts.homeDirectory,
      password: opts.password,
      accessSettings: {
        reachableExternally: false,
        sambaEnabled: false,
        sshEnabled: false,
        webdavEnabled: false,
        readonly: false,
        ...opts.accessSettings,
      },
      description: opts.description ?? "",
      labels: { ...(opts.labels ?? {}) },
      server: `${box.username}-sub${n}.your-storagebox.de`,
    };
    box.subaccounts.set(sub.id, sub);
    this.record("create_subaccount", `storage_box/${boxId}/subaccount/${sub.id}`);
    return sub;
  }

  getSubaccount(boxId: number, id: number): SubaccountRecord | undefined {
    return this.storageBoxes.get(boxId)?.subaccounts.get(id);
  }

  mustSubaccount(boxId: number, id: number): SubaccountRecord {
    const sub = this.getSubaccount(boxId, id);
    if (!sub) throw new HcloudApiError("not_found", `subaccount with ID ${id} not found`, 404);
    return sub;
  }

  resetSubaccountPassword(boxId: number, id: number, password: string): void {
    checkStorageBoxPassword(password);
    this.mustSubaccount(boxId, id).password = password;
    this.record("reset_subaccount_password", `storage_box/${boxId}/subaccount/${id}`);
  }

  updateSubaccount(
    boxId: number,
    id: number,
    opts: {
      name?: string;
      homeDirectory?: string;
      accessSettings?: Partial<SubaccountAccessSettings>;
      description?: string;
      labels?: Record<string, string>;
    },
  ): SubaccountRecord {
    const sub = this.mustSubaccount(boxId, id);
    if (opts.homeDirectory !== undefined) {
      if (opts.homeDirectory.startsWith("/")) throw invalidInput("home_directory", "home_directory must not include a leading slash");
      sub.homeDirectory = opts.homeDirectory;
    }
    if (opts.accessSettings !== undefined) sub.accessSettings = { ...sub.accessSettings, ...opts.accessSettings };
    if (opts.description !== undefined) sub.description = opts.description;
    if (opts.labels !== undefined) sub.labels = { ...opts.labels };
    if (opts.name !== undefined) sub.name = opts.name;
    return sub;
  }

  deleteSubaccount(boxId: number, id: number): void {
    this.mustSubaccount(boxId, id);
    this.storageBoxes.get(boxId)!.subaccounts.delete(id);
    this.record("delete_subaccount", `storage_box/${boxId}/subaccount/${id}`);
  }
}

function invalidInput(field: string, message: string): HcloudApiError {
  return new HcloudApiError("invalid_input", message, 422, [{ name: field, messages: [message] }]);
}

function volumeView(v: VolumeRecord): VolumeView {
  return {
    id: v.id,
    name: v.name,
    size: v.size,
    linuxDevice: `/dev/disk/by-id/scsi-0HC_Volume_${v.id}`,
    ...(v.format ? { format: v.format } : {}),
  };
}

function validateRule(rule: FirewallRule): void {
  if (rule.direction !== "in" && rule.direction !== "out")
    throw invalidInput("rules", `direction must be in or out, got "${rule.direction}"`);
  if (!["tcp", "udp", "icmp", "esp", "gre"].includes(rule.protocol))
    throw invalidInput("rules", `protocol ${rule.protocol} is not supported`);
  const needsPort = rule.protocol === "tcp" || rule.protocol === "udp";
  if (needsPort && !rule.port) throw invalidInput("rules", `port is required for protocol ${rule.protocol} (UNCONFIRMED wording)`);
  if (!needsPort && rule.port) throw invalidInput("rules", `port is not allowed for protocol ${rule.protocol} (UNCONFIRMED wording)`);
  const ips = rule.direction === "in" ? rule.sourceIps : rule.destinationIps;
  if (ips.length === 0)
    throw invalidInput("rules", `${rule.direction === "in" ? "source_ips" : "destination_ips"} must not be empty (UNCONFIRMED wording)`);
  for (const cidr of ips) {
    const [addr, len] = cidr.split("/");
    if (!isIP(addr) || (len !== undefined && !/^\d+$/.test(len))) throw invalidInput("rules", `invalid CIDR ${cidr}`);
  }
}

/** glama create_storage_box (mirrors the API docs): 12-128 characters, upper, lower, digit and special. */
function checkStorageBoxPassword(password: string): void {
  const ok =
    password.length >= 12 &&
    password.length <= 128 &&
    /[a-zäöü]/.test(password) &&
    /[A-ZÄÖÜ]/.test(password) &&
    /[0-9]/.test(password) &&
    /[\^°!§$%/()=?+#\-.,;:~*@{}_&]/.test(password) &&
    /^[a-zA-ZÄÖÜäöüß0-9^°!§$%/()=?+#\-.,;:~*@{}_&]+$/.test(password);
  if (!ok) {
    throw invalidInput(
      "password",
      "password does not meet the policy: 12-128 characters with upper and lower case letters, a digit and a special character (UNCONFIRMED wording)",
    );
  }
}

/** Hetzner's SSH key fingerprint: MD5 of the key blob as colon-separated hex; undefined when the text is no public key. */
export function sshFingerprint(publicKey: string): string | undefined {
  const parts = publicKey.trim().split(/\s+/);
  if (parts.length < 2 || !/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-)/.test(parts[0])) return undefined;
  const blob = Buffer.from(parts[1], "base64");
  if (blob.length < 8 || blob.readUInt32BE(0) !== parts[0].length || blob.subarray(4, 4 + parts[0].length).toString() !== parts[0])
    return undefined;
  return createHash("md5").update(blob).digest("hex").match(/../g)!.join(":");
}

/** Canonical text of an address, as Go's `net.IP.String()` prints it (RFC 5952 for IPv6). */
export function canonicalIp(address: string): string {
  const bare = address.split("/")[0];
  if (isIP(bare) === 4)
    return bare
      .split(".")
      .map((o) => String(Number(o)))
      .join(".");
  if (isIP(bare) !== 6) return bare;
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

function ipBelongs(ip: PrimaryIpRecord, canonical: string): boolean {
  if (ip.type === "ipv4") return canonical === ip.ip;
  if (isIP(canonical) !== 6) return false;
  return ipv6Bytes(canonical).subarray(0, 8).equals(ipv6Bytes(ip.ip).subarray(0, 8));
}

/** docs.hetzner.com/networking/dns/record-types/ptr-record: `static.1.113.0.203.clients.your-server.de` for 203.0.113.1. */
export function defaultPtr(ipv4: string): string {
  return `static.${ipv4.split(".").reverse().join(".")}.clients.your-server.de`;
}
