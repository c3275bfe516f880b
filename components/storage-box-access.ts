// StorageBoxAccess: writes a Storage Box sub-account's `.ssh/authorized_keys` from the deployer's
// machine (dynamic provider, logic in components/providers/storage-box-access.ts), logging in with
// the sub-account's password, which so never reaches the mail server. Its `hostKey` output is the
// Storage Box's SSH host key, which the mail server then pins.
import * as pulumi from "@pulumi/pulumi";
import { packageProvider } from "./package-provider";

export interface StorageBoxAccessArgs {
  host: pulumi.Input<string>;
  /** default 23 */
  port?: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** the sub-account's password (secret) */
  password: pulumi.Input<string>;
  /** the file's whole content (components/backup/authorized-keys.ts) */
  authorizedKeys: pulumi.Input<string>;
  /** bound on retries while a new Storage Box turns SSH on; default 300 s */
  timeoutSeconds?: pulumi.Input<number>;
}

const provider = packageProvider("mailstack/providers/storage-box-access");

export class StorageBoxAccess extends pulumi.dynamic.Resource {
  /** `ssh-ed25519 AAAA...`: the Storage Box's host key as first seen, pinned since */
  public readonly hostKey!: pulumi.Output<string>;
  public readonly authorizedKeysSha256!: pulumi.Output<string>;

  constructor(name: string, args: StorageBoxAccessArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        host: args.host,
        port: args.port ?? 23,
        user: args.user,
        password: pulumi.secret(args.password),
        authorizedKeys: args.authorizedKeys,
        timeoutSeconds: args.timeoutSeconds ?? 300,
        hostKey: undefined,
        authorizedKeysSha256: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "password"] },
      "mailstack",
      "StorageBoxAccess",
    );
  }
}
