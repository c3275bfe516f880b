// Recipient policy: decides, for one RCPT TO, whether the address is ours and where the mail goes.
// Pure: built from the config, no I/O. For an authenticated sender (submission) a remote recipient
// is routed to the outbound queue instead of being refused as relaying.
import type { MaildConfig } from "./config";
import { canonicalLocalPart } from "./mailbox-field";
import { Srs, isSrsLocalPart, type SrsReverse } from "./srs";

/** A local mailbox: `<dataDir>/mail/<domain>/<local>/Maildir` (Dovecot's `%d/%n`). */
export interface Mailbox {
  local: string;
  domain: string;
}

export type Route =
  /**
   * deliver to these mailboxes (deduplicated) and hand these external addresses to the queue;
   * `forwardedBy` names our domain whose alias sends mail on to `remote` (the SRS domain), and
   * `srs` is set when the recipient was one of our SRS addresses (a bounce on its way back)
   */
  | { kind: "accept"; mailboxes: Mailbox[]; remote: string[]; forwardedBy?: string; srs?: true }
  /** an SRS address in our domain that we did not make, or made too long ago */
  | { kind: "bad-srs"; reason: Exclude<SrsReverse, { ok: true }>["reason"] }
  /** the domain is ours but nobody there has this name: RFC 3463 5.1.1 */
  | { kind: "unknown-user" }
  /** not our domain and the client is not allowed to relay: RFC 3463 5.7.1 */
  | { kind: "relay-denied" }
  /** the address does not parse */
  | { kind: "bad-address" };

export interface RouteContext {
  /** set by submission; receiving on port 25 never relays */
  authenticatedUser?: string;
}

const MAX_ALIAS_DEPTH = 10;

export class Router {
  private readonly domains: Set<string>;
  private readonly users: Set<string>;
  private readonly aliases: Map<string, string[]>;
  private readonly delimiters: string;
  private readonly hostname: string | undefined;
  /** where a bare `postmaster` goes: the domain the host name lies in, else the first domain */
  private readonly postmaster: string;

  /** absent: no SRS configured, and SRS-looking local parts are ordinary names */
  readonly srs: Srs | undefined;

  constructor(
    config: Pick<MaildConfig, "domains" | "users" | "aliases" | "recipientDelimiter"> & { hostname?: string } & Partial<
        Pick<MaildConfig, "srs">
      >,
  ) {
    this.domains = new Set(config.domains.map((d) => d.name));
    this.users = new Set(config.users.map((u) => u.address));
    this.aliases = new Map(config.aliases.map((a) => [a.address, a.to]));
    this.delimiters = config.recipientDelimiter;
    this.hostname = config.hostname?.toLowerCase();
    const host = this.hostname;
    const home = host
      ? config.domains
          .map((d) => d.name)
          .filter((d) => host === d || host.endsWith(`.${d}`))
          .sort((a, b) => b.length - a.length)[0]
      : undefined;
    this.postmaster = `postmaster@${home ?? config.domains[0]?.name ?? ""}`;
    this.srs = config.srs ? new Srs({ secrets: config.srs.secrets, maxAgeDays: config.srs.maxAgeDays }) : undefined;
  }

  isLocalDomain(domain: string): boolean {
    return this.domains.has(domain.toLowerCase());
  }

  route(given: string, ctx: RouteContext = {}): Route {
    // RFC 5321 4.5.1: `RCPT TO:<postmaster>` without a domain must be accepted, and so must
    // postmaster at the host's own name; both reach the postmaster of the host's domain.
    if (given.toLowerCase() === "postmaster" || (this.hostname && given.toLowerCase() === `postmaster@${this.hostname}`)) {
      return this.route(this.postmaster, ctx);
    }
    const address = canonicalAddress(given);
    const at = address.lastIndexOf("@");
    if (at <= 0 || at === address.length - 1) return { kind: "bad-address" };
    // RFC 5321 2.4: local parts may be case-sensitive, but no mailbox here differs only by case,
    // and treating them case-insensitively is what users expect.
    const local = address.slice(0, at).toLowerCase();
    const domain = address
      .slice(at + 1)
      .toLowerCase()
      .replace(/\.$/, "");
    if (!this.domains.has(domain)) {
      return ctx.authenticatedUser ? { kind: "accept", mailboxes: [], remote: [address] } : { kind: "relay-denied" };
    }
    // Before the alias lookup: a catch-all must not take a forged SRS address.
    if (this.srs && isSrsLocalPart(local)) return this.routeSrs(address.slice(0, at), ctx);
    const target = this.lookup(local, domain);
    if (target === undefined) return { kind: "unknown-user" };
    const out = { mailboxes: new Map<string, Mailbox>(), remote: new Set<string>() };
    this.expand(target, out, new Set(), 0);
    if (out.mailboxes.size === 0 && out.remote.size === 0) return { kind: "unknown-user" };
    return {
      kind: "accept",
      mailboxes: [...out.mailboxes.values()],
      remote: [...out.remote],
      ...(out.remote.size > 0 ? { forwardedBy: domain } : {}),
    };
  }

