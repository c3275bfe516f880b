// maild's configuration file: one JSON document written by the Pulumi side (MailDaemon) and read
// at start and on SIGHUP. `validateMaildConfig` is pure: raw JSON in, a fully defaulted
// `MaildConfig` out, or a `ConfigError` listing every problem, each naming the key at fault.
// Hand-written rather than a schema library (measured for issue 14, bundled with esbuild, one small
// schema): zod 4.6 adds 455 KB minified, typebox 0.34 106 KB, valibot 1.5 6 KB; none words a
// refusal as these messages do (`"rejct" is not one of none|quarantine|reject`) without a custom
// message on every rule, and the rules that span keys (alias targets, acme names and tls paths,
// user domains) are code in any of them. The rules shared with the stack file live in
// components/shared/ (addresses, argon2id, IP[:port]); test/component/config-contract.test.ts
// holds the two validators to them.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { basename, dirname, isAbsolute } from "node:path";
import { certificateNameProblem } from "../../components/shared/acme/certificate-names";
import { CERT_FILE, KEY_FILE } from "../../components/shared/acme/keeper";
import { MAIL_PORTS } from "../../components/shared/mail-ports";
import { DEFAULT_SMTP_LIMITS, SMTP_LIMIT_KEYS, SMTP_LIMITS, type SmtpLimits } from "../../components/shared/smtp-limits";
import { formatIpPort, parseIpPort } from "../../components/shared/ip-port";
import { parseArgon2id } from "../../components/shared/argon2id";
import { DOT_ATOM, MAX_LOCAL_PART_OCTETS, mailboxLocalPartProblem } from "../../components/shared/mail-address";
import { operationsSection, type OperationsConfig, type OperationsConfigFile } from "./operations-config";
import { DEFAULT_SRS_MAX_AGE_DAYS } from "./srs";

export interface ListenEndpoint {
  /** an IPv4 or IPv6 literal; "::" listens on every address */
  host: string;
  port: number;
}

export interface DkimKeyConfig {
  /** e.g. `g1-rsa`, `g1-ed25519` */
  selector: string;
  algorithm: "rsa" | "ed25519";
  /** PEM private key on the box; read by the submission signer (DkimKeyring) */
  keyPath: string;
}

export interface DomainConfig {
  /** lowercase, no trailing dot */
  name: string;
  /** newest first: the first key of each algorithm signs */
  dkim: DkimKeyConfig[];
  /** RFC 8461 3.2 policy file text, served verbatim at https://mta-sts.<name>/.well-known/mta-sts.txt */
  mtaStsPolicy?: string;
}

export interface UserConfig {
  /** lowercase `local@domain`; the IMAP login and the Maildir owner */
  address: string;
  /** argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`) */
  passwordHash: string;
  /** this mailbox's quota in bytes, instead of storage.quotaBytes; 0: none */
  quotaBytes?: number;
}

export interface AliasConfig {
  /** lowercase `local@domain`, or `@domain` for the domain's catch-all */
  address: string;
  /** local users, other aliases, or external addresses */
  to: string[];
}

/** Per-client and per-message limits of the SMTP services (components/shared/smtp-limits.ts). */
export type LimitsConfig = SmtpLimits;

/**
 * On-box certificate renewal (components/shared/acme/keeper.ts): HTTP-01 on maild's own port 80, with the
 * same ACME account the Pulumi side uses (CAA accounturi pins it, RFC 8657).
 */
export interface AcmeConfig {
  /** https URL of the ACME directory */
  directoryUrl: string;
  /** PEM account key on the box (a secret: 0600, owned by maild) */
  accountKeyPath: string;
  /** account contact, `mailto:` added by the client */
  email?: string;
  /** names the certificate must carry; includes `hostname` */
  names: string[];
  /** renew when this fraction of the lifetime or less remains; default 1/3 */
  renewBeforeFraction?: number;
  /** PEM of an extra CA to trust for the directory (test CAs such as pebble) */
  extraCaPath?: string;
  /** how often to check whether renewal is due */
  checkIntervalSeconds: number;
}

/** 12 h: two checks a day notice a due certificate (or a CA's ARI window) well before expiry. */
export const DEFAULT_ACME_CHECK_INTERVAL_SECONDS = 43_200;

/** Sending to other servers (outbound/): the queue's schedule and the transport's policies. */
export interface OutboundConfig {
  /** try IPv6 addresses of an MX (before IPv4) */
  ipv6: boolean;
  /** try IPv4 addresses of an MX */
  ipv4: boolean;
  /** local addresses to send from (the ones with PTR records); absent: the OS chooses */
  sourceIpv4?: string;
  sourceIpv6?: string;
  /** concurrent SMTP connections to one recipient domain */
  maxConnectionsPerDomain: number;
  /** concurrent outbound SMTP connections in total */
  maxConnections: number;
  /**
   * A connection whose transaction ended stays open this long for the next message to the same
   * domain, MX host and TLS policy (Postfix's smtp_connection_cache_time_limit); 0: none stays
   */
  idleConnectionSeconds: number;
  /** transactions one connection carries at most (Postfix's smtp_connection_reuse_count_limit) */
  maxMessagesPerConnection: number;
  /** no transaction begins on a connection older than this (Postfix's smtp_connection_reuse_time_limit) */
  maxConnectionAgeSeconds: number;
  /** first retry after this many seconds; each later one waits twice as long, up to retryMaxSeconds */
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** a delay notice (DSN action=delayed) goes to the sender once a message is this old; 0: never */
  delayNoticeAfterSeconds: number;
  /** undelivered recipients of a message this old bounce (DSN action=failed) */
  expireAfterSeconds: number;
  /** RFC 8461: fetch, cache and apply recipient domains' MTA-STS policies */
  mtaSts: boolean;
  /** RFC 7672: use TLSA records when the resolver says they are DNSSEC-validated (AD bit) */
  dane: boolean;
  /** PEM of an extra CA trusted for MTA-STS policy fetches and verified STARTTLS (test CAs) */
  extraCaPath?: string;
  /** TCP port of remote MX hosts (25; other values only for tests) */
  port: number;
  /** connect, greeting and per-command timeout */
  timeoutMs: number;
}

