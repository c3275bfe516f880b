// What `mailstack plan` starts on other threads before it loads Pulumi and the program (about a
// second of the main thread): maild's bundle (esbuild) and the stand-in RSA key that stands for
// every RSA DKIM key (plan.ts, key-pool.ts StandInRsaKeys). The program takes both when it gets
// there (daemon-bundle.ts, key-pool.ts), and makes them itself when they are not there: nothing
// here decides what the plan holds.
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { startBundlingDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { RsaKeyPool } from "../offline/key-pool";
import { STACK_NAME } from "./project-dir";

/** components/mail-stack.ts dkimKey: the RSA DKIM keys are 2048 bits. */
export const DKIM_RSA_BITS = 2048;

/**
 * How many RSA keys to make ahead: the one stand-in, when the program will ask for an RSA DKIM key
 * (components/mail-stack.ts: one per domain and key generation, so any domain). Read from the
 * unvalidated stack file: a wrong answer costs time, never a different plan.
 */
export function rsaKeysAhead(values: Record<string, unknown>): number {
  return Array.isArray(values.domains) && values.domains.length > 0 ? 1 : 0;
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
    if (STACK_NAME.test(stack)) count = rsaKeysAhead(readStackFile(path.join(projectDir, "stacks", `Pulumi.${stack}.yaml`)));
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
