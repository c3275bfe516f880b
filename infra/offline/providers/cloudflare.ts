// @pulumi/cloudflare 6.x DnsRecord (terraform-provider-cloudflare v5 `dns_record`, plugin
// framework, bridged) and the getZone invoke, as a stand-in over a CloudflareWorld. Facts and
// sources: /work/research/cloudflare.md; TF = cloudflare/terraform-provider-cloudflare v5.22.0
// internal/services/dns_record/{schema,resource,custom}.go.
import { Unknown, type CheckFailure, type DiffResult, type PropertyMap, type ProviderStandIn } from "../model";
import { bridgedCheck, bridgedDiff, bridgedOutputs, type BridgedResourceSchema } from "./bridge";
import { CloudflareApiError, CloudflareWorld, recordName, type CloudflareRecord, type RecordBody } from "./cloudflare-world";
import { containsUnknown, isAbsent, isPlainObject, ProviderCallError, reveal } from "./property";

export { CloudflareWorld, CloudflareApiError } from "./cloudflare-world";
export type { CloudflareRecord, CloudflareZone, CloudflareWorldOptions, RecordChange } from "./cloudflare-world";

export const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";
export const GET_ZONE = "cloudflare:index/getZone:getZone";

/**
 * sec. 9: RequiresReplace on zone_id and type only (schema.go L44-47, L70-98); name, content, ttl,
 * proxied and the rest update in place. content, proxied, tags and settings are computed_optional.
 */
export const dnsRecordSchema: BridgedResourceSchema = {
  framework: "pf",
  properties: {
    zoneId: { forceNew: true },
    name: {},
    type: { forceNew: true },
    content: { computed: true },
    data: {},
    priority: {},
    ttl: {},
    proxied: { computed: true, default: false },
    comment: {},
    tags: { computed: true, set: true },
    settings: { computed: true },
    privateRouting: {},
    createdOn: { outputOnly: true },
    modifiedOn: { outputOnly: true },
    proxiable: { outputOnly: true },
    meta: { outputOnly: true },
    commentModifiedOn: { outputOnly: true },
    tagsModifiedOn: { outputOnly: true },
  },
};

const REQUIRED = ["zoneId", "name", "type", "ttl"];
const API_BASE = "https://api.cloudflare.com/client/v4";
const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict" };

/**
 * cloudflare-go v6 internal/apierror/apierror.go L40-42 (`<METHOD> "<url>": <status> <text> <body>`),
 * prefixed by the provider's "failed to make http request" (cloudflare.md sec. 8).
 */
function requestFailure(method: string, path: string, error: unknown): never {
  if (!(error instanceof CloudflareApiError)) throw error;
  throw new ProviderCallError(
    `failed to make http request: ${method} "${API_BASE}${path}": ${error.status} ${STATUS_TEXT[error.status] ?? ""} ${JSON.stringify(error.body)}`,
    String(error.errors[0]?.code ?? error.status),
  );
}

async function request<T>(method: string, path: string, call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (error) {
    requestFailure(method, path, error);
  }
}

/** Pulumi's camelCase data keys as the API spells them (`matchingType` -> `matching_type`). */
function apiData(data: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(data)) return undefined;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

function pulumiData(data: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!data) return undefined;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()), v]));
}

function body(inputs: PropertyMap): RecordBody {
  const v = (k: string) => reveal(inputs[k]);
  return {
    type: v("type"),
    name: v("name"),
    ...(isAbsent(v("content")) ? {} : { content: v("content") }),
    ...(isAbsent(v("data")) ? {} : { data: apiData(v("data")) }),
    ttl: v("ttl"),
    proxied: v("proxied") === true,
    ...(isAbsent(v("comment")) ? {} : { comment: v("comment") }),
    ...(isAbsent(v("priority")) ? {} : { priority: v("priority") }),
    ...(Array.isArray(v("tags")) ? { tags: v("tags") } : {}),
  };
}

/** What Create/Update store from the API: computed fields only (TF apijson.UnmarshalComputed; sec. 9). */
function computedFromApi(record: CloudflareRecord, inputs: PropertyMap, keepContent?: unknown): PropertyMap {
  const out: PropertyMap = {
    createdOn: record.created_on,
    modifiedOn: record.modified_on,
    proxiable: record.proxiable,
    meta: record.meta,
    settings: record.settings,
    ...(record.comment_modified_on ? { commentModifiedOn: record.comment_modified_on } : {}),
  };
  if (isAbsent(reveal(inputs.content))) out.content = keepContent ?? record.content;
  if (isAbsent(reveal(inputs.tags))) out.tags = record.tags;
  if (isAbsent(reveal(inputs.proxied))) out.proxied = record.proxied;
  return out;
}