/** Submission (RFC 6409 on 587 with STARTTLS, RFC 8314 on 465): authentication and its throttling. */
export interface SubmissionConfig {
  /** failed logins one client address may make in `failureWindowSeconds` before it is blocked */
  maxFailuresPerIp: number;
  /** failed logins for one account (from addresses not known good) before that account is throttled */
  maxFailuresPerAccount: number;
  failureWindowSeconds: number;
  /** first lockout; each further one doubles, up to lockoutMaxSeconds, so a lockout always ends */
  lockoutSeconds: number;
  lockoutMaxSeconds: number;
  /**
   * A client address that has logged in to an account before is never blocked from it; once it
   * has used up `maxFailuresPerIp` failures in the window, its attempts on that account are spaced
   * this many seconds apart (login-throttle.ts).
   */
  knownClientDelaySeconds: number;
}

/** Mail on disk: mailbox quotas (mailbox-quota.ts) and the free space kept back (disk-reserve.ts). */
export interface StorageConfig {
  /** a mailbox's quota in bytes unless its user sets one (users[].quotaBytes); 0: none */
  quotaBytes: number;
  /** below this much free space on the data volume (plus the message), mail is refused with 452 4.3.1 */
  reserveBytes: number;
}

/** SRS (srs.ts) for mail an alias forwards to another server. */
export interface SrsConfig {
  /** the first signs, all verify: add a new secret in front, drop the old one after maxAgeDays */
  secrets: string[];
  /** how long a bounce may take to come back */
  maxAgeDays: number;
}

/** Dovecot's auth policy server protocol, served by maild on loopback (auth-policy-server.ts). */
export interface AuthPolicyConfig {
  listen: ListenEndpoint;
  /** the value Dovecot sends in X-API-Key (auth_policy_server_api_header); a secret */
  apiKey: string;
}

/**
 * The spam filter: every message, received or submitted, is scanned by rspamd before it is
 * acknowledged. There is no switch to turn it off: rspamd is also what verifies SPF, DKIM, DMARC
 * and ARC of incoming mail.
 */
export interface SpamConfig {
  /** rspamd's normal worker (its /checkv2 endpoint), http on loopback */
  rspamdUrl: string;
  /** a scan with no answer after this long is answered 451 4.7.1: the client tries again later */
  scanTimeoutMs: number;
}

export const DEFAULT_SPAM: SpamConfig = {
  rspamdUrl: "http://127.0.0.1:11333",
  // rspamd gives up on a scan after its own task_timeout (8 s, options.inc); this is its answer's deadline
  scanTimeoutMs: 20_000,
};

export const DEFAULT_OUTBOUND: OutboundConfig = {
  ipv6: true,
  ipv4: true,
  maxConnectionsPerDomain: 5,
  maxConnections: 100,
  // Postfix's defaults for the first and the last (postconf(5)); it sets no count limit by default
  idleConnectionSeconds: 2,
  maxMessagesPerConnection: 100,
  maxConnectionAgeSeconds: 300,
  retryBaseSeconds: 300,
  retryMaxSeconds: 4 * 3600,
  delayNoticeAfterSeconds: 4 * 3600,
  expireAfterSeconds: 5 * 86_400,
  mtaSts: true,
  dane: true,
  port: MAIL_PORTS.smtp.port,
  timeoutMs: 60_000,
};

export const DEFAULT_SUBMISSION: SubmissionConfig = {
  maxFailuresPerIp: 10,
  maxFailuresPerAccount: 20,
  failureWindowSeconds: 900,
  lockoutSeconds: 300,
  lockoutMaxSeconds: 3600,
  knownClientDelaySeconds: 10,
};

export const DEFAULT_STORAGE: StorageConfig = {
  // A small server's volume holds a few mailboxes of a few GiB each.
  quotaBytes: 5 * 1024 ** 3,
  // Postfix refuses mail below 1.5 x message_size_limit free (queue_minfree); this keeps room for
  // the queue's own state and the notices the server writes itself.
  reserveBytes: 256 * 1024 ** 2,
};

