// AcmeAccount: the ACME account (RFC 8555 7.3) of a key, as a Pulumi resource (dynamic provider,
// logic in components/providers/acme-account.ts).
//
// Its own resource so that the account URL, which CAA records pin (RFC 8657 accounturi), is a
// fact that only changes with the key or the directory: renewing a certificate never touches it,
// and a preview of a renewal shows the CAA records unchanged.
import * as pulumi from "@pulumi/pulumi";
import { packageProvider } from "./package-provider";

export interface AcmeAccountArgs {
  /** ACME directory URL: Let's Encrypt production/staging or any RFC 8555 CA */
  directoryUrl: pulumi.Input<string>;
  /** account key PEM (secret), e.g. tls.PrivateKey("acme-account", {algorithm: "ECDSA", ecdsaCurve: "P256"}).privateKeyPem */
  accountKeyPem: pulumi.Input<string>;
  /** contact address, sent when the account is registered and when it changes */
  email?: pulumi.Input<string>;
  /** an extra CA to trust for the ACME server (test CAs such as pebble) */
  extraCaPem?: pulumi.Input<string>;
}

const provider = packageProvider("mailstack/providers/acme-account");

export class AcmeAccount extends pulumi.dynamic.Resource {
  /** the account's URL at the CA: CAA accounturi (RFC 8657 3) and the `kid` of every order */
  public readonly accountUrl!: pulumi.Output<string>;
  /** RFC 7638 thumbprint of the account key (public) */
  public readonly accountKeyThumbprint!: pulumi.Output<string>;

  constructor(name: string, args: AcmeAccountArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        directoryUrl: args.directoryUrl,
        accountKeyPem: pulumi.secret(args.accountKeyPem),
        email: args.email,
        extraCaPem: args.extraCaPem,
        accountUrl: undefined,
        accountKeyThumbprint: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "accountKeyPem"] },
      "mailstack",
      "AcmeAccount",
    );
  }
}
