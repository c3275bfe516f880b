// A stand-in for the Pulumi CLI, for tests of the commands that drive it (mailstack init, user,
// alias): run as `pulumi` from PATH (see pulumi-standin-bin.ts), it records each call (arguments,
// standard input, working directory) as one JSON line in $PULUMI_STANDIN_LOG and applies the
// change to the stack file as the real CLI does, with one difference: a secret is "encrypted"
// reversibly (`v1:c3RhbmRpbg==:<base64 of the value>`) so tests can read back what was stored.
//
// Every rule below cites pulumi/pulumi at 1b5949891b3cefcb9974752b24a5ecef0acc86c8 (github).
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from "yaml";

const VERSION = "v3.210.0";
export const STANDIN_SECRET_PREFIX = "v1:c3RhbmRpbg==:";

class CliError extends Error {}

type Segment = string | number;
/** A config value as the real CLI's `object` holds it: plain JSON, with secrets as {secure: ciphertext}. */
type Value = unknown;

function fail(message: string): never {
  throw new CliError(message);
}

// ---- arguments: cobra's rules for the flags the commands define --------------------------------

interface Parsed {
  positionals: string[];
  flags: Map<string, string | true>;
}

/** Flags of each command (name -> takes a value); an unknown flag is an error, as in cobra ("unknown flag: --x"). */
function parseFlags(argv: string[], known: Record<string, boolean>, shorts: Record<string, string> = {}): Parsed {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--") || (a.startsWith("-") && a.length === 2)) {
      const [rawName, inline] = a.startsWith("--") ? a.slice(2).split(/=(.*)/s, 2) : [shorts[a.slice(1)] ?? a, undefined];
      if (!(rawName in known)) fail(`unknown flag: ${a}`);
      if (known[rawName]) {
        const value = inline ?? argv[++i];
        if (value === undefined) fail(`flag needs an argument: ${a}`);
        flags.set(rawName, value);
      } else flags.set(rawName, true);
    } else positionals.push(a);
  }
  return { positionals, flags };
}

// ---- the project, its stacks and the backend ----------------------------------------------------

interface Project {
  root: string;
  name: string;
  stackConfigDir: string;
}

/** sdk/go/common/workspace/paths.go DetectProjectPathFrom: Pulumi.yaml in the directory or above. */
function findProject(cwd: string): Project {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const file = path.join(dir, "Pulumi.yaml");
    if (fs.existsSync(file)) {
      const doc = parseDocument(fs.readFileSync(file, "utf8")).toJS() as { name?: string; stackConfigDir?: string };
      return { root: dir, name: String(doc.name), stackConfigDir: doc.stackConfigDir ?? "" };
    }
    if (path.dirname(dir) === dir) fail("no Pulumi.yaml project file found (searching upwards from " + cwd + ")");
  }
}

/** sdk/go/common/workspace/paths.go DetectProjectStackPath: <root>/<stackConfigDir>/Pulumi.<stack>.yaml. */
function stackFile(project: Project, stack: string): string {
  return path.join(project.root, project.stackConfigDir, `Pulumi.${stack}.yaml`);
}

/** The diy backend keeps a stack's checkpoint at <url>/.pulumi/stacks/<project>/<stack>.json (pkg/backend/diy/backend.go). */
function backendStackPath(project: Project, stack: string): string {
  const url = process.env.PULUMI_BACKEND_URL;
  if (!url?.startsWith("file://")) fail("the stand-in needs PULUMI_BACKEND_URL=file://DIR (a diy backend) for its stacks");
  return path.join(url.slice("file://".length), ".pulumi", "stacks", project.name, `${stack}.json`);
}

/** pkg/backend/backenderr/backenderr.go StackNotFoundError; RequireStack offers to create only at a terminal (pkg/cmd/pulumi/stack/io.go). */
function requireStack(project: Project, stack: string): void {
  if (!fs.existsSync(backendStackPath(project, stack))) fail(`no stack named '${stack}' found`);
}