export interface MaildConfig {
  /** the mail host's FQDN: SMTP banner, Received and Authentication-Results authserv-id */
  hostname: string;
  domains: DomainConfig[];
  users: UserConfig[];
  aliases: AliasConfig[];
  /** each character separates a local part from its extension (`user+tag`); "" disables */
  recipientDelimiter: string;
  tls: { certPath: string; keyPath: string };
  /** absolute; mail lives in `<dataDir>/mail/<domain>/<local>/Maildir` */
  dataDir: string;
  /**
   * smtp: port 25, receiving. submission: 587, STARTTLS then AUTH (RFC 6409). submissions: 465,
   * implicit TLS (RFC 8314). http/https: MTA-STS, autoconfig, ACME HTTP-01, metrics.
   */
  listen: {
    smtp: ListenEndpoint[];
    submission: ListenEndpoint[];
    submissions: ListenEndpoint[];
    http: ListenEndpoint[];
    https: ListenEndpoint[];
  };
  /** DNS servers (IP literals, optional `:port`) for SPF/DKIM/DMARC; absent: the system's resolv.conf */
  dnsServers?: string[];
  limits: LimitsConfig;
  /** on SIGTERM, how long open SMTP sessions may take to finish before they are cut */
  shutdownTimeoutMs: number;
  /** absent: the certificate is renewed only by deploys */
  acme?: AcmeConfig;
  outbound: OutboundConfig;
  /** login throttling for SMTP AUTH (submission) and, through authPolicy, IMAP */
  submission: SubmissionConfig;
  /** absent: no monitoring, alerts, digest, report handling or status page (operations-config.ts) */
  operations?: OperationsConfig;
  spam: SpamConfig;
  storage: StorageConfig;
  /** absent: forwarded mail keeps its original reverse-path */
  srs?: SrsConfig;
  /** absent: Dovecot checks passwords without consulting maild's login throttle */
  authPolicy?: AuthPolicyConfig;
}

/**
 * The configuration file as written: what the deployment writes (server-bootstrap/install/
 * deploy-files.ts) and `validateMaildConfig` reads. It is MaildConfig with every key that has a
 * default optional; a validated MaildConfig is itself a valid file.
 */
export type MaildConfigFile = {
  hostname: string;
  domains: { name: string; dkim?: DkimKeyConfig[]; mtaStsPolicy?: string }[];
  users?: UserConfig[];
  aliases?: AliasConfig[];
  recipientDelimiter?: string;
  tls: { certPath: string; keyPath: string };
  dataDir: string;
  listen?: Partial<MaildConfig["listen"]>;
  dnsServers?: string[];
  limits?: Partial<LimitsConfig>;
  shutdownTimeoutMs?: number;
  acme?: Omit<AcmeConfig, "checkIntervalSeconds"> & { checkIntervalSeconds?: number };
  outbound?: Partial<OutboundConfig>;
  submission?: Partial<SubmissionConfig>;
  operations?: OperationsConfigFile;
  spam?: Partial<SpamConfig>;
  storage?: Partial<StorageConfig>;
  srs?: { secrets: string[]; maxAgeDays?: number };
  authPolicy?: AuthPolicyConfig;
};

export const DEFAULT_LIMITS: LimitsConfig = DEFAULT_SMTP_LIMITS;

export const DEFAULT_LISTEN = {
  smtp: [{ host: "::", port: MAIL_PORTS.smtp.port }],
  submission: [{ host: "::", port: MAIL_PORTS.submission.port }],
  submissions: [{ host: "::", port: MAIL_PORTS.submissions.port }],
  http: [{ host: "::", port: MAIL_PORTS.http.port }],
  https: [{ host: "::", port: MAIL_PORTS.https.port }],
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

// RFC 1035 2.3.1 labels (LDH), at least two labels, no trailing dot.
const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SELECTOR_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

type Json = unknown;

/** Accumulates problems with the path of the key at fault, `domains[1].name: ...`. */
class Problems {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

function show(v: Json): string {
  return v === undefined ? "missing" : JSON.stringify(v);
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(p: Problems, path: string, obj: Record<string, Json>, allowed: string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      p.add(path ? `${path}.${key}` : key, `unknown key; allowed keys are ${allowed.join(", ")}`);
    }
  }
}

function str(p: Problems, path: string, v: Json): string | undefined {
  if (typeof v !== "string" || v.length === 0) {
    p.add(path, `${show(v)} is not a non-empty string`);
    return undefined;
  }
  return v;
}

function absPath(p: Problems, path: string, v: Json): string | undefined {
  const s = str(p, path, v);
  if (s !== undefined && !isAbsolute(s)) {
    p.add(path, `${show(s)} is not an absolute path`);
    return undefined;
  }
  return s;
}

function domainName(p: Problems, path: string, v: Json): string | undefined {
  const s = str(p, path, v);
  if (s === undefined) return undefined;
  if (!DOMAIN_RE.test(s)) {
    p.add(path, `${show(s)} is not a lowercase domain name without trailing dot (e.g. mail.example.org)`);
    return undefined;
  }
  return s;
}

function intIn(p: Problems, path: string, v: Json, min: number, max: number): number | undefined {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    p.add(path, `${show(v)} is not an integer from ${min} to ${max}`);
    return undefined;
  }
  return v;
}

function array(p: Problems, path: string, v: Json): Json[] {
  if (!Array.isArray(v)) {
    p.add(path, `${show(v)} is not a list`);
    return [];
  }
  return v;
}

export interface ParsedAddress {
  local: string;
  domain: string;
}

/**
 * Splits `local@domain` (dot-atom local part, components/shared/mail-address.ts; lowercase LDH
 * domain); undefined if malformed. The local part keeps its case: another server's may matter
 * (RFC 5321 2.4); ours are held to lowercase where they are checked.
 */
export function parseAddress(address: string): ParsedAddress | undefined {
  const at = address.lastIndexOf("@");
  if (at <= 0) return undefined;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (Buffer.byteLength(local) > MAX_LOCAL_PART_OCTETS || !DOT_ATOM.test(local) || !DOMAIN_RE.test(domain)) return undefined;
  return { local, domain };
}

