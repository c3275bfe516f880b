// Reads this stack's `mailstack:*` configuration from the Pulumi runtime, unvalidated.
import * as pulumi from "@pulumi/pulumi";
import { SecretValue } from "../components/config/secret";

export const CONFIG_NAMESPACE = "mailstack";
export const CONFIG_KEYS = ["hostname", "server", "domains", "users", "aliases", "acme", "storage"] as const;

/** `pulumi.runtime.isConfigSecret` exists at runtime but is marked internal in the typings. */
const runtime = pulumi.runtime as typeof pulumi.runtime & { isConfigSecret?: (key: string) => boolean };

export interface RawStackConfig {
  raw: Record<string, unknown>;
  /** keys (namespace stripped) whose value Pulumi holds as a secret */
  secretKeys: Set<string>;
}

export function readStackConfig(): RawStackConfig {
  const raw: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const key of CONFIG_KEYS) {
    const full = `${CONFIG_NAMESPACE}:${key}`;
    const text = pulumi.runtime.getConfig(full);
    if (text === undefined) continue;
    raw[key] = reviveSecrets(parseValue(text));
    if (runtime.isConfigSecret?.(full)) secretKeys.add(key);
  }
  // Any other mailstack:* key is a typo or a key from a newer version: say so, don't ignore it.
  for (const full of Object.keys(pulumi.runtime.allConfig())) {
    const [ns, key] = full.split(":");
    if (ns === CONFIG_NAMESPACE && !(CONFIG_KEYS as readonly string[]).includes(key)) {
      raw[key] = pulumi.runtime.getConfig(full);
    }
  }
  return { raw, secretKeys };
}

/** Structured config values arrive as JSON text; plain values as strings. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `{secure: "v1:..."}` survives only when nobody could decrypt it (the offline plan). */
export function reviveSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reviveSecrets);
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1 && entries[0][0] === "secure" && typeof entries[0][1] === "string") {
      return new SecretValue(entries[0][1]);
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, reviveSecrets(v)]));
  }
  return value;
}
