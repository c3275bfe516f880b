#!/usr/bin/env node
// `npm start`: the whole mailstack system on this machine, in a local internet of network
// namespaces (root, Debian/Ubuntu). Prints progress, a report, and tears everything down, also
// on Ctrl-C. With --keep-running it stays up until Ctrl-C and says how to reach it.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { runDemo, type DemoHandle } from "./run-demo";
import { formatReport, reportFailures } from "./report";
import { StepFailure } from "./progress";

const USAGE = `usage: npm start [-- --keep-running] [--stack NAME] [--verbose]

  Builds a local internet (network namespaces dns, ca, box, peer), publishes the DNS records the
  Pulumi program plans for the example stack, issues the certificate from a local ACME CA,
  deploys maild over SSH as \`pulumi up\` would, sends mail both ways with a Postfix peer, reads
  it over IMAP, prints a report and tears everything down. Needs root on Debian or Ubuntu.

  --keep-running  keep the local internet up until Ctrl-C and print how to reach it
  --stack NAME    the stack file stacks/Pulumi.NAME.yaml (default: dev)
  --verbose       show stack traces of errors`;

function seconds(since: bigint): string {
  return `${(Number(process.hrtime.bigint() - since) / 1e9).toFixed(1)} s`;
}

/** How to reach the running system, for --keep-running. */
function howToReach(h: DemoHandle): string {
  const { dns, ca, box, peer } = h.hosts;
  const sshDir = path.join(h.internet.workDir, "ssh");
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(sshDir, "deployer");
  const knownHosts = path.join(sshDir, "known_hosts");
  fs.writeFileSync(keyPath, h.box.ssh.privateKey, { mode: 0o600 });
  fs.writeFileSync(knownHosts, `${box.ipv4} ${h.box.ssh.hostKey}\n`);
  const user = h.users[0];
  const zones = h.zones.map((z) => z.origin.replace(/\.$/, "")).join(", ");
  const lines = [
    "",
    "The local internet is up until Ctrl-C.",
    "  namespace addresses",
    `  ${dns.ns.padEnd(12)} ${dns.ipv4.padEnd(15)} ${dns.ipv6.padEnd(22)} knot: ${zones}`,
    `  ${ca.ns.padEnd(12)} ${ca.ipv4.padEnd(15)} ${ca.ipv6.padEnd(22)} pebble: ${h.pebble.directoryUrl}`,
    `  ${box.ns.padEnd(12)} ${box.ipv4.padEnd(15)} ${box.ipv6.padEnd(22)} ${h.plan.hostname}: sshd 22, maild 25/80/443 (+587/465), Dovecot 143/993`,
    `  ${peer.ns.padEnd(12)} ${peer.ipv4.padEnd(15)} ${peer.ipv6.padEnd(22)} ${h.peer.hostname}: Postfix 25, opendkim, opendmarc, mta-sts-daemon`,
    "  users",
    ...h.users.map((u) => `  ${u.address.padEnd(22)} password ${u.password}`),
    `  ${h.peer.user.padEnd(22)} (the peer's mailbox: ${h.peer.maildir})`,
    `  CA root     ${h.caRootPemPath} (trust it to verify the box)`,
    `  logs        maild ${h.box.maildLogPath}`,
    `              Dovecot ${h.box.dovecotLogPath}`,
    `              the peer's Postfix ${path.join(h.peer.postfix.configDir, "maillog")}`,
    "  try",
    `  ip netns exec ${peer.ns} dig +short MX ${h.report.dns.zones[0]}`,
    `  ip netns exec ${peer.ns} swaks --to ${user.address} --from ${h.peer.user} --tls`,
    `  ip netns exec ${peer.ns} env SSL_CERT_FILE=${h.caRootPemPath} mta-sts-query ${h.report.dns.zones[0]}`,
    `  openssl s_client -connect ${box.ipv4}:993 -servername ${h.plan.hostname} -CAfile ${h.caRootPemPath}`,
    `  swaks --server ${box.ipv4} --port 587 --tls --auth PLAIN --auth-user ${user.address} --auth-password '${user.password}' --from ${user.address} --to ${h.peer.user}`,
    `  ssh -i ${keyPath} -o UserKnownHostsFile=${knownHosts} root@${box.ipv4}`,
    "",
  ];
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "keep-running": { type: "boolean", default: false },
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
