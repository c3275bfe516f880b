// The validated description of a mail deployment. `validateStackConfig` (components/config/)
// turns raw stack configuration into this; everything downstream (planner, components, CLI)
// consumes only this shape, never raw config.
import type * as pulumi from "@pulumi/pulumi";
import type { SecretValue } from "./config/secret";
import type { SmtpLimits } from "./shared/smtp-limits";
import type { SpamSettings } from "./shared/spam-settings";
import type { StorageSpec } from "./config/storage";

export type DmarcPolicy = "none" | "quarantine" | "reject";
export type DmarcAlignment = "r" | "s";
export type MtaStsMode = "enforce" | "testing" | "none";
export type SpfAll = "-all" | "~all";

export interface DmarcSpec {
  policy: DmarcPolicy;
  subdomainPolicy: DmarcPolicy;
  /** RFC 7489 6.3 rua/ruf targets, plain email addresses (rendered as mailto: URIs). */
  rua: string[];
  ruf: string[];
  adkim: DmarcAlignment;
  aspf: DmarcAlignment;
  /** 0..100 */
  pct: number;
}

export interface SpfInclude {
  domain: string;
  /** DNS lookups the include costs when evaluated (RFC 7208 4.6.4); 1 unless the operator knows more. */
  lookups: number;
}

export interface SpfSpec {
  /** Extra sending hosts besides the mail server itself. */
  ip4: string[];
  ip6: string[];
  include: SpfInclude[];
  all: SpfAll;
}

export interface MtaStsSpec {
  mode: MtaStsMode;
  /** seconds, RFC 8461 3.2: at most 31557600 */
  maxAge: number;
}

export interface DkimSpec {
  /**
   * Key generations, newest first. The first signs; all are published so mail signed with a
   * retiring key still verifies. Each generation G has two selectors: `G-rsa` (RSA-2048) and
   * `G-ed25519` (RFC 8463).
   */
  generations: string[];
}

export interface DomainSpec {
  /** lowercase, no trailing dot */
  name: string;
  /** Cloudflare zone (name) that holds this domain's records. */
  zone: string;
  dmarc: DmarcSpec;
  spf: SpfSpec;
  mtaSts: MtaStsSpec;
  /** RFC 8460 rua targets (mailto addresses or https URLs, rendered as given: `mailto:x` or `https://...`). */
  tlsrpt: { rua: string[] };
  dkim: DkimSpec;
  /** Publish CAA at the domain apex restricting issuance to the configured CA. */
  caa: boolean;
}

export interface ServerSpec {
  /** Hetzner server type sold in `location`, e.g. cx23, cpx11 */
  type: string;
  /** Hetzner location, e.g. fsn1 */
  location: string;
  image: string;
  /** CIDRs allowed to reach SSH (22) */
  sshSourceRanges: string[];
  volumeSizeGb: number;
  /** Hetzner delete protection on the primary IPs and the volume (and Pulumi's `protect`, unless keepOnDestroy). */
  deleteProtection: boolean;
  /**
   * Pulumi never deletes the primary IPs, their PTRs or the volume (`retainOnDelete`): a destroy
   * drops them from the stack and leaves them in Hetzner, to be adopted again.
   */
  keepOnDestroy: boolean;
  /** Existing Hetzner resources (ids) this stack takes over instead of creating new ones. */
  adopt?: AdoptSpec;
}

/** Hetzner ids, as digits: what a stack with `keepOnDestroy` left behind. */
export interface AdoptSpec {
  ipv4: string;
  ipv6: string;
  volume: string;
}

export interface UserSpec {
  address: string;
  /**
   * argon2id PHC string; a Pulumi secret when read from stack config. The offline plan, which
   * cannot decrypt stack secrets, carries a SecretValue marker instead.
   */
  passwordHash: pulumi.Input<string> | SecretValue;
  /** the mailbox's own quota in MiB (0: none); absent: storage.quotaMiB */
  quotaMiB?: number;
}

export interface AliasSpec {
  /** `local@domain`, or `@domain` for a catch-all */
  address: string;
  /** user addresses or external addresses */
  to: string[];
}

export interface AcmeSpec {
  email: string;
  /** ACME directory URL */
  directory: string;
  /** CAA issuer domain name of the CA (RFC 8659 4.2), e.g. letsencrypt.org */
  caaIdentity: string;
}

/** A Hetzner Storage Box created by the stack, with a sub-account for the box. */
export interface StorageBoxTargetSpec {
  kind: "storageBox";
  /** Storage Box location (fsn1, hel1), never the server's */
  location: string;
  /** bx11, bx21, ... */
  type: string;
  /** Hetzner's daily snapshots of the whole Storage Box, which the box's credentials cannot touch; keep 0: none */
  snapshots: { keep: number; hour: number; minute: number };
}

/** An SFTP account the user runs; `appendOnly`: its key for the box is bound to `rclone serve restic --append-only`. */
export interface SftpTargetSpec {
  kind: "sftp";
  host: string;
  port: number;
  user: string;
  /** repository path relative to the account's home */
  path: string;
  /** pinned host key, `ssh-ed25519 AAAA...` */
  hostKey: string;
  appendOnly: boolean;
}

/** An S3-compatible bucket. */
export interface S3TargetSpec {
  kind: "s3";
  endpoint: string;
  bucket: string;
  prefix: string;
  region?: string;
  accessKeyId: string;
  /** a Pulumi secret when read from stack config; a SecretValue marker in the offline plan */
  secretAccessKey: pulumi.Input<string> | SecretValue;
}

export interface BackupSpec {
  target: StorageBoxTargetSpec | SftpTargetSpec | S3TargetSpec;
  /** minutes between backups (a divisor of a day) */
  intervalMinutes: number;
  /** restic forget --keep-* counts */
  retention: { hourly: number; daily: number; weekly: number; monthly: number };
  /** restic check --read-data-subset, weekly */
  checkSubset: string;
  /** what the install step restores an empty volume from: latest, never, or a snapshot id */
  restoreFrom: string;
}

/** What the box watches about itself and whom it tells (maild's operations section). */
export interface OperationsSpec {
  /** alerts and the daily digest go to these addresses (default: postmaster of the first domain) */
  alertTo: string[];
  /** and are POSTed as JSON to this https URL */
  webhook?: string;
  /** UTC HH:MM of the daily digest */
  digestTime: string;
  /** users who may log in to https://<hostname>/status */
  admins: string[];
  /** RFC 5782 lists asked about the server's addresses, and about the domains and host name */
  ipBlocklists: string[];
  domainBlocklists: string[];
  /** send RFC 8460 TLS reports and RFC 7489 aggregate reports to domains that ask for them */
  sendReports: boolean;
}

export interface StackSpec {
  /** The mail host's FQDN (MX target, HELO name, PTR). */
  hostname: string;
  server: ServerSpec;
  domains: DomainSpec[];
  users: UserSpec[];
  aliases: AliasSpec[];
  acme: AcmeSpec;
  /** absent: no backup */
  backup?: BackupSpec;
  operations: OperationsSpec;
  /** what one SMTP client may cost the mail daemon (maild's `limits`), every key defaulted */
  limits: SmtpLimits;
  /** the box's spam filter (rspamd); absent: DEFAULT_SPAM_SETTINGS */
  spam?: SpamSettings;
  /** mailbox quota default and the free space kept on the data volume */
  storage: StorageSpec;
}