function endpoints(p: Problems, path: string, v: Json): ListenEndpoint[] {
  const out: ListenEndpoint[] = [];
  array(p, path, v).forEach((e, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(e)) {
      p.add(at, `${show(e)} is not an object {host, port}`);
      return;
    }
    checkKeys(p, at, e, ["host", "port"]);
    const host = str(p, `${at}.host`, e.host);
    if (host !== undefined && isIP(host) === 0) p.add(`${at}.host`, `${show(host)} is not an IPv4 or IPv6 address`);
    const port = intIn(p, `${at}.port`, e.port, 0, 65535);
    if (host !== undefined && isIP(host) !== 0 && port !== undefined) out.push({ host, port });
  });
  return out;
}

function dnsServer(p: Problems, path: string, v: Json): string | undefined {
  const s = str(p, path, v);
  if (s === undefined) return undefined;
  const parsed = parseIpPort(s);
  if (!parsed) {
    p.add(path, `${show(s)} is not an IP address, IPv4:port or [IPv6]:port`);
    return undefined;
  }
  return formatIpPort(parsed);
}

/** Validates raw (parsed JSON) configuration; throws ConfigError listing every problem. */
export function validateMaildConfig(raw: Json): MaildConfig {
  const p = new Problems();
  if (!isObject(raw)) throw new ConfigError([`(top level): ${show(raw)} is not a JSON object`]);
  checkKeys(p, "", raw, [
    "hostname",
    "domains",
    "users",
    "aliases",
    "recipientDelimiter",
    "tls",
    "dataDir",
    "listen",
    "dnsServers",
    "limits",
    "shutdownTimeoutMs",
    "acme",
    "outbound",
    "submission",
    "operations",
    "spam",
    "storage",
    "srs",
    "authPolicy",
  ]);

  const hostname = domainName(p, "hostname", raw.hostname) ?? "";
  const dataDir = absPath(p, "dataDir", raw.dataDir) ?? "";

  let tls = { certPath: "", keyPath: "" };
  if (!isObject(raw.tls)) p.add("tls", `${show(raw.tls)} is not an object {certPath, keyPath}`);
  else {
    checkKeys(p, "tls", raw.tls, ["certPath", "keyPath"]);
    tls = {
      certPath: absPath(p, "tls.certPath", raw.tls.certPath) ?? "",
      keyPath: absPath(p, "tls.keyPath", raw.tls.keyPath) ?? "",
    };
  }

  // domains
  const domains: DomainConfig[] = [];
  const domainNames = new Set<string>();
  // Names as written, valid or not: cross-checks use these so one bad entry is reported once,
  // not again by every entry that refers to it.
  const declaredDomains = new Set<string>();
  const declaredUsers = new Set<string>();
  const rawDomains = array(p, "domains", raw.domains);
  if (Array.isArray(raw.domains) && rawDomains.length === 0) p.add("domains", "[] must list at least one domain");
  rawDomains.forEach((d, i) => {
    const at = `domains[${i}]`;
    if (!isObject(d)) {
      p.add(at, `${show(d)} is not an object {name, dkim, mtaStsPolicy}`);
      return;
    }
    checkKeys(p, at, d, ["name", "dkim", "mtaStsPolicy"]);
    if (typeof d.name === "string") declaredDomains.add(d.name.toLowerCase().replace(/\.$/, ""));
    const name = domainName(p, `${at}.name`, d.name);
    if (name !== undefined) {
      if (domainNames.has(name)) p.add(`${at}.name`, `${show(name)} is listed twice`);
      domainNames.add(name);
    }
    const dkim: DkimKeyConfig[] = [];
    const selectors = new Set<string>();
    array(p, `${at}.dkim`, d.dkim ?? []).forEach((k, j) => {
      const kat = `${at}.dkim[${j}]`;
      if (!isObject(k)) {
        p.add(kat, `${show(k)} is not an object {selector, algorithm, keyPath}`);
        return;
      }
      checkKeys(p, kat, k, ["selector", "algorithm", "keyPath"]);
      const selector = str(p, `${kat}.selector`, k.selector);
      if (selector !== undefined && !SELECTOR_RE.test(selector)) {
        p.add(`${kat}.selector`, `${show(selector)} is not a DKIM selector (lowercase letters, digits, "-" and ".")`);
      } else if (selector !== undefined && selectors.has(selector)) {
        p.add(`${kat}.selector`, `${show(selector)} is listed twice`);
      }
      if (selector !== undefined) selectors.add(selector);
      if (k.algorithm !== "rsa" && k.algorithm !== "ed25519") {
        p.add(`${kat}.algorithm`, `${show(k.algorithm)} is not one of rsa|ed25519`);
      }
      const keyPath = absPath(p, `${kat}.keyPath`, k.keyPath);
      if (selector && keyPath && (k.algorithm === "rsa" || k.algorithm === "ed25519")) {
        dkim.push({ selector, algorithm: k.algorithm, keyPath });
      }
    });
    let mtaStsPolicy: string | undefined;
    if (d.mtaStsPolicy !== undefined) {
      mtaStsPolicy = str(p, `${at}.mtaStsPolicy`, d.mtaStsPolicy);
      // RFC 8461 3.2: the policy file starts with its version field.
      if (mtaStsPolicy !== undefined && !mtaStsPolicy.startsWith("version: STSv1")) {
        p.add(`${at}.mtaStsPolicy`, `must start with "version: STSv1" (RFC 8461 3.2)`);
      }
    }
    if (name !== undefined) domains.push({ name, dkim, ...(mtaStsPolicy !== undefined ? { mtaStsPolicy } : {}) });
  });

  // users
  const users: UserConfig[] = [];
  const userAddresses = new Set<string>();
  array(p, "users", raw.users ?? []).forEach((u, i) => {
    const at = `users[${i}]`;
    if (!isObject(u)) {
      p.add(at, `${show(u)} is not an object {address, passwordHash}`);
      return;
    }
    checkKeys(p, at, u, ["address", "passwordHash", "quotaBytes"]);
    if (typeof u.address === "string") declaredUsers.add(u.address.toLowerCase());
    const address = str(p, `${at}.address`, u.address);
    let ok = address !== undefined;
    if (address !== undefined) {
      const parsed = parseAddress(address);
      if (!parsed || mailboxLocalPartProblem(parsed.local) !== undefined) {
        p.add(`${at}.address`, `${show(address)} is not a lowercase address local@domain whose local part uses only a-z 0-9 . _ -`);
        ok = false;
      } else if (declaredDomains.size > 0 && !declaredDomains.has(parsed.domain)) {
        p.add(`${at}.address`, `domain ${show(parsed.domain)} is not one of the configured domains (${[...declaredDomains].join(", ")})`);
        ok = false;
      } else if (userAddresses.has(address)) {
        p.add(`${at}.address`, `${show(address)} is listed twice`);
        ok = false;
      }
    }
    const hash = u.passwordHash;
    if (typeof hash !== "string" || parseArgon2id(hash)?.version !== 19) {
      // Never echo the value: it is a secret.
      p.add(`${at}.passwordHash`, "is not an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)");
      ok = false;
    }
    const quotaBytes = u.quotaBytes === undefined ? undefined : intIn(p, `${at}.quotaBytes`, u.quotaBytes, 0, MAX_QUOTA_BYTES);
    if (u.quotaBytes !== undefined && quotaBytes === undefined) ok = false;
    if (ok && address !== undefined) {
      userAddresses.add(address);
      users.push({ address, passwordHash: hash as string, ...(quotaBytes !== undefined ? { quotaBytes } : {}) });
    }
  });

  // recipient delimiter (needed before aliases: a user local part must not contain it)
  let recipientDelimiter = "+";
  if (raw.recipientDelimiter !== undefined) {
    const d = raw.recipientDelimiter;
    if (typeof d !== "string" || d.length > 4 || !/^[+\-_.=]*$/.test(d)) {
      p.add("recipientDelimiter", `${show(d)} is not a string of up to 4 of the characters + - _ . =`);
    } else recipientDelimiter = d;
  }
  for (const [i, u] of users.entries()) {
    const local = u.address.slice(0, u.address.lastIndexOf("@"));
    const clash = [...recipientDelimiter].find((c) => local.includes(c));
    if (clash) p.add(`users[${i}].address`, `${show(u.address)} contains the recipient delimiter ${show(clash)}`);
  }

  // aliases
  const aliases: AliasConfig[] = [];
  const aliasAddresses = new Set<string>();
  const rawAliases = array(p, "aliases", raw.aliases ?? []);
  rawAliases.forEach((a, i) => {
    const at = `aliases[${i}]`;
    if (!isObject(a)) {
      p.add(at, `${show(a)} is not an object {address, to}`);
      return;
    }
    checkKeys(p, at, a, ["address", "to"]);
    const address = str(p, `${at}.address`, a.address);
    let ok = address !== undefined;
    if (address !== undefined) {
      const domain = address.startsWith("@") ? address.slice(1) : parseAddress(address)?.domain;
      if (domain === undefined || !DOMAIN_RE.test(domain) || address !== address.toLowerCase()) {
        p.add(`${at}.address`, `${show(address)} is not a lowercase address local@domain or a catch-all @domain`);
        ok = false;
      } else if (declaredDomains.size > 0 && !declaredDomains.has(domain)) {
        p.add(`${at}.address`, `domain ${show(domain)} is not one of the configured domains (${[...declaredDomains].join(", ")})`);
        ok = false;
      } else if (userAddresses.has(address)) {
        p.add(`${at}.address`, `${show(address)} is also a user; an address is either a user or an alias`);
        ok = false;
      } else if (aliasAddresses.has(address)) {
        p.add(`${at}.address`, `${show(address)} is listed twice`);
        ok = false;
      }
    }
    const to: string[] = [];
    const rawTo = array(p, `${at}.to`, a.to);
    if (Array.isArray(a.to) && rawTo.length === 0) p.add(`${at}.to`, "[] must name at least one target address");
    rawTo.forEach((t, j) => {
      const tat = `${at}.to[${j}]`;
      const target = str(p, tat, t);
      if (target === undefined) return;
      if (!parseAddress(target))
        p.add(tat, `${show(target)} is not an address local@domain (RFC 5322 dot-atom local part, lowercase domain)`);
      else to.push(target);
    });
    if (ok && address !== undefined) {
      aliasAddresses.add(address);
      aliases.push({ address, to });
    }
  });
  // An alias target inside our own domains must be something that accepts mail, or mail to the
  // alias would be accepted and then have nowhere to go.
  aliases.forEach((a, i) => {
    a.to.forEach((t, j) => {
      const domain = t.slice(t.lastIndexOf("@") + 1);
      if (declaredDomains.has(domain) && !declaredUsers.has(t) && !aliasAddresses.has(t)) {
        p.add(`aliases[${i}].to[${j}]`, `${show(t)} is in a configured domain but is neither a user nor an alias`);
      }
    });
  });

  // listen
  const listen: MaildConfig["listen"] = { ...DEFAULT_LISTEN };
  if (raw.listen !== undefined) {
    if (!isObject(raw.listen)) p.add("listen", `${show(raw.listen)} is not an object {smtp, submission, submissions, http, https}`);
    else {
      const rawListen = raw.listen;
      const kinds = Object.keys(DEFAULT_LISTEN) as (keyof typeof DEFAULT_LISTEN)[];
      checkKeys(p, "listen", rawListen, kinds);
      for (const kind of kinds) {
        if (rawListen[kind] !== undefined) listen[kind] = endpoints(p, `listen.${kind}`, rawListen[kind]);
      }
    }
  }

  let dnsServers: string[] | undefined;
  if (raw.dnsServers !== undefined) {
    const list = array(p, "dnsServers", raw.dnsServers);
    if (Array.isArray(raw.dnsServers) && list.length === 0) p.add("dnsServers", "[] must list a server or be left out (system resolver)");
    dnsServers = list.map((s, i) => dnsServer(p, `dnsServers[${i}]`, s)).filter((s): s is string => s !== undefined);
  }

  const limits: LimitsConfig = { ...DEFAULT_LIMITS };
  if (raw.limits !== undefined) {
    if (!isObject(raw.limits)) p.add("limits", `${show(raw.limits)} is not an object`);
    else {
      const rawLimits = raw.limits;
      checkKeys(p, "limits", rawLimits, Object.keys(DEFAULT_LIMITS));
      for (const key of SMTP_LIMIT_KEYS) {
        if (rawLimits[key] === undefined) continue;
        const v = intIn(p, `limits.${key}`, rawLimits[key], SMTP_LIMITS[key].min, SMTP_LIMITS[key].max);
        if (v !== undefined) limits[key] = v;
      }
    }
  }

  let shutdownTimeoutMs = 30000;
  if (raw.shutdownTimeoutMs !== undefined) {
    shutdownTimeoutMs = intIn(p, "shutdownTimeoutMs", raw.shutdownTimeoutMs, 0, 600000) ?? shutdownTimeoutMs;
  }

  const acme = raw.acme === undefined ? undefined : acmeSection(p, raw.acme, hostname, tls);

  const outbound = outboundSection(p, raw.outbound);
  const submission = numberSection(p, "submission", raw.submission, DEFAULT_SUBMISSION, {
    maxFailuresPerIp: [1, 100000],
    maxFailuresPerAccount: [1, 100000],
    failureWindowSeconds: [1, 86_400],
    lockoutSeconds: [1, 86_400],
    lockoutMaxSeconds: [1, 7 * 86_400],
    knownClientDelaySeconds: [1, 3600],
  });
  if (submission.lockoutMaxSeconds < submission.lockoutSeconds) {
    p.add(
      "submission.lockoutMaxSeconds",
      `${submission.lockoutMaxSeconds} is less than submission.lockoutSeconds (${submission.lockoutSeconds})`,
    );
  }

  const operations =
    raw.operations === undefined
      ? undefined
      : operationsSection((path, message) => p.add(path, message), raw.operations, {
          users: users.map((u) => u.address),
          domains: domains.map((d) => d.name),
        });
  const spam = spamSection(p, raw.spam);
  const storage = numberSection(p, "storage", raw.storage, DEFAULT_STORAGE, {
    quotaBytes: [0, MAX_QUOTA_BYTES],
    reserveBytes: [0, MAX_QUOTA_BYTES],
  });
  const srs = raw.srs === undefined ? undefined : srsSection(p, raw.srs);
  const authPolicy = raw.authPolicy === undefined ? undefined : authPolicySection(p, raw.authPolicy);

  if (p.list.length > 0) throw new ConfigError(p.list);
  return {
    hostname,
    domains,
    users,
    aliases,
    recipientDelimiter,
    tls,
    dataDir,
    listen,
    ...(dnsServers !== undefined ? { dnsServers } : {}),
    limits,
    shutdownTimeoutMs,
    ...(acme !== undefined ? { acme } : {}),
    outbound,
    submission,
    ...(operations !== undefined ? { operations } : {}),
    spam,
    storage,
    ...(srs !== undefined ? { srs } : {}),
    ...(authPolicy !== undefined ? { authPolicy } : {}),
  };
}

