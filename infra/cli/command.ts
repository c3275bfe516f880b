// What every `mailstack` subcommand is to the dispatcher (main.ts): a name, a one-line summary for
// `mailstack --help`, its full usage, and a run function. Adding a command is one entry in
// main.ts's COMMANDS list.

/** A bad argument or answer given on the command line: exit status 2, the message, then the usage. */
export class UsageError extends Error {}

/** Where a command talks to the person (or script) running it; tests pass their own. */
export interface CommandIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** whether stdin is a terminal a person types into */
  interactive: boolean;
  /** the directory the command was started in */
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  name: string;
  /** one line for `mailstack --help` */
  summary: string;
  /** the full usage, printed by `mailstack NAME --help` and after a usage error */
  usage: string;
  /** exit status: 0 ok, 1 failed, 2 bad arguments (or throws UsageError) */
  run(argv: string[], io: CommandIo): Promise<number>;
}

export function processIo(): CommandIo {
  return {
    stdin: process.stdin,
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    interactive: process.stdin.isTTY === true,
    cwd: process.cwd(),
    env: process.env,
  };
}