/**
 * pkg/secrets/passphrase/manager.go readPassphrase: PULUMI_CONFIG_PASSPHRASE, else
 * PULUMI_CONFIG_PASSPHRASE_FILE, else a prompt only when interactive (stdin and stdout terminals).
 */
function requirePassphrase(): void {
  if (process.env.PULUMI_CONFIG_PASSPHRASE !== undefined) return;
  const file = process.env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (file) {
    if (!fs.existsSync(file)) fail("unable to read PULUMI_CONFIG_PASSPHRASE_FILE");
    return;
  }
  if (process.stdin.isTTY && process.stdout.isTTY) fail("the stand-in cannot prompt for a passphrase; set PULUMI_CONFIG_PASSPHRASE");
  fail("passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables");
}

// ---- the stack file, edited as sdk/go/common/util/yamlutil/edit.go Edit does --------------------

function loadStack(file: string): Document {
  return parseDocument(fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "{}\n");
}

/**
 * Replaces the value under `key` of the top-level `config:` map while keeping the nodes (and so
 * the comments) of what did not change: edit.go editNodes keeps a mapping's original key order,
 * drops removed keys and appends new ones at the end; a sequence keeps its common prefix and
 * takes the rest from the new value.
 */
function writeConfigValue(doc: Document, key: string, value: Value | undefined): void {
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as typeof doc.contents;
  let config = doc.get("config", true);
  if (!isMap(config)) {
    doc.set("config", doc.createNode({}));
    config = doc.get("config", true);
  }
  const map = config as ReturnType<Document["createNode"]> & {
    get: (k: string, keep: true) => unknown;
    set: (k: string, v: unknown) => void;
    delete: (k: string) => boolean;
  };
  if (value === undefined) {
    map.delete(key);
    return;
  }
  const old = map.get(key, true) as YamlNode | undefined;
  map.set(key, old === undefined ? doc.createNode(value) : editNode(doc, old, value));
}

function editNode(doc: Document, old: YamlNode, value: Value): YamlNode {
  if (isMap(old) && value !== null && typeof value === "object" && !Array.isArray(value)) {
    const entries = value as Record<string, Value>;
    for (const pair of [...old.items]) {
      const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (!(k in entries)) old.delete(k);
    }
    for (const [k, v] of Object.entries(entries)) {
      const existing = old.get(k, true) as YamlNode | undefined;
      old.set(k, existing === undefined ? doc.createNode(v) : editNode(doc, existing, v));
    }
    return old;
  }
  if (isSeq(old) && Array.isArray(value)) {
    const common = Math.min(old.items.length, value.length);
    for (let i = 0; i < common; i++) old.items[i] = editNode(doc, old.items[i] as YamlNode, value[i]);
    old.items.splice(common);
    for (const v of value.slice(common)) old.items.push(doc.createNode(v));
    return old;
  }
  if (isScalar(old) && (value === null || typeof value !== "object")) {
    old.value = value;
    return old;
  }
  return doc.createNode(value) as YamlNode;
}

// ---- keys and paths -------------------------------------------------------------------------

/** pkg/cmd/pulumi/config/config.go ParseConfigKey: `ns:name`, or the project's namespace when none is given. */
function parseKey(text: string, project: Project): { namespace: string; name: string } {
  const colon = text.indexOf(":");
  if (colon < 0) return { namespace: project.name, name: text };
  return { namespace: text.slice(0, colon), name: text.slice(colon + 1) };
}

