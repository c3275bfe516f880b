// `mailstack check <domain>`: the live domain from outside, like Mail-in-a-Box's status checks.
// DNS (MX, addresses, FCrDNS, SPF, DKIM, DMARC, TLSRPT, MTA-STS, CAA, TLSA) and TLS on every mail
// port, compared with the plan of the stack that manages the domain when there is one, else
// checked for syntax and internal consistency only.
//   check-args.ts    the arguments          check-stack.ts   which stack's plan to compare with
//   check-probes.ts  the live answers       check-domain.ts  expectations and answers -> rows
import type { Command } from "./command";
import { UsageError } from "./command";
import { parseCheckArgs, readDkimKeys, trustStore } from "./check-args";
import { DnsLookups } from "./check-dns";
import { checkDomain, type CheckContext } from "./check-domain";
import { formatCheckJson, formatCheckTable } from "./check-format";
import { exitCodeFor } from "./check-result";
import { chooseStack } from "./check-stack";
import { findProjectDir } from "./project-dir";

export { UsageError } from "./command";
export { DEFAULT_TIMEOUT_MS, parseCheckArgs, readDkimKeys, trustStore, type CheckOptions } from "./check-args";
export { chooseStack, type StackChoice } from "./check-stack";
export { checkDomain, type CheckContext } from "./check-domain";
export { ipv6Network64 } from "./ipv6-network";

export const CHECK_USAGE = `usage: mailstack check DOMAIN [--stack NAME] [--json] [--resolver IP[:PORT]] [--timeout MS]
                       [--ca FILE] [--hostname NAME] [--selector NAME] [--dkim-keys FILE]
                       [--ipv4 ADDR] [--ipv6 PREFIX] [--acme-account URL] [--project DIR]
                       [--dnsbl ZONE] [--dbl ZONE] [--verbose]

  check  look at DOMAIN from outside as senders do: MX, the mail host's A/AAAA and reverse DNS,
         SPF, DKIM, DMARC, TLSRPT, MTA-STS (record and policy), CAA, TLSA, and TLS on ports 25
         and 587 (STARTTLS), 465, 993 and 443. Compares with the plan of --stack (default: the
         stack in stacks/ whose domains include DOMAIN); without one, checks syntax and
         consistency only. Exit status 0: no check failed; 1: a check failed; 2: bad arguments.
         --resolver  send every DNS query there (default: the system resolver)
         --timeout   per DNS query, connection and fetch, in ms (default 5000)
         --ca        also trust this CA (PEM) for TLS and the MTA-STS policy; repeatable
         --hostname  the mail host to check (default: the plan's, else the domain's MX)
         --selector  a DKIM selector to check (default: the plan's); repeatable
         --dkim-keys the deployed DKIM keys to compare with: \`pulumi stack output dkimPublicKeys --json\`
         --ipv4/--ipv6  the server's address and /64 (as for plan); default: taken from DNS
         --acme-account the ACME account URL, to compare CAA accounturi
         --dnsbl/--dbl  ask these blocklists (RFC 5782) about the server's addresses / the domain
                     and host; repeatable (default: none; the box asks its own lists)
         --json      print a JSON document instead of the table`;

export interface RunCheckEnvironment {
  findProjectDir: (start: string) => string;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  now?: () => Date;
}

/** The whole command: arguments in, report out, exit status back (0 ok, 1 a check failed, 2 usage). */
export async function runCheck(argv: string[], env: RunCheckEnvironment): Promise<number> {
  const stdout = env.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = env.stderr ?? ((t: string) => void process.stderr.write(t));
  let ctx: CheckContext;
  try {
    const options = parseCheckArgs(argv);
    const dkimKeys = options.dkimKeysFile !== undefined ? readDkimKeys(options.dkimKeysFile, options.domain) : undefined;
    ctx = {
      options,
      dns: new DnsLookups(options.resolvers, options.timeoutMs),
      ca: trustStore(options.caFiles),
      choice: chooseStack(options, env.findProjectDir),
      dkimKeys,
      now: env.now?.() ?? new Date(),
      progress: !options.json && process.stderr.isTTY ? (line) => stderr(`${line}\n`) : undefined,
    };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr(`mailstack check: ${err.message}\n${CHECK_USAGE}\n`);
    return 2;
  }
  const report = await checkDomain(ctx);
  stdout(ctx.options.json ? formatCheckJson(report) : formatCheckTable(report));
  return exitCodeFor(report.rows);
}

export const checkCommand: Command = {
  name: "check",
  summary: "the live domain from outside (DNS, PTR, MTA-STS, TLS, ports) against the plan",
  usage: CHECK_USAGE,
  run: (argv, io) => runCheck(argv, { findProjectDir: () => findProjectDir(io.cwd), stdout: io.stdout, stderr: io.stderr }),
};
