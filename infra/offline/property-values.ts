// Property values as the offline engine holds them (model.ts: JSON with Secret wrappers and the
// Unknown marker), their wire form (what the Node SDK sends and receives, sdk/nodejs/runtime/rpc.ts),
// and the engine's equality (sdk/go/common/resource/properties_diff.go DeepEquals, pulumi/pulumi
// 1b594988).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  ARCHIVE_SIG,
  ASSET_SIG,
  Secret,
  SECRET_SIG,
  SPECIAL_SIG_KEY,
  Unknown,
  UNKNOWN_SENTINEL,
  type PropertyMap,
  type PropertyValue,
} from "./model";

/** rpc.ts specialSigKey value of a resource reference */
export const RESOURCE_REFERENCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";

/**
 * A secret from a state exported without `--show-secrets`: only its ciphertext is known, so its
 * value is unknown to the offline engine (it reaches the program as an unknown value).
 */
export class EncryptedSecret {
  constructor(readonly ciphertext: string) {}
  toJSON(): string {
    return "[secret]";
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Secret) &&
    !(value instanceof EncryptedSecret)
  );
}

function specialSig(value: unknown): string | undefined {
  return isPlainObject(value) && typeof value[SPECIAL_SIG_KEY] === "string" ? (value[SPECIAL_SIG_KEY] as string) : undefined;
}

export const isAsset = (value: unknown): value is Record<string, unknown> => specialSig(value) === ASSET_SIG;
export const isArchive = (value: unknown): value is Record<string, unknown> => specialSig(value) === ARCHIVE_SIG;
export const isResourceReference = (value: unknown): value is Record<string, unknown> => specialSig(value) === RESOURCE_REFERENCE_SIG;

/** An object value (not an asset, archive, resource reference or secret). */
export function isObjectValue(value: unknown): value is Record<string, PropertyValue> {
  return isPlainObject(value) && specialSig(value) === undefined;
}

/** Wire form -> engine form: the unknown sentinel becomes Unknown, secret envelopes become Secret. */
export function fromWire(value: unknown): PropertyValue {
  if (value === UNKNOWN_SENTINEL) return Unknown;
  if (Array.isArray(value)) return value.map(fromWire);
  if (isPlainObject(value)) {
    const sig = specialSig(value);
    if (sig === SECRET_SIG) return new Secret(fromWire(value.value));
    if (sig !== undefined) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]));
  }
  return value;
}

export function mapFromWire(value: unknown): PropertyMap {
  return isPlainObject(value) ? (fromWire(value) as PropertyMap) : {};
}

/**
 * Engine form -> wire form. An EncryptedSecret goes out as unknown: nobody here can decrypt it.
 * `undefined` members are dropped (protobuf Structs have no undefined).
 */
export function toWire(value: PropertyValue): unknown {
  if (value === Unknown) return UNKNOWN_SENTINEL;
  if (value instanceof EncryptedSecret) return UNKNOWN_SENTINEL;
  if (value instanceof Secret) return { [SPECIAL_SIG_KEY]: SECRET_SIG, value: toWire(value.value) };
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : toWire(v)));
  if (isPlainObject(value)) {
    if (specialSig(value) !== undefined) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toWire(v)]),
    );
  }
  return value;
}

export function mapToWire(map: PropertyMap): Record<string, unknown> {
  return toWire(map) as Record<string, unknown>;
}

export function containsUnknowns(value: PropertyValue): boolean {
  if (value === Unknown || value instanceof EncryptedSecret) return true;
  if (value instanceof Secret) return containsUnknowns(value.value);
  if (Array.isArray(value)) return value.some(containsUnknowns);
  if (isObjectValue(value)) return Object.values(value).some(containsUnknowns);
  return false;
}

export function containsSecrets(value: PropertyValue): boolean {
  if (value instanceof Secret || value instanceof EncryptedSecret) return true;
  if (Array.isArray(value)) return value.some(containsSecrets);
  if (isObjectValue(value)) return Object.values(value).some(containsSecrets);
  return false;
}

export function containsEncryptedSecrets(value: PropertyValue): boolean {
  if (value instanceof EncryptedSecret) return true;
  if (value instanceof Secret) return containsEncryptedSecrets(value.value);
  if (Array.isArray(value)) return value.some(containsEncryptedSecrets);
  if (isObjectValue(value)) return Object.values(value).some(containsEncryptedSecrets);
  return false;
}

/** Removes every Secret wrapper (step_generator.go unwrapResourceSecretsAndOutputs). */
export function unwrapSecrets(value: PropertyValue): PropertyValue {
  if (value instanceof Secret) return unwrapSecrets(value.value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (isObjectValue(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  return value;
}

export function deepCopy<T extends PropertyValue>(value: T): T {
  if (value instanceof Secret) return new Secret(deepCopy(value.value)) as T;
  if (Array.isArray(value)) return value.map(deepCopy) as T;
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepCopy(v)])) as T;
  return value;
}

/** A present value: the engine treats null like an absent key (properties.go HasValue). */
export const hasValue = (value: PropertyValue): boolean => value !== null && value !== undefined;

/**
 * SHA-256 of an asset's bytes, as the engine computes it (asset.go EnsureHash): text assets hash
 * their text; path assets the file, relative to the project directory (the CLI's working directory).
 */
export function assetHash(asset: Record<string, unknown>, projectDir: string): string | undefined {
  if (typeof asset.hash === "string" && asset.hash !== "") return asset.hash;
  if (typeof asset.text === "string") return createHash("sha256").update(asset.text).digest("hex");
  if (typeof asset.path === "string") {
    try {
      return createHash("sha256")
        .update(fs.readFileSync(path.resolve(projectDir, asset.path)))
        .digest("hex");
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The engine's DeepEquals (properties_diff.go): null equals absent in maps, secrets equal when
 * their contents are, two unknowns are equal (Computed vs Computed compares the empty element),
 * assets by content hash (asset.go Equals: no hash, no equality), resource references by URN and id.
 */
export function deepEquals(a: PropertyValue, b: PropertyValue, projectDir: string): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (a instanceof EncryptedSecret || b instanceof EncryptedSecret) return false;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEquals(v, b[i], projectDir));
  }
  if (isAsset(a)) {
    if (!isAsset(b)) return false;
    const ha = assetHash(a, projectDir);
    return ha !== undefined && ha === assetHash(b, projectDir);
  }
  if (isArchive(a)) return isArchive(b) && JSON.stringify(a) === JSON.stringify(b);
  if (isResourceReference(a)) {
    return isResourceReference(b) && a.urn === b.urn && deepEquals(a.id ?? null, b.id ?? null, projectDir);
  }
  if (a instanceof Secret) return b instanceof Secret && deepEquals(a.value, b.value, projectDir);
  if (isObjectValue(a)) {
    if (!isObjectValue(b)) return false;
    for (const [k, v] of Object.entries(a)) {
      if (k in b) {
        if (!deepEquals(v, b[k], projectDir)) return false;
      } else if (hasValue(v)) return false;
    }
    for (const [k, v] of Object.entries(b)) if (!(k in a) && hasValue(v)) return false;
    return true;
  }
  return a === b;
}
