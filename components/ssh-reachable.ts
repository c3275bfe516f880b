// SshReachable: the deployment's first step, as a Pulumi resource (dynamic provider, logic in
// components/providers/ssh-reachable.ts). On the deployer's machine, inside the engine's provider
// process, it dials the server every ~2 s until SSH answers with the pinned host key and accepts
// the deployer key; another host key fails at once naming both fingerprints; the bound ends it
// with the last connection error. Nothing runs on the server and no program is started.
import * as pulumi from "@pulumi/pulumi";
import { packageProvider } from "./package-provider";

export interface SshReachableArgs {
  host: pulumi.Input<string>;
  /** default 22 */
  port?: pulumi.Input<number>;
  /** default root */
  user?: pulumi.Input<string>;
  /** the host key the server must present, `ssh-ed25519 AAAA...` (pinned, never trusted on first use) */
  hostKey: pulumi.Input<string>;
  /** the deployer's private key, OpenSSH or PEM (secret) */
  privateKey: pulumi.Input<string>;
  /** bound on the wait in whole seconds */
  timeoutSeconds: pulumi.Input<number>;
  /** anything that changes when the machine is replaced (a server id): a new machine is waited for again */
  instance?: pulumi.Input<string>;
}

const provider = packageProvider("mailstack/providers/ssh-reachable");

export class SshReachable extends pulumi.dynamic.Resource {
  /** what the wait verified: address, pinned host key fingerprint, user */
  public readonly message!: pulumi.Output<string>;
  /** OpenSSH fingerprint of the deployer key's public half */
  public readonly deployerKeyFingerprint!: pulumi.Output<string>;

  constructor(name: string, args: SshReachableArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        host: args.host,
        port: args.port ?? 22,
        user: args.user ?? "root",
        hostKey: args.hostKey,
        privateKey: pulumi.secret(args.privateKey),
        timeoutSeconds: args.timeoutSeconds,
        instance: args.instance ?? "",
        message: undefined,
        deployerKeyFingerprint: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "privateKey"] },
      "mailstack",
      "SshReachable",
    );
  }
}
