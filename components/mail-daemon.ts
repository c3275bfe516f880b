import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { boxLayout, type BoxLayoutOptions } from "../server-bootstrap/install/layout";
import {
  deployFiles,
  type DeployAcme,
  type DeployBackup,
  type DeployDomain,
  type DeployInput,
  type DeploySecrets,
  type MaildTuning,
} from "../server-bootstrap/install/deploy-files";
import { renderManifest } from "../server-bootstrap/install/file-manifest";
import { installScript } from "../server-bootstrap/install/install-script";
import {
  installCommand,
  releaseVolumeCommand,
  sha256Hex,
  stagedPath,
  stopCommand,
  waitCommand,
} from "../server-bootstrap/install/deploy-commands";
import { bundleBackupJob, bundleDaemon } from "../server-bootstrap/install/daemon-bundle";
import { durationSeconds } from "../server-bootstrap/install/duration";
import * as tls from "@pulumi/tls";
import { SshReachable } from "./ssh-reachable";
import { DEFAULT_SPAM_SETTINGS, type SpamSettings } from "./shared/spam-settings";
import { controllerPasswordHash, derivedControllerPassword } from "./rspamd-password";

export interface MailDaemonConnection {
  host: pulumi.Input<string>;
  /** default 22 */
  port?: pulumi.Input<number>;
  /** default root; any other user needs passwordless sudo */
  user?: string;
  /** OpenSSH or PEM private key (secret) */
  privateKey: pulumi.Input<string>;
  /** the host key the server must present, `ssh-ed25519 AAAA...`: pinned, never trusted on first use */
  hostKey: pulumi.Input<string>;
}

export interface MailDaemonDkimKey {
  selector: string;
  algorithm: "rsa" | "ed25519";
  privateKeyPem: pulumi.Input<string>;
}

export interface MailDaemonDomain {
  name: string;
  /** newest first */
  dkim: MailDaemonDkimKey[];
  mtaStsPolicy?: pulumi.Input<string>;
}

/**
 * On-box certificate renewal: maild renews the certificate itself over HTTP-01 on port 80, so it
 * never expires because nobody ran `pulumi up`; a deploy never puts back an older certificate.
 */
export interface MailDaemonAcme {
  /** the ACME directory the certificate came from */
  directoryUrl: pulumi.Input<string>;
  /** the same account key the Pulumi side issues with (CAA accounturi pins the account); secret */
  accountKeyPem: pulumi.Input<string>;
  email?: pulumi.Input<string>;
  /** names the certificate carries; the hostname among them */
  names: pulumi.Input<string[]>;
  /** default 1/3: renew when a third or less of the lifetime remains */
  renewBeforeFraction?: number;
  /** PEM of an extra CA to trust for the directory (test CAs) */
  extraCaPem?: pulumi.Input<string>;
  /** default 12 h */
  checkIntervalSeconds?: number;
}

/**
 * The backup job on the box (server-bootstrap/backup/): its settings, timers and the secrets that
 * reach the repository (MailBackup builds this). An empty data volume is restored from it before
 * maild starts.
 */
export interface MailDaemonBackup {
  settings: pulumi.Input<DeployBackup["settings"]>;
  /** minutes between runs (a divisor of a day) */
  intervalMinutes: number;
  /** secret */
  repositoryPassword: pulumi.Input<string>;
  /** SSH targets: the box's key (OpenSSH, secret) and the target's host key, pinned */
  sshPrivateKey?: pulumi.Input<string>;
  targetHostKey?: pulumi.Input<string>;
  /** S3 targets (secret) */
  s3Credentials?: pulumi.Input<{ accessKeyId: string; secretAccessKey: string }>;
  /** a prebuilt job bundle; default: bundled with esbuild when the program runs */
  jobBundlePath?: string;
}

