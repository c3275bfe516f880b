// `simulate`: runs a Pulumi program in-process and answers its resource monitor the way the real
// engine would (deployment.ts), against an old checkpoint and provider stand-ins, in preview or up.
//
// The program runs under `pulumi.runtime.setMocks(..., preview)` only for the runtime's settings
// (isDryRun, config, feature flags: runtime/mocks.js setMocks); the mock monitor's registerResource,
// readResource, invoke and registerResourceOutputs are replaced, so every RegisterResourceRequest
// reaches the engine with all its options, and the SDK resolves outputs from the engine's answer
// exactly as it does against a real engine (keys missing in preview become unknown: runtime/resource.js
// resolveOutputs; the unknown sentinel becomes an unknown Output: runtime/rpc.js).
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Deployment, makeUrn, ROOT_STACK_TYPE } from "./deployment";
import { Secret, type Checkpoint, type EngineDiagnostic, type PropertyMap, type ProviderStandIn, type Step } from "./model";
import { mapFromWire, mapToWire } from "./property-values";
import { goalFromRequest, recordedFrom, type RecordedResource, type RegisterRequest } from "./registration";
import { skipSdkDiagnostics } from "./sdk-diagnostics";

export interface SimulateOptions {
  /** declares the resources and returns the stack outputs (loaded after the runtime is set up, as the CLI loads a program) */
  program: () => unknown;
  mode: "preview" | "up";
  stack: string;
  /** the Pulumi project name (Pulumi.yaml `name`); default "mailstack" */
  project?: string;
  /** full config keys (`mailstack:domains`, `hcloud:token`) to their string values (JSON for structured values) */
  config?: Record<string, string>;
  secretKeys?: string[];
  /** the state to compare against (`pulumi stack export`); default: an empty stack */
  checkpoint?: Checkpoint;
  /** provider stand-ins; each serves the package it names (`ProviderStandIn.pkg`) */
  providers: ProviderStandIn[];
  /** asked once for each package with no stand-in in `providers`; undefined: registrations of it fail */
  resolveProvider?: (pkg: string) => ProviderStandIn | undefined;
  /** concurrent steps (`pulumi up --parallel`); default 4 x CPUs as the CLI (GOMAXPROCS*4); 1 runs everything in a fixed order */
  parallel?: number;
  /**
   * the project directory; default process.cwd(). The run happens with it as the working directory,
   * as the Pulumi CLI runs the program and starts the provider hosts there: relative paths in the
   * program and the dynamic providers' loaders (components/package-provider.ts) resolve against it.
   */
  projectDir?: string;
  /** receives every registration as it happens (still filled when the run fails) */
  recorded?: RecordedResource[];
}

export interface SimulateResult {
  /** the steps in the order they ran; default providers' steps are internal and not listed (update.go isInternalStep) */
  steps: Step[];
  diagnostics: EngineDiagnostic[];
  /** after `up`: the new state; after `preview`: the old one */
  checkpoint: Checkpoint;
  /** the program's stack outputs (Unknown where not known in preview) */
  outputs: PropertyMap;
  /** every registration the program made, with its inputs and options */
  resources: RecordedResource[];
  /** what providers logged (pulumi up prints these beside the resource) */
  logs: { urn: string; message: string }[];
  /** an error diagnostic was raised, the engine stopped, or the program threw */
  failed: boolean;
  /** the program's own exception, if it threw */
  programError?: unknown;
}

export const EMPTY_CHECKPOINT: Checkpoint = { outputs: {}, resources: [] };

type Callback = (err: unknown, res?: unknown) => void;

interface MonitorOverrides {
  registerResource(req: RegisterRequest, cb: Callback): void;
  readResource(req: ReadRequest, cb: Callback): void;
  invoke(req: InvokeRequest, cb: Callback): void;
  registerResourceOutputs(
    req: { getUrn(): string; getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined },
    cb: Callback,
  ): void;
}

interface ReadRequest {
  getId(): string;
  getType(): string;
  getName(): string;
  getParent(): string;
  getProperties(): { toJavaScript(): Record<string, unknown> } | undefined;
  getProvider(): string;
  getVersion(): string;
  getDependenciesList(): string[];
  getAdditionalsecretoutputsList(): string[];
}

