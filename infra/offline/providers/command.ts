// @pulumi/command 1.2.1 as a stand-in: remote.Command, remote.CopyToRemote and local.Command,
// running through a CommandExecutor. Sources: pulumi/pulumi-command v1.2.1 (7f3eb6f3)
// provider/pkg/provider/{remote,local}/*Controller.go, commandOutputs.go, copy.go, connection.go;
// pulumi/pulumi-go-provider v1.3.0 (3bfb720d) infer/resource.go (Check defaults, Diff, preview
// computedness); /work/research/engine.md sec. 14.
import {
  ARCHIVE_SIG,
  Secret,
  SPECIAL_SIG_KEY,
  Unknown,
  type CallContext,
  type CheckFailure,
  type DiffResult,
  type PropertyMap,
  type ProviderStandIn,
} from "../model";
import type { CommandExecutor, CopySource, Logging, SshConnection } from "./command-executor";
import { urnName } from "./bridge";
import {
  addDetailedDiff,
  assetHash,
  containsUnknown,
  emptyDiff,
  isAbsent,
  isArchive,
  isAsset,
  isPlainObject,
  ProviderCallError,
  randomHex,
  reveal,
  topLevelKey,
  type AssetWire,
} from "./property";

export const REMOTE_COMMAND = "command:remote:Command";
export const COPY_TO_REMOTE = "command:remote:CopyToRemote";
export const LOCAL_COMMAND = "command:local:Command";
const TYPES = [REMOTE_COMMAND, COPY_TO_REMOTE, LOCAL_COMMAND];

/** Input properties per type (remote/command.go CommandInputs, remote/copy.go, local/base.go + common/inputs.go). */
const INPUTS: Record<string, string[]> = {
  [REMOTE_COMMAND]: ["connection", "create", "update", "delete", "triggers", "stdin", "logging", "environment", "addPreviousOutputInEnv"],
  [COPY_TO_REMOTE]: ["connection", "triggers", "source", "remotePath"],
  [LOCAL_COMMAND]: [
    "create",
    "update",
    "delete",
    "triggers",
    "stdin",
    "logging",
    "interpreter",
    "dir",
    "environment",
    "assetPaths",
    "archivePaths",
    "addPreviousOutputInEnv",
  ],
};

const LOGGING: Record<string, Logging> = { stdout: "stdout", stderr: "stderr", stdoutAndStderr: "stdoutAndStderr", none: "none" };

/** connection.go Annotate: the defaults infer's Check fills in (user root, port 22, 10 dial errors, 15 s per dial). */
function withConnectionDefaults(connection: unknown): unknown {
  if (!isPlainObject(connection)) return connection;
  const c = { user: "root", port: 22, dialErrorLimit: 10, perDialTimeout: 15, ...connection } as Record<string, unknown>;
  if (isPlainObject(c.proxy)) c.proxy = withConnectionDefaults(c.proxy);
  return c;
}

function sshConnection(value: unknown): SshConnection {
  const c = reveal(value) as Record<string, unknown>;
  const opt = (k: string) => (isAbsent(c[k]) ? undefined : String(c[k]));
  return {
    host: String(c.host),
    port: Number(c.port ?? 22),
    user: String(c.user ?? "root"),
    ...(opt("password") !== undefined ? { password: opt("password") } : {}),
    ...(opt("privateKey") !== undefined ? { privateKey: opt("privateKey") } : {}),
    ...(opt("privateKeyPassword") !== undefined ? { privateKeyPassword: opt("privateKeyPassword") } : {}),
    ...(opt("agentSocketPath") !== undefined ? { agentSocketPath: opt("agentSocketPath") } : {}),
    ...(opt("hostKey") !== undefined ? { hostKey: opt("hostKey") } : {}),
    dialErrorLimit: Number(c.dialErrorLimit ?? 10),
    perDialTimeout: Number(c.perDialTimeout ?? 15),
    ...(isPlainObject(c.proxy) ? { proxy: sshConnection(c.proxy) } : {}),
  };
}

