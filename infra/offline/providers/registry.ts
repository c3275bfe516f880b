// Where `mailstack preview` finds the provider stand-ins: infra/offline/providers/index.ts exports
// `standInProviders(worlds, executor)` (tls, hcloud, cloudflare, command) over simulated Hetzner
// and Cloudflare APIs and a command executor. A preview changes nothing, so the worlds start empty
// but for the Cloudflare zones the program looks up (with the ids the deployed state holds, so its
// records diff against the same zone), and the executor refuses to run anything. The Node dynamic
// provider host ("pulumi-nodejs") is the engine's own.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ProviderStandIn } from "../model";
import { dynamicProviderHost } from "./dynamic-host";

export interface StandInContext {
  /** the Pulumi project directory */
  projectDir: string;
  /** the project name (Pulumi.yaml `name`) */
  project: string;
  /** full config keys to values, as the program sees them */
  config: Record<string, string>;
  /** the Cloudflare zones the program uses: name -> the zone id in the deployed state, when known */
  zones: Record<string, string | undefined>;
}

/** What infra/offline/providers/index.ts offers (read at run time: the stand-ins are optional here). */
interface StandInModule {
  standInProviders(worlds: { hcloud: unknown; cloudflare: unknown }, executor: unknown): Record<string, ProviderStandIn>;
  HcloudWorld: new () => unknown;
  CloudflareWorld: new () => { addZone(name: string, opts?: { id?: string }): unknown };
  RecordingExecutor: new (respond: (call: unknown) => Error) => unknown;
}

function loadStandIns(context: StandInContext, dir: string): Record<string, ProviderStandIn> | undefined {
  const index = path.join(dir, "index");
  if (![".ts", ".js"].some((ext) => fs.existsSync(index + ext))) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(index) as Partial<StandInModule>;
  if (typeof mod.standInProviders !== "function" || !mod.HcloudWorld || !mod.CloudflareWorld || !mod.RecordingExecutor) {
    throw new Error(`${index}: expected standInProviders, HcloudWorld, CloudflareWorld and RecordingExecutor exports`);
  }
  const cloudflare = new mod.CloudflareWorld();
  for (const [name, id] of Object.entries(context.zones)) cloudflare.addZone(name, id ? { id } : {});
  const executor = new mod.RecordingExecutor(() => new Error("a preview runs no command"));
  return mod.standInProviders({ hcloud: new mod.HcloudWorld(), cloudflare }, executor);
}

/** A resolver for simulate(): the dynamic host, and the stand-ins of `dir` by package. */
export function standInResolver(context: StandInContext, dir: string = __dirname): (pkg: string) => ProviderStandIn | undefined {
  let standIns: Record<string, ProviderStandIn> | undefined | null = null;
  return (pkg) => {
    if (pkg === "pulumi-nodejs") {
      const config = Object.fromEntries(Object.entries(context.config).filter(([k]) => k.startsWith("pulumi-nodejs:")));
      return dynamicProviderHost({ projectDir: context.projectDir, project: context.project, config });
    }
    if (standIns === null) standIns = loadStandIns(context, dir);
    return standIns?.[pkg];
  };
}