interface InvokeRequest {
  getTok(): string;
  getArgs(): { toJavaScript(): Record<string, unknown> } | undefined;
}

/** The SDK's own protobuf modules, so that what we build is what it reads. */
const sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const gstruct = require(require.resolve("google-protobuf/google/protobuf/struct_pb", { paths: [sdkDir] })) as {
  Struct: { fromJavaScript(o: Record<string, unknown>): unknown };
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const resproto = require("@pulumi/pulumi/proto/resource_pb") as {
  RegisterResourceResponse: new () => { setUrn(u: string): void; setId(i: string): void; setObject(o: unknown): void };
  ReadResourceResponse: new () => { setUrn(u: string): void; setProperties(o: unknown): void };
  ResourceInvokeResponse: new () => { setReturn(o: unknown): void; setFailuresList(f: unknown[]): void };
};

let running = false;

/** `waitForRPCs` is exported by the runtime's settings module but marked internal. */
async function waitForRPCs(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs?: () => Promise<void> };
  if (typeof settings.waitForRPCs !== "function")
    throw new Error("this @pulumi/pulumi has no runtime.settings.waitForRPCs; the offline engine needs it");
  await settings.waitForRPCs();
}

/** A package's default-provider config: its `pkg:key` values, secrets wrapped (default_providers.go GetPackageConfig). */
export function providerConfigFrom(config: Record<string, string>, secretKeys: string[]): Record<string, PropertyMap> {
  const byPackage: Record<string, PropertyMap> = {};
  for (const [full, value] of Object.entries(config)) {
    const at = full.indexOf(":");
    if (at <= 0) continue;
    const pkg = full.slice(0, at);
    (byPackage[pkg] ??= {})[full.slice(at + 1)] = secretKeys.includes(full) ? new Secret(value) : value;
  }
  return byPackage;
}

/**
 * Runs `program` against `checkpoint` with the given stand-ins, as `pulumi preview` or `pulumi up`
 * would. One run per process at a time: Pulumi's runtime state is process-global.
 */
