// `mailstack plan`: arguments in, the plan printed as a table, JSON or zone files.
import { parseCommandArgs } from "./args";
import { UsageError, type Command } from "./command";
import { startPlanAhead } from "./plan-ahead";
import type { PlanFormat } from "./plan-format";
import { checkStackName, projectDirFrom } from "./project-dir";

export const PLAN_USAGE = `usage: mailstack plan [--stack NAME] [--format table|json|zone] [--ipv4 ADDR --ipv6 PREFIX]
                      [--acme-account URL] [--nameservers NS1,NS2] [--project DIR] [--verbose]

  Runs the Pulumi program offline (mock engine, no credentials) and prints every resource it
  would create and every DNS record per zone. Secrets print as [secret].
  --stack        the stack file stacks/Pulumi.NAME.yaml (default: dev)
  --format       table (default), json, or zone (one zone file per Cloudflare zone)
  --ipv4/--ipv6  what Hetzner would assign (the IPv6 is the /64 network; the host uses ::1);
                 without them addresses show as unknown
  --acme-account the ACME account URL for the CAA accounturi (known after the first pulumi up)
  --nameservers  the zone's NS names for --format zone (default ns1/ns2.cloudflare.invalid)
  --project      the directory holding Pulumi.yaml (default: here or above)`;

export const planCommand: Command = {
  name: "plan",
  summary: "every resource and DNS record a stack would create, offline, no credentials",
  usage: PLAN_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        stack: { type: "string", default: "dev" },
        format: { type: "string", default: "table" },
        ipv4: { type: "string" },
        ipv6: { type: "string" },
        nameservers: { type: "string" },
        "acme-account": { type: "string" },
        project: { type: "string" },
        verbose: { type: "boolean", default: false },
      },
      true,
    );
    // maild's bundle and the DKIM keys are made on other threads while Pulumi and the program
    // load, which is why those are loaded only below (plan-ahead.ts).
    const ahead = startPlanAhead(aheadProjectDir(values.project, io.cwd), values.stack);
    try {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { planStack } = require("./plan") as typeof import("./plan");
      const { formatJson, formatTable, formatZones, PLAN_FORMATS } = require("./plan-format") as typeof import("./plan-format");
      /* eslint-enable @typescript-eslint/no-require-imports */
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"; plan takes options only`);
      const format = values.format as PlanFormat;
      if (!PLAN_FORMATS.includes(format)) {
        throw new UsageError(`--format: "${values.format}" is not one of ${PLAN_FORMATS.join("|")}`);
      }
      if ((values.ipv4 === undefined) !== (values.ipv6 === undefined)) {
        throw new UsageError("--ipv4 and --ipv6 go together: Hetzner assigns both");
      }
      const result = await planStack({
        stack: checkStackName(values.stack),
        projectDir: projectDirFrom(values.project, io.cwd),
        ipv4: values.ipv4,
        ipv6: values.ipv6,
        acmeAccount: values["acme-account"],
        keyPairs: ahead.keyPairs,
      });
      if (format === "json") io.stdout(formatJson(result));
      else if (format === "zone") {
        const nameservers = values.nameservers
          ?.split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        io.stdout(formatZones(result, { nameservers }));
      } else io.stdout(formatTable(result));
      return 0;
    } finally {
      await ahead.cancel();
    }
  },
};

/** The project directory as planStack will be given it, or any directory when that fails (planStack then says why). */
function aheadProjectDir(project: string | undefined, cwd: string): string {
  try {
    return projectDirFrom(project, cwd);
  } catch {
    return cwd;
  }
}
