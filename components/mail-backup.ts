// MailBackup: where the mail server's backups go, as code, and what the box needs to reach it.
//
// Storage Box target (the default): an hcloud.StorageBox in another location than the server, with
// Hetzner's own daily snapshots, and one sub-account for this server. Its keys are set in the
// sub-account's `.ssh/authorized_keys` by StorageBoxAccess (over SFTP, with the sub-account's
// password, from the deployer's machine), never through the Storage Box's `sshKeys` input: a change
// of `sshKeys` or `location` replaces the Storage Box, and with it every backup
// (terraform-provider-hcloud internal/storagebox/resource.go: both RequiresReplace). `sshKeys` is
// never set, and Pulumi's `protect` is on the Storage Box, its sub-account and the key the
// repository password comes from: a change that would replace one is refused, and a
// `pulumi destroy` fails at them, leaving them and the backups in place (Hetzner's delete protection
// too, for deletes from anywhere else).
//
// What the box gets (MailDaemon's manifest): the repository password, its own SSH key, whose line
// in authorized_keys runs only `rclone serve restic --append-only` (components/backup/authorized-keys.ts),
// and the Storage Box's pinned host key. Never a Storage Box password or a Hetzner token: the
// password opens SFTP with full access on either port (third-party: gist mildsunrise/743b17d3).
//
// SFTP and S3 targets are the user's own: the stack only generates the box's key (and an admin key)
// and hands the box the address, the pinned host key or the S3 credentials.
import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";
import * as tls from "@pulumi/tls";
import type { BackupSpec } from "./spec";
import type { MailDaemonBackup } from "./mail-daemon";
import { SecretValue } from "./config/secret";
import { derivedSecret, storageBoxPassword } from "./backup/derived-secret";
import { storageBoxAuthorizedKeys } from "./backup/authorized-keys";
import { StorageBoxAccess } from "./storage-box-access";
import { BACKUP_DEFAULTS } from "./config/backup";
import type { RepositorySettings } from "../server-bootstrap/backup/settings";

/** Hetzner's SSH service that runs rclone and takes OpenSSH keys (docs.hetzner.com/robot/storage-box/backup-space-ssh-keys). */
export const STORAGE_BOX_SSH_PORT = 23;

export interface MailBackupArgs {
  spec: BackupSpec;
  /** the mail host's FQDN: names the sub-account's directory */
  hostname: string;
}

/** The stack output `backup`: everything about the target but its secrets. */
export interface BackupInfo {
  target: BackupSpec["target"]["kind"];
  /** how the box reaches the repository */
  repository: RepositorySettings;
  /** whether the box can only add snapshots (retention is then applied by `mailstack backup prune`) */
  appendOnly: boolean;
  /** the target's pinned SSH host key (SSH targets) */
  hostKey?: string;
  /** the box's and the admin key's public halves (for an SFTP target's authorized_keys) */
  boxPublicKey: string;
  adminPublicKey: string;
  intervalMinutes: number;
  retention: BackupSpec["retention"];
  restoreFrom: string;
  storageBox?: { id: string; location: string; server: string; username: string };
}

export class MailBackup extends pulumi.ComponentResource {
  /** what MailDaemon deploys for the job (secret values inside) */
  public readonly daemonBackup: MailDaemonBackup;
  public readonly info: pulumi.Output<BackupInfo>;
  /** the restic repository password (secret): keep a copy outside this stack */
  public readonly repositoryPassword: pulumi.Output<string>;
  /** the admin key (OpenSSH, secret): SFTP with full access, for `mailstack backup prune` */
  public readonly adminPrivateKey: pulumi.Output<string>;
  public readonly storageBox?: hcloud.StorageBox;
  public readonly subaccount?: hcloud.StorageBoxSubaccount;
  public readonly access?: StorageBoxAccess;

