// Where the offline engine finds a package's provider stand-in: infra/offline/providers/<module>.ts,
// one module per package. A module serves its package by exporting either
//   - `standIn`: a ProviderStandIn, or a function (context) => ProviderStandIn, or
//   - any exported ProviderStandIn object whose `pkg` is the package,
// so a new stand-in plugs in by its file name alone. The Node dynamic provider host is built in.
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
}

/** package -> module file (without extension) under this folder */
export const STAND_IN_MODULES: Readonly<Record<string, string>> = {
  tls: "tls",
  hcloud: "hcloud",
  cloudflare: "cloudflare",
  command: "command",
};

function isStandIn(value: unknown, pkg: string): value is ProviderStandIn {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as ProviderStandIn).pkg === pkg &&
    typeof (value as ProviderStandIn).check === "function" &&
    typeof (value as ProviderStandIn).diff === "function"
  );
}

/** The stand-in module of `pkg` in `dir`, or undefined when there is none. */
export function loadStandIn(pkg: string, context: StandInContext, dir: string = __dirname): ProviderStandIn | undefined {
  if (pkg === "pulumi-nodejs") {
    const config = Object.fromEntries(Object.entries(context.config).filter(([k]) => k.startsWith("pulumi-nodejs:")));
    return dynamicProviderHost({ projectDir: context.projectDir, project: context.project, config });
  }
  const file = STAND_IN_MODULES[pkg];
  if (!file) return undefined;
  const base = path.join(dir, file);
  if (![".ts", ".js"].some((ext) => fs.existsSync(base + ext))) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(base) as Record<string, unknown>;
  const declared = mod.standIn;
  if (typeof declared === "function") {
    const made = (declared as (c: StandInContext) => unknown)(context);
    if (isStandIn(made, pkg)) return made;
    throw new Error(`${base}: standIn(context) did not return a ProviderStandIn for package "${pkg}"`);
  }
  if (isStandIn(declared, pkg)) return declared;
  const found = Object.values(mod).find((v) => isStandIn(v, pkg));
  if (found) return found as ProviderStandIn;
  throw new Error(`${base} exports no ProviderStandIn for package "${pkg}": export \`standIn\` (an object or a function of the context)`);
}

/** A resolver for simulate(): the stand-ins in this folder, for the packages a program uses. */
export function standInResolver(context: StandInContext, dir?: string): (pkg: string) => ProviderStandIn | undefined {
  return (pkg) => loadStandIn(pkg, context, dir);
}
