// The user's Pulumi CLI, which holds the stack's secrets provider: mailstack hands it values and
// it encrypts and writes them into stacks/Pulumi.<stack>.yaml. Secret values go on its standard
// input, never on its command line (visible to every user in the process list): `pulumi config
// set KEY` without a value reads the value from stdin when stdin is not a terminal, dropping one
// trailing newline (pulumi/pulumi pkg/cmd/pulumi/config/config.go configSetCmd.Run, at
// 1b5949891b).
import { spawn } from "node:child_process";

/** One Pulumi CLI invocation: its arguments and what goes on its standard input. */
export interface PulumiCall {
  args: string[];
  /** standard input; a secret value goes here */
  stdin?: string;
  /** hand the terminal over (pulumi may ask for a passphrase); only when mailstack itself runs at one */
  terminal?: boolean;
}

/** `pulumi config set --path`: a plain string (never coerced to a number or boolean: --type string). */
export function configSetString(stack: string, key: string, value: string): PulumiCall {
  return { args: ["config", "set", "--stack", stack, "--path", "--type", "string", key, "--", value] };
}

/** `pulumi config set --secret --path`, the value on standard input. */
export function configSetSecret(stack: string, key: string, value: string): PulumiCall {
  return { args: ["config", "set", "--stack", stack, "--path", "--secret", key], stdin: value };
}

/** `pulumi config rm --path`: removing a list element shifts the ones after it down. */
export function configRemove(stack: string, key: string): PulumiCall {
  return { args: ["config", "rm", "--stack", stack, "--path", key] };
}

/** `pulumi stack select --create`: selects the stack, creating it (and its secrets provider) if missing. */
export function stackSelectCreate(stack: string, terminal: boolean): PulumiCall {
  return { args: ["stack", "select", "--create", stack], terminal };
}

/** How a call reads in messages: the command line, with a placeholder for what went on stdin. */
export function describeCall(call: PulumiCall): string {
  const quote = (a: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return `pulumi ${call.args.map(quote).join(" ")}${call.stdin !== undefined ? " < (value on stdin)" : ""}`;
}

export const PULUMI_MISSING =
  "the Pulumi CLI is not installed (no `pulumi` on PATH): install it (https://www.pulumi.com/docs/iac/download-install/), run `pulumi login`, then run this again";

export interface PulumiResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs pulumi in the project directory. Rejects with PULUMI_MISSING when there is no pulumi. */
export function runPulumi(call: PulumiCall, options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<PulumiResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", call.args, {
      cwd: options.cwd,
      env: options.env,
      stdio: call.terminal ? "inherit" : ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err: NodeJS.ErrnoException) => reject(err.code === "ENOENT" ? new Error(PULUMI_MISSING) : err));
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    if (child.stdin) {
      child.stdin.on("error", () => undefined); // pulumi may exit before reading (a bad flag): its exit status says why
      child.stdin.end(call.stdin ?? "");
    }
  });
}

/** Runs a call and throws, naming the command and pulumi's own words, when it fails. */
export async function mustRunPulumi(call: PulumiCall, options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<PulumiResult> {
  const result = await runPulumi(call, options);
  if (result.code !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-3).join(" | ") || "(no message)";
    // mailstack holds stdin for the value, so a passphrase-protected stack (pulumi login --local) cannot
    // prompt for its passphrase (pulumi/pulumi pkg/secrets/passphrase/manager.go readPassphrase).
    const hint = /PULUMI_CONFIG_PASSPHRASE/.test(said)
      ? "; this stack's secrets are passphrase-protected: export PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) and run this again"
      : "";
    throw new Error(`${describeCall(call)} failed (exit ${result.code}): ${said}${hint}`);
  }
  return result;
}

/** Throws PULUMI_MISSING unless `pulumi version` runs. */
export async function requirePulumi(options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<void> {
  await mustRunPulumi({ args: ["version"] }, options);
}
