// What pulumi-terraform-bridge does around a Terraform provider, for the bridged stand-ins
// (hcloud, cloudflare, tls): autonaming and `__defaults` in Check, a schema-driven Diff
// (ForceNew/RequiresReplace, Optional+Computed, defaults, sets), delete-before-replace for SDKv2
// resources with an explicit name, and preview outputs with the computed attributes unknown.
import { Secret, Unknown, type DiffResult, type PropertyMap, type PropertyValue } from "../model";
import {
  addDetailedDiff,
  containsSecret,
  emptyDiff,
  isAbsent,
  pathKey,
  randomHex,
  reveal,
  sameValue,
  topLevelKey,
  type DetailedDiff,
} from "./property";

export interface BridgedProperty {
  /** RequiresReplace (plugin framework) or ForceNew (SDKv2): a change replaces the resource */
  forceNew?: boolean;
  /** Optional+Computed: a value the program leaves out keeps the one in the state */
  computed?: boolean;
  /** Computed only: the provider sets it, the program cannot */
  outputOnly?: boolean;
  /** the schema's Default, applied when the program leaves the property out */
  default?: unknown;
  /** TypeSet / SetAttribute: element order does not matter */
  set?: boolean;
  /** Sensitive: the provider returns it as a secret */
  sensitive?: boolean;
  /** how the state stores the program's value (SDKv2 StateFunc), applied before comparing */
  stateFunc?: (value: unknown) => unknown;
  /** semantic equality of the attribute's type (e.g. iptypes.IPAddress), applied to both sides */
  normalise?: (value: unknown) => unknown;
}

export interface BridgedResourceSchema {
  /** "sdkv2" resources replace delete-first when their autonamed name was set explicitly; "pf" ones never do */
  framework: "sdkv2" | "pf";
  /** the provider autonames `name` (pulumi-hcloud provider/resources.go `SetAutonaming(255, "-")`) */
  autoname?: boolean;
  properties: Record<string, BridgedProperty>;
}

/** The bridge's key for the properties its Check filled in (pkg/tfbridge/schema.go `defaultsKey`). */
export const DEFAULTS_KEY = "__defaults";

/** The resource name in a URN (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
export function urnName(urn: string): string {
  const i = urn.lastIndexOf("::");
  return i < 0 ? urn : urn.slice(i + 2);
}

/**
 * Check as the bridge does it: the program's inputs, with `name` autonamed when the program sets
 * none. An autoname is kept from the old inputs when they recorded it as a default, and made anew
 * (`<name>-<7 hex>`) otherwise (BR pkg/tfbridge/schema.go `applyDefaults`: old defaults are reused
 * only when listed in the old `__defaults`; BR pkg/tfbridge/info/autonaming.go `AutoName`: 7
 * random characters after a `-`). The engine calls Check without olds before a replacement, so a
 * replacement gets a new name (PU step_generator.go ~L2003-2021).
 */
export function bridgedCheck(schema: BridgedResourceSchema, urn: string, olds: PropertyMap | undefined, news: PropertyMap): PropertyMap {
  const inputs: PropertyMap = {};
  for (const [k, v] of Object.entries(news)) if (!k.startsWith("__")) inputs[k] = v;
  const defaults: string[] = [];
  if (schema.autoname && isAbsent(news.name)) {
    const oldDefaults = olds?.[DEFAULTS_KEY];
    const oldWasDefault = Array.isArray(oldDefaults) ? oldDefaults.includes("name") : olds !== undefined;
    inputs.name =
      olds !== undefined && oldWasDefault && typeof reveal(olds.name) === "string" ? olds.name : `${urnName(urn)}-${randomHex(7)}`;
    defaults.push("name");
  }
  inputs[DEFAULTS_KEY] = defaults;
  return inputs;
}

/** Applies top-level ignoreChanges paths by putting the old value back (the bridge does this again in Diff). */
export function applyIgnoreChanges(news: PropertyMap, oldInputs: PropertyMap, ignoreChanges: string[]): PropertyMap {
  const out = { ...news };
  for (const path of ignoreChanges) {
    const key = topLevelKey(path);
    if (key !== path) continue;
    if (key in oldInputs) out[key] = oldInputs[key];
    else delete out[key];
  }
  return out;
}

/**
 * Diff of the program's checked inputs against the prior state, property by property as the
 * schema says. The prior value is the state's output when it has one (Terraform plans against the
 * state), else the old input. An Unknown input is a change, and a replacement when the property is
 * ForceNew, for both SDKv2 and the plugin framework (notes engine-and-replacement.md sec. 2).
 */
