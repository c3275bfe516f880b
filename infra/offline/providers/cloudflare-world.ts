// The Cloudflare DNS API v4 as state and rules: zones and their records, normalised and refused the
// way Cloudflare does it. Used by the DnsRecord stand-in (cloudflare.ts) and served over HTTP for
// the npm `cloudflare` SDK (cloudflare-api.ts), so both paths meet the same records.
// Facts and sources: /work/research/cloudflare.md (sections cited beside each rule); wording marked
// UNCONFIRMED is the stand-in's.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";

export interface CloudflareErrorEntry {
  code: number;
  message: string;
  error_chain?: { code: number; message: string }[];
}

/** An API error: the body Cloudflare sends (`{result: null, success: false, errors, messages: []}`) and its status. */
export class CloudflareApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: CloudflareErrorEntry[],
  ) {
    super(`${status} ${JSON.stringify({ result: null, success: false, errors, messages: [] })}`);
    this.name = "CloudflareApiError";
  }

  get body(): { result: null; success: false; errors: CloudflareErrorEntry[]; messages: [] } {
    return { result: null, success: false, errors: this.errors, messages: [] };
  }
}

export interface CloudflareZone {
  id: string;
  name: string;
  status: "active";
  /** "enterprise" zones accept a TTL of 30 (cloudflare.md sec. 10) */
  plan: "free" | "enterprise";
  accountId: string;
  nameServers: string[];
  createdOn: string;
}

/** A record as the API returns it (snake_case, cloudflare.md sec. 11). */
export interface CloudflareRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  name: string;
  type: string;
  content: string;
  proxiable: boolean;
  proxied: boolean;
  ttl: number;
  settings: Record<string, unknown>;
  meta: Record<string, unknown>;
  comment: string | null;
  tags: string[];
  created_on: string;
  modified_on: string;
  comment_modified_on?: string;
  data?: Record<string, unknown>;
  priority?: number;
}

/** A record as a client sends it (POST/PUT body, cloudflare.md sec. 11). */
export interface RecordBody {
  type?: unknown;
  name?: unknown;
  content?: unknown;
  data?: unknown;
  ttl?: unknown;
  proxied?: unknown;
  comment?: unknown;
  priority?: unknown;
  tags?: unknown;
  settings?: unknown;
}

export interface RecordChange {
  kind: "create" | "update" | "delete";
  record: CloudflareRecord;
  previous?: CloudflareRecord;
}

export interface CloudflareWorldOptions {
  /** called after every change, with the zone's records as they now are (the lifecycle test writes them into knot) */
  onRecordsChanged?: (zoneName: string, records: CloudflareRecord[], change: RecordChange) => Promise<void> | void;
  /** the API's clock; default: now */
  now?: () => Date;
}

const KNOWN_TYPES = [
  "A",
  "AAAA",
  "CAA",
  "CERT",
  "CNAME",
  "DNSKEY",
  "DS",
  "HTTPS",
  "LOC",
  "MX",
  "NAPTR",
  "NS",
  "OPENPGPKEY",
  "PTR",
  "SMIMEA",
  "SRV",
  "SSHFP",
  "SVCB",
  "TLSA",
  "TXT",
  "URI",
];
/** Types written as structured data (CF-TS record types; cloudflare.md sec. 1, 3, 5). */
const DATA_TYPES = ["CAA", "SRV", "TLSA", "CERT", "DNSKEY", "DS", "HTTPS", "LOC", "NAPTR", "SMIMEA", "SSHFP", "SVCB", "URI"];
const PROXIABLE = ["A", "AAAA", "CNAME"];

const hex32 = () => randomBytes(16).toString("hex");

function validation(message: string, chainCode?: number): CloudflareApiError {
  // cloudflare.md sec. 8: validation errors are 400 with code 1004 "DNS Validation Error" and the
  // specific reason in error_chain (9021 TTL, 9051 TXT); other chain codes are UNCONFIRMED.
  return new CloudflareApiError(400, [
    { code: 1004, message: "DNS Validation Error", error_chain: [{ code: chainCode ?? 9000, message }] },
  ]);
}

export class CloudflareWorld {
  readonly zones = new Map<string, CloudflareZone>();
  readonly records = new Map<string, CloudflareRecord>();
  onRecordsChanged?: CloudflareWorldOptions["onRecordsChanged"];

  constructor(private readonly options: CloudflareWorldOptions = {}) {
    this.onRecordsChanged = options.onRecordsChanged;
  }

  private now(): string {
    return (this.options.now?.() ?? new Date()).toISOString();
  }

