// Stack configuration -> StackSpec. Runs before any resource is declared; collects every problem
// and throws one ConfigError listing them all, so bad input changes nothing.
import type { AliasSpec, DomainSpec, StackSpec, UserSpec } from "../spec";
import { ConfigError, Problems, type ConfigProblem } from "./config-error";
import { readAcme } from "./acme";
import { readDomain, readDomainName } from "./domain";
import { implicitPostmasters, readAliases, readUsers, type ConfigUser, type MailDomains } from "./mailboxes";
import { isAtOrBelow, parseEmail } from "./name-syntax";
import { SecretValue } from "./secret";
import { readServer } from "./server";
import { readBackup } from "./backup";
import { readOperations } from "./operations";
import { readLimits } from "./limits";
import { readSpam } from "./spam";
import { readStorage } from "./storage";
import { indexPath, isAbsent, keyPath, readList, readObject } from "./shape";

export { ConfigError } from "./config-error";
export type { ConfigProblem } from "./config-error";
export { SecretValue } from "./secret";

export const CONFIG_KEYS = [
  "hostname",
  "server",
  "domains",
  "users",
  "aliases",
  "acme",
  "backup",
  "operations",
  "limits",
  "spam",
  "storage",
] as const;

export interface ValidateOptions {
  /**
   * Config keys (namespace stripped) that Pulumi holds as secrets. When given, plain-text password
   * hashes are refused unless `users` is among them.
   */
  secretKeys?: ReadonlySet<string>;
}

/**
 * Validates and normalises a stack's `mailstack:*` config (keys without the namespace) into the
 * StackSpec everything else consumes. Throws ConfigError with every problem found.
 *
 * A user's passwordHash is returned as given: a plain argon2id string, or the SecretValue marker
 * the offline plan uses for values it cannot decrypt; the caller wraps it in pulumi.secret.
 */
export function validateStackConfig(raw: Record<string, unknown>, opts: ValidateOptions = {}): StackSpec {
  const problems = new Problems();
  const top = readObject(raw, "(stack config)", CONFIG_KEYS, problems) ?? {};
  // Top-level keys are reported bare (`hostnmae`, not `(stack config).hostnmae`).
  for (const p of problems.list) p.path = p.path.replace(/^\(stack config\)\./, "");

  const { domains, complete } = readDomains(top.domains, problems);
  const mailDomains: MailDomains = { names: domains.map((d) => d.name), complete };
  const hostname = readHostname(top.hostname, domains, complete, problems);
  const server = readServer(top.server, "server", problems);

  const beforeMailboxes = problems.count;
  const users = readUsers(top.users, "users", mailDomains, problems);
  const aliases = readAliases(top.aliases, "aliases", users, mailDomains, problems);
  const mailboxesClean = problems.count === beforeMailboxes;
  const noUsers = isAbsent(top.users) || (Array.isArray(top.users) && top.users.length === 0);
  if (noUsers && domains.length > 0) {
    problems.add("users", `at least one user is required (postmaster@${domains[0].name} needs a mailbox)`);
  }
  const allAliases: AliasSpec[] = [...aliases, ...implicitPostmasters(mailDomains.names, users, aliases)];
  if (mailboxesClean && complete && users.length > 0) checkReportAddresses(domains, users, allAliases, problems);

  const acme = readAcme(top.acme, "acme", problems);
  const backup = readBackup(top.backup, "backup", problems, { server, secretKeys: opts.secretKeys });
  const operations = readOperations(
    top.operations,
    "operations",
    domains[0]?.name ?? "localhost",
    users.map((u) => u.address),
    problems,
  );
  const limits = readLimits(top.limits, "limits", problems);
  const spam = readSpam(top.spam, "spam", problems);
  const storage = readStorage(top.storage, "storage", server?.volumeSizeGb, problems);
  checkSecretHashes(users, opts.secretKeys, problems);

  if (problems.count > 0) throw new ConfigError(inConfigOrder(problems.list));
  return {
    hostname: hostname!,
    server: server!,
    domains,
    users: users.map((u): UserSpec => ({
      address: u.address,
      passwordHash: u.passwordHash,
      ...(u.quotaMiB !== undefined ? { quotaMiB: u.quotaMiB } : {}),
    })),
    aliases: allAliases,
    acme: acme!,
    ...(backup !== undefined ? { backup } : {}),
    operations: operations!,
    limits: limits!,
    spam: spam!,
    storage,
  };
}

