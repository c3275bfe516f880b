// The validated description of a mail deployment. `validateStackConfig` (components/config/)
// turns raw stack configuration into this; everything downstream (planner, components, CLI)
// consumes only this shape, never raw config.
import type * as pulumi from "@pulumi/pulumi";
import type { SecretValue } from "./config/secret";
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

export interface StackSpec {
  /** The mail host's FQDN (MX target, HELO name, PTR). */
  hostname: string;
  server: ServerSpec;
  domains: DomainSpec[];
  users: UserSpec[];
  aliases: AliasSpec[];
  acme: AcmeSpec;
  /** mailbox quota default and the free space kept on the data volume */
  storage: StorageSpec;
}