function spamSection(p: Problems, v: Json): SpamConfig {
  const out = numberSection(p, "spam", v, DEFAULT_SPAM, { scanTimeoutMs: [100, 600_000] }, ["rspamdUrl"]);
  if (!isObject(v) || v.rspamdUrl === undefined) return out;
  const url = str(p, "spam.rspamdUrl", v.rspamdUrl);
  if (url === undefined) return out;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // rspamd's normal worker speaks plain HTTP and must not be reachable from outside the box.
  const host = parsed?.hostname.replace(/^\[|\]$/g, "");
  if (
    parsed?.protocol !== "http:" ||
    parsed.pathname !== "/" ||
    parsed.search ||
    !host ||
    !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)
  ) {
    p.add("spam.rspamdUrl", `${show(url)} is not an http URL of a loopback address with no path, e.g. http://127.0.0.1:11333`);
  } else out.rspamdUrl = url;
  return out;
}

/** 2^53 - 1 bytes: JSON numbers stay exact integers up to here. */
const MAX_QUOTA_BYTES = Number.MAX_SAFE_INTEGER;
/** HMAC keys: at least 128 bits of a random string (Pulumi generates 32 bytes, hex). */
const MIN_SECRET_CHARS = 16;

function secret(p: Problems, path: string, v: Json): string | undefined {
  // Never echo the value: it is a secret.
  if (typeof v === "string" && v.length >= MIN_SECRET_CHARS && !/\s/.test(v)) return v;
  p.add(path, `is not a string of at least ${MIN_SECRET_CHARS} characters without white space`);
  return undefined;
}