  addZone(name: string, opts: { id?: string; plan?: "free" | "enterprise" } = {}): CloudflareZone {
    const zone: CloudflareZone = {
      id: opts.id ?? hex32(),
      name: name.toLowerCase().replace(/\.$/, ""),
      status: "active",
      plan: opts.plan ?? "free",
      accountId: "023e105f4ecef8ad9ca31a8372d0c353",
      nameServers: ["ns1.example.invalid", "ns2.example.invalid"],
      createdOn: this.now(),
    };
    this.zones.set(zone.id, zone);
    return zone;
  }

  zoneByName(name: string): CloudflareZone | undefined {
    const wanted = name.toLowerCase().replace(/\.$/, "");
    return [...this.zones.values()].find((z) => z.name === wanted);
  }

  /** GET /zones?name= : an exact match by default (zones.d.ts ZoneListParams). */
  listZones(name?: string): CloudflareZone[] {
    return [...this.zones.values()].filter((z) => name === undefined || z.name === name.toLowerCase());
  }

  mustZone(zoneId: string): CloudflareZone {
    const zone = this.zones.get(zoneId);
    // Unknown zone ids: 404 with code 7003 "Could not route to ..., perhaps your object identifier is invalid?" (UNCONFIRMED wording).
    if (!zone)
      throw new CloudflareApiError(404, [
        { code: 7003, message: `Could not route to /zones/${zoneId}/dns_records, perhaps your object identifier is invalid?` },
      ]);
    return zone;
  }

  recordsOf(zoneId: string): CloudflareRecord[] {
    return [...this.records.values()].filter((r) => r.zone_id === zoneId);
  }

  getRecord(zoneId: string, id: string): CloudflareRecord {
    this.mustZone(zoneId);
    const record = this.records.get(id);
    // cloudflare.md sec. 8: an unknown record id is 404 / 81044 "Record does not exist."
    if (!record || record.zone_id !== zoneId) throw new CloudflareApiError(404, [{ code: 81044, message: "Record does not exist." }]);
    return record;
  }

  /** POST /zones/{zone_id}/dns_records. */
  async createRecord(zoneId: string, body: RecordBody): Promise<CloudflareRecord> {
    const zone = this.mustZone(zoneId);
    const fields = this.normalise(zone, body, false);
    this.refuseConflicts(zone, fields);
    const now = this.now();
    const record: CloudflareRecord = {
      id: hex32(),
      zone_id: zone.id,
      zone_name: zone.name,
      ...fields,
      settings: {},
      meta: {},
      tags: fields.tags,
      created_on: now,
      modified_on: now,
      ...(fields.comment !== null ? { comment_modified_on: now } : {}),
    };
    this.records.set(record.id, record);
    await this.changed(zone, { kind: "create", record });
    return record;
  }

  /** PUT /zones/{zone_id}/dns_records/{id}: the record is replaced; id and created_on stay (cloudflare.md Stand-in rules). */
  async updateRecord(zoneId: string, id: string, body: RecordBody): Promise<CloudflareRecord> {
    const zone = this.mustZone(zoneId);
    const previous = this.getRecord(zoneId, id);
    const fields = this.normalise(zone, body, true);
    this.refuseConflicts(zone, fields, id);
    const now = this.now();
    const record: CloudflareRecord = {
      ...previous,
      ...fields,
      ...(fields.data === undefined ? { data: undefined } : {}),
      ...(fields.priority === undefined ? { priority: undefined } : {}),
      modified_on: now,
      ...(fields.comment !== previous.comment ? { comment_modified_on: now } : {}),
    };
    for (const k of ["data", "priority"] as const) if (record[k] === undefined) delete record[k];
    this.records.set(id, record);
    await this.changed(zone, { kind: "update", record, previous });
    return record;
  }

  /** DELETE /zones/{zone_id}/dns_records/{id}. */
  async deleteRecord(zoneId: string, id: string): Promise<{ id: string }> {
    const zone = this.mustZone(zoneId);
    const record = this.getRecord(zoneId, id);
    this.records.delete(id);
    await this.changed(zone, { kind: "delete", record });
    return { id };
  }

  private async changed(zone: CloudflareZone, change: RecordChange): Promise<void> {
    await this.onRecordsChanged?.(zone.name, this.recordsOf(zone.id), change);
  }

