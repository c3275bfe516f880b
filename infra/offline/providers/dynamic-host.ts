// The Node dynamic provider host (package "pulumi-nodejs") as a stand-in: what @pulumi/pulumi 3.270's
// cmd/dynamic-provider/index.js does with each gRPC call, and what the engine's plugin client
// (pkg/resource/plugin/provider_plugin.go at pulumi/pulumi 1b594988, "PP") does around it for a
// provider that answers Configure with acceptSecrets=false and no supportsPreview.
//
// The real host is a separate process that the Pulumi CLI starts in the project directory; its
// launcher resolves @pulumi/pulumi from there, and require-from-string gives each deserialised
// provider the module search paths of its working directory (require-from-string 2.0.2:
// Module._nodeModulePaths(path.dirname("")) resolves "." against process.cwd()). Here the provider
// code is evaluated in this process with the same require-from-string, given a file name inside the
// project directory: path.dirname of it is the project directory, so module search paths and
// relative requires resolve exactly as from a host whose cwd is the project directory. What a
// provider reads from process.cwd() (components/package-provider.ts) is the project directory too:
// simulate() runs with it as the working directory.
import * as path from "node:path";
import {
  Secret,
  Unknown,
  UNKNOWN_SENTINEL,
  type CallContext,
  type CheckFailure,
  type DiffResult,
  type PropertyMap,
  type PropertyValue,
  type ProviderStandIn,
} from "../model";
import { containsSecrets, EncryptedSecret, isObjectValue } from "../property-values";

const PROVIDER_KEY = "__provider";

export interface DynamicHostOptions {
  /** the Pulumi project directory (where Pulumi.yaml is): the real host's working directory */
  projectDir: string;
  /** the `pulumi-nodejs:*` config the engine configures the host with (cmd/dynamic-provider configure) */
  config?: Record<string, string>;
  /** the Pulumi project name, for the provider's Config (dynConfig.Config) */
  project?: string;
  /**
   * Given each provider as deserialised, and its serialised source: the provider to call instead.
   * Tests keep the provider's own check and diff and answer the calls that reach the outside world
   * (a CA, a server) from a model of it. Default: the provider as deserialised.
   */
  wrapProvider?: (provider: DynamicProvider, source: string) => DynamicProvider;
}

/** A deserialised dynamic provider: the methods the host calls (cmd/dynamic-provider/index.js). */
export interface DynamicProvider {
  configure?(req: { config: unknown }): Promise<void>;
  check?(
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ inputs?: Record<string, unknown>; failures?: { property?: string; reason: string }[] }>;
  diff?(
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ changes?: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }>;
  create(inputs: Record<string, unknown>): Promise<{ id: string; outs?: Record<string, unknown> }>;
  read?(
    id: string,
    props: Record<string, unknown>,
  ): Promise<{ id?: string; props?: Record<string, unknown>; inputs?: Record<string, unknown> }>;
  update?(
    id: string,
    olds: Record<string, unknown>,
    news: Record<string, unknown>,
  ): Promise<{ outs?: Record<string, unknown> } | undefined>;
  delete?(id: string, props: Record<string, unknown>): Promise<void>;
}

