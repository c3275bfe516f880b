// @pulumi/hcloud 1.41 (terraform-provider-hcloud v1.67.0, bridged) as a stand-in over an
// HcloudWorld: each resource makes the API calls the Terraform resource makes, in its order, so
// the API's rules (hcloud-world.ts) apply to what the engine asks for. Line numbers are of
// hetznercloud/terraform-provider-hcloud v1.67.0 (5705c821) internal/<resource>/resource.go unless
// said otherwise; facts and further sources: /work/research/hetzner.md.
import { createHash, randomInt } from "node:crypto";
import { isIP } from "node:net";
import { Unknown, type CallContext, type CheckFailure, type DiffResult, type PropertyMap, type ProviderStandIn } from "../model";
import { bridgedCheck, bridgedDiff, bridgedOutputs, unknownComputed, type BridgedResourceSchema } from "./bridge";
import { imageDeprecationMessage, serverTypeByName, serverTypeDeprecationMessage } from "./hcloud-catalogue";
import {
  canonicalIp,
  HcloudApiError,
  HcloudWorld,
  type FirewallRule,
  type PrimaryIpRecord,
  type PublicNetOpts,
  type ServerRecord,
  type StorageBoxRecord,
  type SubaccountRecord,
  type VolumeRecord,
} from "./hcloud-world";
import { containsUnknown, isAbsent, isPlainObject, ProviderCallError, reveal } from "./property";

export { HcloudWorld } from "./hcloud-world";
export type { MachineBackend, MachineView, VolumeView, HcloudWorldOptions } from "./hcloud-world";

export const SERVER = "hcloud:index/server:Server";
export const PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp";
export const RDNS = "hcloud:index/rdns:Rdns";
export const VOLUME = "hcloud:index/volume:Volume";
export const VOLUME_ATTACHMENT = "hcloud:index/volumeAttachment:VolumeAttachment";
export const FIREWALL = "hcloud:index/firewall:Firewall";
export const SSH_KEY = "hcloud:index/sshKey:SshKey";
export const STORAGE_BOX = "hcloud:index/storageBox:StorageBox";
export const STORAGE_BOX_SUBACCOUNT = "hcloud:index/storageBoxSubaccount:StorageBoxSubaccount";

/** server/resource.go L287 `userDataHashSum`: the state keeps base64(SHA-1(user_data)), not the text. */
export function userDataHashSum(userData: string): string {
  return createHash("sha1").update(userData).digest("base64");
}

const ipv6Network = (ip: PrimaryIpRecord) => `${ip.ip}/64`;

function normaliseRules(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  // firewall/resource.go toTFRule: every element carries port, description and both IP sets; the
  // IP sets are sets, normalised (normalizeIP StateFunc).
  return value.map((r) => {
    const rule = (isPlainObject(r) ? r : {}) as Record<string, unknown>;
    const ips = (v: unknown) => (Array.isArray(v) ? v.map((x) => normaliseCidr(String(x))).sort() : []);
    return {
      direction: rule.direction ?? "",
      protocol: rule.protocol ?? "",
      port: rule.port ?? "",
      sourceIps: ips(rule.sourceIps),
      destinationIps: ips(rule.destinationIps),
      description: rule.description ?? "",
    };
  });
}

function normaliseCidr(cidr: string): string {
  const [addr, len] = cidr.split("/");
  if (!isIP(addr)) return cidr;
  return `${canonicalIp(addr)}/${len ?? (isIP(addr) === 4 ? "32" : "128")}`;
}

function normalisePublicNets(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  // server/resource.go L169-202: ipv4_enabled/ipv6_enabled default true; ipv4/ipv6 0 when unset.
  return value.map((n) => {
    const net = (isPlainObject(n) ? n : {}) as Record<string, unknown>;
    return {
      ipv4Enabled: net.ipv4Enabled ?? true,
      ipv6Enabled: net.ipv6Enabled ?? true,
      ipv4: net.ipv4 === undefined || net.ipv4 === null ? 0 : net.ipv4,
      ipv6: net.ipv6 === undefined || net.ipv6 === null ? 0 : net.ipv6,
    };
  });
}

/** Schemas: Required/Optional/Computed/ForceNew/Default as the Terraform resource declares them. */
export const schemas: Record<string, BridgedResourceSchema & { required: string[] }> = {
  // server/resource.go L45-284 (SDKv2).
  [SERVER]: {
    framework: "sdkv2",
    autoname: true,
    required: ["serverType"],
    properties: {
      name: {},
      serverType: {},
      image: { forceNew: true, computed: true },
      location: { forceNew: true, computed: true },
      userData: { forceNew: true, stateFunc: (v) => (typeof v === "string" && v !== "" ? userDataHashSum(v) : v) },
      sshKeys: { forceNew: true },
      keepDisk: { default: false },
      backups: { default: false },
      labels: {},
      // L169-176: a DiffSuppressFunc drops every public_net diff while the block is absent from the
      // configuration, so leaving it out keeps the state's (the `computed` rule of bridge.ts).
      publicNets: { set: true, computed: true, normalise: normalisePublicNets },
      firewallIds: { set: true, computed: true },
      ignoreRemoteFirewallIds: { default: false },
      placementGroupId: {},
      deleteProtection: { default: false },
      rebuildProtection: { default: false },
      shutdownBeforeDeletion: { default: false },
      allowDeprecatedImages: { default: false },
      ipv4Address: { outputOnly: true },
      ipv6Address: { outputOnly: true },
      ipv6Network: { outputOnly: true },
      status: { outputOnly: true },
      primaryDiskSize: { outputOnly: true },
      backupWindow: { outputOnly: true },
    },
  },
  // primaryip/resource.go Schema L57-146 (plugin framework).
  [PRIMARY_IP]: {
    framework: "pf",
    autoname: true,
    required: ["type"],
    properties: {
      name: {},
      type: { forceNew: true },
      location: { forceNew: true, computed: true },
      assigneeId: { computed: true },
      assigneeType: { computed: true },
      autoDelete: { computed: true, default: false },
      deleteProtection: { computed: true, default: false },
      labels: { computed: true, default: {} },
      ipAddress: { outputOnly: true },
      ipNetwork: { outputOnly: true },
    },
  },
  // rdns/resource.go Schema L54-110: every parent id and ip_address RequiresReplace; ip_address is
  // an iptypes.IPAddress (semantic equality); dns_ptr in place.
  [RDNS]: {
    framework: "pf",
    required: ["ipAddress", "dnsPtr"],
    properties: {
      serverId: { forceNew: true },
      primaryIpId: { forceNew: true },
      floatingIpId: { forceNew: true },
      loadBalancerId: { forceNew: true },
      ipAddress: { forceNew: true, normalise: (v) => (typeof v === "string" ? canonicalIp(v) : v) },
      dnsPtr: {},
    },
  },
  // volume/resource.go L23-82 (SDKv2): location ForceNew; size in place.
  [VOLUME]: {
    framework: "sdkv2",
    autoname: true,
    required: ["size"],
    properties: {
      name: {},
      size: {},
      location: { forceNew: true, computed: true },
      serverId: { computed: true },
      labels: {},
      automount: {},
      format: {},
      deleteProtection: { default: false },
      linuxDevice: { outputOnly: true },
    },
  },
  // volume/resource_attachment.go L22-48 (SDKv2, no UpdateContext).
  [VOLUME_ATTACHMENT]: {
    framework: "sdkv2",
    required: ["volumeId", "serverId"],
    properties: {
      volumeId: { forceNew: true },
      serverId: { forceNew: true },
      automount: { computed: true },
    },
  },
  // firewall/resource.go L23-141 (SDKv2): rules and apply_to are sets; nothing replaces.
  [FIREWALL]: {
    framework: "sdkv2",
    autoname: true,
    required: [],
    properties: {
      name: {},
      labels: {},
      rules: { set: true, normalise: normaliseRules },
      applyTos: { set: true, computed: true },
    },
  },
  // sshkey/resource.go Schema L51-84 (plugin framework): public_key RequiresReplace.
  [SSH_KEY]: {
    framework: "pf",
    autoname: true,
    required: ["publicKey"],
    properties: {
      name: {},
      publicKey: { forceNew: true },
      labels: { computed: true, default: {} },
      fingerprint: { outputOnly: true },
    },
  },
  // storagebox/resource.go Schema L62-210 (plugin framework): location and ssh_keys RequiresReplace.
  [STORAGE_BOX]: {
    framework: "pf",
    autoname: true,
    required: ["storageBoxType", "location", "password"],
    properties: {
      name: {},
      storageBoxType: {},
      location: { forceNew: true },
      password: { sensitive: true },
      sshKeys: { set: true, computed: true, default: [], forceNew: true },
      accessSettings: { computed: true },
      snapshotPlan: {},
      labels: { computed: true, default: {} },
      deleteProtection: { computed: true, default: false },
      server: { outputOnly: true },
      system: { outputOnly: true },
      username: { outputOnly: true },
    },
  },
  // storageboxsubaccount/resource.go Schema L79-170 (plugin framework): storage_box_id RequiresReplace.
  [STORAGE_BOX_SUBACCOUNT]: {
    framework: "pf",
    required: ["storageBoxId", "homeDirectory", "password"],
    properties: {
      storageBoxId: { forceNew: true },
      name: { computed: true },
      description: { computed: true, default: "" },
      homeDirectory: {},
      password: { sensitive: true },
      accessSettings: { computed: true },
      labels: { computed: true, default: {} },
      server: { outputOnly: true },
      username: { outputOnly: true },
    },
  },
};

