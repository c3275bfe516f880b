// `mailstack preview`: the stack's program run offline as `pulumi preview` would run it against the
// last deployed state (`pulumi stack export --show-secrets`) or an empty stack, with the provider
// stand-ins of infra/offline/providers/, reported as steps in the engine's order with their reasons.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { readStackFile } from "../../components/config/stack-file";
import { readStackExport, type ParsedExport } from "../offline/checkpoint";
import { Secret, type Checkpoint, type EngineDiagnostic, type ProviderStandIn, type Step } from "../offline/model";
import { EncryptedSecret } from "../offline/property-values";
import { standInResolver } from "../offline/providers/registry";
import { EMPTY_CHECKPOINT, simulate } from "../offline/simulate";
import { configFromStackValues, stackFilePath } from "./plan";
import { formatPreview, formatPreviewJson } from "./preview-format";

export const PREVIEW_USAGE = `usage: mailstack preview --stack NAME [--state FILE|-] [--config FILE] [--diff] [--json] [--project DIR] [--verbose]

  preview  run the Pulumi program offline against the last deployed state, as \`pulumi preview --diff\`
           would, and print every step (create, update, replace create-first or delete-first,
           delete) with its reason, in the order the engine runs them (deletes last), and each DNS
           record change as name, type, old -> new. Secrets print as [secret].
           --state   the output of \`pulumi stack export --show-secrets\` (a file, or - for stdin);
                     without it: an empty stack (a first deploy)
           --config  the output of \`pulumi config --show-secrets --json\`: the stack's config with
                     its secrets decrypted (default: stacks/Pulumi.NAME.yaml, secrets undecrypted)
           --diff    also print each changed property, old => new
           --json    machine-readable report`;

export interface PreviewOptions {
  stack: string;
  /** directory holding Pulumi.yaml and stacks/ */
  projectDir: string;
  /** `pulumi stack export --show-secrets` output: a path, or "-" for stdin; absent: an empty stack */
  stateFile?: string;
  /** `pulumi config --show-secrets --json` output; absent: the stack file */
  configFile?: string;
  /** provider stand-ins to use instead of infra/offline/providers/ (tests) */
  providers?: ProviderStandIn[];
  /** where the stand-ins are; default infra/offline/providers/ */
  standInDir?: string;
}

export interface DnsChange {
  op: "create" | "update" | "replace" | "delete";
  name: string;
  type: string;
  /** presentation of the old and new record data ("[unknown]" where not known before up) */
  old?: string;
  new?: string;
}

export interface PreviewReport {
  stack: string;
  /** where the state came from, or null for an empty stack */
  stateSource: string | null;
  /** resources in the state compared against */
  resourcesBefore: number;
  steps: Step[];
  diagnostics: EngineDiagnostic[];
  logs: { urn: string; message: string }[];
  warnings: string[];
  counts: { create: number; update: number; replace: number; delete: number; same: number };
  dns: DnsChange[];
  failed: boolean;
}

/** The config of `pulumi config --show-secrets --json`: {key: {value, objectValue?, secret}}. */
export function configFromPulumiJson(text: string, source: string): { config: Record<string, string>; secretKeys: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`--config ${source}: not JSON (${(err as Error).message}); give the output of \`pulumi config --show-secrets --json\``);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new Error(`--config ${source}: expected an object of config keys`);
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, entry] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof entry !== "object" || entry === null) throw new Error(`--config ${source}: ${key}: expected {value, secret}`);
    const e = entry as { value?: unknown; objectValue?: unknown; secret?: boolean };
    if (e.secret && e.value === undefined && e.objectValue === undefined) {
      throw new Error(`--config ${source}: ${key} is secret but has no value: run \`pulumi config --show-secrets --json\``);
    }
    config[key] = typeof e.value === "string" ? e.value : JSON.stringify(e.objectValue ?? e.value);
    if (e.secret) secretKeys.push(key);
  }
  return { config, secretKeys };
}

/**
 * The deployed providers' config (`hcloud:token`, `cloudflare:apiToken`), from their default provider
 * states: a show-secrets export holds it in plaintext, and it is what the stack was deployed with.
 */
function providerConfigFromState(checkpoint: Checkpoint): { config: Record<string, string>; secretKeys: string[] } {
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const r of checkpoint.resources) {
    const [, , type, name] = r.urn.split("::");
    if (r.delete || !type?.startsWith("pulumi:providers:") || !name?.startsWith("default")) continue;
    const pkg = type.slice("pulumi:providers:".length);
    for (const [key, value] of Object.entries(r.inputs)) {
      if (key === "version" || key === "pluginDownloadURL") continue;
      const secret = value instanceof Secret;
      const plain = secret ? (value as Secret).value : value;
      if (plain instanceof EncryptedSecret) continue;
      config[`${pkg}:${key}`] = typeof plain === "string" ? plain : JSON.stringify(plain);
      if (secret) secretKeys.push(`${pkg}:${key}`);
    }
  }
  return { config, secretKeys };
}