const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
// The same require-from-string the host uses: resolved from @pulumi/pulumi, not from this package.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require(require.resolve("require-from-string", { paths: [sdkDir] })) as (
  code: string,
  filename?: string,
) => {
  handler(): DynamicProvider;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynConfig = require("@pulumi/pulumi/cmd/dynamic-provider/config") as {
  Config: new (raw: Record<string, string>, project: string) => unknown;
};

/**
 * Engine value -> what the host's `toJavaScript()` sees: secrets as their plain value (the engine
 * marshals with KeepSecrets=acceptSecrets=false), unknowns as the literal sentinel string in preview
 * (KeepUnknowns=AllowUnknowns=DryRun; the host never deserialises them, rpc.ts L340) and dropped
 * otherwise, assets and archives in their wire form.
 */
function toHost(value: PropertyValue, preview: boolean): unknown {
  if (value === Unknown || value instanceof EncryptedSecret) return preview ? UNKNOWN_SENTINEL : undefined;
  if (value instanceof Secret) return toHost(value.value, preview);
  if (Array.isArray(value)) return value.map((v) => toHost(v, preview) ?? null);
  if (isObjectValue(value)) {
    return Object.fromEntries(
      Object.entries(value)
        .map(([k, v]) => [k, toHost(v, preview)] as const)
        .filter(([, v]) => v !== undefined),
    );
  }
  return value;
}

function toHostMap(map: PropertyMap | undefined, preview: boolean): Record<string, unknown> {
  return (toHost(map ?? {}, preview) as Record<string, unknown>) ?? {};
}

/** Host result -> engine value: the sentinel is unknown again (UnmarshalProperties KeepUnknowns in preview). */
function fromHost(value: unknown, preview: boolean, what: string): PropertyValue {
  if (value === UNKNOWN_SENTINEL) {
    if (!preview) throw new Error(`${what}: the dynamic provider returned an unknown value outside a preview`);
    return Unknown;
  }
  if (Array.isArray(value)) return value.map((v) => fromHost(v, preview, what));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, fromHost(v, preview, what)]),
    );
  }
  return value === undefined ? null : (value as PropertyValue);
}

/**
 * PP annotateSecrets (L918-934): a provider that cannot take secrets gets them plain, so a top-level
 * result key whose input held a secret is marked secret again (objects recursively).
 */
function annotateSecrets(outs: PropertyMap, ins: PropertyMap): PropertyMap {
  for (const [key, inValue] of Object.entries(ins)) {
    if (!(key in outs)) continue;
    const outValue = outs[key];
    if (isObjectValue(outValue) && isObjectValue(inValue)) annotateSecrets(outValue, inValue);
    else if (!(outValue instanceof Secret) && containsSecrets(inValue)) outs[key] = new Secret(outValue);
  }
  return outs;
}

