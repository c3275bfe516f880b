// Reads a Pulumi stack file (stacks/Pulumi.<stack>.yaml) the way the Pulumi CLI would hand its
// config to the program, without the CLI: used by the offline plan and the tests.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { SecretValue } from "./secret";

/**
 * The `config:` entries of `namespace` with the `namespace:` prefix stripped. Every
 * `{secure: "..."}` value, at any depth, becomes a SecretValue (it cannot be decrypted here).
 * Keys of other namespaces (`hcloud:token`, `cloudflare:apiToken`) are ignored; a key without a
 * namespace belongs to the project, as in Pulumi.
 */
export function readStackFile(path: string, namespace = "mailstack"): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file; create it or pick another --stack" : (err as Error).message;
    throw new Error(`${path}: cannot read the stack file: ${why}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isMapping(doc)) throw new Error(`${path}: expected a YAML mapping at the top (with a config: key)`);
  const config = doc.config;
  if (config === null || config === undefined) return {};
  if (!isMapping(config)) throw new Error(`${path}: config: expected a mapping of namespace:key entries`);

  const out: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(config)) {
    const colon = fullKey.indexOf(":");
    const ns = colon < 0 ? namespace : fullKey.slice(0, colon);
    if (ns !== namespace) continue;
    const key = colon < 0 ? fullKey : fullKey.slice(colon + 1);
    if (key in out) throw new Error(`${path}: config: ${namespace}:${key} is set twice`);
    out[key] = reviveSecrets(value);
  }
  return out;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function reviveSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reviveSecrets);
  if (isMapping(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "secure" && typeof value.secure === "string") return new SecretValue(value.secure);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reviveSecrets(v)]));
  }
  return value;
}
