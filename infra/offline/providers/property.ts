// Property values as the stand-ins see them (model.ts: JSON with Secret wrappers and Unknown
// markers) and the diff every provider family builds from them. The path keys of a detailed diff
// follow Pulumi's property paths (sdk/go/common/resource/properties_path.go `PropertyPath.String`:
// `a.b`, `a[0]`, `a["b c"]`), because the engine matches `replaceOnChanges` against them.
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { ARCHIVE_SIG, ASSET_SIG, Secret, SPECIAL_SIG_KEY, Unknown, type DiffResult, type PropertyMap, type PropertyValue } from "../model";

/** An error a provider call ends with: the text the real provider prints, and the API code when there is one. */
export class ProviderCallError extends Error {
  constructor(
    message: string,
    /** the cloud API's error code (`primary_ip_assigned`, `81058`), when the failure came from the API */
    readonly code?: string,
  ) {
    super(message);
    this.name = "ProviderCallError";
  }
}

export function isSecret(value: PropertyValue): value is Secret {
  return value instanceof Secret;
}

/** The value with every Secret wrapper removed (Unknown markers stay). */
export function reveal(value: PropertyValue): unknown {
  if (value instanceof Secret) return reveal(value.value);
  if (Array.isArray(value)) return value.map(reveal);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  return value;
}

export function containsSecret(value: PropertyValue): boolean {
  if (value instanceof Secret) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (isPlainObject(value)) return Object.values(value).some(containsSecret);
  return false;
}

export function containsUnknown(value: PropertyValue): boolean {
  if (value === Unknown) return true;
  if (value instanceof Secret) return containsUnknown(value.value);
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (isPlainObject(value)) return Object.values(value).some(containsUnknown);
  return false;
}

/** Wraps once: a value already secret stays as it is. */
export function asSecret(value: PropertyValue): PropertyValue {
  if (value === undefined || value instanceof Secret) return value;
  return new Secret(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Secret);
}

export interface AssetWire {
  path?: string;
  text?: string;
  uri?: string;
  hash?: string;
}

/** An asset in its wire form (sdk/nodejs/runtime/rpc.ts serializeProperty: `{[SPECIAL_SIG_KEY]: ASSET_SIG, path|text|uri}`). */
export function isAsset(value: unknown): value is AssetWire {
  return isPlainObject(value) && value[SPECIAL_SIG_KEY] === ASSET_SIG;
}

export function isArchive(value: unknown): value is { path?: string; assets?: Record<string, unknown>; uri?: string; hash?: string } {
  return isPlainObject(value) && value[SPECIAL_SIG_KEY] === ARCHIVE_SIG;
}

/**
 * The content hash the engine keeps for an asset: SHA-256 of its bytes, hex
 * (sdk/go/common/resource/asset/asset.go `EnsureHash`). A path that cannot be read hashes its name
 * so that two unreadable assets still compare by identity.
 */
