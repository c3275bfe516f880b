import * as pulumi from "@pulumi/pulumi";
import * as cloudflare from "@pulumi/cloudflare";
import * as tls from "@pulumi/tls";
import type { StackSpec, UserSpec } from "./spec";
import type { DkimPublicKey, PlannedRecord } from "./records/types";
import { MailHost } from "./mail-host";
import { MailDomain, type DkimPublicKeyInput } from "./mail-domain";
import { MailDaemon } from "./mail-daemon";
import { MailBackup } from "./mail-backup";
import type { DeploySecrets } from "../server-bootstrap/install/deploy-files";
import { dkimPublicKeyFromPem, dkimSelectors } from "./records/dkim";
import { mtaStsPolicy } from "./records/mta-sts";
import { spkiSha256FromPem } from "./records/tlsa";
import { SecretValue } from "./config/secret";
import { AcmeCertificate, type Dns01Config } from "./acme-certificate";
import { AcmeAccount } from "./acme-account";
import { maildOperations } from "./operations";
import { deriveBoxSecrets } from "./box-secrets";
import { MIB } from "./config/storage";

export interface MailStackArgs {
  /** The validated stack description (see `validateStackConfig`). */
  spec: StackSpec;
  /** Cloudflare zone ids by zone name; zones not listed are looked up by name. */
  zoneIds?: Record<string, pulumi.Input<string>>;
  /**
   * Issue the host's certificate from `spec.acme` with DNS-01. Without it the box starts with a
   * self-signed certificate for the same key (and CAA carries no accounturi).
   */
  certificate?: MailStackCertificateArgs;
  /** a prebuilt maild bundle; default: bundled from the sources when the program runs (MailDaemon) */
  daemonBundlePath?: string;
}

export interface MailStackCertificateArgs {
  /** how DNS-01 challenges are answered; the credentials stay secret and never reach the box */
  dns01: pulumi.Input<Dns01Config>;
  /** bound on waiting for a challenge TXT to be visible (default 120 s) */
  propagationTimeoutSeconds?: number;
  /** an extra CA to trust for the ACME server (test CAs) */
  extraCaPem?: pulumi.Input<string>;
  revokeOnDelete?: boolean;
}

/** A user as the daemon deployment needs it: the hash stays a Pulumi secret. */
export interface DeployableUser {
  address: string;
  passwordHash: pulumi.Output<string>;
}

/** One DKIM key pair, the private half secret. */
export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimPublicKey["algorithm"];
  publicKeyB64: pulumi.Output<string>;
  privateKeyPem: pulumi.Output<string>;
}

/**
 * A complete mail deployment: one MailHost and one MailDomain per domain, plus the keys that
 * must outlive any server (DKIM keys, the TLS key). Keys are children of this component, not of
 * the host, so rebuilding the server never touches them.
 *
 * Seams for what plugs in later:
 * - certificate: `tlsPrivateKeyPem` is the stable key the ACME certificate is requested for
 *   (DANE TLSA is published for it now); `certificateNames` lists the names it must cover.
 * - deployment: `host` (addresses, pinned host key, deployer key), `dkimKeys`, `users` and
 *   `spec` are everything the daemon's configuration is built from.
 */
export class MailStack extends pulumi.ComponentResource {
  public readonly spec: StackSpec;
  public readonly host: MailHost;
  public readonly domains: MailDomain[];
  public readonly hostname: string;
  public readonly ipv4: pulumi.Output<string>;
  public readonly ipv6: pulumi.Output<string>;
  public readonly dkimKeys: DkimKey[];
  /** Public DKIM keys by domain. */
  public readonly dkimPublicKeys: pulumi.Output<Record<string, DkimPublicKey[]>>;
  /** Every planned DNS record, by Cloudflare zone. */
  public readonly records: pulumi.Output<Record<string, PlannedRecord[]>>;
  /** Stable private key (PEM, secret) of the host's TLS certificate. */
  public readonly tlsPrivateKeyPem: pulumi.Output<string>;
  /** SHA-256 of the TLS key's SubjectPublicKeyInfo (DANE 3 1 1). */
  public readonly tlsSpkiSha256: pulumi.Output<string>;
  /** Names the host's certificate must cover. */
  public readonly certificateNames: string[];
  /** The ACME account the certificate is ordered with, when `args.certificate` is given. */
  public readonly acmeAccount?: AcmeAccount;
  /** The ACME certificate, when `args.certificate` is given. */
  public readonly acmeCertificate?: AcmeCertificate;
  /** The ACME account URL (CAA accounturi), when `args.certificate` is given. */
  public readonly acmeAccountUrl?: pulumi.Output<string>;
  public readonly users: DeployableUser[];
  /** maild deployed over SSH onto the host */
  public readonly daemon: MailDaemon;
  /** the backup target and what the box needs to reach it, when `spec.backup` is set */
  public readonly backup?: MailBackup;
  /** the certificate the box is deployed with (PEM chain) */
  public readonly certificatePem: pulumi.Output<string>;