/** An asset or archive with the content hash the engine keeps in the state beside it. */
function withHash(value: unknown): unknown {
  if (isAsset(value) || isArchive(value)) return { ...value, hash: assetHash(value as AssetWire) };
  return value;
}

function copySource(source: unknown): CopySource {
  const s = reveal(source) as AssetWire & Record<string, unknown>;
  if (isAsset(s) && typeof s.text === "string") return { kind: "text", text: s.text };
  if (isAsset(s) && typeof s.path === "string") return { kind: "file", path: s.path };
  if (s[SPECIAL_SIG_KEY] === ARCHIVE_SIG && typeof s.path === "string") return { kind: "directory", path: s.path };
  throw new ProviderCallError("CopyToRemote: the source must be a FileAsset, a StringAsset or a FileArchive of a directory");
}

/** Go's strings.TrimSuffix(out, "\n") (remote/commandOutputs.go run, local/commandOutputs.go run). */
const trimNewline = (s: string) => (s.endsWith("\n") ? s.slice(0, -1) : s);

export function commandStandIn(executor: CommandExecutor): ProviderStandIn {
  const mustKnow = (type: string) => {
    if (!TYPES.includes(type))
      throw new ProviderCallError(`the command stand-in has no resource type ${type} (it models ${TYPES.join(", ")})`);
  };

  /**
   * remote/commandOutputs.go run and local/commandOutputs.go run: the previous stdout/stderr go
   * into PULUMI_COMMAND_STDOUT/STDERR unless addPreviousOutputInEnv is false, and only when not empty.
   */
  async function run(ctx: CallContext, type: string, command: string, inputs: PropertyMap, previous: { stdout: string; stderr: string }) {
    if (type === LOCAL_COMMAND && (!isAbsent(reveal(inputs.assetPaths)) || !isAbsent(reveal(inputs.archivePaths)))) {
      // local/commandOutputs.go globs them into `assets`/`archive` outputs; the stand-in does not model that.
      throw new ProviderCallError(
        "local.Command assetPaths/archivePaths are not modelled by the offline stand-in; leave them out or extend command.ts",
      );
    }
    const prevEnv: Record<string, string> = {};
    if (reveal(inputs.addPreviousOutputInEnv) !== false) {
      if (previous.stdout !== "") prevEnv.PULUMI_COMMAND_STDOUT = previous.stdout;
      if (previous.stderr !== "") prevEnv.PULUMI_COMMAND_STDERR = previous.stderr;
    }
    const environment = (reveal(inputs.environment) as Record<string, string> | undefined) ?? {};
    const stdin = reveal(inputs.stdin);
    const logging = LOGGING[String(reveal(inputs.logging) ?? "stdoutAndStderr")] ?? "stdoutAndStderr";
    const out =
      type === LOCAL_COMMAND
        ? await executor.runLocal(
            {
              command,
              ...(Array.isArray(reveal(inputs.interpreter)) && (reveal(inputs.interpreter) as string[]).length > 0
                ? { interpreter: reveal(inputs.interpreter) as string[] }
                : {}),
              ...(isAbsent(reveal(inputs.dir)) ? {} : { dir: String(reveal(inputs.dir)) }),
              environment: { ...environment, ...prevEnv },
              ...(typeof stdin === "string" && stdin !== "" ? { stdin } : {}),
              logging,
            },
            ctx.log,
          )
        : await executor.runRemote(
            {
              connection: sshConnection(inputs.connection),
              command,
              environment,
              optionalEnvironment: prevEnv,
              ...(typeof stdin === "string" && stdin !== "" ? { stdin } : {}),
              logging,
            },
            ctx.log,
          );
    return { stdout: trimNewline(out.stdout), stderr: trimNewline(out.stderr) };
  }

  /** Outputs: the inputs with their secretness (connection is `provider:"secret"`), plus stdout/stderr. */
  function outputs(type: string, inputs: PropertyMap, produced: PropertyMap): PropertyMap {
    const out: PropertyMap = {};
    for (const k of INPUTS[type]) if (k in inputs && !isAbsent(inputs[k])) out[k] = inputs[k];
    if (out.connection !== undefined && !(out.connection instanceof Secret)) out.connection = new Secret(out.connection);
    if (out.source !== undefined) out.source = withHash(reveal(out.source));
    return { ...out, ...produced };
  }

  function previousOutput(old: PropertyMap): { stdout: string; stderr: string } {
    const s = reveal(old.stdout);
    const e = reveal(old.stderr);
    return { stdout: typeof s === "string" ? s : "", stderr: typeof e === "string" ? e : "" };
  }

  return {
    pkg: "command",

    async check(_ctx, type, _olds, news) {
      mustKnow(type);
      const failures: CheckFailure[] = [];
      const inputs: PropertyMap = {};
      for (const [k, v] of Object.entries(news)) if (!k.startsWith("__")) inputs[k] = v;
      if (type !== LOCAL_COMMAND) {
        if (isAbsent(inputs.connection)) failures.push({ property: "connection", reason: "Missing required property 'connection'" });
        else {
          const secret = inputs.connection instanceof Secret;
          const withDefaults = withConnectionDefaults(reveal(inputs.connection));
          if (isPlainObject(withDefaults) && isAbsent(withDefaults.host))
            failures.push({ property: "connection.host", reason: "Missing required property 'host'" });
          inputs.connection = secret ? new Secret(withDefaults) : withDefaults;
        }
      }
      if (type === COPY_TO_REMOTE) {
        // remote/copyController.go Check: one asset or archive; a path or text asset; a path archive.
        const source = reveal(inputs.source);
        if (isAbsent(inputs.remotePath)) failures.push({ property: "remotePath", reason: "Missing required property 'remotePath'" });
        if (source === Unknown) {
          // known at `up`
        } else if (isAsset(source)) {
          if (typeof source.path !== "string" && typeof source.text !== "string")
            failures.push({ property: "asset", reason: "asset must be a path-based file asset or a text asset" });
          else inputs.source = withHash(source);
        } else if (isArchive(source)) {
          if (typeof source.path !== "string")
            failures.push({ property: "archive", reason: "archive must be a path to a file or directory" });
          else inputs.source = withHash(source);
        } else failures.push({ property: "asset", reason: "either asset or archive must be set" });
      }
      return { inputs, failures };
    },

    /**
     * infer/resource.go `diff` L1155-1252: old inputs against new ones, element by element
     * (`triggers[1]`); the provider itself replaces only for a change of the whole top-level key
     * `triggers` (forceReplace looks the full path up in the schema's replaceOnChanges). Element
     * changes come back as updates; the SDK's `replaceOnChanges: ["triggers[*]"]` makes the engine
     * replace them (engine.md sec. 3, 14). Never delete-before-replace.
     */
    async diff(_ctx, type, _id, oldInputs, oldOutputs, newsIn, ignoreChanges): Promise<DiffResult> {
      mustKnow(type);
      const news = { ...newsIn };
      for (const path of ignoreChanges) {
        const key = topLevelKey(path);
        if (key === path && key in oldOutputs) news[key] = oldOutputs[key];
      }
      const result = emptyDiff();
      for (const k of INPUTS[type]) {
        const before = type === COPY_TO_REMOTE && k === "source" ? withHash(reveal(oldInputs[k])) : oldInputs[k];
        const after = type === COPY_TO_REMOTE && k === "source" && !containsUnknown(news[k]) ? withHash(reveal(news[k])) : news[k];
        addDetailedDiff(before, after, [k], result.detailedDiff);
      }
      for (const [path, entry] of Object.entries(result.detailedDiff)) {
        const top = topLevelKey(path);
        if (!result.changedKeys.includes(top)) result.changedKeys.push(top);
        if (path === "triggers") {
          entry.replace = true;
          if (!result.replaceKeys.includes("triggers")) result.replaceKeys.push("triggers");
        }
      }
      result.changes = result.changedKeys.length > 0 ? "some" : "none";
      return result;
    },

    async create(ctx, type, inputs) {
      mustKnow(type);
      const name = urnName(ctx.urn);
      if (type === COPY_TO_REMOTE) {
        // copyController.go Create: preview returns the inputs and no id; otherwise copy, then an id of 8 hex.
        if (ctx.preview) return { id: Unknown, outputs: outputs(type, inputs, {}) };
        await executor.copyToRemote(
          {
            connection: sshConnection(inputs.connection),
            source: copySource(inputs.source),
            remotePath: String(reveal(inputs.remotePath)),
          },
          ctx.log,
        );
        return { id: randomHex(8), outputs: outputs(type, inputs, {}) };
      }
      // commandController.go Create: the id is `<name><8 hex>` (resource.NewUniqueHex), also in
      // preview; in preview nothing runs and stdout/stderr are computed (infer markComputed on create).
      const id = `${name}${randomHex(8)}`;
      if (ctx.preview) return { id, outputs: outputs(type, inputs, { stdout: Unknown, stderr: Unknown }) };
      const create = reveal(inputs.create);
      if (isAbsent(create)) return { id, outputs: outputs(type, inputs, { stdout: "", stderr: "" }) };
      const out = await run(ctx, type, String(create), inputs, { stdout: "", stderr: "" });
      return { id, outputs: outputs(type, inputs, out) };
    },

    async read(_ctx, type, id, inputs, oldOutputs) {
      mustKnow(type);
      // Neither controller implements Read: the state is all there is, so there is nothing to import.
      if (!oldOutputs) throw new ProviderCallError(`${type} does not support import: a command has no state outside Pulumi`);
      return { id, inputs: inputs ?? {}, outputs: oldOutputs };
    },

    async update(ctx, type, _id, _oldInputs, oldOutputs, news) {
      mustKnow(type);
      if (type === COPY_TO_REMOTE) {
        // copyController.go Update: preview returns the news; a real update copies only when the
        // source hash or remotePath changed, so a new connection alone copies nothing.
        if (ctx.preview) return { outputs: outputs(type, news, {}) };
        const oldSource = reveal(oldOutputs.source);
        const oldHash = isAsset(oldSource) || isArchive(oldSource) ? assetHash(oldSource as AssetWire) : "";
        const newHash = assetHash(reveal(news.source) as AssetWire);
        if (newHash !== oldHash || reveal(news.remotePath) !== reveal(oldOutputs.remotePath)) {
          await executor.copyToRemote(
            { connection: sshConnection(news.connection), source: copySource(news.source), remotePath: String(reveal(news.remotePath)) },
            ctx.log,
          );
        }
        return { outputs: outputs(type, news, {}) };
      }
      const previous = previousOutput(oldOutputs);
      // commandController.go Update: preview keeps the old stdout/stderr in the state, but infer
      // marks them computed since inputs changed, so the program sees them unknown.
      if (ctx.preview) return { outputs: outputs(type, news, { stdout: Unknown, stderr: Unknown }) };
      const command = reveal(news.update) ?? reveal(news.create);
      if (isAbsent(command)) return { outputs: outputs(type, news, previous) };
      const out = await run(ctx, type, String(command), news, previous);
      return { outputs: outputs(type, news, out) };
    },

    /** commandController.go Delete: the OLD state's `delete`, with the OLD connection and environment; none: nothing. CopyToRemote has no Delete. */
    async delete(ctx, type, _id, _oldInputs, oldOutputs) {
      mustKnow(type);
      if (type === COPY_TO_REMOTE) return;
      const command = reveal(oldOutputs.delete);
      if (isAbsent(command)) return;
      await run(ctx, type, String(command), oldOutputs, previousOutput(oldOutputs));
    },
  };
}
