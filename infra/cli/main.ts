#!/usr/bin/env node
// The `mailstack` command line. Each subcommand is one entry of COMMANDS (name, summary, usage,
// run); this file only dispatches, prints help and usage, and turns errors into exit statuses:
// 0 ok, 1 failed, 2 bad arguments.
import * as fs from "node:fs";
import * as path from "node:path";
import { wantsHelp } from "./args";
import { processIo, UsageError, type Command, type CommandIo } from "./command";
import { planCommand } from "./plan-command";
import { checkCommand } from "./check";
import { initCommand } from "./init";
import { userCommand } from "./user";
import { aliasCommand } from "./alias";
import { backupCommand } from "./backup";
import { PREVIEW_USAGE, runPreview } from "./preview";
import { findProjectDir } from "./project-dir";

export { findProjectDir } from "./project-dir";

export const COMMANDS: readonly Command[] = [
  initCommand,
  userCommand,
  aliasCommand,
  planCommand,
  {
    name: "preview",
    summary: "what `pulumi preview --diff` would do, offline, against the last deployed state",
    usage: PREVIEW_USAGE,
    run: (argv, io) => runPreview(argv, { findProjectDir: () => findProjectDir(io.cwd), stdout: io.stdout, stderr: io.stderr }),
  },
  checkCommand,
  backupCommand,
];

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
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