export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  if (running) throw new Error("simulate: another offline run is in progress in this process");
  running = true;
  const startedIn = process.cwd();
  const projectDir = path.resolve(options.projectDir ?? startedIn);
  try {
    process.chdir(projectDir);
    const project = options.project ?? "mailstack";
    const config = options.config ?? {};
    const secretKeys = options.secretKeys ?? [];
    const providers = new Map<string, ProviderStandIn>();
    for (const p of options.providers) {
      if (providers.has(p.pkg)) throw new Error(`simulate: two provider stand-ins for package "${p.pkg}"`);
      providers.set(p.pkg, p);
    }
    const deployment = new Deployment({
      mode: options.mode,
      stack: options.stack,
      project,
      checkpoint: options.checkpoint ?? EMPTY_CHECKPOINT,
      providers,
      resolveProvider: options.resolveProvider,
      providerConfig: providerConfigFrom(config, secretKeys),
      parallel: options.parallel ?? os.availableParallelism() * 4,
      projectDir,
    });
    const recorded = options.recorded ?? [];
    const context = { stack: options.stack, project, makeUrn };

    skipSdkDiagnostics();
    await pulumi.runtime.setMocks(
      {
        newResource: () => {
          throw new Error("simulate: the mock monitor's newResource is replaced by the offline engine");
        },
        call: () => {
          throw new Error("simulate: the mock monitor's call is replaced by the offline engine");
        },
      },
      project,
      options.stack,
      options.mode === "preview",
    );
    pulumi.runtime.setAllConfig(config, secretKeys);
    const monitor = pulumi.runtime.getMonitor() as unknown as MonitorOverrides;

    monitor.registerResource = (req, cb) => {
      const goal = goalFromRequest(req, context);
      const entry = recordedFrom(goal, deployment.urnOf(goal.parent, goal.type, goal.name));
      if (goal.type !== ROOT_STACK_TYPE) recorded.push(entry);
      void deployment.register(goal).then((registered) => {
        if (!registered) return;
        const resp = new resproto.RegisterResourceResponse();
        resp.setUrn(registered.urn);
        resp.setId(registered.id);
        resp.setObject(gstruct.Struct.fromJavaScript(mapToWire(registered.outputs)));
        cb(null, resp);
      });
    };

    monitor.readResource = (req, cb) => {
      const goal = {
        ...readGoal(req),
        inputs: mapFromWire(req.getProperties()?.toJavaScript() ?? {}),
      };
      void deployment.read(goal, req.getId()).then((registered) => {
        if (!registered) return;
        const resp = new resproto.ReadResourceResponse();
        resp.setUrn(registered.urn);
        resp.setProperties(gstruct.Struct.fromJavaScript(mapToWire(registered.outputs)));
        cb(null, resp);
      });
    };

    monitor.invoke = (req, cb) => {
      const token = req.getTok();
      const args = mapFromWire(req.getArgs()?.toJavaScript() ?? {});
      const answer = async (): Promise<PropertyMap> => {
        if (token === "pulumi:pulumi:getResource") {
          const state = deployment.lookup(String(args.urn));
          if (!state) throw new Error(`unknown resource ${String(args.urn)}`);
          return { urn: state.urn, id: state.id ?? "", state: state.outputs };
        }
        return deployment.invoke(token, args);
      };
      answer().then(
        (outputs) => {
          const resp = new resproto.ResourceInvokeResponse();
          resp.setReturn(gstruct.Struct.fromJavaScript(mapToWire(outputs)));
          resp.setFailuresList([]);
          cb(null, resp);
        },
        // The program cannot go on without the answer: the run stops here, and the invoke stays
        // pending like every other registration of a stopped run (no rejection reaches the program)
        (err) => deployment.invokeFailed(token, err instanceof Error ? err.message : String(err)),
      );
    };

    monitor.registerResourceOutputs = (req, cb) => {
      deployment.registerOutputs(req.getUrn(), mapFromWire(req.getOutputs()?.toJavaScript() ?? {}));
      cb(null, {});
    };

    // A program error is kept out of Pulumi's own error path (which would also report it as an
    // unhandled rejection) and reported as the run's failure.
    let programError: { error: unknown } | undefined;
    const programRun = (async () => {
      await pulumi.runtime.runInPulumiStack(async () => {
        try {
          return await options.program();
        } catch (error) {
          programError = { error };
          return {};
        }
      });
      // Some registrations (dynamic providers serialise their code first) finish after the
      // program returns: wait for every RPC, as the CLI's language host does.
      await waitForRPCs();
    })();
    await Promise.race([programRun, deployment.bailed]);
    if (deployment.stopped) {
      // The engine stopped answering, as a real one does when it cancels: the program's pending
      // registrations never settle. Tell the runtime, so it does not report them as leaked
      // promises when the process exits (runtime/debuggable.js checks store.terminated).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require("@pulumi/pulumi/runtime/state") as { getStore(): { terminated: boolean } }).getStore().terminated = true;
    }

    const diagnostics = deployment.diagnostics;
    if (programError) {
      const message = programError.error instanceof Error ? programError.error.message : String(programError.error);
      diagnostics.push({
        urn: makeUrn(options.stack, project, "", ROOT_STACK_TYPE, `${project}-${options.stack}`),
        severity: "error",
        message,
      });
    } else {
      // the deletes run only after the program finished without error (DE performPostSteps)
      await deployment.finish();
    }
    return {
      steps: deployment.steps,
      diagnostics,
      checkpoint: deployment.checkpoint(),
      outputs: deployment.stackOutputs,
      resources: recorded,
      logs: deployment.logs,
      failed: deployment.failed || programError !== undefined,
      ...(programError ? { programError: programError.error } : {}),
    };
  } finally {
    process.chdir(startedIn);
    running = false;
  }
}

function readGoal(req: ReadRequest) {
  return {
    type: req.getType(),
    name: req.getName(),
    parent: req.getParent(),
    custom: true,
    remote: false,
    ignoreChanges: [],
    replaceOnChanges: [],
    dependencies: req.getDependenciesList(),
    propertyDependencies: {},
    deletedWith: "",
    replaceWith: [],
    importId: "",
    aliases: [],
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    provider: req.getProvider(),
    version: req.getVersion(),
  };
}
