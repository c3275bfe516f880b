// Runs the real Pulumi program in-process under `pulumi.runtime.setMocks`: no CLI, no provider
// plugins, no credentials. Used by `mailstack plan` and by the component tests.
//
// Providers are replaced by `mockProvider` (what a create would return); everything the program
// asks the engine to register is recorded with its inputs (secret values kept marked as secret)
// and its resource options.
import * as pulumi from "@pulumi/pulumi";
import { mockProvider, type MockProviderOptions } from "./mock-provider";
import { Secret } from "./model";
import { goalFromRequest, recordedFrom, type RecordedResource, type RegisterRequest } from "./registration";
import { makeUrn } from "./deployment";
import { skipSdkDiagnostics } from "./sdk-diagnostics";

export { Secret, Unknown } from "./model";
export type { RecordedResource } from "./registration";

export interface OfflineRun {
  resources: RecordedResource[];
  /** the program's stack outputs, with secrets as Secret */
  outputs: Record<string, unknown>;
}

export interface OfflineOptions extends MockProviderOptions {
  project?: string;
  stack: string;
  /** full config keys (`mailstack:domains`) to their string (JSON for structured) values */
  config: Record<string, string>;
  secretKeys?: string[];
  /** receives every registration as it happens (still filled when the program throws) */
  recorded?: RecordedResource[];
}

let running = false;

/** `waitForRPCs` is exported by the runtime's settings module but marked internal. */
async function waitForRPCs(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs?: () => Promise<void> };
  if (typeof settings.waitForRPCs !== "function") {
    throw new Error("this @pulumi/pulumi has no runtime.settings.waitForRPCs; the offline engine needs it");
  }
  await settings.waitForRPCs();
}

/**
 * Runs `program` (which declares resources and returns the stack outputs) under mocks.
 * One run per process at a time: Pulumi's runtime state is process-global.
 */
export async function runOffline(program: () => unknown, options: OfflineOptions): Promise<OfflineRun> {
  if (running) throw new Error("runOffline: another offline run is in progress in this process");
  running = true;
  try {
    const resources: RecordedResource[] = options.recorded ?? [];
    skipSdkDiagnostics();
    await pulumi.runtime.setMocks(mockProvider(options), options.project ?? "mailstack", options.stack, false);
    pulumi.runtime.setAllConfig(options.config, options.secretKeys ?? []);

    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource(req: RegisterRequest, cb: (err: unknown, res: unknown) => void): Promise<void>;
    };
    const register = monitor.registerResource.bind(monitor);
    const context = { stack: options.stack, project: options.project ?? "mailstack", makeUrn };
    monitor.registerResource = (req, cb) => {
      resources.push(recordedFrom(goalFromRequest(req, context), ""));
      const recorded = resources[resources.length - 1];
      return register(req, (err, res) => {
        if (res && typeof (res as { getUrn?: () => string }).getUrn === "function") {
          recorded.urn = (res as { getUrn(): string }).getUrn();
        }
        cb(err, res);
      });
    };

    // A program error is kept out of Pulumi's own error path, which would also report it as an
    // unhandled rejection, and rethrown as is once the stack settles.
    let failure: { error: unknown } | undefined;
    const exported = await pulumi.runtime.runInPulumiStack(async () => {
      try {
        return await program();
      } catch (error) {
        failure = { error };
        return {};
      }
    });
    if (failure) throw failure.error;
    // Some registrations (dynamic providers serialise their code first) finish after the
    // program returns: wait for every RPC, as the CLI's language host does.
    await waitForRPCs();
    const outputs = (await resolveDeep(exported ?? {})) as Record<string, unknown>;
    return { resources: withoutStack(resources), outputs };
  } finally {
    running = false;
  }
}

function withoutStack(resources: RecordedResource[]): RecordedResource[] {
  const stackless = resources.filter((r) => r.type !== "pulumi:pulumi:Stack");
  resources.splice(0, resources.length, ...stackless);
  return resources;
}

/** Resolves Outputs and promises anywhere in a value, keeping secrets marked. */
async function resolveDeep(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    const output = value as pulumi.Output<unknown>;
    const inner = await new Promise<unknown>((resolve) => output.apply((v) => resolve(v)));
    const resolved = await resolveDeep(inner);
    return (await pulumi.isSecret(output)) ? new Secret(resolved) : resolved;
  }
  if (value instanceof Promise) return resolveDeep(await value);
  if (Array.isArray(value)) return Promise.all(value.map(resolveDeep));
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolveDeep(v)] as const));
    return Object.fromEntries(entries);
  }
  return value;
}
