// Where the Pulumi project is: the directory holding Pulumi.yaml and stacks/.
import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError } from "./command";

/**
 * The project is where Pulumi.yaml and stacks/ are: the working directory or above, else (for the
 * commands that only read, such as plan and check) this package's own example project.
 */
export function findProjectDir(start: string, options: { packageFallback?: boolean } = {}): string {
  for (const from of options.packageFallback === false ? [start] : [start, __dirname]) {
    for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
      if (fs.existsSync(path.join(dir, "Pulumi.yaml")) && fs.existsSync(path.join(dir, "stacks"))) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  throw new Error(`no Pulumi.yaml with a stacks/ folder in ${start} or above; pass --project DIR`);
}

/** --project DIR if given (it must hold Pulumi.yaml), else the project around `cwd`. */
export function projectDirFrom(project: string | undefined, cwd: string, options: { packageFallback?: boolean } = {}): string {
  if (project === undefined) return findProjectDir(cwd, options);
  const dir = path.resolve(cwd, project);
  if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) throw new UsageError(`--project: ${dir} holds no Pulumi.yaml`);
  return dir;
}

/** Pulumi stack names as the stack files' names take them. */
export const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

export function checkStackName(name: string): string {
  if (!STACK_NAME.test(name)) throw new UsageError(`--stack: "${name}" is not a stack name (letters, digits, _ . -)`);
  return name;
}