/** sdk/go/common/resource/properties_path.go ParsePropertyPathStrict: name(.name | [int] | ["name"])*. */
function parsePath(text: string): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  const name = /^[^.[\]"]+/;
  const first = name.exec(text);
  if (first === null) {
    if (!text.startsWith('["')) fail(`invalid config key path: expected a property name at the start of "${text}"`);
  } else {
    out.push(first[0]);
    i = first[0].length;
  }
  while (i < text.length) {
    const rest = text.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^\.([^.[\]"]+)/.exec(rest))) out.push(m[1]);
    else if ((m = /^\[(\d+)\]/.exec(rest))) out.push(Number(m[1]));
    else if ((m = /^\["((?:[^"\\]|\\.)*)"\]/.exec(rest))) out.push(m[1].replace(/\\(.)/g, "$1"));
    else fail(`invalid config key path: unexpected "${rest}" in "${text}"`);
    i += m[0].length;
  }
  if (out.length === 0 || typeof out[0] !== "string") fail("first path segement of config key must be a string");
  return out;
}

// ---- values ----------------------------------------------------------------------------------

/**
 * sdk/go/common/resource/config/object.go coerce: with --path and no --type, "true"/"false" become
 * booleans and base-10 digits not starting with 0 become numbers; everything else stays a string.
 */
function coerce(value: string): Value {
  if (value === "true") return true;
  if (value === "false") return false;
  if (/^(0|[1-9][0-9]*|-[1-9][0-9]*)$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  return value;
}

/** sdk/go/common/resource/config/value.go unmarshalObject for --type string|int|bool|float. */
function typed(value: string, type: string): Value {
  switch (type) {
    case "string":
      return value;
    case "int":
      if (!/^-?\d+$/.test(value)) fail(`strconv.Atoi: parsing "${value}": invalid syntax`);
      return Number(value);
    case "bool":
      if (!["true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False", "T", "F"].includes(value))
        fail(`strconv.ParseBool: parsing "${value}": invalid syntax`);
      return ["true", "1", "t", "TRUE", "True", "T"].includes(value);
    case "float":
      if (Number.isNaN(Number(value))) fail(`strconv.ParseFloat: parsing "${value}": invalid syntax`);
      return Number(value);
    default:
      return fail(`invalid type "${type}"; must be one of string, int, bool, or float`);
  }
}

const isSecure = (v: Value): boolean =>
  v !== null &&
  typeof v === "object" &&
  !Array.isArray(v) &&
  Object.keys(v).length === 1 &&
  typeof (v as { secure?: unknown }).secure === "string";

/** object.go object.Set: containers made from the accessor, an index equal to the length appends, past it is an error. */
function setIn(container: Value, prefix: Segment[], rest: Segment[], value: Value): Value {
  if (rest.length === 0) return value;
  const [head, ...tail] = rest;
  let c = container;
  if (c === undefined || c === null || isSecure(c)) c = typeof head === "number" ? [] : {};
  else if (typeof c !== "object") {
    // COMPAT in object.Set: at the first level a scalar is overwritten; deeper it is a type error.
    if (prefix.length === 1) c = typeof head === "number" ? [] : {};
    else fail(`${JSON.stringify(prefix)}: expected ${typeof head === "number" ? "an array" : "a map"}`);
  }
  const here = [...prefix, head];
  if (Array.isArray(c)) {
    if (typeof head !== "number") fail(`${JSON.stringify(here)}: key for an array must be an int`);
    if (head > c.length) fail(`${JSON.stringify(here)}: array index out of range`);
    const list = [...c];
    list[head] = setIn(list[head], here, tail, value);
    return list;
  }
  if (typeof head !== "string") fail(`${JSON.stringify(here)}: key for a map must be a string`);
  const map = { ...(c as Record<string, Value>) };
  // object.Set: a map holding only a "secure" string would read back as a secret (errSecureReprReserved).
  if (tail.length === 0 && Object.keys(map).length === 0 && head === "secure" && typeof value === "string") {
    fail(`"secure" values are reserved for secrets`);
  }
  map[head] = setIn(map[head], here, tail, value);
  return map;
}

/** object.go object.Delete: a missing element is no error; removing from a list shifts the rest down. */
function deleteIn(container: Value, rest: Segment[]): Value {
  const [head, ...tail] = rest;
  if (Array.isArray(container)) {
    if (typeof head !== "number" || head < 0 || head >= container.length) return container;
    if (tail.length === 0) return container.filter((_v, i) => i !== head);
    const list = [...container];
    list[head] = deleteIn(list[head], tail);
    return list;
  }
  if (container !== null && typeof container === "object" && !isSecure(container)) {
    if (typeof head !== "string" || !(head in container)) return container;
    const map = { ...(container as Record<string, Value>) };
    if (tail.length === 0) {
      const left = Object.keys(map).filter((k) => k !== head);
      if (left.length === 1 && left[0] === "secure" && typeof map.secure === "string") fail(`"secure" values are reserved for secrets`);
      delete map[head];
    } else map[head] = deleteIn(map[head], tail);
    return map;
  }
  return container;
}

// ---- commands --------------------------------------------------------------------------------

function readStdin(): string {
  try {
    return fs.readFileSync(0, "utf8");
  } catch {
    return "";
  }
}

function configSet(argv: string[], project: Project, stdin: string): void {
  const { positionals, flags } = parseFlags(
    argv,
    { stack: true, path: false, secret: false, plaintext: false, type: true, raw: false },
    { s: "stack" },
  );
  // config.go newConfigSetCmd: MarkFlagsMutuallyExclusive("secret", "plaintext", "type").
  const exclusive = ["secret", "plaintext", "type"].filter((f) => flags.has(f));
  if (exclusive.length > 1)
    fail(
      `if any flags in the group [secret plaintext type] are set none of the others can be; [${exclusive.sort().join(" ")}] were all set`,
    );
  if (positionals.length < 1 || positionals.length > 2) fail(`accepts between 1 and 2 arg(s), received ${positionals.length}`);
  const stack = String(flags.get("stack") ?? fail("no stack selected; pass --stack (the stand-in keeps no current stack)"));
  requireStack(project, stack);
  let value: string;
  if (positionals.length === 2) value = positionals[1];
  else if (!process.stdin.isTTY)
    value = flags.has("raw") ? stdin : stdin.replace(/\n$/, ""); // config.go configSetCmd.Run: RemoveTrailingNewline
  else fail("config value must be specified in non-interactive mode");
  const key = parseKey(positionals[0], project);
  const secret = flags.has("secret");
  if (secret) requirePassphrase();
  // config.go looksLikeSecret: a key named like a secret refuses a plain value unless --plaintext
  // (the real CLI also weighs the value's entropy with zxcvbn; here any value of 8 or more characters counts).
  if (!secret && !flags.has("plaintext") && /passwd|pass|password|pwd|secret|token/i.test(key.name) && value.length >= 8) {
    fail(
      `config value for '${positionals[0]}' looks like a secret; rerun with --secret to encrypt it, or --plaintext if you meant to store in plaintext`,
    );
  }
  const leaf: Value = secret ? { secure: STANDIN_SECRET_PREFIX + Buffer.from(value).toString("base64") } : value;
  const file = stackFile(project, stack);
  const doc = loadStack(file);
  const current = (doc.toJS() as { config?: Record<string, Value> } | null)?.config ?? {};
  if (!flags.has("path")) {
    // map.go Map.Set without a path: the whole key, a string (or a secret).
    writeConfigValue(doc, `${key.namespace}:${key.name}`, flags.has("type") ? typed(value, String(flags.get("type"))) : leaf);
  } else {
    const segments = parsePath(key.name);
    const rootKey = `${key.namespace}:${segments[0]}`;
    const newLeaf = secret
      ? leaf
      : flags.has("type")
        ? typed(value, String(flags.get("type")))
        : segments.length > 1
          ? coerce(value)
          : value;
    // map.go Map.Set: a one-segment path sets the key itself; deeper ones edit the object under it.
    const root = segments.length === 1 ? newLeaf : setIn(current[rootKey], segments.slice(0, 1), segments.slice(1), newLeaf);
    writeConfigValue(doc, rootKey, root);
  }
  fs.writeFileSync(file, doc.toString());
}

function configRemove(argv: string[], project: Project): void {
  const { positionals, flags } = parseFlags(argv, { stack: true, path: false }, { s: "stack" });
  if (positionals.length !== 1) fail(`accepts 1 arg(s), received ${positionals.length}`);
  const stack = String(flags.get("stack") ?? fail("no stack selected; pass --stack (the stand-in keeps no current stack)"));
  requireStack(project, stack);
  const key = parseKey(positionals[0], project);
  const file = stackFile(project, stack);
  const doc = loadStack(file);
  const current = (doc.toJS() as { config?: Record<string, Value> } | null)?.config ?? {};
  if (!flags.has("path")) writeConfigValue(doc, `${key.namespace}:${key.name}`, undefined);
  else {
    // map.go Map.Remove: one segment deletes the key; a missing root is no error.
    const segments = parsePath(key.name);
    const rootKey = `${key.namespace}:${segments[0]}`;
    if (segments.length === 1) writeConfigValue(doc, rootKey, undefined);
    else if (rootKey in current) writeConfigValue(doc, rootKey, deleteIn(current[rootKey], segments.slice(1)));
  }
  fs.writeFileSync(file, doc.toString());
}

/** pkg/cmd/pulumi/stack/stack_select.go: an existing stack is selected; with --create a missing one is created. */
function stackSelect(argv: string[], project: Project): void {
  const { positionals, flags } = parseFlags(argv, { stack: true, create: false, "secrets-provider": true }, { s: "stack", c: "create" });
  if (positionals.length > 0 && flags.has("stack")) fail("only one of --stack or argument stack name may be specified, not both");
  const stack = positionals[0] ?? (flags.get("stack") as string | undefined) ?? fail("no stack selected");
  const checkpoint = backendStackPath(project, stack);
  if (fs.existsSync(checkpoint)) return;
  if (!flags.has("create")) fail(`no stack named '${stack}' found`);
  // io.go CreateStack -> createSecretsManagerForNewStack: the diy backend's default is a passphrase
  // provider, whose salt is saved into the stack's config file (kept, and edited in place).
  requirePassphrase();
  const file = stackFile(project, stack);
  const doc = loadStack(file);
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as typeof doc.contents;
  if (!doc.has("encryptionsalt")) doc.set("encryptionsalt", `v1:${randomBytes(8).toString("base64")}:v1:standin:standin`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, doc.toString());
  fs.mkdirSync(path.dirname(checkpoint), { recursive: true });
  fs.writeFileSync(checkpoint, JSON.stringify({ version: 3, checkpoint: { stack } }));
  process.stdout.write(`Created stack '${stack}'\n`);
}

function run(argv: string[], stdin: string): void {
  const [group, sub, ...rest] = argv;
  if (group === "version") {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const project = findProject(process.cwd());
  if (group === "config" && sub === "set") return configSet(rest, project, stdin);
  if (group === "config" && (sub === "rm" || sub === "remove" || sub === "delete")) return configRemove(rest, project);
  if (group === "stack" && sub === "select") return stackSelect(rest, project);
  fail(`the stand-in does not implement \`pulumi ${argv.join(" ")}\``);
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const wantsStdin = argv[0] === "config" && argv[1] === "set" && !process.stdin.isTTY;
  const stdin = wantsStdin ? readStdin() : "";
  const log = process.env.PULUMI_STANDIN_LOG;
  if (log) fs.appendFileSync(log, `${JSON.stringify({ args: argv, stdin: wantsStdin ? stdin : null, cwd: process.cwd() })}\n`);
  try {
    run(argv, stdin);
  } catch (err) {
    // cmdutil RunFunc: DisplayErrorMessage ("error: ...") then os.Exit(-1), status 255 (sdk/go/common/util/cmdutil/exit.go).
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = err instanceof CliError ? 255 : 1;
  }
}