export function assetHash(asset: AssetWire): string {
  if (typeof asset.hash === "string" && asset.hash !== "") return asset.hash;
  if (typeof asset.text === "string") return sha256Hex(asset.text);
  if (typeof asset.path === "string") {
    try {
      return sha256Hex(fs.readFileSync(asset.path));
    } catch {
      return sha256Hex(`unreadable:${asset.path}`);
    }
  }
  return sha256Hex(`uri:${asset.uri ?? ""}`);
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Deep equality as the engine's `DeepEquals` decides it (properties_diff.go): secrets compare by
 * their values, assets by content hash, and an Unknown equals nothing, not even another Unknown.
 */
export function sameValue(a: PropertyValue, b: PropertyValue): boolean {
  if (a instanceof Secret) return sameValue(a.value, b);
  if (b instanceof Secret) return sameValue(a, b.value);
  if (a === Unknown || b === Unknown) return false;
  if (isAsset(a) || isAsset(b)) return isAsset(a) && isAsset(b) && assetHash(a) === assetHash(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (isPlainObject(a) || isPlainObject(b)) {
    if (!isPlainObject(a) || !isPlainObject(b)) return false;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      if (isAbsent(a[k]) && isAbsent(b[k])) continue;
      if (!sameValue(a[k], b[k])) return false;
    }
    return true;
  }
  return (isAbsent(a) && isAbsent(b)) || a === b;
}

/** Null and undefined both mean "not set" in a property map. */
export function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

const SIMPLE_KEY = /^[a-zA-Z_$][a-zA-Z0-9_$]*$/;

/** Pulumi's property path text (properties_path.go `PropertyPath.String`). */
export function pathKey(segments: (string | number)[]): string {
  let out = "";
  segments.forEach((s, i) => {
    if (typeof s === "number") out += `[${s}]`;
    else if (SIMPLE_KEY.test(s)) out += i === 0 ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  });
  return out;
}

export type DetailedDiff = DiffResult["detailedDiff"];

/**
 * Adds the differences between two values at `path` to `into`, element by element as
 * `plugin.NewDetailedDiffFromObjectDiff` does (pkg/resource/plugin/provider.go): objects and arrays
 * recurse, so a changed second trigger is `triggers[1]`; a value that became Unknown, or an array
 * that replaced a non-array, is reported at its own path.
 */
export function addDetailedDiff(oldValue: PropertyValue, newValue: PropertyValue, path: (string | number)[], into: DetailedDiff): void {
  const o = oldValue instanceof Secret ? reveal(oldValue) : oldValue;
  const n = newValue instanceof Secret ? reveal(newValue) : newValue;
  const key = pathKey(path);
  if (isAbsent(o) && isAbsent(n)) return;
  if (isAbsent(o)) {
    into[key] = { kind: "add", replace: false };
    return;
  }
  if (isAbsent(n)) {
    into[key] = { kind: "delete", replace: false };
    return;
  }
  if (n === Unknown || o === Unknown) {
    into[key] = { kind: "update", replace: false };
    return;
  }
  if (isPlainObject(o) && isPlainObject(n) && !isAsset(o) && !isAsset(n) && !isArchive(o) && !isArchive(n)) {
    for (const k of new Set([...Object.keys(o), ...Object.keys(n)])) addDetailedDiff(o[k], n[k], [...path, k], into);
    return;
  }
  if (Array.isArray(o) && Array.isArray(n)) {
    for (let i = 0; i < Math.max(o.length, n.length); i++) {
      if (i >= o.length) into[pathKey([...path, i])] = { kind: "add", replace: false };
      else if (i >= n.length) into[pathKey([...path, i])] = { kind: "delete", replace: false };
      else addDetailedDiff(o[i], n[i], [...path, i], into);
    }
    return;
  }
  if (!sameValue(o, n)) into[key] = { kind: "update", replace: false };
}

/** The top-level property a detailed-diff key belongs to. */
export function topLevelKey(key: string): string {
  const m = /^([^.[]+)/.exec(key);
  if (m) return m[1];
  const quoted = /^\["((?:[^"\\]|\\.)*)"\]/.exec(key);
  return quoted ? (JSON.parse(`"${quoted[1]}"`) as string) : key;
}

export function emptyDiff(): DiffResult {
  return { changes: "none", replaceKeys: [], changedKeys: [], detailedDiff: {}, deleteBeforeReplace: false };
}

/** Copies a property map without the engine's internal keys (`__defaults`, `__meta`, `__provider`). */
export function withoutInternalKeys(map: PropertyMap): PropertyMap {
  return Object.fromEntries(Object.entries(map).filter(([k]) => !k.startsWith("__")));
}

/** Reads a string input, unwrapping a secret; undefined when absent, Unknown when unknown. */
export function stringInput(map: PropertyMap, key: string): string | undefined | typeof Unknown {
  const v = reveal(map[key]);
  if (v === Unknown) return Unknown;
  if (isAbsent(v)) return undefined;
  return typeof v === "string" ? v : String(v);
}

/** A random lower-case hex string of `length` characters (pulumi sdk resource.NewUniqueHex). */
export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2))
    .toString("hex")
    .slice(0, length);
}