function schemaOf(type: string): BridgedResourceSchema & { required: string[] } {
  const schema = schemas[type];
  if (!schema)
    throw new ProviderCallError(`the hcloud stand-in has no resource type ${type}; it models ${Object.keys(schemas).join(", ")}`);
  return schema;
}

/**
 * How a Terraform resource reports an API error. SDKv2 resources return the hcloud-go error text,
 * with the invalid fields appended for invalid_input (internal/util/hcloudutil/error_sdk.go
 * ErrorToDiag); plugin-framework resources wrap it (error_framework.go APIErrorDiagnostics).
 */
function apiFailure(framework: "sdkv2" | "pf", error: unknown): never {
  if (!(error instanceof HcloudApiError)) throw error;
  if (framework === "sdkv2") {
    const text =
      error.code === "invalid_input" && error.fields.length > 0
        ? `${error.message}: [${error.fields.map((f) => `${f.name} => [${f.messages.join(" ")}]`).join(" ")}]`
        : error.message;
    throw new ProviderCallError(text, error.code);
  }
  if (error.code === "invalid_input" && error.fields.length > 0) {
    const f = error.fields[0];
    throw new ProviderCallError(
      `Invalid field in API request: An invalid field was encountered during an API request. The field might not map 1:1 to your terraform resource.\n\n${error.message}\n\nField: ${f.name}\nMessages:\n${f.messages.map((m) => ` - ${m}`).join("\n")}\nError code: ${error.code}\nStatus code: ${error.status}\n`,
      error.code,
    );
  }
  throw new ProviderCallError(
    `API request failed: An unexpected error was encountered during an API request.\n\n${error.message}\n\nError code: ${error.code}\nStatus code: ${error.status}\n`,
    error.code,
  );
}

async function api<T>(framework: "sdkv2" | "pf", call: () => T | Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    apiFailure(framework, error);
  }
}

const val = (m: PropertyMap, k: string): unknown => reveal(m[k]);
const num = (m: PropertyMap, k: string): number | undefined => (isAbsent(val(m, k)) ? undefined : Number(val(m, k)));
const str = (m: PropertyMap, k: string): string | undefined => (isAbsent(val(m, k)) ? undefined : String(val(m, k)));
const bool = (m: PropertyMap, k: string, fallback = false): boolean => (isAbsent(val(m, k)) ? fallback : val(m, k) === true);
const labels = (m: PropertyMap): Record<string, string> =>
  isPlainObject(val(m, "labels")) ? (val(m, "labels") as Record<string, string>) : {};

/** util.InvalidImportID (internal/util). */
function invalidImportId(expected: string, got: string): ProviderCallError {
  return new ProviderCallError(`Invalid import ID: Expected import identifier with format: ${expected}. Got: ${got}`);
}

function parseIntId(id: string, expected: string): number {
  if (!/^\d+$/.test(id)) throw invalidImportId(expected, id);
  return Number(id);
}

/**
 * The bridge's inputs for an imported resource (BR pkg/tfbridge/schema.go
 * extractSchemaInputsObject): input properties only, optional ones dropped when zero or default,
 * and an empty `__defaults`.
 */
function importInputs(schema: BridgedResourceSchema & { required: string[] }, outputs: PropertyMap): PropertyMap {
  const inputs: PropertyMap = {};
  for (const [k, p] of Object.entries(schema.properties)) {
    if (p.outputOnly) continue;
    const v = reveal(outputs[k]);
    if (isAbsent(v)) continue;
    if (!schema.required.includes(k)) {
      const zero =
        v === false || v === 0 || v === "" || (Array.isArray(v) && v.length === 0) || (isPlainObject(v) && Object.keys(v).length === 0);
      if (zero || (p.default !== undefined && JSON.stringify(p.default) === JSON.stringify(v))) continue;
    }
    inputs[k] = outputs[k];
  }
  inputs.__defaults = [];
  return inputs;
}