  /**
   * cloudflare.md sec. 8: a record identical in type, name and content to an existing one is
   * 81058 "An identical record already exists."; A/AAAA on a CNAME name 81054; a CNAME on an
   * A/AAAA/CNAME name 81053. Checked when the record is written, so a create-before-delete
   * replacement of an identical record fails before the old one is deleted, as it does for real.
   */
  private refuseConflicts(zone: CloudflareZone, r: { name: string; type: string; content: string }, self?: string): void {
    const others = this.recordsOf(zone.id).filter((o) => o.id !== self && o.name === r.name);
    if (others.some((o) => o.type === r.type && o.content === r.content)) {
      throw new CloudflareApiError(400, [{ code: 81058, message: "An identical record already exists." }]);
    }
    if ((r.type === "A" || r.type === "AAAA") && others.some((o) => o.type === "CNAME")) {
      throw new CloudflareApiError(400, [
        {
          code: 81054,
          message:
            "A CNAME record with that host already exists. For more details, refer to <https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>.",
        },
      ]);
    }
    if (r.type === "CNAME" && others.some((o) => ["A", "AAAA", "CNAME"].includes(o.type))) {
      throw new CloudflareApiError(400, [{ code: 81053, message: "An A, AAAA, or CNAME record with that host already exists." }]);
    }
    if (r.type === "TXT") {
      // cloudflare-docs PR #29286: at most 8,192 characters of content per name and type.
      const total = others.filter((o) => o.type === "TXT").reduce((n, o) => n + o.content.length, r.content.length);
      if (total > 8192) throw validation(`TXT records for ${r.name} together exceed 8192 characters of content (UNCONFIRMED wording)`);
    }
  }

  /** Validation and normalisation of a POST/PUT body (cloudflare.md "Stand-in rules"). */
  private normalise(
    zone: CloudflareZone,
    body: RecordBody,
    isUpdate: boolean,
  ): {
    name: string;
    type: string;
    content: string;
    ttl: number;
    proxied: boolean;
    proxiable: boolean;
    comment: string | null;
    tags: string[];
    data?: Record<string, unknown>;
    priority?: number;
  } {
    const type = typeof body.type === "string" ? body.type.toUpperCase() : "";
    if (!KNOWN_TYPES.includes(type)) throw validation(`Invalid DNS record type: ${JSON.stringify(body.type)} (UNCONFIRMED wording)`, 9005);
    if (typeof body.name !== "string" || body.name === "") throw validation("DNS name is invalid. (UNCONFIRMED wording)", 9005);
    const name = recordName(zone.name, body.name);
    // sec. 8: a string TTL is 9022; out of range 1004/9021 (min 30 for Enterprise).
    if (typeof body.ttl !== "number") {
      if (body.ttl !== undefined) throw new CloudflareApiError(400, [{ code: 9022, message: "TTL must be a number, not a string." }]);
    }
    const ttl = body.ttl === undefined ? 1 : (body.ttl as number);
    const min = zone.plan === "enterprise" ? 30 : 60;
    if (!(ttl === 1 || (Number.isInteger(ttl) && ttl >= min && ttl <= 86400))) {
      throw validation(`TTL must be between ${min} and 86400 seconds, or 1 for Automatic.`, 9021);
    }
    // sec. 8/10: a comment longer than 100 characters (Free plan) is 9313; no line breaks.
    let comment: string | null = null;
    if (body.comment !== undefined && body.comment !== null) {
      comment = String(body.comment);
      if (comment.length > 100)
        throw new CloudflareApiError(400, [{ code: 9313, message: "DNS record comment exceeds the maximum length of 100 characters." }]);
      if (/[\r\n]/.test(comment)) throw validation("DNS record comment may not contain line breaks (UNCONFIRMED wording)");
    }
    const proxied = body.proxied === true;
    // sec. 10: only A/AAAA/CNAME can be proxied (code UNCONFIRMED).
    if (proxied && !PROXIABLE.includes(type)) throw validation(`${type} records cannot be proxied (UNCONFIRMED wording)`, 9004);
    const tags = Array.isArray(body.tags) ? body.tags.map(String) : [];
    let content: string;
    let data: Record<string, unknown> | undefined;
    let priority: number | undefined;
    if (DATA_TYPES.includes(type)) {
      // sec. 9: a PUT for a data type may carry a stale content beside data; content is derived from data.
      if (!isUpdate && body.content !== undefined && body.data !== undefined) {
        throw validation("content and data are mutually exclusive (UNCONFIRMED wording)");
      }
      if (body.data === undefined || body.data === null || typeof body.data !== "object") {
        throw validation(`${type} records require data fields (UNCONFIRMED wording)`);
      }
      data = { ...(body.data as Record<string, unknown>) };
      ({ content, priority } = dataContent(type, data));
    } else {
      if (typeof body.content !== "string") throw validation("Content for the record is required. (UNCONFIRMED wording)");
      content = plainContent(type, body.content);
      if (type === "MX") {
        // sec. 7: MX needs a top-level priority 0..65535.
        if (typeof body.priority !== "number" || !Number.isInteger(body.priority) || body.priority < 0 || body.priority > 65535) {
          throw validation("MX records require a priority between 0 and 65535 (UNCONFIRMED wording)");
        }
        priority = body.priority;
      }
    }
    return {
      name,
      type,
      content,
      ttl,
      proxied,
      proxiable: PROXIABLE.includes(type),
      comment,
      tags,
      ...(data ? { data } : {}),
      ...(priority !== undefined ? { priority } : {}),
    };
  }
}