export interface MailDaemonArgs {
  connection: MailDaemonConnection;
  /** the mail host's FQDN (SMTP banner, HELO) */
  hostname: string;
  domains: MailDaemonDomain[];
  /** argon2id hashes, secret; quotaBytes: the mailbox's own quota (0: none), else storage.quotaBytes */
  users: { address: string; passwordHash: pulumi.Input<string>; quotaBytes?: number }[];
  aliases?: { address: string; to: string[] }[];
  tls: { certificatePem: pulumi.Input<string>; privateKeyPem: pulumi.Input<string> };
  /** renew the certificate on the box; absent: only deploys change it */
  acme?: MailDaemonAcme;
  /** block device of a data volume to mount at the data directory (formatted only if blank) */
  dataDevice?: pulumi.Input<string>;
  /**
   * Anything that changes when the machine is replaced (a server id). A new machine at the same
   * address with the same host key is otherwise indistinguishable, and would not be installed.
   */
  instance?: pulumi.Input<string>;
  maild?: MaildTuning;
  /** maild's operations section: what the box watches, whom it tells, who sees the status page */
  operations?: pulumi.Input<NonNullable<DeployInput["operations"]>>;
  /** the default mailbox quota and the free space kept on the data volume, in bytes; absent: maild's defaults */
  storage?: { quotaBytes?: number; reserveBytes?: number };
  /**
   * the SRS key and the auth policy key and nonce (components/box-secrets.ts), secret; absent:
   * forwarded mail keeps its sender and Dovecot does not consult maild's login throttle
   */
  secrets?: pulumi.Input<DeploySecrets>;
  /** paths on the box (defaults: layout.ts) */
  layout?: BoxLayoutOptions;
  /** where the copies land; default ~/.mailstack-deploy of the SSH user */
  stageDir?: string;
  /**
   * bound on waiting for SSH after the server is created, and then again for cloud-init; a
   * Pulumi duration (`90s`, `10m`); default 10m
   */
  waitTimeout?: string;
  /** a prebuilt daemon bundle; default: bundled with esbuild when the program runs */
  daemonBundlePath?: string;
  /** the backup job; absent: none (and one an earlier deploy installed is removed) */
  backup?: MailDaemonBackup;
  /** the box's spam filter (rspamd) */
  spam?: MailDaemonSpam;
}

export interface MailDaemonSpam {
  /** default DEFAULT_SPAM_SETTINGS */
  settings?: SpamSettings;
  /**
   * rspamd's controller password (its web interface, `rspamc -P`); secret. Default: derived from a
   * key this component keeps in the state (`<name>-rspamd-controller`). Only its hash reaches the box.
   */
  controllerPassword?: pulumi.Input<string>;
}

function withoutBundlePath(backup: MailDaemonBackup): Omit<MailDaemonBackup, "jobBundlePath"> {
  const { jobBundlePath: _path, ...rest } = backup;
  return rest;
}

type ResolvedBackup = pulumi.Unwrap<Omit<MailDaemonBackup, "jobBundlePath">>;

function deployBackup(backup: ResolvedBackup, jobJs: string): DeployBackup {
  return {
    settings: backup.settings,
    intervalMinutes: backup.intervalMinutes,
    jobJs,
    repositoryPassword: backup.repositoryPassword,
    ...(backup.sshPrivateKey !== undefined ? { sshPrivateKey: backup.sshPrivateKey } : {}),
    ...(backup.targetHostKey !== undefined ? { targetHostKey: backup.targetHostKey } : {}),
    ...(backup.s3Credentials !== undefined ? { s3Credentials: backup.s3Credentials } : {}),
  };
}

type ResolvedAcme = pulumi.Unwrap<MailDaemonAcme>;

function deployAcme(acme: ResolvedAcme): DeployAcme {
  return {
    directoryUrl: acme.directoryUrl,
    // Unknown only under mocks, which do not model keys.
    accountKeyPem: acme.accountKeyPem ?? "",
    ...(acme.email !== undefined ? { email: acme.email } : {}),
    names: acme.names,
    ...(acme.renewBeforeFraction !== undefined ? { renewBeforeFraction: acme.renewBeforeFraction } : {}),
    ...(acme.extraCaPem !== undefined ? { extraCaPem: acme.extraCaPem } : {}),
    ...(acme.checkIntervalSeconds !== undefined ? { checkIntervalSeconds: acme.checkIntervalSeconds } : {}),
  };
}

/**
 * maild on any Debian/Ubuntu host reachable over SSH: waits for SSH with the host key pinned,
 * copies the bundled daemon and the install script, and runs the idempotent install script with
 * the (secret) file manifest on its stdin.
 *
 * How `pulumi up` treats the steps (@pulumi/command: a change of `triggers` replaces a step, any
 * other input change updates it in place; the SDK sets replaceOnChanges `triggers[*]`):
 * - the triggers carry only the machine (server id, machine id), so only a new machine replaces
 *   a step; on a server replacement the engine deletes the steps before the old server
 *   (delete-before-replace cascade over their property dependencies): release-volume and the
 *   install step's stop run on the old machine, each guarded by its machine id;
 * - content (daemon, install script, users, keys, certificate) is named by digests in the
 *   install command line and carried on its stdin, so a change is an update that runs the install
 *   and never a replacement whose delete (stop maild) would run after it;
 * - an unchanged `pulumi up` changes no input, so nothing runs.
 * Deleting the component stops maild cleanly and leaves mail and keys in place.
 *
 * Nothing here carries a cloud provider token: the box gets exactly the files listed in
 * server-bootstrap/install/deploy-files.ts.
 */