export function hcloudStandIn(world: HcloudWorld): ProviderStandIn {
  return {
    pkg: "hcloud",

    async check(ctx, type, olds, news) {
      const schema = schemaOf(type);
      const failures: CheckFailure[] = [];
      for (const k of schema.required) if (isAbsent(news[k])) failures.push({ property: k, reason: `Missing required argument: ${k}` });
      checkType(type, news, failures);
      return { inputs: bridgedCheck(schema, ctx.urn, olds, news), failures };
    },

    async diff(_ctx, type, _id, oldInputs, oldOutputs, news, ignoreChanges): Promise<DiffResult> {
      return bridgedDiff(schemaOf(type), oldInputs, oldOutputs, news, ignoreChanges);
    },

    async create(ctx, type, inputs) {
      const schema = schemaOf(type);
      if (ctx.preview) return { id: Unknown, outputs: bridgedOutputs(schema, inputs, unknownComputed(schema, {}, inputs)) };
      if (containsUnknown(inputs)) throw new ProviderCallError(`${type}: inputs are still unknown outside preview`);
      const created = await createResource(world, ctx, type, inputs);
      return { id: created.id, outputs: bridgedOutputs(schema, inputs, created.computed) };
    },

    async read(_ctx, type, id, inputs, outputs) {
      const schema = schemaOf(type);
      const state = await readResource(world, type, id, outputs);
      if (!state) return undefined;
      const merged = bridgedOutputs(schema, outputs ?? {}, state.computed);
      return { id: state.id, inputs: inputs ?? importInputs(schema, merged), outputs: merged };
    },

    async update(ctx, type, id, oldInputs, oldOutputs, news, ignoreChanges) {
      const schema = schemaOf(type);
      const kept: PropertyMap = {};
      for (const [k, p] of Object.entries(schema.properties))
        if ((p.outputOnly || (p.computed && isAbsent(news[k]))) && k in oldOutputs) kept[k] = oldOutputs[k];
      if (ctx.preview) return { outputs: bridgedOutputs(schema, news, kept) };
      const diff = bridgedDiff(schema, oldInputs, oldOutputs, news, ignoreChanges);
      const computed = await updateResource(world, ctx, type, id, oldOutputs, news, new Set(diff.changedKeys));
      return { outputs: bridgedOutputs(schema, news, { ...kept, ...computed }) };
    },

    async delete(ctx, type, id, _oldInputs, oldOutputs) {
      await deleteResource(world, ctx, type, id, oldOutputs);
    },
  };
}

function checkType(type: string, news: PropertyMap, failures: CheckFailure[]): void {
  if (type === SERVER) {
    // L81-94: `datacenter` was removed; L60-70 image must not be empty; L101-111 no empty ssh key.
    if (!isAbsent(news.datacenter))
      failures.push({ property: "datacenter", reason: "Removed Attribute: use location instead of datacenter" });
    if (val(news, "image") === "")
      failures.push({ property: "image", reason: `"image" must have more than 0 characters. Have you set the name instead of an ID?` });
    const keys = val(news, "sshKeys");
    if (Array.isArray(keys) && keys.some((k) => k === "")) {
      failures.push({ property: "sshKeys", reason: "Invalid ssh key passed. You need to pass a string with at least 1 character" });
    }
  } else if (type === PRIMARY_IP) {
    // primaryip/resource.go L148-185: ExactlyOneOf(location, assignee_id); assignee_id needs assignee_type.
    const hasLocation = !isAbsent(news.location);
    const hasAssignee = !isAbsent(news.assigneeId);
    if (hasLocation === hasAssignee)
      failures.push({ property: "", reason: "Exactly one of these attributes must be configured: [location,assignee_id]" });
    if (hasAssignee && isAbsent(news.assigneeType))
      failures.push({ property: "", reason: "These attributes must be configured together: [assignee_id,assignee_type]" });
    const t = val(news, "type");
    if (t !== Unknown && !isAbsent(t) && t !== "ipv4" && t !== "ipv6")
      failures.push({ property: "type", reason: `Attribute type value must be one of: ["ipv4" "ipv6"], got: ${JSON.stringify(t)}` });
  } else if (type === RDNS) {
    // rdns/resource.go L112-121 ConfigValidators: exactly one parent.
    const parents = ["serverId", "primaryIpId", "floatingIpId", "loadBalancerId"].filter((k) => !isAbsent(news[k]));
    if (parents.length !== 1) {
      failures.push({
        property: "",
        reason: "Exactly one of these attributes must be configured: [server_id,primary_ip_id,floating_ip_id,load_balancer_id]",
      });
    }
    const ip = val(news, "ipAddress");
    if (typeof ip === "string" && !isIP(ip))
      failures.push({ property: "ipAddress", reason: `Attribute ip_address must be a valid IP address, got: ${ip}` });
  } else if (type === STORAGE_BOX_SUBACCOUNT) {
    const home = val(news, "homeDirectory");
    if (typeof home === "string" && home.startsWith("/"))
      failures.push({ property: "homeDirectory", reason: "Attribute home_directory must not include a leading slash" });
  }
}

// ------------------------------------------------------------------------------ create