  /**
   * One of our SRS addresses (a bounce of mail an alias forwarded): checked (hash, age, srs.ts),
   * then on to the address it stands for. The local part keeps its case here: the hash is checked
   * without regard to case, but the original sender's local part is theirs (RFC 5321 2.4).
   */
  private routeSrs(local: string, ctx: RouteContext): Route {
    const back = this.srs!.reverse(local);
    if (!back.ok) return { kind: "bad-srs", reason: back.reason };
    const domain = back.address.slice(back.address.lastIndexOf("@") + 1).toLowerCase();
    if (this.domains.has(domain)) {
      // We never rewrite senders in our own domains; one level deep, whatever it says.
      const inner = isSrsLocalPart(back.address) ? ({ kind: "bad-srs", reason: "malformed" } as const) : this.route(back.address, ctx);
      return inner.kind === "accept" ? { ...inner, srs: true } : inner;
    }
    return { kind: "accept", mailboxes: [], remote: [back.address], srs: true };
  }

  /**
   * Whether an authenticated user may send as `address` (envelope sender or From:): exactly when
   * mail to that address reaches the user's mailbox, through the address itself, its `+tag`
   * form, an alias (also one shared with others) or the domain's catch-all.
   */
  mayUseSender(user: string, address: string): boolean {
    const route = this.route(address);
    return route.kind === "accept" && route.mailboxes.some((m) => mailboxKey(m) === user);
  }

  /**
   * The configured address a recipient resolves to, in Postfix's order: the exact address, then
   * the address without its extension (`user+tag` -> `user`), then the domain's catch-all.
   */
  private lookup(local: string, domain: string): string | undefined {
    const exact = `${local}@${domain}`;
    if (this.users.has(exact) || this.aliases.has(exact)) return exact;
    const cut = this.delimiterIndex(local);
    if (cut > 0) {
      const base = `${local.slice(0, cut)}@${domain}`;
      if (this.users.has(base) || this.aliases.has(base)) return base;
    }
    if (this.aliases.has(`@${domain}`)) return `@${domain}`;
    return undefined;
  }

  private delimiterIndex(local: string): number {
    let best = -1;
    for (const d of this.delimiters) {
      const i = local.indexOf(d);
      if (i > 0 && (best < 0 || i < best)) best = i;
    }
    return best;
  }

  private expand(address: string, out: { mailboxes: Map<string, Mailbox>; remote: Set<string> }, seen: Set<string>, depth: number): void {
    if (seen.has(address) || depth > MAX_ALIAS_DEPTH) return;
    seen.add(address);
    if (this.users.has(address)) {
      const at = address.lastIndexOf("@");
      out.mailboxes.set(address, { local: address.slice(0, at), domain: address.slice(at + 1) });
      return;
    }
    const to = this.aliases.get(address);
    if (to !== undefined) {
      for (const t of to) this.expand(t, out, seen, depth + 1);
      return;
    }
    const domain = address.slice(address.lastIndexOf("@") + 1);
    // Validation guarantees targets in our domains exist; anything else is another server's.
    if (!this.domains.has(domain)) out.remote.add(address);
  }
}

/**
 * The address with a quoted local part that needs no quotes written without them: RFC 5322 3.2.4
 * makes `"john"@example.org` the same address as `john@example.org` (the quotes are not part of
 * the local part), and RFC 5321 4.1.2 asks hosts to avoid the quoted form. A local part that does
 * need its quotes (`"john doe"`) keeps them and matches none of our mailboxes.
 */
export function canonicalAddress(address: string): string {
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  if (at <= 1 || !local.startsWith('"') || !local.endsWith('"')) return address;
  const content = local.slice(1, -1).replace(/\\(.)/g, "$1");
  return `${canonicalLocalPart(content)}${address.slice(at)}`;
}

export function mailboxKey(m: Mailbox): string {
  return `${m.local}@${m.domain}`;
}
