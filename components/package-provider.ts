// The provider a mailstack dynamic resource hands Pulumi: a shell whose methods load the real
// provider by package name when the engine calls them. Pulumi serialises this shell's source
// into the state (`__provider`), and the engine's provider host evaluates that text wherever the
// next preview, update or destroy runs, so the text may name nothing of this machine:
//
// - no path: the host evaluates it with require-from-string (filename "", so module paths start
//   at the working directory), and the engine starts the host in the Pulumi project's directory
//   (its launcher, @pulumi/pulumi's pulumi-resource-pulumi-nodejs, resolves @pulumi/pulumi from
//   there). The module is required as `mailstack/providers/<name>` through a require rooted at
//   that directory: a project using the package finds it in node_modules; a checkout of mailstack
//   itself finds its own build (dist/) through the package's "exports" (Node's self-reference).
// - no TypeScript loader: the modules are the compiled JavaScript of the published package.
//
// The provider modules (components/providers/*) must keep their export names and read every
// state an older version wrote: a destroy runs the installed version against old state.
import type * as pulumi from "@pulumi/pulumi";

/** The specifiers package.json exports for the providers. */
export type ProviderModule =
  | "mailstack/providers/acme-account"
  | "mailstack/providers/acme-certificate"
  | "mailstack/providers/ssh-reachable"
  | "mailstack/providers/storage-box-access";

/** The provider module, loaded from the Pulumi project the host runs in. */
function loadProvider(specifier: string): pulumi.dynamic.ResourceProvider {
  // This function runs inside the engine's provider host: only Node built-ins and the project.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createRequire } = require("node:module") as typeof import("node:module");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { join } = require("node:path") as typeof import("node:path");
  const project = process.cwd();
  try {
    return (createRequire(join(project, "package.json"))(specifier) as { provider: pulumi.dynamic.ResourceProvider }).provider;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "MODULE_NOT_FOUND" && code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw err;
    throw new Error(
      `${specifier} cannot be loaded from the Pulumi project at ${project}: install mailstack there (npm install mailstack), ` +
        `or in a checkout of mailstack itself build it (npm run build). (${(err as Error).message.split("\n")[0]})`,
    );
  }
}

/** A dynamic provider that delegates every call to `specifier`'s `provider`. */
export function packageProvider(specifier: ProviderModule): pulumi.dynamic.ResourceProvider {
  return {
    check: (olds, news) => loadProvider(specifier).check!(olds, news),
    diff: (id, olds, news) => loadProvider(specifier).diff!(id, olds, news),
    create: (inputs) => loadProvider(specifier).create(inputs),
    update: (id, olds, news) => loadProvider(specifier).update!(id, olds, news),
    delete: (id, props) => loadProvider(specifier).delete!(id, props),
  };
}