async function createResource(
  world: HcloudWorld,
  ctx: CallContext,
  type: string,
  inputs: PropertyMap,
): Promise<{ id: string; computed: PropertyMap }> {
  switch (type) {
    case SERVER:
      return createServer(world, ctx, inputs);
    case PRIMARY_IP: {
      // primaryip/resource.go Create L187-264.
      const ip = await api("pf", () =>
        world.createPrimaryIp({
          name: str(inputs, "name")!,
          type: str(inputs, "type") as "ipv4" | "ipv6",
          ...(isAbsent(val(inputs, "location")) ? {} : { location: str(inputs, "location") }),
          ...(isAbsent(val(inputs, "assigneeId")) ? {} : { assigneeId: num(inputs, "assigneeId") }),
          autoDelete: bool(inputs, "autoDelete"),
          labels: labels(inputs),
        }),
      );
      if (bool(inputs, "deleteProtection")) await api("pf", () => world.changePrimaryIpProtection(ip.id, true));
      return { id: String(ip.id), computed: primaryIpAttributes(world, ip) };
    }
    case RDNS: {
      // rdns/resource.go Create L123-215: find the parent, then change_dns_ptr.
      const address = str(inputs, "ipAddress")!;
      const ptr = str(inputs, "dnsPtr")!;
      const { prefix, parentId } = rdnsParent(inputs);
      if (prefix === "p") {
        if (!world.getPrimaryIp(parentId)) throw new ProviderCallError(`Resource (primary ip) was not found: id=${parentId}`);
        await api("pf", () => world.changePrimaryIpDnsPtr(parentId, address, ptr));
      } else {
        if (!world.getServer(parentId)) throw new ProviderCallError(`Resource (server) was not found: id=${parentId}`);
        await api("pf", () => world.changeServerDnsPtr(parentId, address, ptr));
      }
      // rdns/common.go FormatID: `<prefix>-<id>-<net.IP.String()>`.
      return { id: `${prefix}-${parentId}-${canonicalIp(address)}`, computed: { ipAddress: canonicalIp(address) } };
    }
    case VOLUME: {
      // volume/resource.go Create L84-174.
      const volume = await api("sdkv2", () =>
        world.createVolume({
          name: str(inputs, "name")!,
          size: num(inputs, "size")!,
          ...(isAbsent(val(inputs, "location")) ? {} : { location: str(inputs, "location") }),
          ...(num(inputs, "serverId") ? { serverId: num(inputs, "serverId") } : {}),
          ...(isAbsent(val(inputs, "automount")) ? {} : { automount: bool(inputs, "automount") }),
          ...(isAbsent(val(inputs, "format")) ? {} : { format: str(inputs, "format") }),
          labels: labels(inputs),
        }),
      );
      if (bool(inputs, "deleteProtection")) await api("sdkv2", () => world.changeVolumeProtection(volume.id, true));
      return { id: String(volume.id), computed: volumeAttributes(world.getVolume(volume.id)!) };
    }
    case VOLUME_ATTACHMENT: {
      // volume/resource_attachment.go Create L50-90: the volume id is the attachment's id.
      const volumeId = num(inputs, "volumeId")!;
      await api("sdkv2", () => world.attachVolume(volumeId, num(inputs, "serverId")!));
      return { id: String(volumeId), computed: {} };
    }
    case FIREWALL: {
      // firewall/resource.go Create L143-184.
      const firewall = await api("sdkv2", () =>
        world.createFirewall({
          name: str(inputs, "name")!,
          rules: toRules(val(inputs, "rules")),
          labels: labels(inputs),
          applyTo: applyToServers(inputs),
        }),
      );
      return { id: String(firewall.id), computed: firewallAttributes(world, firewall.id) };
    }
    case SSH_KEY: {
      const key = await api("pf", () =>
        world.createSshKey({ name: str(inputs, "name")!, publicKey: str(inputs, "publicKey")!, labels: labels(inputs) }),
      );
      return { id: String(key.id), computed: { fingerprint: key.fingerprint, publicKey: key.publicKey, labels: key.labels } };
    }
    case STORAGE_BOX: {
      // storagebox/resource.go Create L235-354: create, then snapshot plan and protection.
      const box = await api("pf", () =>
        world.createStorageBox({
          name: str(inputs, "name")!,
          type: str(inputs, "storageBoxType")!,
          location: str(inputs, "location")!,
          password: str(inputs, "password")!,
          sshKeys: (val(inputs, "sshKeys") as string[] | undefined) ?? [],
          accessSettings: (val(inputs, "accessSettings") as Record<string, boolean> | undefined) ?? {},
          labels: labels(inputs),
        }),
      );
      const plan = val(inputs, "snapshotPlan");
      if (isPlainObject(plan)) await api("pf", () => world.setStorageBoxSnapshotPlan(box.id, plan as never));
      if (bool(inputs, "deleteProtection")) await api("pf", () => world.changeStorageBoxProtection(box.id, true));
      return { id: String(box.id), computed: storageBoxAttributes(box) };
    }
    case STORAGE_BOX_SUBACCOUNT: {
      const boxId = num(inputs, "storageBoxId")!;
      const sub = await api("pf", () =>
        world.createSubaccount(boxId, {
          ...(isAbsent(val(inputs, "name")) ? {} : { name: str(inputs, "name") }),
          homeDirectory: str(inputs, "homeDirectory")!,
          password: str(inputs, "password")!,
          accessSettings: (val(inputs, "accessSettings") as Record<string, boolean> | undefined) ?? {},
          description: str(inputs, "description") ?? "",
          labels: labels(inputs),
        }),
      );
      return { id: String(sub.id), computed: subaccountAttributes(sub) };
    }
  }
  throw new ProviderCallError(`hcloud stand-in: no create for ${type}`);
}

/** server/resource.go resourceServerCreate L307-520. */
async function createServer(world: HcloudWorld, ctx: CallContext, inputs: PropertyMap): Promise<{ id: string; computed: PropertyMap }> {
  const typeName = str(inputs, "serverType")!;
  const type = serverTypeByName(typeName);
  if (!type) throw new ProviderCallError(`server type ${typeName} not found`);
  const imageName = str(inputs, "image") ?? "";
  const img = world.imageFor(imageName, type.architecture);
  if (!img) throw new ProviderCallError(`image ${imageName} for architecture ${type.architecture} not found`);
  const imageMessage = imageDeprecationMessage(img, world.now());
  if (imageMessage?.unavailable) throw new ProviderCallError(`Image Unavailable: ${imageMessage.message}.`);
  if (imageMessage) ctx.log(`warning: Image Deprecated: ${imageMessage.message}.`);
  const location = str(inputs, "location");
  const typeMessage = serverTypeDeprecationMessage(type, location ?? "", world.now());
  // L364-379: an unavailable type is an error before the API is asked; a deprecated one a warning.
  const changeTypeHint =
    'Existing servers of that plan will continue to work as before and no action is required on your part. It is possible to migrate this Server to another Server Type by using the "hcloud server change-type" command.';
  if (typeMessage?.unavailable) throw new ProviderCallError(`${typeMessage.message}: ${changeTypeHint}`);
  if (typeMessage) ctx.log(`warning: ${typeMessage.message}`);
  const sshKeys = ((val(inputs, "sshKeys") as unknown[] | undefined) ?? []).map(String);
  // L1107-1122 getSSHkeys: each entry by id or name.
  for (const k of sshKeys) if (!world.getSshKey(k)) throw new ProviderCallError(`SSH key not found: ${k}`);
  let publicNet: PublicNetOpts | undefined;
  const nets = val(inputs, "publicNets");
  if (Array.isArray(nets) && nets.length > 0) {
    // L411-439: each given id enables its family.
    publicNet = { enableIpv4: true, enableIpv6: true };
    for (const n of nets as Record<string, unknown>[]) {
      if (n.ipv4Enabled !== undefined) publicNet.enableIpv4 = n.ipv4Enabled === true;
      if (n.ipv6Enabled !== undefined) publicNet.enableIpv6 = n.ipv6Enabled === true;
      if (n.ipv4) publicNet = { ...publicNet, enableIpv4: true, ipv4: Number(n.ipv4) };
      if (n.ipv6) publicNet = { ...publicNet, enableIpv6: true, ipv6: Number(n.ipv6) };
    }
  }
  const server = await api("sdkv2", () =>
    world.createServer({
      name: str(inputs, "name")!,
      serverType: typeName,
      image: img.name,
      ...(location ? { location } : {}),
      userData: str(inputs, "userData") ?? "",
      sshKeys,
      labels: labels(inputs),
      firewalls: ((val(inputs, "firewallIds") as unknown[] | undefined) ?? []).map(Number),
      ...(publicNet ? { publicNet, startAfterCreate: publicNet.enableIpv4 || publicNet.enableIpv6 } : {}),
    }),
  );
  // L508-515: protection only when asked for.
  if (bool(inputs, "deleteProtection") || bool(inputs, "rebuildProtection")) {
    await api("sdkv2", () =>
      world.changeServerProtection(server.id, { delete: bool(inputs, "deleteProtection"), rebuild: bool(inputs, "rebuildProtection") }),
    );
  }
  return { id: String(server.id), computed: serverAttributes(world, server, imageName) };
}