  constructor(name: string, args: MailStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mailstack:index:MailStack", name, {}, opts);
    const spec = args.spec;
    const parent = { parent: this };
    this.spec = spec;
    this.hostname = spec.hostname;

    this.host = new MailHost(name, { hostname: spec.hostname, server: spec.server }, parent);
    this.ipv4 = this.host.ipv4;
    this.ipv6 = this.host.ipv6;

    // ECDSA P-256: small handshakes, and the key outlives every renewal so TLSA stays valid.
    const tlsKey = new tls.PrivateKey(`${name}-tls-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, parent);
    this.tlsPrivateKeyPem = pulumi.secret(tlsKey.privateKeyPem);
    this.tlsSpkiSha256 = tlsKey.publicKeyPem.apply(spkiSha256FromPem);
    this.certificateNames = [
      spec.hostname,
      ...spec.domains.flatMap((d) => [`mta-sts.${d.name}`, `autoconfig.${d.name}`, `autodiscover.${d.name}`]),
    ];

    this.dkimKeys = spec.domains.flatMap((domain) =>
      domain.dkim.generations.flatMap((generation) => {
        const selectors = dkimSelectors(generation);
        return [
          dkimKey(`${domain.name}-dkim-${selectors.rsa}`, domain.name, selectors.rsa, "rsa", parent),
          dkimKey(`${domain.name}-dkim-${selectors.ed25519}`, domain.name, selectors.ed25519, "ed25519", parent),
        ];
      }),
    );

    const zoneIds = new Map<string, pulumi.Output<string>>();
    for (const zone of new Set(spec.domains.map((d) => d.zone))) {
      const given = args.zoneIds?.[zone];
      zoneIds.set(
        zone,
        given !== undefined ? pulumi.output(given) : cloudflare.getZoneOutput({ filter: { name: zone } }, parent).apply((z) => z.id),
      );
    }

    let accountKey: tls.PrivateKey | undefined;
    if (args.certificate) {
      // The account key outlives every certificate: CAA pins the account (RFC 8657).
      accountKey = new tls.PrivateKey(`${name}-acme-account-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, parent);
      // The account is its own resource: a renewal changes the certificate only, never the
      // account URL the CAA records pin.
      this.acmeAccount = new AcmeAccount(
        `${name}-acme-account`,
        {
          directoryUrl: spec.acme.directory,
          email: spec.acme.email,
          accountKeyPem: accountKey.privateKeyPem,
          extraCaPem: args.certificate.extraCaPem,
        },
        parent,
      );
      this.acmeCertificate = new AcmeCertificate(
        `${name}-certificate`,
        {
          directoryUrl: spec.acme.directory,
          accountUrl: this.acmeAccount.accountUrl,
          accountKeyPem: accountKey.privateKeyPem,
          certificateKeyPem: this.tlsPrivateKeyPem,
          names: this.certificateNames,
          dns01: args.certificate.dns01,
          propagationTimeoutSeconds: args.certificate.propagationTimeoutSeconds,
          extraCaPem: args.certificate.extraCaPem,
          revokeOnDelete: args.certificate.revokeOnDelete,
        },
        parent,
      );
      this.acmeAccountUrl = this.acmeAccount.accountUrl;
    }