function countEncrypted(value: unknown): number {
  if (value instanceof EncryptedSecret) return 1;
  if (value instanceof Secret) return countEncrypted(value.value);
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + countEncrypted(v), 0);
  if (value && typeof value === "object") return Object.values(value).reduce((n: number, v) => n + countEncrypted(v), 0);
  return 0;
}

const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";

function present(value: unknown): string {
  if (value instanceof Secret || value instanceof EncryptedSecret) return "[secret]";
  if (typeof value === "symbol") return "[unknown]";
  if (value === undefined || value === null) return "";
  if (typeof value === "object") {
    const entries = Object.values(value as Record<string, unknown>);
    return entries.map(present).join(" ");
  }
  return String(value);
}

/** A record's data as a zone file shows it: MX with its priority, CAA/SRV/TLSA from their fields. */
export function recordPresentation(inputs: Record<string, unknown> | undefined): string {
  if (!inputs) return "";
  const type = String(present(inputs.type));
  const data = inputs.data as Record<string, unknown> | undefined;
  if (data && typeof data === "object" && !(data instanceof Secret)) {
    const order: Record<string, string[]> = {
      CAA: ["flags", "tag", "value"],
      SRV: ["priority", "weight", "port", "target"],
      TLSA: ["usage", "selector", "matchingType", "certificate"],
    };
    const keys = order[type] ?? Object.keys(data);
    return keys
      .map((k) => (type === "CAA" && k === "value" && typeof data[k] === "string" ? JSON.stringify(data[k]) : present(data[k])))
      .join(" ");
  }
  if (typeof data === "symbol") return "[unknown]";
  const content = present(inputs.content);
  return inputs.priority !== undefined ? `${present(inputs.priority)} ${content}` : content;
}

function dnsChanges(steps: Step[]): DnsChange[] {
  const changes: DnsChange[] = [];
  for (const s of steps) {
    if (s.type !== DNS_RECORD) continue;
    const inputs = (s.newInputs ?? s.oldInputs) as Record<string, unknown>;
    const base = { name: present(inputs.name), type: present(inputs.type) };
    if (s.op === "create") changes.push({ op: "create", ...base, new: recordPresentation(s.newInputs) });
    else if (s.op === "update")
      changes.push({ op: "update", ...base, old: recordPresentation(s.oldInputs), new: recordPresentation(s.newInputs) });
    else if (s.op === "create-replacement")
      changes.push({ op: "replace", ...base, old: recordPresentation(s.oldInputs), new: recordPresentation(s.newInputs) });
    else if (s.op === "delete" || s.op === "retain") changes.push({ op: "delete", ...base, old: recordPresentation(s.oldInputs) });
  }
  return changes;
}

/** pulumi's summary: one replacement per resource however many steps it takes. */
function countSteps(steps: Step[]): PreviewReport["counts"] {
  const per = (op: Step["op"][]) => new Set(steps.filter((s) => op.includes(s.op)).map((s) => s.urn)).size;
  return {
    create: per(["create", "import"]),
    update: per(["update"]),
    replace: per(["create-replacement"]),
    delete: per(["delete", "retain"]),
    same: per(["same"]),
  };
}