// ------------------------------------------------------------------------------ read

/**
 * What a Read puts into the state: the resource's attributes from the API, or undefined when it is
 * gone. Import ids per hetzner.md sec. 6.
 */
async function readResource(
  world: HcloudWorld,
  type: string,
  id: string,
  outputs?: PropertyMap,
): Promise<{ id: string; computed: PropertyMap } | undefined> {
  switch (type) {
    case SERVER: {
      // Import passthrough; Server.Get accepts a name too and the id becomes the number.
      const server = world.getServer(id);
      if (!server) return undefined;
      return { id: String(server.id), computed: serverAttributes(world, server, outputs ? str(outputs, "image") : undefined) };
    }
    case PRIMARY_IP: {
      const ip = world.getPrimaryIp(parseIntId(id, "$PRIMARY_IP_ID"));
      return ip ? { id: String(ip.id), computed: primaryIpAttributes(world, ip) } : undefined;
    }
    case RDNS: {
      // rdns/resource.go Read L217-298: the parent or the PTR entry gone -> removed from state.
      const parsed = parseRdnsId(id);
      const map =
        parsed.prefix === "p"
          ? world.getPrimaryIp(parsed.parentId)?.dnsPtr
          : (() => {
              const s = world.getServer(parsed.parentId);
              const ips = s ? [s.ipv4Id, s.ipv6Id].map((i) => (i === undefined ? undefined : world.getPrimaryIp(i))) : [];
              return ips.find((p) => p?.dnsPtr.has(parsed.ip))?.dnsPtr;
            })();
      const ptr = map?.get(parsed.ip);
      if (ptr === undefined) return undefined;
      return {
        id,
        computed: { [parsed.prefix === "p" ? "primaryIpId" : "serverId"]: parsed.parentId, ipAddress: parsed.ip, dnsPtr: ptr },
      };
    }
    case VOLUME: {
      const volume = world.getVolume(parseIntId(id, "$VOLUME_ID"));
      return volume ? { id: String(volume.id), computed: volumeAttributes(volume) } : undefined;
    }
    case VOLUME_ATTACHMENT: {
      // resource_attachment.go Read L92-142: gone or detached -> removed; server_id from the volume.
      const volume = world.getVolume(parseIntId(id, "$VOLUME_ID"));
      if (!volume || volume.serverId === undefined) return undefined;
      return { id, computed: { volumeId: volume.id, serverId: volume.serverId } };
    }
    case FIREWALL: {
      const firewall = world.getFirewall(parseIntId(id, "$FIREWALL_ID"));
      return firewall ? { id, computed: firewallAttributes(world, firewall.id) } : undefined;
    }
    case SSH_KEY: {
      const key = world.getSshKey(parseIntId(id, "$SSH_KEY_ID"));
      return key
        ? { id: String(key.id), computed: { name: key.name, publicKey: key.publicKey, fingerprint: key.fingerprint, labels: key.labels } }
        : undefined;
    }
    case STORAGE_BOX: {
      // storagebox/resource.go ImportState L601-624: by id or name; ssh_keys forced to [] (the API
      // does not return them); the password is never read.
      const box = world.getStorageBox(id);
      if (!box) return undefined;
      const computed = storageBoxAttributes(box);
      if (!outputs) computed.sshKeys = [];
      return { id: String(box.id), computed };
    }
    case STORAGE_BOX_SUBACCOUNT: {
      // storageboxsubaccount/resource.go ImportState L452-477: `$STORAGE_BOX_ID/$SUBACCOUNT_ID`.
      const m = /^(\d+)\/(\d+)$/.exec(id);
      const boxId = m ? Number(m[1]) : outputs ? num(outputs, "storageBoxId") : undefined;
      const subId = m ? Number(m[2]) : /^\d+$/.test(id) ? Number(id) : undefined;
      if (boxId === undefined || subId === undefined) throw invalidImportId("$STORAGE_BOX_ID/$SUBACCOUNT_ID", id);
      const sub = world.getSubaccount(boxId, subId);
      return sub ? { id: String(sub.id), computed: subaccountAttributes(sub) } : undefined;
    }
  }
  throw new ProviderCallError(`hcloud stand-in: no read for ${type}`);
}

// ------------------------------------------------------------------------------ update

