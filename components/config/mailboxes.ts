// The `users` and `aliases` sections: who has a mailbox and where every other address delivers.
import type { AliasSpec } from "../spec";
import { Problems } from "./config-error";
import { parseEmail } from "./name-syntax";
import { argon2idProblem } from "../shared/argon2id";
import { mailboxLocalPartProblem } from "../shared/mail-address";
import { SecretValue } from "./secret";
import { readUserQuota } from "./storage";
import { indexPath, isAbsent, keyPath, readList, readObject, readString, show } from "./shape";

const USER_KEYS = ["address", "passwordHash", "quotaMiB"] as const;
const ALIAS_KEYS = ["address", "to"] as const;

export interface ConfigUser {
  address: string;
  passwordHash: string | SecretValue;
  /** the mailbox's own quota in MiB (0: none); absent: storage.quotaMiB */
  quotaMiB?: number;
  /** position in the configured `users` list, for messages */
  index: number;
}

/** What is known about the managed mail domains when mailboxes are checked. */
export interface MailDomains {
  names: readonly string[];
  /** false when the domains section itself had problems: membership checks would only add noise */
  complete: boolean;
}

/** Managed addresses compare case-insensitively, so they are stored lowercased. */
function managedAddress(local: string, domain: string): string {
  return `${local.toLowerCase()}@${domain}`;
}

function isManaged(domain: string, domains: MailDomains): boolean {
  return domains.names.includes(domain);
}

function notManaged(domains: MailDomains): string {
  return `is in none of the managed domains (${domains.names.join(", ")})`;
}

export function readUsers(value: unknown, path: string, domains: MailDomains, problems: Problems): ConfigUser[] {
  if (isAbsent(value)) return [];
  const list = readList(value, path, problems) ?? [];
  const users: ConfigUser[] = [];
  list.forEach((entry, i) => {
    const userPath = indexPath(path, i);
    const raw = readObject(entry, userPath, USER_KEYS, problems);
    if (raw === undefined) return;
    const before = problems.count;
    const address = readMailboxAddress(raw.address, keyPath(userPath, "address"), domains, problems, false);
    const passwordHash = readPasswordHash(raw.passwordHash, keyPath(userPath, "passwordHash"), problems);
    const quotaMiB = readUserQuota(raw.quotaMiB, keyPath(userPath, "quotaMiB"), problems);
    if (address !== undefined && users.some((u) => u.address === address)) {
      problems.add(keyPath(userPath, "address"), `"${address}" is listed twice (addresses compare case-insensitively)`);
    }
    if (problems.count === before)
      users.push({ address: address!, passwordHash: passwordHash!, ...(quotaMiB !== undefined ? { quotaMiB } : {}), index: i });
  });
  return users;
}

function readPasswordHash(value: unknown, path: string, problems: Problems): string | SecretValue | undefined {
  if (isAbsent(value)) {
    problems.add(path, "is required: an argon2id PHC hash of the password, stored as a secret");
    return undefined;
  }
  // Encrypted in the stack file and not decryptable here (offline plan): nothing to check.
  if (value instanceof SecretValue) return value;
  if (typeof value !== "string") {
    problems.add(path, `expected an argon2id PHC string, got ${Array.isArray(value) ? "a list" : typeof value}`);
    return undefined;
  }
  const problem = argon2idProblem(value.trim());
  if (problem !== undefined) {
    problems.add(path, problem);
    return undefined;
  }
  return value.trim();
}

/** `local@domain` in a managed domain; `@domain` too when `catchAll`. Returns it lowercased. */
function readMailboxAddress(value: unknown, path: string, domains: MailDomains, problems: Problems, catchAll: boolean): string | undefined {
  if (isAbsent(value)) {
    problems.add(
      path,
      catchAll ? "is required: local@domain, or @domain for a catch-all" : "is required: the mailbox address, e.g. alice@example.org",
    );
    return undefined;
  }
  const text = readString(value, path, problems, "an email address");
  if (text === undefined) return undefined;
  const email = parseEmail(catchAll && text.startsWith("@") ? `catchall${text}` : text);
  if (!email.ok) {
    const form = catchAll ? "an address (local@domain) or a catch-all (@domain)" : "a valid email address";
    problems.add(path, `${show(text)} is not ${form}: it ${email.reason}`);
    return undefined;
  }
  const { local, domain } = email.value;
  const mailboxProblem = catchAll ? undefined : mailboxLocalPartProblem(local.toLowerCase());
  if (mailboxProblem !== undefined) {
    problems.add(path, `${show(text)} cannot be a mailbox: its ${mailboxProblem}`);
    return undefined;
  }
  if (domains.complete && !isManaged(domain, domains)) {
    problems.add(path, `"${text}" ${notManaged(domains)}; mailboxes and aliases live in a managed domain`);
    return undefined;
  }
  return catchAll && text.startsWith("@") ? `@${domain}` : managedAddress(local, domain);
}

interface AliasEntry {
  spec: AliasSpec;
  path: string;
}

