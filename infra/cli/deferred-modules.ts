// Modules the Pulumi SDK loads at start-up that the CLI's commands use rarely or never, loaded
// instead on first use.
//
// @npmcli/arborist (about 500 modules: pacote, npm-registry-fetch, sigstore...) is required by
// @pulumi/pulumi 3.270 runtime/closure/codePaths.js when @pulumi/pulumi is loaded, and used only by
// computeCodePaths (`new arborist.Arborist(...)`, to package a function's dependencies for a
// serverless runtime). Loading it was about a sixth of `mailstack plan`'s main thread for one
// domain. codePaths.js takes it through TypeScript's __importStar, which hands over a module marked
// `__esModule` as it is; the stand-in below is so marked, and loads the real module the first time
// anything else on it is read.
import Module from "node:module";
import * as path from "node:path";

export function deferUnusedSdkModules(): void {
  let arboristPath: string;
  try {
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    arboristPath = require.resolve("@npmcli/arborist", { paths: [pulumiDir] });
  } catch {
    return; // another SDK layout: nothing to defer
  }
  if (require.cache[arboristPath]) return;
  let real: Record<string | symbol, unknown> | undefined;
  const load = (): Record<string | symbol, unknown> => {
    if (real === undefined) {
      delete require.cache[arboristPath];
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      real = require(arboristPath) as Record<string | symbol, unknown>;
    }
    return real;
  };
  const standIn = new Module(arboristPath);
  standIn.filename = arboristPath;
  standIn.loaded = true;
  standIn.exports = new Proxy(
    {},
    {
      get: (_target, key) => (key === "__esModule" ? true : load()[key]),
      has: (_target, key) => key === "__esModule" || key in load(),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_target, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
        // the proxy's own target has none of them: report them as configurable
        return descriptor && { ...descriptor, configurable: true };
      },
    },
  );
  require.cache[arboristPath] = standIn;
}