async function updateResource(
  world: HcloudWorld,
  ctx: CallContext,
  type: string,
  id: string,
  oldOutputs: PropertyMap,
  news: PropertyMap,
  changed: Set<string>,
): Promise<PropertyMap> {
  switch (type) {
    case SERVER:
      return updateServer(world, ctx, Number(id), oldOutputs, news, changed);
    case PRIMARY_IP: {
      // primaryip/resource.go Update L293-395: protection, then assignee (unassign, then assign;
      // no power-off here, so a running server fails server_not_stopped), then the PUT.
      const ipId = Number(id);
      if (changed.has("deleteProtection")) await api("pf", () => world.changePrimaryIpProtection(ipId, bool(news, "deleteProtection")));
      if (changed.has("assigneeId") || changed.has("assigneeType")) {
        const oldAssignee = num(oldOutputs, "assigneeId") ?? 0;
        if (oldAssignee !== 0) await api("pf", () => world.unassignPrimaryIp(ipId));
        const newAssignee = num(news, "assigneeId") ?? 0;
        if (newAssignee !== 0) await api("pf", () => world.assignPrimaryIp(ipId, newAssignee));
      }
      const ip = await api("pf", () =>
        world.updatePrimaryIp(ipId, {
          ...(changed.has("name") ? { name: str(news, "name") } : {}),
          ...(changed.has("labels") ? { labels: labels(news) } : {}),
          ...(changed.has("autoDelete") ? { autoDelete: bool(news, "autoDelete") } : {}),
        }),
      );
      return primaryIpAttributes(world, ip);
    }
    case RDNS: {
      // rdns/resource.go Update L300-339: only the PTR can change in place.
      const parsed = parseRdnsId(id);
      if (changed.has("dnsPtr")) {
        const ptr = str(news, "dnsPtr")!;
        await api("pf", () =>
          parsed.prefix === "p"
            ? world.changePrimaryIpDnsPtr(parsed.parentId, parsed.ip, ptr)
            : world.changeServerDnsPtr(parsed.parentId, parsed.ip, ptr),
        );
      }
      return {};
    }
    case VOLUME: {
      // volume/resource.go Update L200-329: name, server_id (detach, attach), size, labels, protection.
      const volumeId = Number(id);
      if (changed.has("name")) await api("sdkv2", () => world.updateVolume(volumeId, { name: str(news, "name") }));
      if (changed.has("serverId")) {
        const serverId = num(news, "serverId") ?? 0;
        if (world.getVolume(volumeId)?.serverId !== undefined) await api("sdkv2", () => world.detachVolume(volumeId));
        if (serverId !== 0) await api("sdkv2", () => world.attachVolume(volumeId, serverId));
      }
      if (changed.has("size")) await api("sdkv2", () => world.resizeVolume(volumeId, num(news, "size")!));
      if (changed.has("labels")) await api("sdkv2", () => world.updateVolume(volumeId, { labels: labels(news) }));
      if (changed.has("deleteProtection")) await api("sdkv2", () => world.changeVolumeProtection(volumeId, bool(news, "deleteProtection")));
      return volumeAttributes(world.getVolume(volumeId)!);
    }
    case VOLUME_ATTACHMENT:
      // resource_attachment.go has no UpdateContext: terraform-plugin-sdk helper/schema/resource.go
      // Resource.Apply refuses an in-place change ("doesn't support update").
      throw new ProviderCallError(
        `doesn't support update: ${VOLUME_ATTACHMENT} has no Update; change ${[...changed].join(", ")} by replacing it`,
      );
    case FIREWALL: {
      // firewall/resource.go Update L276-355.
      const firewallId = Number(id);
      if (changed.has("name") || changed.has("labels")) {
        await api("sdkv2", () =>
          world.updateFirewall(firewallId, { ...(changed.has("name") ? { name: str(news, "name") } : {}), labels: labels(news) }),
        );
      }
      if (changed.has("rules")) await api("sdkv2", () => world.setFirewallRules(firewallId, toRules(val(news, "rules"))));
      if (changed.has("applyTos")) {
        const wanted = applyToServers(news);
        for (const s of world.firewallAppliedTo(firewallId))
          if (!wanted.includes(s)) await api("sdkv2", () => world.removeFirewall(firewallId, s));
        for (const s of wanted)
          if (!world.firewallAppliedTo(firewallId).includes(s)) await api("sdkv2", () => world.applyFirewall(firewallId, s));
      }
      return firewallAttributes(world, firewallId);
    }
    case SSH_KEY: {
      const key = await api("pf", () => world.updateSshKey(Number(id), { name: str(news, "name"), labels: labels(news) }));
      return { fingerprint: key.fingerprint, labels: key.labels };
    }
    case STORAGE_BOX: {
      // storagebox/resource.go Update L383-555.
      const boxId = Number(id);
      if (changed.has("deleteProtection")) await api("pf", () => world.changeStorageBoxProtection(boxId, bool(news, "deleteProtection")));
      if (changed.has("snapshotPlan")) {
        const plan = val(news, "snapshotPlan");
        await api("pf", () => world.setStorageBoxSnapshotPlan(boxId, isPlainObject(plan) ? (plan as never) : undefined));
      }
      if (changed.has("storageBoxType")) await api("pf", () => world.changeStorageBoxType(boxId, str(news, "storageBoxType")!));
      if (changed.has("password")) await api("pf", () => world.resetStorageBoxPassword(boxId, str(news, "password")!));
      if (changed.has("accessSettings"))
        await api("pf", () => world.updateStorageBoxAccessSettings(boxId, (val(news, "accessSettings") as never) ?? {}));
      if (changed.has("name") || changed.has("labels"))
        await api("pf", () => world.updateStorageBox(boxId, { name: str(news, "name"), labels: labels(news) }));
      return storageBoxAttributes(world.mustStorageBox(boxId));
    }
    case STORAGE_BOX_SUBACCOUNT: {
      // storageboxsubaccount/resource.go Update L309-424: password reset, access settings, the rest by PUT.
      const boxId = num(news, "storageBoxId")!;
      const subId = Number(id);
      if (changed.has("password")) await api("pf", () => world.resetSubaccountPassword(boxId, subId, str(news, "password")!));
      const sub = await api("pf", () =>
        world.updateSubaccount(boxId, subId, {
          ...(changed.has("accessSettings") ? { accessSettings: (val(news, "accessSettings") as object) ?? {} } : {}),
          ...(changed.has("description") ? { description: str(news, "description") ?? "" } : {}),
          ...(changed.has("homeDirectory") ? { homeDirectory: str(news, "homeDirectory")! } : {}),
          ...(changed.has("labels") ? { labels: labels(news) } : {}),
          ...(changed.has("name") && !isAbsent(val(news, "name")) ? { name: str(news, "name") } : {}),
        }),
      );
      return subaccountAttributes(sub);
    }
  }
  throw new ProviderCallError(`hcloud stand-in: no update for ${type}`);
}

/** server/resource.go resourceServerUpdate L546-734. */
async function updateServer(
  world: HcloudWorld,
  ctx: CallContext,
  id: number,
  oldOutputs: PropertyMap,
  news: PropertyMap,
  changed: Set<string>,
): Promise<PropertyMap> {
  const server = world.getServer(id);
  if (!server) throw new ProviderCallError(`server with ID ${id} not found (not_found)`, "not_found");
  if (changed.has("name")) await api("sdkv2", () => world.updateServer(id, { name: str(news, "name") }));
  if (changed.has("labels")) await api("sdkv2", () => world.updateServer(id, { labels: labels(news) }));
  if (changed.has("serverType")) {
    // L587-611: power off if running, change_type with upgrade_disk = !keep_disk.
    if (server.status === "running") await api("sdkv2", () => world.poweroffServer(id));
    await api("sdkv2", () => world.changeServerType(id, str(news, "serverType")!, !bool(news, "keepDisk")));
  }
  if (changed.has("firewallIds")) {
    // L645-708: remove the firewalls not listed, then apply the new ones.
    const wanted = ((val(news, "firewallIds") as unknown[] | undefined) ?? []).map(Number);
    for (const f of [...server.firewallIds]) if (!wanted.includes(f)) await api("sdkv2", () => world.removeFirewall(f, id));
    for (const f of wanted) if (!server.firewallIds.includes(f)) await api("sdkv2", () => world.applyFirewall(f, id));
  }
  if (changed.has("publicNets")) await updatePublicNet(world, server, val(oldOutputs, "publicNets"), val(news, "publicNets"));
  if (changed.has("deleteProtection") || changed.has("rebuildProtection")) {
    await api("sdkv2", () =>
      world.changeServerProtection(id, { delete: bool(news, "deleteProtection"), rebuild: bool(news, "rebuildProtection") }),
    );
  }
  ctx.log(`server ${id} updated (${[...changed].join(", ")})`);
  return serverAttributes(world, world.getServer(id)!, str(news, "image"));
}

/**
 * server/resource.go updatePublicNet L736-835 and publicNetUpdateDecision L837-918: always a hard
 * power-off first and a power-on last. An IP named in the new block replaces the server's current
 * IP of that family; that current IP is DELETED when the old block did not name it (TF #1381).
 */