export function bridgedDiff(
  schema: BridgedResourceSchema,
  oldInputs: PropertyMap,
  oldOutputs: PropertyMap,
  newsIn: PropertyMap,
  ignoreChanges: string[],
): DiffResult {
  const news = applyIgnoreChanges(newsIn, oldInputs, ignoreChanges);
  const result = emptyDiff();
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (prop.outputOnly) continue;
    let n: PropertyValue = news[key];
    if (isAbsent(n)) {
      if (prop.computed) continue;
      if (prop.default !== undefined) n = prop.default;
    }
    let o: PropertyValue = key in oldOutputs && !isAbsent(oldOutputs[key]) ? oldOutputs[key] : oldInputs[key];
    const fromInputs = !(key in oldOutputs) || isAbsent(oldOutputs[key]);
    if (isAbsent(o) && prop.default !== undefined) o = prop.default;
    if (prop.stateFunc) {
      if (n !== Unknown && !isAbsent(n)) n = prop.stateFunc(reveal(n));
      if (fromInputs && o !== Unknown && !isAbsent(o)) o = prop.stateFunc(reveal(o));
    }
    if (prop.normalise) {
      if (n !== Unknown && !isAbsent(n)) n = prop.normalise(reveal(n));
      if (o !== Unknown && !isAbsent(o)) o = prop.normalise(reveal(o));
    }
    // An empty map or list and an absent one are the same to Terraform (SDKv2 zero values; the
    // framework's defaults of {} / [] for the ones that can be empty).
    const equal = (isEmpty(o) && isEmpty(n)) || (prop.set ? sameSet(o, n) : sameValue(o, n));
    if (equal) continue;
    result.changedKeys.push(key);
    const entries: DetailedDiff = {};
    if (prop.set || n === Unknown)
      entries[pathKey([key])] = { kind: isAbsent(o) ? "add" : isAbsent(n) ? "delete" : "update", replace: false };
    else addDetailedDiff(o, n, [key], entries);
    if (Object.keys(entries).length === 0) entries[pathKey([key])] = { kind: "update", replace: false };
    for (const [path, entry] of Object.entries(entries)) result.detailedDiff[path] = { ...entry, replace: Boolean(prop.forceNew) };
    if (prop.forceNew) result.replaceKeys.push(key);
  }
  result.changes = result.changedKeys.length > 0 ? "some" : "none";
  result.deleteBeforeReplace = result.replaceKeys.length > 0 && schema.framework === "sdkv2" && nameSetExplicitly(schema, news);
  return result;
}

/**
 * BR pkg/tfbridge/schema.go `nameRequiresDeleteBeforeReplace`, reached from the SDKv2 Diff only
 * (pkg/tfbridge/provider.go Diff; the plugin-framework path leaves it out, pkg/pf/tfbridge/provider_diff.go):
 * an autonamed property present in the inputs but not listed in `__defaults` was set by the
 * program, and two resources with one name cannot coexist, so the old one goes first. Inputs
 * without a `__defaults` list count as autonamed.
 */
export function nameSetExplicitly(schema: BridgedResourceSchema, news: PropertyMap): boolean {
  if (!schema.autoname) return false;
  const defaults = news[DEFAULTS_KEY];
  if (!Array.isArray(defaults)) return false;
  return !isAbsent(news.name) && !defaults.includes("name");
}

function isEmpty(value: PropertyValue): boolean {
  const v = reveal(value);
  return isAbsent(v) || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && v !== null && Object.keys(v).length === 0);
}

function sameSet(a: PropertyValue, b: PropertyValue): boolean {
  const x = reveal(a);
  const y = reveal(b);
  if (x === Unknown || y === Unknown) return false;
  const xs = Array.isArray(x) ? x : isAbsent(x) ? [] : [x];
  const ys = Array.isArray(y) ? y : isAbsent(y) ? [] : [y];
  if (xs.length !== ys.length) return false;
  const unmatched = [...ys];
  for (const e of xs) {
    const i = unmatched.findIndex((u) => sameValue(e, u));
    if (i < 0) return false;
    unmatched.splice(i, 1);
  }
  return true;
}

/**
 * The state the bridge returns: the checked inputs, each schema default the program left out, and
 * the given computed values. In preview the computed values the caller does not know are Unknown
 * (Terraform plans them as unknown). Inputs that were secret stay secret, and Sensitive attributes
 * are returned as secrets.
 */
export function bridgedOutputs(schema: BridgedResourceSchema, inputs: PropertyMap, computed: PropertyMap): PropertyMap {
  const out: PropertyMap = {};
  for (const [k, v] of Object.entries(inputs)) if (!k.startsWith("__")) out[k] = v;
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (isAbsent(out[key]) && prop.default !== undefined && !prop.outputOnly) out[key] = prop.default;
    if (key in computed) out[key] = computed[key];
    if (prop.stateFunc && !isAbsent(out[key]) && out[key] !== Unknown && !(key in computed)) {
      const secret = containsSecret(out[key]);
      const stored = prop.stateFunc(reveal(out[key]));
      out[key] = secret ? new Secret(stored) : stored;
    }
  }
  for (const [key, prop] of Object.entries(schema.properties)) {
    const inputWasSecret = key in inputs && containsSecret(inputs[key]);
    if ((prop.sensitive || inputWasSecret) && !isAbsent(out[key]) && !(out[key] instanceof Secret)) out[key] = new Secret(out[key]);
  }
  return out;
}

/** The computed attributes of `schema` as Unknown, for a preview: what Terraform plans as "known after apply". */
export function unknownComputed(schema: BridgedResourceSchema, known: PropertyMap = {}, inputs: PropertyMap = {}): PropertyMap {
  const out: PropertyMap = {};
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (key in known) out[key] = known[key];
    else if (prop.outputOnly || (prop.computed && prop.default === undefined && isAbsent(inputs[key]))) out[key] = Unknown;
  }
  return out;
}
