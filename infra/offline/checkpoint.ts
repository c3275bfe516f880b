// Reading and writing the JSON of `pulumi stack export` (with or without --show-secrets): an
// apitype.UntypedDeployment of version 3 around a DeploymentV3 whose resources are ResourceV3
// (sdk/go/common/apitype/core.go at pulumi/pulumi 1b594988, L156-174 and L489-565). Secrets are
// SecretV1 objects (core.go L600-607): `{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
// "plaintext": "<json>"}` after --show-secrets, or with "ciphertext" otherwise. A ciphertext is kept
// as an EncryptedSecret: its value is unknown here.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import {
  Secret,
  SECRET_SIG,
  SPECIAL_SIG_KEY,
  Unknown,
  type Checkpoint,
  type PropertyMap,
  type PropertyValue,
  type ResourceState,
} from "./model";
import { EncryptedSecret, isObjectValue } from "./property-values";
import { ROOT_STACK_TYPE } from "./deployment";

/** ResourceV3 fields the engine models; any other field is carried in `unmodeled`. */
const MODELED = new Set([
  "urn",
  "custom",
  "delete",
  "id",
  "type",
  "inputs",
  "outputs",
  "parent",
  "protect",
  "external",
  "dependencies",
  "provider",
  "propertyDependencies",
  "pendingReplacement",
  "additionalSecretOutputs",
  "aliases",
  "importID",
  "retainOnDelete",
  "deletedWith",
  "replaceWith",
  "ignoreChanges",
  "replaceOnChanges",
]);

export interface ParsedExport {
  checkpoint: Checkpoint;
  /** some secret was exported without --show-secrets: its value is unknown to the offline engine */
  encryptedSecrets: boolean;
  /** the deployment as read, for writing a new one in its image (manifest, secrets_providers) */
  deployment: Record<string, unknown>;
  version: number;
}

class ExportError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
  }
}

/** A state value -> engine value. */
function fromState(value: unknown, found: { encrypted: boolean }, where: string): PropertyValue {
  if (Array.isArray(value)) return value.map((v, i) => fromState(v, found, `${where}[${i}]`));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SPECIAL_SIG_KEY] === SECRET_SIG) {
      if (typeof obj.plaintext === "string") {
        let inner: unknown;
        try {
          inner = JSON.parse(obj.plaintext);
        } catch {
          throw new Error(`${where}: a secret's plaintext is not JSON`);
        }
        return new Secret(fromState(inner, found, where));
      }
      if (typeof obj.ciphertext === "string") {
        found.encrypted = true;
        return new Secret(new EncryptedSecret(obj.ciphertext));
      }
      // the in-memory form (`value`) appears in states written by older tools
      if ("value" in obj) return new Secret(fromState(obj.value, found, where));
      throw new Error(`${where}: a secret with neither plaintext nor ciphertext`);
    }
    if (typeof obj[SPECIAL_SIG_KEY] === "string") return obj; // assets, archives, resource references
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, fromState(v, found, `${where}.${k}`)]));
  }
  return value as PropertyValue;
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw new Error(`${where}: expected a list of strings`);
  return value as string[];
}

/** Parses `pulumi stack export` output. `source` names the input in errors ("state.json", "stdin"). */
export function parseStackExport(text: string, source: string): ParsedExport {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ExportError(source, `not JSON (${(err as Error).message}); give the output of \`pulumi stack export --show-secrets\``);
  }
  if (!isObjectValue(doc) || typeof doc.version !== "number" || !isObjectValue(doc.deployment)) {
    throw new ExportError(source, "not a `pulumi stack export` document: expected {version, deployment}");
  }
  // version 4 only adds `features`, which the CLI checks; the deployment is still a DeploymentV3
  if (doc.version !== 3 && doc.version !== 4) throw new ExportError(source, `deployment version ${doc.version} is not supported (3 or 4)`);
  const deployment = doc.deployment as Record<string, unknown>;
  const rawResources = deployment.resources ?? [];
  if (!Array.isArray(rawResources)) throw new ExportError(source, "deployment.resources is not a list");
  if (Array.isArray(deployment.pending_operations) && deployment.pending_operations.length > 0) {
    throw new ExportError(
      source,
      `the stack has ${deployment.pending_operations.length} pending operation(s) from an interrupted update; resolve them (pulumi refresh, or pulumi stack export/import) and export again`,
    );
  }
  const found = { encrypted: false };
  const resources = rawResources.map((raw, i): ResourceState => {
    const where = `deployment.resources[${i}]`;
    if (!isObjectValue(raw) || typeof raw.urn !== "string" || typeof raw.type !== "string") {
      throw new ExportError(source, `${where}: expected an object with urn and type`);
    }
    try {
      const unmodeled = Object.fromEntries(Object.entries(raw).filter(([k]) => !MODELED.has(k)));
      const propertyDependencies: Record<string, string[]> = {};
      for (const [k, v] of Object.entries((raw.propertyDependencies as Record<string, unknown>) ?? {})) {
        propertyDependencies[k] = stringList(v, `${where}.propertyDependencies.${k}`);
      }
      const opt = <T>(key: string, value: T | undefined) => (value === undefined || value === null || value === "" ? {} : { [key]: value });
      return {
        urn: raw.urn,
        type: raw.type,
        custom: raw.custom === true,
        id: typeof raw.id === "string" ? raw.id : "",
        inputs: (fromState(raw.inputs ?? {}, found, `${where}.inputs`) as PropertyMap) ?? {},
        outputs: (fromState(raw.outputs ?? {}, found, `${where}.outputs`) as PropertyMap) ?? {},
        ...opt("parent", raw.parent as string | undefined),
        ...opt("provider", raw.provider as string | undefined),
        dependencies: stringList(raw.dependencies, `${where}.dependencies`),
        propertyDependencies,
        protect: raw.protect === true,
        retainOnDelete: raw.retainOnDelete === true,
        ...opt("deletedWith", raw.deletedWith as string | undefined),
        ...(raw.delete === true ? { delete: true } : {}),
        ...(raw.pendingReplacement === true ? { pendingReplacement: true } : {}),
        ...opt("importId", raw.importID as string | undefined),
        ...(raw.additionalSecretOutputs
          ? { additionalSecretOutputs: stringList(raw.additionalSecretOutputs, `${where}.additionalSecretOutputs`) }
          : {}),
        ...(raw.ignoreChanges ? { ignoreChanges: stringList(raw.ignoreChanges, `${where}.ignoreChanges`) } : {}),
        ...(raw.replaceOnChanges ? { replaceOnChanges: stringList(raw.replaceOnChanges, `${where}.replaceOnChanges`) } : {}),
        ...(raw.replaceWith ? { replaceWith: stringList(raw.replaceWith, `${where}.replaceWith`) } : {}),
        ...(raw.aliases ? { aliases: stringList(raw.aliases, `${where}.aliases`) } : {}),
        ...(raw.external === true ? { external: true } : {}),
        ...(Object.keys(unmodeled).length ? { unmodeled } : {}),
      };
    } catch (err) {
      if (err instanceof ExportError) throw err;
      throw new ExportError(source, (err as Error).message);
    }
  });
  const stack = resources.find((r) => r.type === ROOT_STACK_TYPE && !r.delete);
  return { checkpoint: { outputs: stack?.outputs ?? {}, resources }, encryptedSecrets: found.encrypted, deployment, version: doc.version };
}

