#!/usr/bin/env node
// `npm start`: the whole mailstack system on this machine, in a local internet of network
// namespaces (root, Debian/Ubuntu). Prints progress, a report, and tears everything down, also
// on Ctrl-C. With --keep-running it stays up until Ctrl-C and says how to reach it.
import { parseArgs } from "node:util";
import { runDemo, type DemoHandle } from "./run-demo";
import { formatReport, reportFailures } from "./report";
import { StepFailure } from "./progress";
import { howToReach } from "./how-to-reach";
import { runLifecycleDemo } from "../lifecycle/lifecycle-demo";

const USAGE = `usage: npm start [-- --keep-running] [--stack NAME] [--verbose]
       npm start -- --lifecycle

  Builds a local internet (network namespaces dns, ca, box, peer), publishes the DNS records the
  Pulumi program plans for the example stack, issues the certificate from a local ACME CA,
  deploys maild over SSH as \`pulumi up\` would, sends mail both ways with a Postfix peer, reads
  it over IMAP, prints a report and tears everything down. Needs root on Debian or Ubuntu.

  --lifecycle     instead: a short lifecycle of the dev stack on the offline engine (first up,
                  unchanged up, add a user, replace the server), each command of the program run
                  on a server namespace that boots like a Hetzner server, each flow checked
                  (DNS as planned, maild and Dovecot answering, earlier mail still there)
  --keep-running  keep the local internet up until Ctrl-C and print how to reach it
  --stack NAME    the stack file stacks/Pulumi.NAME.yaml (default: dev)
  --verbose       show stack traces of errors`;

function seconds(since: bigint): string {
  return `${(Number(process.hrtime.bigint() - since) / 1e9).toFixed(1)} s`;
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "keep-running": { type: "boolean", default: false },
        lifecycle: { type: "boolean", default: false },
        stack: { type: "string", default: "dev" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  if (values.lifecycle) {
    const started = process.hrtime.bigint();
    try {
      const problems = await runLifecycleDemo((t) => process.stdout.write(t));
      for (const p of problems) process.stdout.write(`  problem: ${p}\n`);
      process.stdout.write(
        `The lifecycle took ${seconds(started)}; ${problems.length ? `${problems.length} problem(s)` : "every check held"}.\n`,
      );
      return problems.length ? 1 : 0;
    } catch (err) {
      const e = err instanceof StepFailure ? (err.cause as Error) : (err as Error);
      if (values.verbose) process.stderr.write(`${e.stack ?? e.message}\n`);
      return 1;
    }
  }

  let handle: DemoHandle | undefined;
  let stopping = false;
  let settle: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (settle = r));
  let exitCode = 0;

  const stopGracefully = async (why: string): Promise<void> => {
    const started = process.hrtime.bigint();
    process.stdout.write(`${why}: tearing down the local internet ... `);
    await handle!.stop();
    process.stdout.write(`ok (${seconds(started)})\n`);
  };

  // While the demo sets up, the harness's own handler tears the namespaces down synchronously on
  // a signal; this one only ends the process after it. Once the demo is up, this one takes over
  // and stops everything gracefully (maild by SIGTERM over SSH, as deleting a deployment does).
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping || !handle) {
      if (!stopping) process.stdout.write(`\n${signal}: tearing down the local internet\n`);
      stopping = true;
      setImmediate(() => process.exit(130));
      return;
    }
    stopping = true;
    process.stdout.write("\n");
    stopGracefully(signal).then(
      () => settle(exitCode),
      () => settle(1),
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = process.hrtime.bigint();
  try {
    handle = await runDemo({ stack: values.stack });
  } catch (err) {
    // A failed step has said why on its progress line already.
    const e = err instanceof StepFailure ? (err.cause as Error) : (err as Error);
    if (!(err instanceof StepFailure)) process.stderr.write(`demo: ${e.message.split("\n")[0]}\n`);
    if (values.verbose) process.stderr.write(`${e.stack ?? e.message}\n`);
    else if (e.message.includes("\n")) process.stderr.write("demo: --verbose shows the details\n");
    return 1;
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const l of process.listeners(signal)) if (l !== onSignal) process.removeListener(signal, l as () => void);
  }

  process.stdout.write(`\n${formatReport(handle.report)}`);
  exitCode = reportFailures(handle.report).length === 0 ? 0 : 1;
  process.stdout.write(`The demo took ${seconds(started)}.\n`);
  if (values["keep-running"]) {
    process.stdout.write(howToReach(handle));
    return done;
  }
  stopping = true;
  await stopGracefully("done");
  return exitCode;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
