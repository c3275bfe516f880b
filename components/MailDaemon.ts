import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { remote } from "@pulumi/command";
import { boxLayout, type BoxLayoutOptions } from "../server-bootstrap/install/layout";
import { deployFiles, type DeployDomain, type MaildTuning } from "../server-bootstrap/install/deployFiles";
import { renderManifest } from "../server-bootstrap/install/fileManifest";
import { installScript } from "../server-bootstrap/install/installScript";
import { installCommand, releaseVolumeCommand, stagedPath, stopCommand, waitCommand } from "../server-bootstrap/install/deployCommands";
import { bundleDaemon } from "../server-bootstrap/install/daemonBundle";

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

export interface MailDaemonArgs {
  connection: MailDaemonConnection;
  /** the mail host's FQDN (SMTP banner, HELO) */
  hostname: string;
  domains: MailDaemonDomain[];
  /** argon2id hashes, secret */
  users: { address: string; passwordHash: pulumi.Input<string> }[];
  aliases?: { address: string; to: string[] }[];
  tls: { certificatePem: pulumi.Input<string>; privateKeyPem: pulumi.Input<string> };
  /** block device of a data volume to mount at the data directory (formatted only if blank) */
  dataDevice?: pulumi.Input<string>;
  /**
   * Anything that changes when the machine is replaced (a server id). A new machine at the same
   * address with the same host key is otherwise indistinguishable, and would not be installed.
   */
  instance?: pulumi.Input<string>;
  maild?: MaildTuning;
  /** paths on the box (defaults: layout.ts) */
  layout?: BoxLayoutOptions;
  /** where the copies land; default ~/.mailstack-deploy of the SSH user */
  stageDir?: string;
  /** bound on waiting for SSH (and cloud-init) after the server is created; default 10m */
  waitTimeout?: string;
  /** a prebuilt daemon bundle; default: bundled with esbuild when the program runs */
  daemonBundlePath?: string;
}

const sha256 = (data: string | Buffer) => crypto.createHash("sha256").update(data).digest("hex");

/**
 * maild on any Debian/Ubuntu host reachable over SSH: waits for SSH with the host key pinned,
 * copies the bundled daemon, the install script and the (secret) file manifest, and runs the
 * idempotent install script. Every step is keyed by content hashes, so an unchanged `pulumi up`
 * runs nothing; deleting the component stops maild cleanly and leaves mail and keys in place.
 *
 * Nothing here carries a cloud provider token: the box gets exactly the files listed in
 * server-bootstrap/install/deployFiles.ts.
 */
export class MailDaemon extends pulumi.ComponentResource {
  /** the machine id of the box deployed to (changes when the machine is replaced) */
  public readonly machineId: pulumi.Output<string>;
  /** the install script's summary line of the last run: `mailstack-install: changed=... actions=...` */
  public readonly installSummary: pulumi.Output<string>;

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
    // While the server boots, dials fail fast and the provider does not pause between them
    // (pulumi-command#1238): unlimited dials, bounded by the step's create timeout instead.
    const waitConnection = { ...base, dialErrorLimit: -1, perDialTimeout: 10 };
    // Once SSH has answered, a failing dial (a wrong host key above all) fails the step at once.
    const connection = { ...base, dialErrorLimit: 3, perDialTimeout: 15 };
    const child = { parent: this };

    const wait = new remote.Command(
      `${name}-wait-for-ssh`,
      { connection: waitConnection, create: waitCommand(), triggers: [args.instance ?? ""] },
      // A component's dependsOn does not reach its children: the first step carries it.
      { ...child, dependsOn: opts?.dependsOn, customTimeouts: { create: args.waitTimeout ?? "10m" } },
    );
    this.machineId = wait.stdout.apply((s) => (s ?? "").trim());

    const bundlePath = args.daemonBundlePath ?? bundleDaemon();
    const bundleHash = sha256(fs.readFileSync(path.resolve(bundlePath)));
    const installer = installScript(layout);
    const manifest = pulumi.secret(
      pulumi
        .all([
          pulumi.output(args.tls),
          pulumi.output(args.users),
          pulumi.output(args.domains.map((d) => pulumi.output(d))),
        ])
        .apply(([tls, users, domains]) =>
          renderManifest(
            deployFiles(layout, {
              hostname: args.hostname,
              domains: domains as DeployDomain[],
              users,
              aliases: args.aliases ?? [],
              // Unknown only under mocks, which do not model certificates.
              tls: { certificatePem: tls.certificatePem ?? "", privateKeyPem: tls.privateKeyPem ?? "" },
              maild: args.maild,
            }),
          ),
        ),
    );
    const manifestHash = manifest.apply(sha256);
    const deployOpts = { stageDir, sudo: user !== "root", dataDevice: undefined as string | undefined };
    const machine = this.machineId;

    const copyDaemon = new remote.CopyToRemote(
      `${name}-daemon`,
      {
        connection,
        source: new pulumi.asset.FileAsset(bundlePath),
        remotePath: stagedPath(deployOpts, "daemon"),
        triggers: [machine, bundleHash],
      },
      { ...child, dependsOn: [wait] },
    );
    const copyInstaller = new remote.CopyToRemote(
      `${name}-installer`,
      {
        connection,
        source: new pulumi.asset.StringAsset(installer),
        remotePath: stagedPath(deployOpts, "installer"),
        triggers: [machine, sha256(installer)],
      },
      { ...child, dependsOn: [wait] },
    );
    const copyFiles = new remote.CopyToRemote(
      `${name}-files`,
      {
        connection,
        source: manifest.apply((text) => new pulumi.asset.StringAsset(text)),
        remotePath: stagedPath(deployOpts, "manifest"),
        triggers: [machine, manifestHash],
      },
      { ...child, dependsOn: [wait] },
    );

    const commands = pulumi.output(args.dataDevice).apply((dataDevice) => {
      const o = { ...deployOpts, dataDevice };
      return { install: installCommand(o), stop: stopCommand(o) };
    });
    // `update` is set, so a changed trigger re-runs the install in place: replacing the command
    // would run the old one's `delete` (stop maild) after the new one's install.
    const install = new remote.Command(
      `${name}-install`,
      {
        connection,
        create: commands.install,
        update: commands.install,
        delete: commands.stop,
        triggers: [machine, bundleHash, sha256(installer), manifestHash],
      },
      { ...child, dependsOn: [copyDaemon, copyInstaller, copyFiles] },
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

    this.registerOutputs({ machineId: this.machineId, installSummary: this.installSummary });
  }
}