  constructor(name: string, args: MailBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mailstack:index:MailBackup", name, {}, opts);
    const parent = { parent: this };
    const spec = args.spec;

    // The repository password: losing it loses every backup, so its key is protected.
    const repositoryKey = new tls.PrivateKey(`${name}-backup-repository-key`, { algorithm: "ED25519" }, { ...parent, protect: true });
    this.repositoryPassword = pulumi.secret(
      repositoryKey.privateKeyPemPkcs8.apply((pem) => derivedSecret(pem, "restic repository password")),
    );
    const boxKey = new tls.PrivateKey(`${name}-backup-box-key`, { algorithm: "ED25519" }, parent);
    const adminKey = new tls.PrivateKey(`${name}-backup-admin-key`, { algorithm: "ED25519" }, parent);
    this.adminPrivateKey = pulumi.secret(adminKey.privateKeyOpenssh);
    const boxPublicKey = boxKey.publicKeyOpenssh.apply((k) => k.trim());
    const adminPublicKey = adminKey.publicKeyOpenssh.apply((k) => k.trim());
    const common = {
      intervalMinutes: spec.intervalMinutes,
      retention: spec.retention,
      restoreFrom: spec.restoreFrom,
    };
    const settings = (repository: pulumi.Input<RepositorySettings>) =>
      pulumi.output(repository).apply((repo) => ({
        repository: repo,
        // The box prunes only where it may delete (not append-only).
        prune: repo.kind !== "rclone",
        retention: spec.retention,
        checkSubset: spec.checkSubset,
        restoreFrom: spec.restoreFrom,
      }));

    const target = spec.target;
    if (target.kind === "storageBox") {
      // Passwords Hetzner requires; they stay in the state (the Storage Box's is not used at all).
      const passwordKey = new tls.PrivateKey(`${name}-backup-storage-password-key`, { algorithm: "ED25519" }, parent);
      const pem = passwordKey.privateKeyPemPkcs8;
      this.storageBox = new hcloud.StorageBox(
        `${name}-backup`,
        {
          storageBoxType: target.type,
          location: target.location,
          password: pulumi.secret(pem.apply((p) => storageBoxPassword(p, "storage box main account"))),
          // The main account is not used: no SSH, no SMB, no WebDAV, not from outside.
          accessSettings: { sshEnabled: false, sambaEnabled: false, webdavEnabled: false, reachableExternally: false, zfsEnabled: false },
          ...(target.snapshots.keep > 0
            ? { snapshotPlan: { maxSnapshots: target.snapshots.keep, hour: target.snapshots.hour, minute: target.snapshots.minute } }
            : {}),
          deleteProtection: true,
          labels: { "managed-by": "mailstack", host: args.hostname.replace(/[^a-z0-9-]/g, "-").slice(0, 63) },
        },
        { ...parent, protect: true },
      );
      const subPassword = pulumi.secret(pem.apply((p) => storageBoxPassword(p, "storage box sub-account")));
      this.subaccount = new hcloud.StorageBoxSubaccount(
        `${name}-backup-subaccount`,
        {
          storageBoxId: this.storageBox.id.apply(Number),
          homeDirectory: `mailstack/${args.hostname}`,
          password: subPassword,
          description: `mailstack backup of ${args.hostname}`,
          // SSH from the mail server and from the deployer's machine (outside Hetzner's network).
          accessSettings: { sshEnabled: true, reachableExternally: true, readonly: false, sambaEnabled: false, webdavEnabled: false },
        },
        { ...parent, protect: true },
      );
      this.access = new StorageBoxAccess(
        `${name}-backup-access`,
        {
          host: this.subaccount.server,
          port: STORAGE_BOX_SSH_PORT,
          user: this.subaccount.username,
          password: subPassword,
          authorizedKeys: pulumi
            .all([boxPublicKey, adminPublicKey])
            .apply(([box, admin]) =>
              storageBoxAuthorizedKeys({ boxPublicKey: box, adminPublicKey: admin, repositoryPath: BACKUP_DEFAULTS.repositoryPath }),
            ),
        },
        parent,
      );
      const repository = pulumi.all([this.subaccount.server, this.subaccount.username]).apply(([host, user]): RepositorySettings => ({
        kind: "rclone",
        host,
        port: STORAGE_BOX_SSH_PORT,
        user,
        path: BACKUP_DEFAULTS.repositoryPath,
      }));
      this.daemonBackup = {
        ...common,
        settings: settings(repository),
        repositoryPassword: this.repositoryPassword,
        sshPrivateKey: pulumi.secret(boxKey.privateKeyOpenssh),
        targetHostKey: this.access.hostKey,
      };
      const box = this.storageBox;
      this.info = pulumi
        .all([repository, this.access.hostKey, boxPublicKey, adminPublicKey, box.id, box.server, box.username])
        .apply(([repo, hostKey, boxPub, adminPub, id, server, username]) => ({
          target: "storageBox" as const,
          repository: repo,
          appendOnly: true,
          hostKey,
          boxPublicKey: boxPub,
          adminPublicKey: adminPub,
          ...common,
          storageBox: { id, location: target.location, server, username },
        }));
    } else if (target.kind === "sftp") {
      const repository: RepositorySettings = {
        kind: target.appendOnly ? "rclone" : "sftp",
        host: target.host,
        port: target.port,
        user: target.user,
        path: target.path,
      };
      this.daemonBackup = {
        ...common,
        settings: settings(repository),
        repositoryPassword: this.repositoryPassword,
        sshPrivateKey: pulumi.secret(boxKey.privateKeyOpenssh),
        targetHostKey: target.hostKey,
      };
      this.info = pulumi.all([boxPublicKey, adminPublicKey]).apply(([boxPub, adminPub]) => ({
        target: "sftp" as const,
        repository,
        appendOnly: target.appendOnly,
        hostKey: target.hostKey,
        boxPublicKey: boxPub,
        adminPublicKey: adminPub,
        ...common,
      }));
    } else {
      const repository: RepositorySettings = {
        kind: "s3",
        endpoint: target.endpoint,
        bucket: target.bucket,
        prefix: target.prefix,
        ...(target.region !== undefined ? { region: target.region } : {}),
      };
      // Only the offline plan sees an undecryptable marker; it deploys nothing.
      const secret = target.secretAccessKey instanceof SecretValue ? "[secret]" : target.secretAccessKey;
      this.daemonBackup = {
        ...common,
        settings: settings(repository),
        repositoryPassword: this.repositoryPassword,
        s3Credentials: pulumi.secret(pulumi.output(secret).apply((s) => ({ accessKeyId: target.accessKeyId, secretAccessKey: s }))),
      };
      this.info = pulumi.all([boxPublicKey, adminPublicKey]).apply(([boxPub, adminPub]) => ({
        target: "s3" as const,
        repository,
        appendOnly: false,
        boxPublicKey: boxPub,
        adminPublicKey: adminPub,
        ...common,
      }));
    }

    this.registerOutputs({ info: this.info });
  }
}