/**
 * sec. 6: `@` is the apex; names are stored lower-case without a trailing dot; a name that does not
 * end in the zone is taken as relative and gets the zone appended (it is not refused).
 */
export function recordName(zone: string, name: string): string {
  const n = name.toLowerCase().replace(/\.$/, "");
  if (n === "@" || n === zone) return zone;
  return n.endsWith(`.${zone}`) ? n : `${n}.${zone}`;
}

function hostname(value: string): string {
  return value.toLowerCase().replace(/\.$/, "");
}

function plainContent(type: string, content: string): string {
  switch (type) {
    case "A":
      // CF-DOCS A/AAAA: only the dotted-quad form; `1.1` and the like are refused.
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(content) || isIP(content) !== 4)
        throw validation("Content for A record must be a valid IPv4 address.", 9005);
      return content;
    case "AAAA":
      if (isIP(content) !== 6) throw validation("Content for AAAA record must be a valid IPv6 address.", 9005);
      // returned in RFC 5952 canonical form
      return new URL(`http://[${content}]/`).hostname.slice(1, -1);
    case "CNAME":
    case "NS":
    case "PTR":
      return hostname(content);
    case "MX":
      // sec. 7: lower-cased, without the trailing dot; the null MX "." stays ".".
      return content === "." ? "." : hostname(content);
    case "TXT":
      return txtContent(content);
    default:
      return content;
  }
}

/**
 * sec. 4: TXT content is stored as sent when it is well-formed: printable ASCII (1004/9051
 * otherwise), balanced quotes, at most 4,096 bytes (one test saw 4,080 characters: the stricter
 * bound applies).
 */
function txtContent(content: string): string {
  if (/[^\x20-\x7e]/.test(content)) {
    throw new CloudflareApiError(400, [
      {
        code: 1004,
        message: "DNS Validation Error",
        error_chain: [{ code: 9051, message: "Invalid TXT record. Record may only contain printable ASCII!" }],
      },
    ]);
  }
  if (content.length > 4080) throw validation(`TXT content is ${content.length} characters, more than 4080 (UNCONFIRMED wording)`);
  if (content.trimStart().startsWith('"')) {
    let quoted = false;
    for (let i = 0; i < content.length; i++) {
      if (content[i] === "\\") i++;
      else if (content[i] === '"') quoted = !quoted;
    }
    if (quoted) throw validation("TXT content has an unterminated quoted string (UNCONFIRMED wording)");
  }
  return content;
}

const num = (data: Record<string, unknown>, key: string, min: number, max: number, type: string): number => {
  const v = data[key];
  if (v === undefined || v === null) throw validation(`${key} is a required data field.`);
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw validation(`${type} data field ${key} must be an integer between ${min} and ${max} (UNCONFIRMED wording)`);
  return v;
};

/** The content Cloudflare derives from a data record, and the top-level priority it returns with it. */
function dataContent(type: string, data: Record<string, unknown>): { content: string; priority?: number } {
  switch (type) {
    case "CAA": {
      // sec. 1: `<flags> <tag> "<value>"`, single spaces; value ";" accepted.
      const flags = num(data, "flags", 0, 255, type);
      const tag = data.tag;
      if (typeof tag !== "string" || tag === "") throw validation("tag is a required data field.");
      if (typeof data.value !== "string") throw validation("value is a required data field.");
      return { content: `${flags} ${tag} "${data.value}"` };
    }
    case "SRV": {
      // sec. 2, 3: `weight port target`; a null target is "." (the empty string is refused).
      const priority = num(data, "priority", 0, 65535, type);
      const weight = num(data, "weight", 0, 65535, type);
      const port = num(data, "port", 0, 65535, type);
      if (typeof data.target !== "string" || data.target === "") throw validation("target is a required data field.");
      const target = data.target === "." ? "." : hostname(data.target);
      return { content: `${weight} ${port} ${target}`, priority };
    }
    case "TLSA": {
      // sec. 5: every field required; content `u s m HEX` with the hex upper-cased; data as sent.
      const usage = num(data, "usage", 0, 255, type);
      const selector = num(data, "selector", 0, 255, type);
      const matching = num(data, "matching_type", 0, 255, type);
      if (typeof data.certificate !== "string" || data.certificate === "") throw validation("certificate is a required data field.");
      if (!/^[0-9a-fA-F]+$/.test(data.certificate)) throw validation("certificate must be hexadecimal (UNCONFIRMED wording)");
      return { content: `${usage} ${selector} ${matching} ${data.certificate.toUpperCase()}` };
    }
    default:
      return { content: Object.values(data).join(" ") };
  }
}