async function updatePublicNet(world: HcloudWorld, server: ServerRecord, oldNets: unknown, newNets: unknown): Promise<void> {
  const norm = (v: unknown) =>
    normalisePublicNets(Array.isArray(v) ? v : []) as { ipv4Enabled: boolean; ipv6Enabled: boolean; ipv4: number; ipv6: number }[];
  const olds = norm(oldNets);
  const news = norm(newNets);
  const key = (n: object) => JSON.stringify(n);
  const removed = olds.filter((o) => !news.some((n) => key(n) === key(o)));
  const added = news.filter((n) => !olds.some((o) => key(n) === key(o)));
  let ipv4ToRemove = 0;
  let ipv6ToRemove = 0;
  let ipv4EnabledBefore = true;
  let ipv6EnabledBefore = true;
  for (const r of removed) {
    ipv4ToRemove = r.ipv4;
    ipv6ToRemove = r.ipv6;
    ipv4EnabledBefore = r.ipv4Enabled;
    ipv6EnabledBefore = r.ipv6Enabled;
  }
  await api("sdkv2", () => world.poweroffServer(server.id));
  const powerOn = () => api("sdkv2", () => world.poweronServer(server.id));
  if (added.length === 0) {
    for (const family of ["ipv4", "ipv6"] as const) {
      const toRemove = family === "ipv4" ? ipv4ToRemove : ipv6ToRemove;
      const current = family === "ipv4" ? server.ipv4Id : server.ipv6Id;
      if (current !== undefined && toRemove !== 0) {
        if (current !== toRemove)
          throw new ProviderCallError(
            `Assigned ${family === "ipv4" ? "IPv4" : "IPv6"} changed between plan and apply, please check and generate a new plan`,
          );
        await api("sdkv2", () => world.unassignPrimaryIp(current));
        await createRandomPrimaryIp(world, server, family);
      }
    }
  }
  for (const n of added) {
    for (const family of ["ipv4", "ipv6"] as const) {
      const enabled = family === "ipv4" ? n.ipv4Enabled : n.ipv6Enabled;
      const wantedId = family === "ipv4" ? n.ipv4 : n.ipv6;
      const removedId = family === "ipv4" ? ipv4ToRemove : ipv6ToRemove;
      const enabledBefore = family === "ipv4" ? ipv4EnabledBefore : ipv6EnabledBefore;
      const current = family === "ipv4" ? server.ipv4Id : server.ipv6Id;
      try {
        if (enabled && wantedId !== 0) {
          if (current !== undefined && current !== wantedId) {
            await api("sdkv2", () => world.unassignPrimaryIp(current));
            if (removedId === 0) await api("sdkv2", () => world.deletePrimaryIp(current));
          }
          if (current !== wantedId) await api("sdkv2", () => world.assignPrimaryIp(wantedId, server.id));
        } else if (!enabled && wantedId === 0) {
          if (current !== undefined) {
            await api("sdkv2", () => world.unassignPrimaryIp(current));
            if (removedId === 0) await api("sdkv2", () => world.deletePrimaryIp(current));
          }
        } else if (enabled && wantedId === 0) {
          if (enabledBefore && removedId !== 0) await api("sdkv2", () => world.unassignPrimaryIp(removedId));
          if ((!enabledBefore && removedId === 0) || (enabledBefore && removedId !== 0)) {
            await createRandomPrimaryIp(world, server, family);
          }
        } else {
          throw new ProviderCallError(`this operation is not allowed: ipv4_enabled = false | ipv4 = ${wantedId}`);
        }
      } catch (error) {
        await powerOn();
        throw error;
      }
    }
  }
  await powerOn();
}

/**
 * internal/primaryip/helpers.go CreateRandomPrimaryIP L48-66: `primary_ip-<7 random digits>`,
 * created already assigned to the (stopped) server, auto-deleted with it.
 */
async function createRandomPrimaryIp(world: HcloudWorld, server: ServerRecord, family: "ipv4" | "ipv6"): Promise<void> {
  const name = `primary_ip-${String(randomInt(1_000_000, 10_000_000))}`;
  await api("sdkv2", () => world.createPrimaryIp({ name, type: family, assigneeId: server.id, autoDelete: true }));
}

// ------------------------------------------------------------------------------ delete

async function deleteResource(world: HcloudWorld, ctx: CallContext, type: string, id: string, oldOutputs: PropertyMap): Promise<void> {
  switch (type) {
    case SERVER: {
      // server/resource.go Delete L920-979: optional ACPI shutdown and a bounded wait, then delete.
      const serverId = Number(id);
      if (!world.getServer(serverId)) return;
      if (bool(oldOutputs, "shutdownBeforeDeletion")) {
        await api("sdkv2", () => world.shutdownServer(serverId));
        if (world.getServer(serverId)?.status !== "off")
          ctx.log(`warning: Server id ${serverId} did not finish shutting down gracefully in time, deleting it anyways.`);
      }
      await api("sdkv2", () => world.deleteServer(serverId));
      return;
    }
    case PRIMARY_IP: {
      // primaryip/resource.go Delete L397-475: by the STATE's assignee: only when that server still
      // holds this IP: power off, unassign, power on (errors ignored); then delete, not_found ok,
      // protected aborts.
      const ipId = Number(id);
      const assignee = num(oldOutputs, "assigneeId") ?? 0;
      if (assignee !== 0) {
        const server = world.getServer(assignee);
        if (server && (server.ipv4Id === ipId || server.ipv6Id === ipId)) {
          await world.poweroffServer(assignee).catch(() => undefined);
          await world.unassignPrimaryIp(ipId).catch(() => undefined);
          await world.poweronServer(assignee).catch(() => undefined);
        }
      }
      if (!world.getPrimaryIp(ipId)) return;
      await api("pf", () => world.deletePrimaryIp(ipId));
      return;
    }
    case RDNS: {
      // rdns/resource.go Delete L341-373: change_dns_ptr(ip, null) resets the PTR; not_found ignored.
      const parsed = parseRdnsId(id);
      try {
        if (parsed.prefix === "p") await world.changePrimaryIpDnsPtr(parsed.parentId, parsed.ip, null);
        else await world.changeServerDnsPtr(parsed.parentId, parsed.ip, null);
      } catch (error) {
        if (error instanceof HcloudApiError && error.code === "not_found") return;
        apiFailure("pf", error);
      }
      return;
    }
    case VOLUME: {
      // volume/resource.go Delete L331-380: detach if attached, then delete; not_found ok.
      const volumeId = Number(id);
      const volume = world.getVolume(volumeId);
      if (!volume) return;
      if (volume.serverId !== undefined) await api("sdkv2", () => world.detachVolume(volumeId));
      await api("sdkv2", () => world.deleteVolume(volumeId));
      return;
    }
    case VOLUME_ATTACHMENT: {
      // resource_attachment.go Delete L144-185: detach from whichever server holds it.
      const volume = world.getVolume(Number(id));
      if (volume?.serverId !== undefined) await api("sdkv2", () => world.detachVolume(volume.id));
      return;
    }
    case FIREWALL: {
      // firewall/resource.go Delete L413-455: remove from every resource, then delete.
      const firewallId = Number(id);
      if (!world.getFirewall(firewallId)) return;
      for (const s of world.firewallAppliedTo(firewallId)) await api("sdkv2", () => world.removeFirewall(firewallId, s));
      await api("sdkv2", () => world.deleteFirewall(firewallId));
      return;
    }
    case SSH_KEY:
      if (world.getSshKey(Number(id))) await api("pf", () => world.deleteSshKey(Number(id)));
      return;
    case STORAGE_BOX: {
      // storagebox/resource.go Delete L557-599: clears its own delete protection first.
      const box = world.getStorageBox(Number(id));
      if (!box) return;
      if (box.deleteProtection) await api("pf", () => world.changeStorageBoxProtection(box.id, false));
      await api("pf", () => world.deleteStorageBox(box.id));
      return;
    }
    case STORAGE_BOX_SUBACCOUNT: {
      const boxId = num(oldOutputs, "storageBoxId")!;
      if (world.getSubaccount(boxId, Number(id))) await api("pf", () => world.deleteSubaccount(boxId, Number(id)));
      return;
    }
  }
  throw new ProviderCallError(`hcloud stand-in: no delete for ${type}`);
}

