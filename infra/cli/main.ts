#!/usr/bin/env node
// The `mailstack` command line. Each subcommand is one entry of COMMANDS (name, summary, usage,
// run); this file only dispatches, prints help and usage, and turns errors into exit statuses:
// 0 ok, 1 failed, 2 bad arguments.
import * as fs from "node:fs";
import { enableCompileCache } from "node:module";
import * as path from "node:path";
import { wantsHelp } from "./args";
import { processIo, UsageError, type Command, type CommandIo } from "./command";
import { deferUnusedSdkModules } from "./deferred-modules";
import { findProjectDir } from "./project-dir";

export { findProjectDir } from "./project-dir";

/**
 * A command whose module is loaded when it runs or shows its usage (`mailstack --help` loads them
 * all). Most commands' modules load Pulumi and more, about a second, which a command that needs
 * none of them should not wait for, nor `mailstack plan` before it starts its own work.
 */
function lazyCommand(name: string, load: () => Command): Command {
  let loaded: Command | undefined;
  const command = (): Command => {
    loaded ??= load();
    if (loaded.name !== name) throw new Error(`main.ts lists command "${name}", but its module holds "${loaded.name}"`);
    return loaded;
  };
  return {
    name,
    get summary() {
      return command().summary;
    },
    get usage() {
      return command().usage;
    },
    run: (argv, io) => command().run(argv, io),
  };
}

/* eslint-disable @typescript-eslint/no-require-imports */
export const COMMANDS: readonly Command[] = [
  lazyCommand("init", () => (require("./init") as typeof import("./init")).initCommand),
  lazyCommand("user", () => (require("./user") as typeof import("./user")).userCommand),
  lazyCommand("alias", () => (require("./alias") as typeof import("./alias")).aliasCommand),
  lazyCommand("plan", () => (require("./plan-command") as typeof import("./plan-command")).planCommand),
  lazyCommand("preview", () => {
    const { PREVIEW_USAGE, runPreview } = require("./preview") as typeof import("./preview");
    return {
      name: "preview",
      summary: "what `pulumi preview --diff` would do, offline, against the last deployed state",
      usage: PREVIEW_USAGE,
      run: (argv, io) => runPreview(argv, { findProjectDir: () => findProjectDir(io.cwd), stdout: io.stdout, stderr: io.stderr }),
    };
  }),
  lazyCommand("check", () => (require("./check") as typeof import("./check")).checkCommand),
  lazyCommand("backup", () => (require("./backup") as typeof import("./backup")).backupCommand),
];
/* eslint-enable @typescript-eslint/no-require-imports */

/** This package's version, from the package.json above this file (source or dist). */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "mailstack" && typeof pkg.version === "string") return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new Error("mailstack's package.json is missing");
  }
}

export function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: mailstack COMMAND [options]        (mailstack COMMAND --help for its options)",
    "       mailstack --version",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

export async function main(argv: string[], io: CommandIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V") {
    io.stdout(`mailstack ${packageVersion()}\n`);
    return 0;
  }
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    if (name === "help" && rest.length > 0 && topic === undefined) {
      io.stderr(`mailstack help: no command "${rest[0]}"\n${mainUsage()}\n`);
      return 2;
    }
    (name === undefined ? io.stderr : io.stdout)(`${topic?.usage ?? mainUsage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr(`mailstack: unknown command "${name}"\n${mainUsage()}\n`);
    return 2;
  }
  if (wantsHelp(rest)) {
    io.stdout(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`mailstack ${name}: ${err.message}\n${command.usage}\n`);
      return 2;
    }
    const e = err as Error;
    io.stderr(`mailstack ${name}: ${e.message}\n`);
    if (rest.includes("--verbose") && e.stack) io.stderr(`${e.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Node keeps the code it compiles for the modules it loads (over a thousand for plan or preview)
  // on disk and reuses it on the next run, as tsc, eslint and prettier do for theirs
  // (https://nodejs.org/api/module.html#module-compile-cache).
  enableCompileCache?.();
  deferUnusedSdkModules();
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