export function readAliases(
  value: unknown,
  path: string,
  users: readonly ConfigUser[],
  domains: MailDomains,
  problems: Problems,
): AliasSpec[] {
  if (isAbsent(value)) return [];
  const list = readList(value, path, problems) ?? [];
  const userSet = new Set(users.map((u) => u.address));
  const entries: AliasEntry[] = [];
  list.forEach((entry, i) => {
    const aliasPath = indexPath(path, i);
    const raw = readObject(entry, aliasPath, ALIAS_KEYS, problems);
    if (raw === undefined) return;
    const before = problems.count;
    const addressPath = keyPath(aliasPath, "address");
    const address = readMailboxAddress(raw.address, addressPath, domains, problems, true);
    if (address !== undefined && userSet.has(address)) {
      problems.add(addressPath, `"${address}" is also a user; an address is either a mailbox or an alias, not both`);
    } else if (address !== undefined && entries.some((e) => e.spec.address === address)) {
      problems.add(addressPath, `"${address}" is listed twice (addresses compare case-insensitively)`);
    }
    const to = readAliasTargets(raw.to, keyPath(aliasPath, "to"), domains, problems);
    if (problems.count === before) entries.push({ spec: { address: address!, to: to! }, path: aliasPath });
  });

  // The implicit postmaster aliases (see implicitPostmasters) are valid targets too.
  const postmasters = users.length > 0 ? domains.names.map((d) => `postmaster@${d}`) : [];
  const aliasSet = new Set([...entries.map((e) => e.spec.address), ...postmasters]);
  for (const { spec, path: aliasPath } of entries) {
    spec.to.forEach((target, j) => {
      const domain = target.slice(target.lastIndexOf("@") + 1);
      if (isManaged(domain, domains) && !userSet.has(target) && !aliasSet.has(target)) {
        problems.add(
          indexPath(keyPath(aliasPath, "to"), j),
          `"${target}" points nowhere: it is in the managed domain ${domain} but is neither a user nor an alias`,
        );
      }
    });
  }
  reportLoops(entries, problems);
  return entries.map((e) => e.spec);
}

function readAliasTargets(value: unknown, path: string, domains: MailDomains, problems: Problems): string[] | undefined {
  if (isAbsent(value)) {
    problems.add(path, "is required: a list of users, aliases or outside addresses to deliver to");
    return undefined;
  }
  const list = readList(value, path, problems);
  if (list === undefined) return undefined;
  if (list.length === 0) {
    problems.add(path, "is empty; an alias needs at least one target");
    return undefined;
  }
  const before = problems.count;
  const out: string[] = [];
  list.forEach((entry, j) => {
    const itemPath = indexPath(path, j);
    const text = readString(entry, itemPath, problems, "an email address");
    if (text === undefined) return;
    const email = parseEmail(text);
    if (!email.ok) {
      problems.add(itemPath, `${show(text)} is not a valid email address: it ${email.reason}`);
      return;
    }
    const { local, domain, address } = email.value;
    // Outside addresses keep their local part as written: only their owner knows its case rules.
    const target = isManaged(domain, domains) ? managedAddress(local, domain) : address;
    if (out.includes(target)) {
      problems.add(itemPath, `"${target}" is listed twice`);
      return;
    }
    out.push(target);
  });
  return problems.count > before ? undefined : out;
}

/** Aliases that lead back to themselves would bounce mail around until the hop limit. */
function reportLoops(entries: readonly AliasEntry[], problems: Problems): void {
  const byAddress = new Map(entries.map((e) => [e.spec.address, e]));
  const state = new Map<string, "visiting" | "done">();
  const trail: string[] = [];
  const visit = (address: string): void => {
    state.set(address, "visiting");
    trail.push(address);
    const entry = byAddress.get(address)!;
    entry.spec.to.forEach((target, j) => {
      if (!byAddress.has(target)) return;
      if (state.get(target) === "visiting") {
        const loop = [...trail.slice(trail.indexOf(target)), target].join(" -> ");
        problems.add(indexPath(keyPath(entry.path, "to"), j), `"${target}" makes a loop: ${loop}; no mailbox would ever receive it`);
      } else if (state.get(target) === undefined) {
        visit(target);
      }
    });
    trail.pop();
    state.set(address, "done");
  };
  for (const e of entries) if (state.get(e.spec.address) === undefined) visit(e.spec.address);
}

/**
 * RFC 5321 4.5.1: every domain must accept mail for postmaster. Where neither a user nor an alias
 * provides it, deliver it to the domain's first user, else the first user overall.
 */
export function implicitPostmasters(
  domainNames: readonly string[],
  users: readonly ConfigUser[],
  aliases: readonly AliasSpec[],
): AliasSpec[] {
  const taken = new Set([...users.map((u) => u.address), ...aliases.map((a) => a.address)]);
  const out: AliasSpec[] = [];
  for (const domain of domainNames) {
    const postmaster = `postmaster@${domain}`;
    if (taken.has(postmaster) || users.length === 0) continue;
    const target = users.find((u) => u.address.endsWith(`@${domain}`)) ?? users[0];
    out.push({ address: postmaster, to: [target.address] });
  }
  return out;
}