// ------------------------------------------------------------------------------ attributes

/** server/resource.go getServerAttributes L1239-1304 (public_net, user_data, ssh_keys are not read). */
function serverAttributes(world: HcloudWorld, server: ServerRecord, configuredImage?: string): PropertyMap {
  const v4 = server.ipv4Id !== undefined ? world.getPrimaryIp(server.ipv4Id) : undefined;
  const v6 = server.ipv6Id !== undefined ? world.getPrimaryIp(server.ipv6Id) : undefined;
  return {
    name: server.name,
    location: server.location,
    status: server.status,
    serverType: server.type.name,
    ipv6Network: v6 ? ipv6Network(v6) : "<nil>",
    backupWindow: server.backupWindow ?? "",
    backups: server.backupWindow !== undefined,
    labels: server.labels,
    deleteProtection: server.deleteProtection,
    rebuildProtection: server.rebuildProtection,
    firewallIds: [...server.firewallIds],
    primaryDiskSize: server.primaryDiskSize,
    ipv4Address: v4 ? v4.ip : null,
    ipv6Address: v6 ? `${v6.ip}1` : null,
    // Official images are stored by name unless the program named the image by its id.
    image: configuredImage === String(server.image.id) ? String(server.image.id) : server.image.name,
  };
}

/** primaryip/model.go FromAPI: `ip_address` of an IPv6 is the network address; `ip_network` the /64. */
function primaryIpAttributes(world: HcloudWorld, ip: PrimaryIpRecord): PropertyMap {
  return {
    name: ip.name,
    type: ip.type,
    location: ip.location,
    assigneeId: ip.assigneeId ?? 0,
    assigneeType: world.assigneeType(ip),
    autoDelete: ip.autoDelete,
    deleteProtection: ip.deleteProtection,
    labels: ip.labels,
    ipAddress: ip.ip,
    ...(ip.type === "ipv6" ? { ipNetwork: ipv6Network(ip) } : {}),
  };
}

/** volume/resource.go getVolumeAttributes L395-411: server_id only when attached; format and automount never read. */
function volumeAttributes(volume: VolumeRecord): PropertyMap {
  return {
    name: volume.name,
    size: volume.size,
    location: volume.location,
    labels: volume.labels,
    linuxDevice: `/dev/disk/by-id/scsi-0HC_Volume_${volume.id}`,
    deleteProtection: volume.deleteProtection,
    ...(volume.serverId !== undefined ? { serverId: volume.serverId } : {}),
  };
}

function firewallAttributes(world: HcloudWorld, id: number): PropertyMap {
  const f = world.getFirewall(id)!;
  return {
    name: f.name,
    labels: f.labels,
    rules: f.rules.map((r) => ({
      direction: r.direction,
      protocol: r.protocol,
      ...(r.port ? { port: r.port } : {}),
      sourceIps: r.sourceIps,
      destinationIps: r.destinationIps,
      ...(r.description ? { description: r.description } : {}),
    })),
    applyTos: world.firewallAppliedTo(id).map((server) => ({ server })),
  };
}

function storageBoxAttributes(box: StorageBoxRecord): PropertyMap {
  return {
    name: box.name,
    storageBoxType: box.type,
    location: box.location,
    sshKeys: [...box.sshKeys],
    accessSettings: { ...box.accessSettings },
    ...(box.snapshotPlan ? { snapshotPlan: { ...box.snapshotPlan } } : {}),
    labels: box.labels,
    deleteProtection: box.deleteProtection,
    server: box.server,
    system: box.system,
    username: box.username,
  };
}

function subaccountAttributes(sub: SubaccountRecord): PropertyMap {
  return {
    storageBoxId: sub.storageBoxId,
    name: sub.name,
    description: sub.description,
    homeDirectory: sub.homeDirectory,
    accessSettings: { ...sub.accessSettings },
    labels: sub.labels,
    server: sub.server,
    username: sub.username,
  };
}

function toRules(value: unknown): FirewallRule[] {
  return ((Array.isArray(value) ? value : []) as Record<string, unknown>[]).map((r) => ({
    direction: r.direction as FirewallRule["direction"],
    protocol: r.protocol as FirewallRule["protocol"],
    ...(r.port ? { port: String(r.port) } : {}),
    sourceIps: ((r.sourceIps as string[] | undefined) ?? []).map(String),
    destinationIps: ((r.destinationIps as string[] | undefined) ?? []).map(String),
    ...(r.description ? { description: String(r.description) } : {}),
  }));
}

function applyToServers(inputs: PropertyMap): number[] {
  const applyTos = val(inputs, "applyTos");
  return ((Array.isArray(applyTos) ? applyTos : []) as Record<string, unknown>[])
    .filter((a) => !isAbsent(a.server))
    .map((a) => Number(a.server));
}

function rdnsParent(inputs: PropertyMap): { prefix: "p" | "s"; parentId: number } {
  if (!isAbsent(val(inputs, "primaryIpId"))) return { prefix: "p", parentId: num(inputs, "primaryIpId")! };
  if (!isAbsent(val(inputs, "serverId"))) return { prefix: "s", parentId: num(inputs, "serverId")! };
  throw new ProviderCallError(
    "the hcloud stand-in models reverse DNS of primary IPs and servers only (floating IPs and load balancers are not modelled)",
  );
}

/** rdns/common.go ParseID: `<s|p|f|l>-<id>-<ip>`. */
function parseRdnsId(id: string): { prefix: "p" | "s"; parentId: number; ip: string } {
  const m = /^([spfl])-(\d+)-(.+)$/.exec(id);
  if (!m || !isIP(m[3])) throw new ProviderCallError(`Invalid ID: Invalid id (${id}): expected <s|p|f|l>-<resource id>-<ip address>`);
  if (m[1] === "f" || m[1] === "l") throw new ProviderCallError("the hcloud stand-in models reverse DNS of primary IPs and servers only");
  return { prefix: m[1] as "p" | "s", parentId: Number(m[2]), ip: canonicalIp(m[3]) };
}