function secretList(p: Problems, path: string, v: Json): string[] {
  const list = array(p, path, v);
  if (Array.isArray(v) && list.length === 0) p.add(path, "[] must list at least one secret");
  return list.map((s, i) => secret(p, `${path}[${i}]`, s)).filter((s): s is string => s !== undefined);
}

function srsSection(p: Problems, v: Json): SrsConfig | undefined {
  if (!isObject(v)) {
    p.add("srs", `${show(v)} is not an object {secrets, maxAgeDays}`);
    return undefined;
  }
  checkKeys(p, "srs", v, ["secrets", "maxAgeDays"]);
  const before = p.list.length;
  const secrets = secretList(p, "srs.secrets", v.secrets);
  // RFC 5321 4.5.4.1: a sender gives up after 4-5 days; SRS addresses must outlive the bounce.
  const maxAgeDays = v.maxAgeDays === undefined ? DEFAULT_SRS_MAX_AGE_DAYS : intIn(p, "srs.maxAgeDays", v.maxAgeDays, 1, 1000);
  if (p.list.length > before || maxAgeDays === undefined) return undefined;
  return { secrets, maxAgeDays };
}

function authPolicySection(p: Problems, v: Json): AuthPolicyConfig | undefined {
  if (!isObject(v)) {
    p.add("authPolicy", `${show(v)} is not an object {listen, apiKey}`);
    return undefined;
  }
  checkKeys(p, "authPolicy", v, ["listen", "apiKey"]);
  const before = p.list.length;
  let listen: ListenEndpoint | undefined;
  if (!isObject(v.listen)) p.add("authPolicy.listen", `${show(v.listen)} is not an object {host, port}`);
  else {
    checkKeys(p, "authPolicy.listen", v.listen, ["host", "port"]);
    const host = str(p, "authPolicy.listen.host", v.listen.host);
    const port = intIn(p, "authPolicy.listen.port", v.listen.port, 0, 65535);
    if (host !== undefined && port !== undefined) listen = { host, port };
  }
  if (listen !== undefined && !isLoopback(listen.host)) {
    p.add("authPolicy.listen.host", `${show(listen.host)} is not a loopback address (127.0.0.0/8 or ::1): only the local Dovecot may ask`);
  }
  const apiKey = secret(p, "authPolicy.apiKey", v.apiKey);
  if (p.list.length > before || listen === undefined || apiKey === undefined) return undefined;
  return { listen, apiKey };
}