/** What Read stores: the API's values verbatim (resource.go L193, L272). */
function stateFromApi(record: CloudflareRecord): PropertyMap {
  return {
    zoneId: record.zone_id,
    name: record.name,
    type: record.type,
    content: record.content,
    ...(record.data ? { data: pulumiData(record.data) } : {}),
    ...(record.priority !== undefined ? { priority: record.priority } : {}),
    ttl: record.ttl,
    proxied: record.proxied,
    ...(record.comment !== null ? { comment: record.comment } : {}),
    tags: record.tags,
    settings: record.settings,
    createdOn: record.created_on,
    modifiedOn: record.modified_on,
    proxiable: record.proxiable,
    meta: record.meta,
    ...(record.comment_modified_on ? { commentModifiedOn: record.comment_modified_on } : {}),
  };
}

export function cloudflareStandIn(world: CloudflareWorld): Required<Pick<ProviderStandIn, "invoke">> & ProviderStandIn {
  const mustBeRecord = (type: string) => {
    if (type !== DNS_RECORD) throw new ProviderCallError(`the cloudflare stand-in has no resource type ${type} (it models ${DNS_RECORD})`);
  };
  return {
    pkg: "cloudflare",

    async check(ctx, type, olds, news) {
      mustBeRecord(type);
      const failures: CheckFailure[] = [];
      for (const k of REQUIRED) if (isAbsent(news[k])) failures.push({ property: k, reason: `Missing required argument: ${k}` });
      // schema.go L53-59, L101-106: content ConflictsWith data.
      if (!isAbsent(news.content) && !isAbsent(news.data)) {
        failures.push({ property: "content", reason: 'Attribute "content" cannot be specified when "data" is specified' });
      }
      return { inputs: bridgedCheck(dnsRecordSchema, ctx.urn, olds, news), failures };
    },

    async diff(_ctx, type, _id, oldInputs, oldOutputs, news, ignoreChanges): Promise<DiffResult> {
      mustBeRecord(type);
      const result = bridgedDiff(dnsRecordSchema, oldInputs, oldOutputs, news, ignoreChanges);
      // custom.go ModifyPlan L96-170: a plan name that is the state's name without the zone is
      // drift, not a rename; so is a CNAME target differing only in case.
      const zone = world.zones.get(String(reveal(oldOutputs.zoneId)))?.name;
      const planName = reveal(news.name);
      const stateName = reveal(oldOutputs.name);
      const hide = (key: string) => {
        result.changedKeys = result.changedKeys.filter((k) => k !== key);
        for (const k of Object.keys(result.detailedDiff)) if (k === key || k.startsWith(`${key}.`)) delete result.detailedDiff[k];
      };
      if (typeof planName === "string" && typeof stateName === "string" && planName !== stateName) {
        const trimmed = planName.replace(/\.$/, "");
        if ((trimmed === "@" && stateName.includes(".")) || (zone !== undefined && stateName === `${trimmed}.${zone}`)) hide("name");
      }
      const planContent = reveal(news.content);
      const stateContent = reveal(oldOutputs.content);
      if (
        reveal(news.type) === "CNAME" &&
        typeof planContent === "string" &&
        typeof stateContent === "string" &&
        planContent.toLowerCase() === stateContent.toLowerCase()
      ) {
        hide("content");
      }
      result.changes = result.changedKeys.length > 0 ? "some" : "none";
      return result;
    },

    async create(ctx, type, inputs) {
      mustBeRecord(type);
      if (ctx.preview) {
        const unknown: PropertyMap = {
          createdOn: Unknown,
          modifiedOn: Unknown,
          proxiable: Unknown,
          meta: Unknown,
          settings: Unknown,
          commentModifiedOn: Unknown,
        };
        if (isAbsent(inputs.content)) unknown.content = Unknown;
        if (isAbsent(inputs.tags)) unknown.tags = Unknown;
        return { id: Unknown, outputs: bridgedOutputs(dnsRecordSchema, inputs, unknown) };
      }
      if (containsUnknown(inputs)) throw new ProviderCallError(`${DNS_RECORD}: inputs are still unknown outside preview`);
      refuseProxiedTtl(inputs);
      const zoneId = String(reveal(inputs.zoneId));
      const record = await request("POST", `/zones/${zoneId}/dns_records`, () => world.createRecord(zoneId, body(inputs)));
      return { id: record.id, outputs: bridgedOutputs(dnsRecordSchema, inputs, computedFromApi(record, inputs)) };
    },

    async read(_ctx, type, id, inputs, outputs) {
      mustBeRecord(type);
      // Import id `<zone_id>/<dns_record_id>`; a refresh knows the zone from the state. 404 -> gone (resource.go L183).
      const m = /^([0-9a-f]{32})\/([0-9a-f]{32})$/.exec(id);
      const zoneId = m ? m[1] : outputs ? String(reveal(outputs.zoneId)) : undefined;
      const recordId = m ? m[2] : id;
      if (!zoneId) throw new ProviderCallError(`Invalid import ID: expected <zone_id>/<dns_record_id>, got ${id}`);
      let record: CloudflareRecord;
      try {
        record = world.getRecord(zoneId, recordId);
      } catch (error) {
        if (error instanceof CloudflareApiError && error.status === 404) return undefined;
        requestFailure("GET", `/zones/${zoneId}/dns_records/${recordId}`, error);
      }
      const state = stateFromApi(record);
      const imported: PropertyMap = {};
      for (const k of ["zoneId", "name", "type", "ttl", ...(record.data ? ["data"] : ["content"]), "priority", "comment", "proxied"]) {
        if (k in state && !(k === "proxied" && state[k] === false)) imported[k] = state[k];
      }
      imported.__defaults = [];
      return { id: record.id, inputs: inputs ?? imported, outputs: state };
    },

    async update(ctx, type, id, _oldInputs, oldOutputs, news) {
      mustBeRecord(type);
      const kept: PropertyMap = {};
      for (const k of ["createdOn", "modifiedOn", "proxiable", "meta", "settings", "commentModifiedOn", "tags", "content"]) {
        if (k in oldOutputs && (isAbsent(news[k]) || k !== "content")) kept[k] = oldOutputs[k];
      }
      if (!isAbsent(news.tags)) delete kept.tags;
      if (ctx.preview) return { outputs: bridgedOutputs(dnsRecordSchema, news, kept) };
      refuseProxiedTtl(news);
      const zoneId = String(reveal(news.zoneId));
      // sec. 9: a PUT with the full body; for data records the plan's content is the state's (ModifyPlan
      // copies it, custom.go L290-293), so the request carries the stale content beside the new data.
      const payload = body(news);
      if (isAbsent(reveal(news.content)) && !isAbsent(reveal(oldOutputs.content))) payload.content = reveal(oldOutputs.content);
      const record = await request("PUT", `/zones/${zoneId}/dns_records/${id}`, () => world.updateRecord(zoneId, id, payload));
      // The state keeps what the plan had: a data record's content stays stale until the next refresh.
      return { outputs: bridgedOutputs(dnsRecordSchema, news, { ...kept, ...computedFromApi(record, news, reveal(oldOutputs.content)) }) };
    },

    async delete(_ctx, type, id, _oldInputs, oldOutputs) {
      mustBeRecord(type);
      const zoneId = String(reveal(oldOutputs.zoneId));
      await request("DELETE", `/zones/${zoneId}/dns_records/${id}`, () => world.deleteRecord(zoneId, id));
    },

    /** `cloudflare:index/getZone:getZone` by `zoneId` or `filter.name` (data source cloudflare_zone). */
    async invoke(_ctx, token, args) {
      if (token !== GET_ZONE) throw new ProviderCallError(`the cloudflare stand-in answers ${GET_ZONE} only, not ${token}`);
      const zoneId = reveal(args.zoneId);
      const filter = reveal(args.filter) as { name?: string } | undefined;
      const matches =
        typeof zoneId === "string"
          ? [...world.zones.values()].filter((z) => z.id === zoneId)
          : world.listZones(typeof filter?.name === "string" ? filter.name : undefined);
      // Error wording for no or several matches: UNCONFIRMED.
      if (matches.length !== 1) {
        throw new ProviderCallError(
          `failed to find exactly one zone matching ${JSON.stringify(typeof zoneId === "string" ? { zoneId } : { filter })}: found ${matches.length}`,
        );
      }
      const z = matches[0];
      return {
        id: z.id,
        zoneId: z.id,
        name: z.name,
        status: z.status,
        type: "full",
        paused: false,
        account: { id: z.accountId, name: "stand-in account" },
        nameServers: z.nameServers,
        plan: { id: z.plan, name: z.plan === "free" ? "Free Website" : "Enterprise Website" },
        createdOn: z.createdOn,
        ...(isAbsent(filter) ? {} : { filter }),
      };
    },
  };
}

/** resource.go L67-70: a proxied record must have ttl 1 (automatic); refused before any request. */
function refuseProxiedTtl(inputs: PropertyMap): void {
  if (reveal(inputs.proxied) === true && reveal(inputs.ttl) !== 1) {
    throw new ProviderCallError("proxied records must have a ttl of 1 (automatic) (UNCONFIRMED wording)");
  }
}

/** The FQDN Cloudflare stores for a name in a zone (exported for callers comparing plans with the world). */
export function storedName(zoneName: string, name: string): string {
  return recordName(zoneName, name);
}