    const hostZoneOwner = domainPublishingHostRecords(spec);
    this.domains = spec.domains.map(
      (domain) =>
        new MailDomain(
          domain.name,
          {
            domain,
            acme: spec.acme,
            zoneId: zoneIds.get(domain.zone)!,
            host: {
              hostname: spec.hostname,
              ipv4: this.ipv4,
              ipv6: this.ipv6,
              tlsSpkiSha256: this.tlsSpkiSha256,
              ...(this.acmeAccountUrl ? { acmeAccountUri: this.acmeAccountUrl } : {}),
            },
            dkim: this.dkimKeys
              .filter((k) => k.domain === domain.name)
              .map((k): DkimPublicKeyInput => ({ selector: k.selector, algorithm: k.algorithm, publicKeyB64: k.publicKeyB64 })),
            includeHostRecords: domain.name === hostZoneOwner,
          },
          parent,
        ),
    );

    this.records = pulumi.all(this.domains.map((d, i) => d.records.apply((rs) => [spec.domains[i].zone, rs] as const))).apply((pairs) => {
      const byZone: Record<string, PlannedRecord[]> = {};
      for (const [zone, rs] of pairs) byZone[zone] = [...(byZone[zone] ?? []), ...rs];
      return byZone;
    });

    this.dkimPublicKeys = pulumi
      .all(
        this.dkimKeys.map((k) =>
          k.publicKeyB64.apply((p) => ({ domain: k.domain, key: { selector: k.selector, algorithm: k.algorithm, publicKeyB64: p } })),
        ),
      )
      .apply((entries) => {
        const byDomain: Record<string, DkimPublicKey[]> = {};
        for (const { domain, key } of entries) byDomain[domain] = [...(byDomain[domain] ?? []), key];
        return byDomain;
      });

    this.users = spec.users.map(deployableUser);

    // The box's own secrets (SRS, the Dovecot-maild auth policy key): derived from one random key
    // that, like the DKIM keys, belongs to the stack and outlives every server.
    const boxSecretsKey = new tls.PrivateKey(`${name}-box-secrets-key`, { algorithm: "ED25519" }, parent);
    const boxSecrets = pulumi.secret(boxSecretsKey.privateKeyPem.apply((pem) => (pem ? deriveBoxSecrets(pem) : undefined)));

    // The certificate the box serves: the ACME one when configured; otherwise a self-signed
    // certificate for the same stable key, so the box can start serving (and DANE-EE 3 1 1,
    // which pins the key, already verifies).
    this.certificatePem = this.acmeCertificate
      ? this.acmeCertificate.certificatePem
      : new tls.SelfSignedCert(
          `${name}-bootstrap-cert`,
          {
            privateKeyPem: this.tlsPrivateKeyPem,
            subject: { commonName: spec.hostname },
            dnsNames: this.certificateNames,
            validityPeriodHours: 24 * 90,
            earlyRenewalHours: 24 * 30,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
          },
          parent,
        ).certPem;

    // A child of the stack, not of the host: no server rebuild ever touches the backup target.
    if (spec.backup) this.backup = new MailBackup(name, { spec: spec.backup, hostname: spec.hostname }, parent);

