#!/usr/bin/env node
// The `mailstack` command line: `mailstack plan` (offline, no credentials) and `mailstack check`
// (the live domain from outside, against the plan).
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { planStack } from "./plan";
import { formatJson, formatTable, formatZones, PLAN_FORMATS, type PlanFormat } from "./plan-format";
import { CHECK_USAGE, runCheck } from "./check";
import { PREVIEW_USAGE, runPreview } from "./preview";

const USAGE = `usage: mailstack plan [--stack NAME] [--format table|json|zone] [--ipv4 ADDR --ipv6 PREFIX]
                      [--acme-account URL] [--nameservers NS1,NS2] [--project DIR] [--verbose]

  plan   run the Pulumi program offline (mock engine, no credentials) and print every resource
         it would create and every DNS record per zone. Secrets print as [secret].
         --ipv4/--ipv6 supply what Hetzner would assign (the IPv6 is the /64 network; the host
         uses ::1); without them addresses show as unknown. --acme-account gives the ACME
         account URL for the CAA accounturi (known after the first pulumi up).

${CHECK_USAGE}

${PREVIEW_USAGE}`;

/** The project is where Pulumi.yaml and stacks/ are: the working directory or above, else this package. */
export function findProjectDir(start: string): string {
  for (const from of [start, __dirname]) {
    for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
      if (fs.existsSync(path.join(dir, "Pulumi.yaml")) && fs.existsSync(path.join(dir, "stacks"))) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  throw new Error(`no Pulumi.yaml with a stacks/ folder in ${start} or above; pass --project DIR`);
}

async function plan(argv: string[]): Promise<string> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string", default: "dev" },
      format: { type: "string", default: "table" },
      ipv4: { type: "string" },
      ipv6: { type: "string" },
      nameservers: { type: "string" },
      "acme-account": { type: "string" },
      project: { type: "string" },
      verbose: { type: "boolean", default: false },
    },
    strict: true,
  });
  const format = values.format as PlanFormat;
  if (!PLAN_FORMATS.includes(format)) {
    throw new Error(`--format: "${values.format}" is not one of ${PLAN_FORMATS.join("|")}`);
  }
  if ((values.ipv4 === undefined) !== (values.ipv6 === undefined)) {
    throw new Error("--ipv4 and --ipv6 go together: Hetzner assigns both");
  }
  const result = await planStack({
    stack: values.stack!,
    projectDir: values.project ? path.resolve(values.project) : findProjectDir(process.cwd()),
    ipv4: values.ipv4,
    ipv6: values.ipv6,
    acmeAccount: values["acme-account"],
  });
  if (format === "json") return formatJson(result);
  if (format === "zone") {
    const nameservers = values.nameservers
      ?.split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    return formatZones(result, { nameservers });
  }
  return formatTable(result);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const verbose = rest.includes("--verbose");
  try {
    if (command === "plan") {
      process.stdout.write(await plan(rest));
      return 0;
    }
    if (command === "check") return await runCheck(rest, { findProjectDir });
    if (command === "preview") return await runPreview(rest, { findProjectDir });
    if (command === undefined || command === "help" || command === "--help" || command === "-h") {
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    }
    process.stderr.write(`mailstack: unknown command "${command}"\n${USAGE}\n`);
    return 2;
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`mailstack ${command}: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