function isLoopback(host: string): boolean {
  return host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
}

/** A section of integers with defaults and a range per key. */
function numberSection<T extends object>(
  p: Problems,
  name: string,
  v: Json,
  defaults: T,
  ranges: Partial<Record<keyof T, [number, number]>>,
  otherKeys: string[] = [],
): T {
  const out = { ...defaults };
  if (v === undefined) return out;
  if (!isObject(v)) {
    p.add(name, `${show(v)} is not an object`);
    return out;
  }
  checkKeys(p, name, v, [...Object.keys(ranges), ...otherKeys]);
  for (const key of Object.keys(ranges) as (keyof T & string)[]) {
    if (v[key] === undefined) continue;
    const [min, max] = ranges[key]!;
    const n = intIn(p, `${name}.${key}`, v[key], min, max);
    if (n !== undefined) (out as Record<string, unknown>)[key] = n;
  }
  return out;
}

function outboundSection(p: Problems, v: Json): OutboundConfig {
  const out = numberSection(
    p,
    "outbound",
    v,
    DEFAULT_OUTBOUND,
    {
      maxConnectionsPerDomain: [1, 1000],
      maxConnections: [1, 10000],
      idleConnectionSeconds: [0, 300],
      maxMessagesPerConnection: [1, 100_000],
      maxConnectionAgeSeconds: [1, 86_400],
      retryBaseSeconds: [1, 86_400],
      retryMaxSeconds: [1, 7 * 86_400],
      delayNoticeAfterSeconds: [0, 30 * 86_400],
      expireAfterSeconds: [60, 30 * 86_400],
      port: [1, 65535],
      timeoutMs: [100, 600_000],
    },
    ["ipv6", "ipv4", "sourceIpv4", "sourceIpv6", "mtaSts", "dane", "extraCaPath"],
  );
  if (!isObject(v)) return out;
  for (const key of ["ipv6", "ipv4", "mtaSts", "dane"] as const) {
    if (v[key] === undefined) continue;
    if (typeof v[key] !== "boolean") p.add(`outbound.${key}`, `${show(v[key])} is not true or false`);
    else out[key] = v[key];
  }
  if (!out.ipv4 && !out.ipv6) p.add("outbound.ipv4", "false together with outbound.ipv6 false leaves no way to send");
  for (const [key, family] of [
    ["sourceIpv4", 4],
    ["sourceIpv6", 6],
  ] as const) {
    if (v[key] === undefined) continue;
    const ip = str(p, `outbound.${key}`, v[key]);
    if (ip !== undefined && isIP(ip) !== family) p.add(`outbound.${key}`, `${show(ip)} is not an IPv${family} address`);
    else if (ip !== undefined) out[key] = ip;
  }
  if (v.extraCaPath !== undefined) {
    const path = absPath(p, "outbound.extraCaPath", v.extraCaPath);
    if (path !== undefined) out.extraCaPath = path;
  }
  if (out.retryMaxSeconds < out.retryBaseSeconds) {
    p.add("outbound.retryMaxSeconds", `${out.retryMaxSeconds} is less than outbound.retryBaseSeconds (${out.retryBaseSeconds})`);
  }
  if (out.delayNoticeAfterSeconds >= out.expireAfterSeconds) {
    p.add(
      "outbound.delayNoticeAfterSeconds",
      `${out.delayNoticeAfterSeconds} is not less than outbound.expireAfterSeconds (${out.expireAfterSeconds}); the delay notice would never be sent`,
    );
  }
  return out;
}

