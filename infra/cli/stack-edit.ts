// A change to a stack's users or aliases, made the way a person would make it: through the Pulumi
// CLI (which encrypts the secrets), with the stack validated before, the intended result validated
// before anything runs, and the written result checked after. When any step fails the stack file
// is put back byte for byte, so nothing is left half-changed.
import * as fs from "node:fs";
import { readStackFile } from "../../components/config/stack-file";
import { SecretValue } from "../../components/config/secret";
import { ConfigError, validateStackConfig } from "../../components/config/validate";
import type { StackSpec } from "../../components/spec";
import { CONFIG_NAMESPACE } from "../stack-config";
import { configFromStackValues, stackFilePath } from "./plan";
import { describeCall, mustRunPulumi, requirePulumi, type PulumiCall } from "./pulumi-cli";

export type StackValues = Record<string, unknown>;

/** Validates values as `pulumi preview` would see them (secret keys known); throws ConfigError. */
export function validateValues(values: StackValues): StackSpec {
  const prefix = `${CONFIG_NAMESPACE}:`;
  const secretKeys = new Set(configFromStackValues(values).secretKeys.map((k) => k.slice(prefix.length)));
  return validateStackConfig(values, { secretKeys });
}

/** What a user's config looks like once pulumi has stored its hash: an encrypted value. */
export const STORED_SECRET = new SecretValue("(encrypted by pulumi)");

/** Values with every secret replaced by one marker, for comparing what was meant with what was written. */
function comparable(values: StackValues): string {
  return JSON.stringify(values, (_k, v: unknown) => {
    if (v instanceof SecretValue) return "[secret]";
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export interface StackFile {
  stack: string;
  projectDir: string;
  file: string;
  values: StackValues;
  spec: StackSpec;
}

/** Reads and validates a stack file; a stack that is already invalid is not edited further. */
export function openStack(projectDir: string, stack: string): StackFile {
  const file = stackFilePath(projectDir, stack);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: create it with mailstack init --stack ${stack}`);
  const values = readStackFile(file);
  try {
    return { stack, projectDir, file, values, spec: validateValues(values) };
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`${file} is not valid yet; mend it first:\n${err.message}`);
    throw err;
  }
}

/**
 * What can be known before anything runs (and before a password is asked for): the intended
 * stack is valid and the Pulumi CLI is there.
 */
export async function prepareEdit(stack: StackFile, intended: StackValues, options: EditOptions): Promise<void> {
  try {
    validateValues(intended);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new Error(`cannot ${options.what}: the stack would be invalid, so nothing was changed:\n${err.message}`);
    throw err;
  }
  await requirePulumi({ cwd: stack.projectDir, env: options.env });
}

export interface EditOptions {
  env: NodeJS.ProcessEnv;
  /** what the change is, for messages: "add user alice@example.org" */
  what: string;
}

/**
 * Runs `calls` against the stack, after checking that `intended` (the values the calls should
 * produce, secrets as STORED_SECRET) is a valid stack. Afterwards the file must hold exactly
 * `intended`; otherwise, or when a call fails, the file is restored and the error thrown.
 */
export async function applyEdit(stack: StackFile, calls: PulumiCall[], intended: StackValues, options: EditOptions): Promise<StackSpec> {
  await prepareEdit(stack, intended, options);
  const pulumi = { cwd: stack.projectDir, env: options.env };
  const before = fs.readFileSync(stack.file);
  try {
    for (const call of calls) await mustRunPulumi(call, pulumi);
    const written = readStackFile(stack.file);
    if (comparable(written) !== comparable(intended)) {
      throw new Error(
        `after ${calls.map(describeCall).join("; ")} the stack file holds something else than intended (is stacks/ the stack's config location?)`,
      );
    }
    return validateValues(written);
  } catch (err) {
    fs.writeFileSync(stack.file, before);
    throw new Error(`cannot ${options.what}: ${(err as Error).message}; ${stack.file} is unchanged`);
  }
}