/** Reads a state file, or stdin for "-". */
export function readStackExport(file: string): ParsedExport {
  const text = file === "-" ? fs.readFileSync(0, "utf8") : readFile(file);
  return parseStackExport(text, file === "-" ? "stdin" : file);
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--state ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
}

/** Engine value -> state value: secrets as plaintext SecretV1 (in memory and test files only), ciphertexts kept. */
function toState(value: PropertyValue, where: string): unknown {
  if (value === Unknown) throw new Error(`${where}: an unknown value cannot be written to a state (only a preview has unknowns)`);
  if (value instanceof Secret) {
    if (value.value instanceof EncryptedSecret) return { [SPECIAL_SIG_KEY]: SECRET_SIG, ciphertext: value.value.ciphertext };
    return { [SPECIAL_SIG_KEY]: SECRET_SIG, plaintext: JSON.stringify(toState(value.value, where)) };
  }
  if (value instanceof EncryptedSecret) return { [SPECIAL_SIG_KEY]: SECRET_SIG, ciphertext: value.ciphertext };
  if (Array.isArray(value)) return value.map((v, i) => toState(v, `${where}[${i}]`));
  if (isObjectValue(value)) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toState(v, `${where}.${k}`)]),
    );
  }
  return value;
}

/** ResourceState -> ResourceV3 (omitempty as the Go struct tags say). */
function resourceToState(r: ResourceState): Record<string, unknown> {
  const out: Record<string, unknown> = { urn: r.urn, custom: r.custom };
  if (r.delete) out.delete = true;
  if (r.id) out.id = r.id;
  out.type = r.type;
  if (Object.keys(r.inputs).length) out.inputs = toState(r.inputs, `${r.urn} inputs`);
  if (Object.keys(r.outputs).length) out.outputs = toState(r.outputs, `${r.urn} outputs`);
  if (r.parent) out.parent = r.parent;
  if (r.protect) out.protect = true;
  if (r.external) out.external = true;
  if (r.dependencies.length) out.dependencies = r.dependencies;
  if (r.provider) out.provider = r.provider;
  if (Object.keys(r.propertyDependencies).length) out.propertyDependencies = r.propertyDependencies;
  if (r.pendingReplacement) out.pendingReplacement = true;
  if (r.additionalSecretOutputs?.length) out.additionalSecretOutputs = r.additionalSecretOutputs;
  if (r.aliases?.length) out.aliases = r.aliases;
  if (r.importId) out.importID = r.importId;
  if (r.retainOnDelete) out.retainOnDelete = true;
  if (r.deletedWith) out.deletedWith = r.deletedWith;
  if (r.replaceWith?.length) out.replaceWith = r.replaceWith;
  if (r.ignoreChanges?.length) out.ignoreChanges = r.ignoreChanges;
  if (r.replaceOnChanges?.length) out.replaceOnChanges = r.replaceOnChanges;
  return { ...out, ...(r.unmodeled ?? {}) };
}

/**
 * A checkpoint as `pulumi stack export` would print it. `like` (a parsed export) lends its manifest
 * version and secrets_providers; secrets are written as plaintext SecretV1 objects, so the result
 * belongs in memory or test files, never in a log.
 */
export function formatStackExport(checkpoint: Checkpoint, like?: ParsedExport): string {
  const manifest = isObjectValue(like?.deployment.manifest) ? (like!.deployment.manifest as Record<string, unknown>) : {};
  const version = typeof manifest.version === "string" ? manifest.version : "v0.0.0-mailstack-offline";
  const deployment: Record<string, unknown> = {
    manifest: { time: new Date().toISOString(), magic: createHash("sha256").update(version).digest("hex"), version },
    ...(like?.deployment.secrets_providers ? { secrets_providers: like.deployment.secrets_providers } : {}),
    resources: checkpoint.resources.map(resourceToState),
  };
  return `${JSON.stringify({ version: 3, deployment }, null, 4)}\n`;
}
