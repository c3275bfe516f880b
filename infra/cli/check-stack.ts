// Which stack's plan `mailstack check` compares a domain with: --stack, else the one stack in
// stacks/ that lists the domain.
import * as fs from "node:fs";
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { ConfigError, validateStackConfig } from "../../components/config/validate";
import type { DomainSpec, StackSpec } from "../../components/spec";
import { CONFIG_NAMESPACE } from "../stack-config";
import { UsageError } from "./command";
import type { CheckOptions } from "./check-args";
import { configFromStackValues, stackFilePath } from "./plan";

export interface StackChoice {
  stack: string;
  projectDir: string;
  spec: StackSpec;
  domain: DomainSpec;
}

/** Reads and validates a stack file as the offline plan does (secrets stay markers). */
function loadSpec(file: string): StackSpec {
  const values = readStackFile(file);
  const prefix = `${CONFIG_NAMESPACE}:`;
  const secretKeys = new Set(configFromStackValues(values).secretKeys.map((k) => k.slice(prefix.length)));
  try {
    return validateStackConfig(values, { secretKeys });
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`${file}: invalid stack configuration:\n${err.message}`);
    throw err;
  }
}

function stackDomains(file: string): string[] {
  try {
    const domains = readStackFile(file).domains;
    if (!Array.isArray(domains)) return [];
    return domains.map((d) =>
      (d && typeof d === "object" ? String((d as { name?: unknown }).name ?? "") : "").toLowerCase().replace(/\.$/, ""),
    );
  } catch {
    // An unreadable stack file manages no domain we could find; naming it with --stack shows why.
    return [];
  }
}

/**
 * The stack to compare with: --stack, else the one stack in stacks/ listing the domain. Null
 * when none does (or there is no project here); a usage error when the choice is ambiguous.
 */
export function chooseStack(options: CheckOptions, findProjectDir: (start: string) => string): StackChoice | null {
  let projectDir: string | undefined;
  if (options.project !== undefined) projectDir = path.resolve(options.project);
  else {
    try {
      projectDir = findProjectDir(process.cwd());
    } catch {
      projectDir = undefined;
    }
  }
  if (options.stack !== undefined) {
    if (projectDir === undefined) throw new UsageError("--stack: no Pulumi.yaml with a stacks/ folder here or above; pass --project DIR");
    const file = stackFilePath(projectDir, options.stack);
    if (!fs.existsSync(file)) throw new UsageError(`--stack: ${file} does not exist`);
    const spec = loadSpec(file);
    const domain = spec.domains.find((d) => d.name === options.domain);
    if (!domain) {
      throw new UsageError(
        `--stack ${options.stack}: ${options.domain} is not one of its domains (${spec.domains.map((d) => d.name).join(", ")})`,
      );
    }
    return { stack: options.stack, projectDir, spec, domain };
  }
  if (projectDir === undefined || !fs.existsSync(path.join(projectDir, "stacks"))) return null;
  const matches = fs
    .readdirSync(path.join(projectDir, "stacks"))
    .map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .filter((s) => stackDomains(stackFilePath(projectDir, s)).includes(options.domain))
    .sort();
  if (matches.length === 0) return null;
  if (matches.length > 1) throw new UsageError(`--stack: ${options.domain} is a domain of stacks ${matches.join(", ")}; pick one`);
  return chooseStack({ ...options, stack: matches[0], project: projectDir }, findProjectDir);
}
