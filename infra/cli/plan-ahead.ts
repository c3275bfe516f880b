// What `mailstack plan` starts on other threads before it loads Pulumi and the program (about a
// second of the main thread): maild's bundle (esbuild) and the RSA DKIM keys. The program takes
// both when it gets there (daemon-bundle.ts, key-pool.ts), and makes them itself as before when they
// are not there: nothing here decides what the plan holds.
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { startBundlingDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { RsaKeyPool } from "../offline/key-pool";
import { STACK_NAME } from "./project-dir";

/** components/mail-stack.ts dkimKey: the RSA DKIM keys are 2048 bits. */
export const DKIM_RSA_BITS = 2048;

/**
 * How many RSA DKIM keys the program will ask for: one per domain and key generation
 * (components/mail-stack.ts; `dkim.generations` defaults to one). Read from the unvalidated stack
 * file, it is only how many keys to make ahead: a wrong count costs time, never a different plan.
 */
export function rsaDkimKeysOf(values: Record<string, unknown>): number {
  if (!Array.isArray(values.domains)) return 0;
  return values.domains.reduce((count: number, domain: unknown) => {
    const generations = (domain as { dkim?: { generations?: unknown } } | null)?.dkim?.generations;
    return count + (Array.isArray(generations) ? generations.length : 1);
  }, 0);
}

export interface PlanAhead {
  keyPairs: RsaKeyPool;
  /** Stops what is still running (after the plan, or when it failed early). */
  cancel(): Promise<void>;
}

/**
 * Starts the work ahead for the stack file `stacks/Pulumi.<stack>.yaml` of `projectDir`. Never
 * throws: a stack file it cannot read means no keys ahead, and planStack reports the problem.
 */
export function startPlanAhead(projectDir: string, stack: string): PlanAhead {
  const bundling = startBundlingDaemon();
  let count = 0;
  try {
    if (STACK_NAME.test(stack)) count = rsaDkimKeysOf(readStackFile(path.join(projectDir, "stacks", `Pulumi.${stack}.yaml`)));
  } catch {
    // planStack reads the file again and says what is wrong with it
  }
  const keyPairs = new RsaKeyPool(DKIM_RSA_BITS, count);
  return {
    keyPairs,
    async cancel() {
      await Promise.all([bundling.cancel(), keyPairs.close()]);
    },
  };
}