export class MailDaemon extends pulumi.ComponentResource {
  /** the machine id of the box deployed to (changes when the machine is replaced) */
  public readonly machineId: pulumi.Output<string>;
  /** the install script's summary line of the last run: `mailstack-install: changed=... actions=...` */
  public readonly installSummary: pulumi.Output<string>;
  /** rspamd's controller password (secret): its web interface through an SSH tunnel to localhost:11334 */
  public readonly rspamdControllerPassword: pulumi.Output<string>;

  constructor(name: string, args: MailDaemonArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mailstack:index:MailDaemon", name, {}, opts);
    const layout = boxLayout(args.layout);
    const user = args.connection.user ?? "root";
    const stageDir = args.stageDir ?? (user === "root" ? "/root/.mailstack-deploy" : `/home/${user}/.mailstack-deploy`);

    const base = {
      host: args.connection.host,
      port: args.connection.port ?? 22,
      user,
      privateKey: pulumi.secret(args.connection.privateKey),
      hostKey: args.connection.hostKey,
    };
    // Once SSH has answered, a failing dial (a wrong host key above all) fails the step at once.
    const connection = { ...base, dialErrorLimit: 3, perDialTimeout: 15 };
    const child = { parent: this };

    // On the deployer's machine, in the engine's provider process: dials every ~2 s until SSH
    // answers with the pinned host key, and fails at once on another key and with a plain
    // message at the bound; @pulumi/command's own dialing does neither (pulumi-command#1238).
    const waitTimeout = args.waitTimeout ?? "10m";
    const waitSeconds = durationSeconds(waitTimeout, "waitTimeout");
    const reachable = new SshReachable(
      `${name}-ssh-reachable`,
      {
        host: base.host,
        port: base.port,
        user,
        hostKey: base.hostKey,
        privateKey: base.privateKey,
        timeoutSeconds: waitSeconds,
        // A rebuilt server (new id) or a new host key is waited for again.
        instance: args.instance ?? "",
      },
      // A component's dependsOn does not reach its children: the first step carries it.
      { ...child, dependsOn: opts?.dependsOn },
    );
    // SSH answers by now: creates the stage directory, waits for cloud-init's first boot and reads the machine id.
    const deployOpts = { stageDir, sudo: user !== "root", dataDevice: undefined as string | undefined };
    const wait = new remote.Command(
      `${name}-wait-for-ssh`,
      { connection, create: waitCommand(deployOpts), triggers: [args.instance ?? ""] },
      { ...child, dependsOn: [reachable], customTimeouts: { create: waitTimeout } },
    );
    this.machineId = wait.stdout.apply((s) => (s ?? "").trim());

    // rspamd's controller password: given, or derived from a key kept in the state, so that it and
    // its hash stay the same from one `pulumi up` to the next.
    const controller: pulumi.Output<{ password: string; hash: string }> =
      args.spam?.controllerPassword !== undefined
        ? pulumi.output(args.spam.controllerPassword).apply((password) => ({ password, hash: controllerPasswordHash(password) }))
        : new tls.PrivateKey(`${name}-rspamd-controller`, { algorithm: "ED25519" }, child).privateKeyPem.apply((pem) =>
            // Unknown only under mocks, which do not model keys.
            derivedControllerPassword(pem ?? ""),
          );
    this.rspamdControllerPassword = pulumi.secret(controller.apply((c) => c.password));
    const spamSettings = args.spam?.settings ?? DEFAULT_SPAM_SETTINGS;

    const bundlePath = args.daemonBundlePath ?? bundleDaemon();
    const bundleDigest = sha256Hex(fs.readFileSync(path.resolve(bundlePath)));
    const installer = installScript(layout);
    const backupInput: Omit<MailDaemonBackup, "jobBundlePath"> | undefined = args.backup && withoutBundlePath(args.backup);
    const jobJs = args.backup ? fs.readFileSync(path.resolve(args.backup.jobBundlePath ?? bundleBackupJob()), "utf8") : undefined;
    const manifest = pulumi.secret(
      pulumi
        .all([
          pulumi.output(args.tls),
          pulumi.output(args.users),
          pulumi.output(args.domains.map((d) => pulumi.output(d))),
          pulumi.output(args.acme),
          backupInput === undefined ? undefined : pulumi.output(backupInput),
          pulumi.output(args.operations),
          controller,
          pulumi.output(args.secrets),
        ])
        .apply(([tls, users, domains, acme, backup, operations, controller, secrets]) =>
          renderManifest(
            deployFiles(layout, {
              hostname: args.hostname,
              domains: domains as DeployDomain[],
              users,
              aliases: args.aliases ?? [],
              // Unknown only under mocks, which do not model certificates.
              tls: { certificatePem: tls.certificatePem ?? "", privateKeyPem: tls.privateKeyPem ?? "" },
              ...(acme !== undefined ? { acme: deployAcme(acme) } : {}),
              ...(backup !== undefined ? { backup: deployBackup(backup, jobJs!) } : {}),
              maild: args.maild,
              ...(operations !== undefined ? { operations: operations as NonNullable<DeployInput["operations"]> } : {}),
              spam: { settings: spamSettings, controllerPasswordHash: controller.hash },
              ...(args.storage !== undefined ? { storage: args.storage } : {}),
              // Unknown only under mocks, which do not model keys.
              ...(secrets?.srs !== undefined ? { secrets } : {}),
            }),
          ),
        ),
    );
    // A digest of content that holds 2048-bit and Ed25519 private keys reveals nothing of it, and
    // in the clear it lets `pulumi preview --diff` show that the install changes and why.
    const manifestDigest = pulumi.unsecret(manifest.apply(sha256Hex));
    const machine = this.machineId;

    // Triggers: the machine only. A new daemon build or install script is an update, which copies
    // again because the source changed (copyController.go Update: source hash or remotePath).
    const copyDaemon = new remote.CopyToRemote(
      `${name}-daemon`,
      {
        connection,
        source: new pulumi.asset.FileAsset(bundlePath),
        remotePath: stagedPath(deployOpts, "daemon"),
        triggers: [machine],
      },
      { ...child, dependsOn: [wait] },
    );
    const copyInstaller = new remote.CopyToRemote(
      `${name}-installer`,
      {
        connection,
        source: new pulumi.asset.StringAsset(installer),
        remotePath: stagedPath(deployOpts, "installer"),
        triggers: [machine],
      },
      { ...child, dependsOn: [wait] },
    );

    const commands = pulumi.all([pulumi.output(args.dataDevice), manifestDigest, machine]).apply(([dataDevice, files, machineId]) => {
      const o = { ...deployOpts, dataDevice };
      return {
        install: installCommand(o, { installer: sha256Hex(installer), daemon: bundleDigest, files }),
        stop: stopCommand(o, machineId),
      };
    });
    const install = new remote.Command(
      `${name}-install`,
      {
        connection,
        create: commands.install,
        update: commands.install,
        delete: commands.stop,
        stdin: manifest,
        // The previous run's output is of no use to the script, and sshd refuses the variables
        // (AcceptEnv) with a warning on every update.
        addPreviousOutputInEnv: false,
        triggers: [machine],
      },
      // Should the step ever be replaced on the same machine (its triggers cannot change without a
      // new machine, but an upgrade from triggers that held content hashes does replace it once),
      // the old step's stop runs first and the new install starts maild again.
      { ...child, dependsOn: [copyDaemon, copyInstaller], deleteBeforeReplace: true },
    );
    if (args.dataDevice !== undefined) {
      // Replaced with the machine (instance trigger), and so deleted before the volume attachment
      // and the old server are: stops maild and Dovecot and unmounts the volume first.
      new remote.Command(
        `${name}-release-volume`,
        {
          connection,
          create: "true",
          delete: machine.apply((id) => releaseVolumeCommand(deployOpts, id)),
          triggers: [args.instance ?? ""],
        },
        { ...child, dependsOn: [install] },
      );
    }
    this.installSummary = install.stdout.apply((s) => (s ?? "").trim().split("\n").pop() ?? "");

    this.registerOutputs({
      machineId: this.machineId,
      installSummary: this.installSummary,
      rspamdControllerPassword: this.rspamdControllerPassword,
    });
  }
}