/** Problems in the order a stack file is usually written (CONFIG_KEYS), unknown keys first. */
function inConfigOrder(list: ConfigProblem[]): ConfigProblem[] {
  const rank = (p: ConfigProblem) => (CONFIG_KEYS as readonly string[]).indexOf(p.path.split(/[.[]/)[0]);
  return [...list].sort((a, b) => rank(a) - rank(b));
}

function readDomains(value: unknown, problems: Problems): { domains: DomainSpec[]; complete: boolean } {
  if (isAbsent(value)) {
    problems.add("domains", "is required: a list of mail domains, each at least {name: example.org}");
    return { domains: [], complete: false };
  }
  const list = readList(value, "domains", problems);
  if (list === undefined) return { domains: [], complete: false };
  if (list.length === 0) {
    problems.add("domains", "is empty; at least one mail domain is required");
    return { domains: [], complete: false };
  }
  const domains: DomainSpec[] = [];
  const firstIndex = new Map<string, number>();
  let complete = true;
  list.forEach((entry, i) => {
    const path = indexPath("domains", i);
    const domain = readDomain(entry, path, problems);
    if (domain === undefined) {
      complete = false;
      return;
    }
    const first = firstIndex.get(domain.name);
    if (first !== undefined) {
      problems.add(keyPath(path, "name"), `"${domain.name}" is listed twice (also domains[${first}])`);
      complete = false;
      return;
    }
    firstIndex.set(domain.name, i);
    domains.push(domain);
  });
  return { domains, complete };
}

function readHostname(value: unknown, domains: readonly DomainSpec[], complete: boolean, problems: Problems): string | undefined {
  if (isAbsent(value)) {
    problems.add("hostname", "is required: the mail host's FQDN (MX target, HELO name and PTR), e.g. mail.example.org");
    return undefined;
  }
  const hostname = readDomainName(value, "hostname", problems, "the mail host's FQDN");
  if (hostname === undefined || domains.length === 0) return hostname;
  const zones = [...new Set(domains.map((d) => d.zone))];
  if (complete && !zones.some((zone) => isAtOrBelow(hostname, zone))) {
    problems.add(
      "hostname",
      `"${hostname}" is in none of the managed zones (${zones.join(", ")}); its A/AAAA records must go in one of them`,
    );
    return undefined;
  }
  if (domains.some((d) => d.name === hostname)) {
    problems.add(
      "hostname",
      `"${hostname}" is also a mail domain; its HELO SPF record would collide with the domain's SPF record, so use a host name such as mail.${hostname}`,
    );
    return undefined;
  }
  return hostname;
}

/** DMARC and TLSRPT reports to a managed domain must reach a mailbox. Lowercases such addresses. */
function checkReportAddresses(
  domains: DomainSpec[],
  users: readonly ConfigUser[],
  aliases: readonly AliasSpec[],
  problems: Problems,
): void {
  const names = new Set(domains.map((d) => d.name));
  const reachable = new Set([...users.map((u) => u.address), ...aliases.map((a) => a.address)]);
  const resolve = (list: string[], path: string) => {
    list.forEach((entry, j) => {
      if (/^https:/i.test(entry)) return;
      const email = parseEmail(entry);
      if (!email.ok || !names.has(email.value.domain)) return;
      const address = `${email.value.local.toLowerCase()}@${email.value.domain}`;
      list[j] = address;
      if (!reachable.has(address)) {
        problems.add(
          indexPath(path, j),
          `"${address}" is in a managed domain but is neither a user nor an alias, so reports sent there would bounce`,
        );
      }
    });
  };
  domains.forEach((d, i) => {
    const path = indexPath("domains", i);
    resolve(d.dmarc.rua, keyPath(path, "dmarc.rua"));
    resolve(d.dmarc.ruf, keyPath(path, "dmarc.ruf"));
    resolve(d.tlsrpt.rua, keyPath(path, "tlsrpt.rua"));
  });
}

/** With the running program's secret keys known, a plain-text hash means it sits unencrypted in the stack file. */
function checkSecretHashes(users: readonly ConfigUser[], secretKeys: ReadonlySet<string> | undefined, problems: Problems): void {
  if (secretKeys === undefined || secretKeys.has("users")) return;
  for (const u of users) {
    if (u.passwordHash instanceof SecretValue) continue;
    problems.add(
      `users[${u.index}].passwordHash`,
      `is stored in plain text in the stack file; store it encrypted with: mailstack user passwd ${u.address} (it asks for the password, hashes it and runs pulumi config set --secret)`,
    );
  }
}