const ACME_KEYS = ["directoryUrl", "accountKeyPath", "email", "names", "renewBeforeFraction", "extraCaPath", "checkIntervalSeconds"];

function acmeSection(p: Problems, v: Json, hostname: string, tls: { certPath: string; keyPath: string }): AcmeConfig | undefined {
  if (!isObject(v)) {
    p.add("acme", `${show(v)} is not an object {directoryUrl, accountKeyPath, names, ...}`);
    return undefined;
  }
  checkKeys(p, "acme", v, ACME_KEYS);
  const before = p.list.length;

  const directoryUrl = str(p, "acme.directoryUrl", v.directoryUrl);
  if (directoryUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(directoryUrl);
    } catch {
      url = undefined;
    }
    // RFC 8555 6.1: ACME runs over HTTPS only.
    if (url?.protocol !== "https:")
      p.add("acme.directoryUrl", `${show(directoryUrl)} is not an https URL (e.g. https://acme-v02.api.letsencrypt.org/directory)`);
  }
  const accountKeyPath = absPath(p, "acme.accountKeyPath", v.accountKeyPath);

  let email: string | undefined;
  if (v.email !== undefined) {
    email = str(p, "acme.email", v.email);
    if (email !== undefined && !/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(email)) {
      p.add("acme.email", `${show(email)} is not an email address`);
    }
  }

  const names: string[] = [];
  const rawNames = array(p, "acme.names", v.names);
  if (Array.isArray(v.names) && rawNames.length === 0) p.add("acme.names", "[] must list the names the certificate carries");
  rawNames.forEach((n, i) => {
    const at = `acme.names[${i}]`;
    const name = str(p, at, n);
    if (name === undefined) return;
    const problem = certificateNameProblem(name);
    if (problem) p.add(at, `${show(name)} ${problem}`);
    // RFC 8555 8.3 / 7.1.3: HTTP-01, the only challenge answered on the box, cannot prove a wildcard.
    else if (name.startsWith("*.")) p.add(at, `${show(name)} is a wildcard; the box renews over HTTP-01, which cannot validate wildcards`);
    else if (names.includes(name)) p.add(at, `${show(name)} is listed twice`);
    else names.push(name);
  });
  if (hostname && rawNames.length > 0 && !rawNames.includes(hostname)) {
    p.add("acme.names", `must include hostname ${show(hostname)}: SMTP STARTTLS serves this certificate under that name`);
  }

  let renewBeforeFraction: number | undefined;
  if (v.renewBeforeFraction !== undefined) {
    const f = v.renewBeforeFraction;
    if (typeof f !== "number" || !(f > 0 && f < 1)) {
      p.add("acme.renewBeforeFraction", `${show(f)} is not a number between 0 and 1 (exclusive), e.g. 0.333 for a third of the lifetime`);
    } else renewBeforeFraction = f;
  }
  const extraCaPath = v.extraCaPath === undefined ? undefined : absPath(p, "acme.extraCaPath", v.extraCaPath);
  let checkIntervalSeconds = DEFAULT_ACME_CHECK_INTERVAL_SECONDS;
  if (v.checkIntervalSeconds !== undefined) {
    checkIntervalSeconds = intIn(p, "acme.checkIntervalSeconds", v.checkIntervalSeconds, 1, 7 * 86_400) ?? checkIntervalSeconds;
  }

  // The keeper renews `cert.pem` and `key.pem` in one directory (components/shared/acme/keeper.ts):
  // maild must serve exactly those files, or a renewal would never reach a client.
  if (tls.certPath && tls.keyPath) {
    const dir = dirname(tls.certPath);
    if (basename(tls.certPath) !== CERT_FILE) {
      p.add("tls.certPath", `${show(tls.certPath)} must be named ${CERT_FILE} when acme is set (the on-box renewal writes that file)`);
    } else if (tls.keyPath !== `${dir}/${KEY_FILE}`) {
      p.add(
        "tls.keyPath",
        `${show(tls.keyPath)} must be ${show(`${dir}/${KEY_FILE}`)} when acme is set (beside tls.certPath, where the on-box renewal reads it)`,
      );
    }
  }

  if (p.list.length > before || directoryUrl === undefined || accountKeyPath === undefined) return undefined;
  return {
    directoryUrl,
    accountKeyPath,
    names,
    checkIntervalSeconds,
    ...(email !== undefined ? { email } : {}),
    ...(renewBeforeFraction !== undefined ? { renewBeforeFraction } : {}),
    ...(extraCaPath !== undefined ? { extraCaPath } : {}),
  };
}

/** Reads and validates a config file; file and JSON errors are reported like key errors. */
export function loadMaildConfig(file: string): MaildConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError([`${file}: cannot read: ${(e as Error).message}`]);
  }
  let raw: Json;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`${file}: not valid JSON: ${(e as Error).message}`]);
  }
  return validateMaildConfig(raw);
}