export async function previewStack(options: PreviewOptions): Promise<PreviewReport> {
  if (!/^[A-Za-z0-9_.-]+$/.test(options.stack)) throw new Error(`--stack: "${options.stack}" is not a stack name (letters, digits, _ . -)`);
  const warnings: string[] = [];
  let parsed: ParsedExport | undefined;
  if (options.stateFile !== undefined) parsed = readStackExport(options.stateFile);
  const checkpoint = parsed?.checkpoint ?? EMPTY_CHECKPOINT;
  if (!parsed) warnings.push("no --state: comparing against an empty stack (a first deploy)");
  if (parsed?.encryptedSecrets) {
    const n = checkpoint.resources.reduce((sum, r) => sum + countEncrypted(r.inputs) + countEncrypted(r.outputs), 0);
    warnings.push(
      `the state holds ${n} encrypted secret value(s) (exported without --show-secrets): they are unknown here, so what depends on them may show as changed; export with \`pulumi stack export --show-secrets\``,
    );
  }

  let config: Record<string, string>;
  let secretKeys: string[];
  if (options.configFile !== undefined) {
    ({ config, secretKeys } = configFromPulumiJson(fs.readFileSync(options.configFile, "utf8"), options.configFile));
  } else {
    const stackFile = stackFilePath(options.projectDir, options.stack);
    const values = readStackFile(stackFile);
    ({ config, secretKeys } = configFromStackValues(values));
    const undecrypted = JSON.stringify(values, (_k, v: unknown) => v).match(/"ciphertext"/g)?.length ?? 0;
    if (undecrypted > 0) {
      warnings.push(
        `${path.relative(options.projectDir, stackFile)} holds ${undecrypted} encrypted value(s) that cannot be decrypted offline: what is built from them (the deploy manifest) may show as changed; pass --config with the output of \`pulumi config --show-secrets --json\``,
      );
    }
    const fromState = providerConfigFromState(checkpoint);
    config = { ...fromState.config, ...config };
    secretKeys = [...new Set([...fromState.secretKeys, ...secretKeys])];
  }
  if (config["cloudflare:apiToken"] === undefined && !process.env.CLOUDFLARE_API_TOKEN) {
    // The program passes the token to the ACME provider, whose check refuses an empty one; offline
    // nobody calls Cloudflare, so a marked stand-in keeps the preview going.
    config["cloudflare:apiToken"] = "offline-preview-stand-in-for-cloudflare-apiToken";
    secretKeys.push("cloudflare:apiToken");
    warnings.push("cloudflare:apiToken is not known offline (not in --config, the state or CLOUDFLARE_API_TOKEN): a stand-in is used");
  }

  const run = await simulate({
    mode: "preview",
    stack: options.stack,
    project: projectName(options.projectDir),
    config,
    secretKeys,
    checkpoint,
    providers: options.providers ?? [],
    resolveProvider: options.providers
      ? undefined
      : standInResolver(
          { projectDir: options.projectDir, project: projectName(options.projectDir), config, zones: deployedZones(config, checkpoint) },
          options.standInDir,
        ),
    projectDir: options.projectDir,
    // one at a time: a fixed order that is one of the orders the engine may run them in
    parallel: 1,
    program: () => {
      // Loaded here, after the runtime is set up, as the Pulumi CLI loads the program.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const program = require("../program") as typeof import("../program");
      const { stack: _stack, ...outputs } = program.defineMailStack();
      return outputs;
    },
  });
  return {
    stack: options.stack,
    stateSource: options.stateFile === undefined ? null : options.stateFile === "-" ? "stdin" : options.stateFile,
    resourcesBefore: checkpoint.resources.filter((r) => !r.type.startsWith("pulumi:providers:")).length,
    steps: run.steps,
    diagnostics: run.diagnostics,
    logs: run.logs,
    warnings,
    counts: countSteps(run.steps),
    dns: dnsChanges(run.steps),
    failed: run.failed,
  };
}

/**
 * The Cloudflare zones of `mailstack:domains`, with the zone id the deployed DNS records carry (the
 * zone whose name is the longest suffix of a record's name).
 */
function deployedZones(config: Record<string, string>, checkpoint: Checkpoint): Record<string, string | undefined> {
  let domains: unknown;
  try {
    domains = JSON.parse(config["mailstack:domains"] ?? "[]");
  } catch {
    return {};
  }
  if (!Array.isArray(domains)) return {};
  const zones: Record<string, string | undefined> = {};
  for (const d of domains as { zone?: unknown; name?: unknown }[]) {
    const zone = d.zone ?? d.name;
    if (typeof zone === "string") zones[zone.toLowerCase()] = undefined;
  }
  const names = Object.keys(zones).sort((a, b) => b.length - a.length);
  for (const r of checkpoint.resources) {
    if (r.type !== DNS_RECORD || r.delete) continue;
    const name = String(r.inputs.name ?? "")
      .toLowerCase()
      .replace(/\.$/, "");
    const zone = names.find((z) => name === z || name.endsWith(`.${z}`));
    if (zone && zones[zone] === undefined && typeof r.inputs.zoneId === "string") zones[zone] = r.inputs.zoneId;
  }
  return zones;
}

/** Pulumi.yaml `name:` (the project part of every URN). */
function projectName(projectDir: string): string {
  try {
    const m = /^name:\s*(\S+)\s*$/m.exec(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8"));
    if (m) return m[1];
  } catch {
    // fall through to the package's own name
  }
  return "mailstack";
}

export interface RunPreviewEnvironment {
  findProjectDir: (start: string) => string;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** stand-ins instead of infra/offline/providers/ (tests) */
  providers?: ProviderStandIn[];
}

class UsageError extends Error {}

/** The whole command: 0 when the preview ran, 1 when the engine reported errors, 2 for bad arguments. */
export async function runPreview(argv: string[], env: RunPreviewEnvironment): Promise<number> {
  const stdout = env.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = env.stderr ?? ((t: string) => void process.stderr.write(t));
  let values;
  try {
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          stack: { type: "string" },
          state: { type: "string" },
          config: { type: "string" },
          diff: { type: "boolean", default: false },
          json: { type: "boolean", default: false },
          project: { type: "string" },
          verbose: { type: "boolean", default: false },
        },
        strict: true,
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values.stack === undefined) throw new UsageError("--stack: required (the stack in stacks/Pulumi.NAME.yaml to preview)");
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr(`mailstack preview: ${err.message}\n${PREVIEW_USAGE}\n`);
    return 2;
  }
  const report = await previewStack({
    stack: values.stack,
    projectDir: values.project ? path.resolve(values.project) : env.findProjectDir(process.cwd()),
    stateFile: values.state,
    configFile: values.config,
    providers: env.providers,
  });
  stdout(values.json ? formatPreviewJson(report) : formatPreview(report, { diff: values.diff }));
  return report.failed ? 1 : 0;
}
