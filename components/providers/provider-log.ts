// A dynamic provider's only free-text channel to the person running `pulumi`: the log. Inside
// the engine's provider host there may be no engine connection, and @pulumi/pulumi's log then
// writes to the console, which the engine shows with the run's output.

export function providerLog(level: "info" | "warn", message: string): void {
  try {
    // Loaded when needed: the provider modules stay free of the Pulumi SDK at load time.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { log } = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
    log[level](message);
  } catch {
    console.error(`${level}: ${message}`);
  }
}