/** The Node dynamic provider host as a ProviderStandIn for package "pulumi-nodejs". */
export function dynamicProviderHost(options: DynamicHostOptions): ProviderStandIn {
  const providerCache = new Map<string, DynamicProvider>();
  const rawConfig: Record<string, string> = {};
  // cmd/dynamic-provider configure: every config value but __provider, secrets unwrapped
  for (const [k, v] of Object.entries(options.config ?? {})) if (k !== PROVIDER_KEY) rawConfig[k] = v;
  const moduleFile = path.join(path.resolve(options.projectDir), "[pulumi dynamic provider]");

  /** getProvider: deserialised once per serialized string, configured once (index.js L69-84). */
  async function getProvider(props: Record<string, unknown>): Promise<DynamicProvider> {
    const providerString = props[PROVIDER_KEY];
    if (typeof providerString !== "string") {
      throw new Error(
        `the dynamic resource has no serialized provider in ${PROVIDER_KEY} (got ${providerString === undefined ? "nothing" : typeof providerString})`,
      );
    }
    let provider = providerCache.get(providerString);
    if (!provider) {
      provider = requireFromString(providerString, moduleFile).handler();
      if (options.wrapProvider) provider = options.wrapProvider(provider, providerString);
      providerCache.set(providerString, provider);
      if (provider.configure) await provider.configure({ config: new dynConfig.Config(rawConfig, options.project ?? "mailstack") });
    }
    return provider;
  }

  return {
    pkg: "pulumi-nodejs",

    async check(ctx: CallContext, _type, olds, news) {
      // PP Check: olds is never nil on the wire (PropagateNil false): a create sends {}
      const o = toHostMap(olds, ctx.preview);
      const n = toHostMap(news, ctx.preview);
      const provider = await getProvider(n[PROVIDER_KEY] === UNKNOWN_SENTINEL ? o : n);
      let inputs = n;
      let failures: CheckFailure[] = [];
      if (provider.check) {
        const result = await provider.check(o, n);
        if (result.inputs) inputs = result.inputs;
        if (result.failures) failures = result.failures.map((f) => ({ property: f.property ?? "", reason: f.reason }));
      }
      inputs[PROVIDER_KEY] = n[PROVIDER_KEY];
      const checked = fromHost(inputs, ctx.preview, "check") as PropertyMap;
      return { inputs: annotateSecrets(checked, news), failures };
    },

    async diff(ctx, _type, id, _oldInputs, oldOutputs, news): Promise<DiffResult> {
      // PP Diff sends the old OUTPUTS as olds (L1363)
      const o = toHostMap(oldOutputs, ctx.preview);
      const n = toHostMap(news, ctx.preview);
      const provider = await getProvider(n[PROVIDER_KEY] === UNKNOWN_SENTINEL ? o : n);
      const none: DiffResult = { changes: "unknown", replaceKeys: [], changedKeys: [], detailedDiff: {}, deleteBeforeReplace: false };
      if (!provider.diff) return none;
      const result = await provider.diff(id, o, n);
      // changes true/false/else; replaces when non-empty; deleteBeforeReplace when truthy; stables and
      // detailed diffs are not forwarded (index.js L195-235)
      return {
        changes: result.changes === true ? "some" : result.changes === false ? "none" : "unknown",
        replaceKeys: result.replaces && result.replaces.length !== 0 ? [...result.replaces] : [],
        changedKeys: [],
        detailedDiff: {},
        deleteBeforeReplace: Boolean(result.deleteBeforeReplace),
      };
    },

    async create(ctx, _type, inputs) {
      // PP Create L1430-1444: no supportsPreview, so a preview returns the checked inputs and the
      // host is not called; output-only properties then resolve as unknown in the program
      if (ctx.preview) return { id: Unknown, outputs: inputs };
      const props = toHostMap(inputs, false);
      const provider = await getProvider(props);
      const result = await provider.create(props);
      const outs = { ...(result.outs ?? {}), [PROVIDER_KEY]: props[PROVIDER_KEY] };
      return { id: result.id, outputs: annotateSecrets(fromHost(outs, false, "create") as PropertyMap, inputs) };
    },

    async read(ctx, _type, id, inputs, outputs) {
      // index.js read: the prior outputs, else the inputs, locate the provider
      let props = toHostMap(outputs, ctx.preview);
      if (Object.keys(props).length === 0 && inputs) props = toHostMap(inputs, ctx.preview);
      const provider = await getProvider(props);
      if (!provider.read) {
        // no read: the properties come back as they are, and no inputs (an import then fails)
        return { id, outputs: fromHost(props, ctx.preview, "read") as PropertyMap };
      }
      const result = await provider.read(id, props);
      const resultProps = { ...(result.props ?? {}), [PROVIDER_KEY]: props[PROVIDER_KEY] };
      const resultInputs = result.inputs ? { ...result.inputs, [PROVIDER_KEY]: props[PROVIDER_KEY] } : undefined;
      return {
        id: result.id ?? id,
        outputs: fromHost(resultProps, ctx.preview, "read") as PropertyMap,
        ...(resultInputs ? { inputs: fromHost(resultInputs, ctx.preview, "read") as PropertyMap } : {}),
      };
    },

    async update(ctx, _type, id, _oldInputs, oldOutputs, news) {
      // PP Update L1706-1721: a preview returns the new inputs without calling the host
      if (ctx.preview) return { outputs: news };
      const o = toHostMap(oldOutputs, false);
      const n = toHostMap(news, false);
      const provider = await getProvider(n);
      // without update, the result is {} and the previous outputs are dropped
      const result = provider.update ? ((await provider.update(id, o, n)) ?? {}) : {};
      const outs = { ...((result as { outs?: Record<string, unknown> }).outs ?? {}), [PROVIDER_KEY]: n[PROVIDER_KEY] };
      return { outputs: annotateSecrets(fromHost(outs, false, "update") as PropertyMap, news) };
    },

    async delete(_ctx, _type, id, _oldInputs, oldOutputs) {
      // the engine sends the old outputs as the properties (PP L1900)
      const props = toHostMap(oldOutputs, false);
      const provider = await getProvider(props);
      if (provider.delete) await provider.delete(id, props);
    },
  };
}