    // One `pulumi up` does everything: the daemon goes on the host once the volume is attached.
    this.daemon = new MailDaemon(
      name,
      {
        connection: {
          host: this.host.ipv4,
          privateKey: this.host.deployerPrivateKey,
          hostKey: this.host.hostKeyPublic,
        },
        instance: this.host.serverId,
        dataDevice: this.host.volumeDevice,
        hostname: spec.hostname,
        domains: spec.domains.map((d) => ({
          name: d.name,
          mtaStsPolicy: mtaStsPolicy(d, [spec.hostname]),
          dkim: this.dkimKeys
            .filter((k) => k.domain === d.name)
            .map((k) => ({ selector: k.selector, algorithm: k.algorithm, privateKeyPem: k.privateKeyPem })),
        })),
        users: spec.users.map((u, i) => ({
          address: u.address,
          ...(u.quotaMiB !== undefined ? { quotaBytes: u.quotaMiB * MIB } : {}),
          // Only the offline plan (which deploys nothing) sees undecryptable SecretValue markers;
          // a well-formed stand-in keeps the deploy files renderable there.
          passwordHash: u.passwordHash instanceof SecretValue ? pulumi.secret(UNDECRYPTED_HASH_STAND_IN) : this.users[i].passwordHash,
        })),
        aliases: spec.aliases,
        operations: pulumi
          .all([this.ipv4, this.ipv6, this.records])
          .apply(([ipv4, ipv6, records]) => maildOperations(spec, [ipv4, ipv6], records)),
        maild: { limits: spec.limits },
        storage: { quotaBytes: spec.storage.quotaMiB * MIB, reserveBytes: spec.storage.reserveMiB * MIB },
        secrets: boxSecrets as pulumi.Output<DeploySecrets>,
        ...(args.daemonBundlePath !== undefined ? { daemonBundlePath: args.daemonBundlePath } : {}),
        tls: { certificatePem: this.certificatePem, privateKeyPem: this.tlsPrivateKeyPem },
        ...(spec.spam !== undefined ? { spam: { settings: spec.spam } } : {}),
        // The box renews with the same account (CAA accounturi admits no other) over HTTP-01 on
        // its own port 80; the DNS provider's credentials never leave the Pulumi side.
        ...(accountKey
          ? {
              acme: {
                directoryUrl: spec.acme.directory,
                accountKeyPem: pulumi.secret(accountKey.privateKeyPem),
                email: spec.acme.email,
                names: this.certificateNames,
                ...(args.certificate?.extraCaPem !== undefined ? { extraCaPem: args.certificate.extraCaPem } : {}),
              },
            }
          : {}),
        ...(this.backup ? { backup: this.backup.daemonBackup } : {}),
      },
      { ...parent, dependsOn: [this.host.volumeAttachment] },
    );

    this.registerOutputs({
      hostname: this.hostname,
      ipv4: this.ipv4,
      ipv6: this.ipv6,
      records: this.records,
      dkimPublicKeys: this.dkimPublicKeys,
      tlsSpkiSha256: this.tlsSpkiSha256,
    });
  }
}

function dkimKey(
  resourceName: string,
  domain: string,
  selector: string,
  algorithm: DkimPublicKey["algorithm"],
  opts: pulumi.CustomResourceOptions,
): DkimKey {
  // RFC 8301 3.2: RSA keys for DKIM must be at least 1024 bits; 2048 is what receivers expect now.
  const key =
    algorithm === "rsa"
      ? new tls.PrivateKey(resourceName, { algorithm: "RSA", rsaBits: 2048 }, opts)
      : new tls.PrivateKey(resourceName, { algorithm: "ED25519" }, opts);
  return {
    domain,
    selector,
    algorithm,
    publicKeyB64: key.publicKeyPem.apply((pem) => dkimPublicKeyFromPem(pem, algorithm)),
    privateKeyPem: pulumi.secret(key.privateKeyPemPkcs8),
  };
}

/** argon2id-shaped (PHC) stand-in for a password hash the offline plan cannot decrypt. */
const UNDECRYPTED_HASH_STAND_IN = "$argon2id$v=19$m=65536,t=3,p=4$dW5kZWNyeXB0ZWQ$c3RhbmQtaW4tZm9yLWEtc2VjcmV0";

function deployableUser(user: UserSpec): DeployableUser {
  const hash = user.passwordHash instanceof SecretValue ? "[secret]" : user.passwordHash;
  return { address: user.address, passwordHash: pulumi.secret(pulumi.output(hash)) };
}

/**
 * The mail host's own records (A/AAAA, HELO SPF, TLSA) live in the zone that contains the
 * hostname; the first domain of the deepest such zone publishes them.
 */
export function domainPublishingHostRecords(spec: Pick<StackSpec, "hostname" | "domains">): string {
  const candidates = spec.domains.filter((d) => spec.hostname === d.zone || spec.hostname.endsWith(`.${d.zone}`));
  if (candidates.length === 0) {
    throw new Error(`hostname: ${spec.hostname} is in none of the managed zones (${spec.domains.map((d) => d.zone).join(", ")})`);
  }
  const deepest = Math.max(...candidates.map((d) => d.zone.length));
  return candidates.find((d) => d.zone.length === deepest)!.name;
}
