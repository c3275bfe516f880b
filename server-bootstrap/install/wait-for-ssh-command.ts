// How the deployer's machine runs waitForSsh: the interpreter and script path for @pulumi/command's
// local.Command, and the environment it reads. The private key never appears here: it goes on stdin,
// so it is on no command line and in no environment a process listing shows.
import * as fs from "node:fs";
import * as path from "node:path";

/** The environment waitForSsh reads (all strings). */
export const WAIT_FOR_SSH_ENV = {
  host: "MAILSTACK_SSH_HOST",
  port: "MAILSTACK_SSH_PORT",
  user: "MAILSTACK_SSH_USER",
  /** the pinned host key, `ssh-ed25519 AAAA...` */
  hostKey: "MAILSTACK_SSH_HOST_KEY",
  /** whole seconds */
  timeoutSeconds: "MAILSTACK_SSH_TIMEOUT",
} as const;

export type WaitForSshSettings<S> = { [K in keyof typeof WAIT_FOR_SSH_ENV]: S };

/** The settings as environment variables; `S` is a string or a Pulumi Input of one. */
export function waitForSshEnvironment<S>(settings: WaitForSshSettings<S>): Record<string, S> {
  const env: Record<string, S> = {};
  for (const key of Object.keys(WAIT_FOR_SSH_ENV) as (keyof typeof WAIT_FOR_SSH_ENV)[]) env[WAIT_FOR_SSH_ENV[key]] = settings[key];
  return env;
}

export interface WaitForSshInvocation {
  /** the program and its options: this Node, with a TypeScript loader when run from sources */
  interpreter: string[];
  /** absolute path of the script, the interpreter's last argument */
  script: string;
}

/**
 * Where the script is, resolved beside this file: the compiled `.js` in the published package
 * (dist/ only), or the `.ts` source in a git checkout, which needs tsx (or ts-node) to run.
 * `dir` is for tests.
 */
export function waitForSshInvocation(dir: string = __dirname): WaitForSshInvocation {
  const base = path.join(dir, "wait-for-ssh");
  // The Node that runs the Pulumi program exists on this machine; `node` on PATH may be older or absent.
  const node = process.execPath;
  if (fs.existsSync(`${base}.js`)) return { interpreter: [node], script: `${base}.js` };
  if (!fs.existsSync(`${base}.ts`))
    throw new Error(`wait-for-ssh: neither ${base}.js nor ${base}.ts exists; reinstall the mailstack package`);
  for (const loader of ["tsx/cjs", "ts-node/register/transpile-only"]) {
    try {
      return { interpreter: [node, "--require", require.resolve(loader)], script: `${base}.ts` };
    } catch {
      // try the next loader
    }
  }
  throw new Error(`wait-for-ssh: ${base}.ts needs a TypeScript loader to run: install tsx (npm install --save-dev tsx) or build with tsc`);
}

const DURATION_UNITS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };

/** Seconds in a Pulumi custom timeout (Go duration syntax: `10m`, `90s`, `1h30m`), rounded up. */
export function durationSeconds(text: string, name = "waitTimeout"): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s))+$/.test(text) ? [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)] : [];
  const seconds = Math.ceil(parts.reduce((sum, [, n, unit]) => sum + Number(n) * DURATION_UNITS[unit], 0));
  if (parts.length === 0 || seconds < 1) throw new Error(`${name}: "${text}" is not a duration of at least 1 s such as 90s, 10m or 1h30m`);
  return seconds;
}
