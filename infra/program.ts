import * as pulumi from "@pulumi/pulumi";
import { MailStack } from "../components/mail-stack";
import { ConfigError, validateStackConfig } from "../components/config/validate";
import { readStackConfig } from "./stack-config";

/** `cloudflare:apiToken` from the stack config, else CLOUDFLARE_API_TOKEN as the provider reads it. */
function cloudflareToken(): pulumi.Output<string> {
  const configured = new pulumi.Config("cloudflare").getSecret("apiToken");
  return configured ?? pulumi.secret(process.env.CLOUDFLARE_API_TOKEN ?? "");
}

export interface ProgramOptions {
  /** a prebuilt maild bundle (tests of a new build); default: bundled from the sources */
  daemonBundlePath?: string;
}

/**
 * `cloudflare:baseUrl`, the endpoint the Cloudflare provider talks to when it is set: the ACME
 * DNS-01 answers go where the DNS records go (a Cloudflare API proxy, or the local internet's
 * stand-in of the API).
 */
function cloudflareBaseUrl(): string | undefined {
  return new pulumi.Config("cloudflare").get("baseUrl");
}

/**
 * Validates the whole stack configuration before any resource exists, then declares the stack.
 * On bad config it throws a ConfigError listing every key at fault; nothing has been created.
 */
export function defineMailStack(options: ProgramOptions = {}) {
  const { raw, secretKeys } = readStackConfig();
  let spec;
  try {
    spec = validateStackConfig(raw, { secretKeys });
  } catch (err) {
    if (err instanceof ConfigError) {
      // RunError prints the message without a stack trace: the message is the whole story.
      throw new pulumi.RunError(`invalid stack configuration (${pulumi.getStack()}):\n${err.message}`);
    }
    throw err;
  }
  const stack = new MailStack("mail", {
    spec,
    ...(options.daemonBundlePath !== undefined ? { daemonBundlePath: options.daemonBundlePath } : {}),
    certificate: {
      // The same token the Cloudflare provider uses; it stays a secret and never reaches the box.
      dns01: pulumi.secret(
        cloudflareToken().apply((apiToken) => {
          const baseUrl = cloudflareBaseUrl();
          return { provider: "cloudflare" as const, apiToken, ...(baseUrl !== undefined ? { baseUrl } : {}) };
        }),
      ),
    },
  });
  return {
    stack,
    hostname: stack.hostname,
    ipv4: stack.ipv4,
    ipv6: stack.ipv6,
    records: stack.records,
    dkimPublicKeys: stack.dkimPublicKeys,
    hostKey: stack.host.hostKeyPublic,
    /** what `server.adopt` takes to come back after a destroy with `server.keepOnDestroy` (README: Teardown) */
    adoptIds: stack.host.adoptIds,
    /** the ACME account the CAA records pin (RFC 8657); `mailstack check --acme-account` takes it */
    acmeAccountUrl: stack.acmeAccountUrl,
    /** the backup target (README "Backups"); absent without `backup` in the stack */
    backup: stack.backup?.info,
    /** the restic repository password: keep a copy outside this stack, or the backups cannot be read without it */
    backupRepositoryPassword: stack.backup?.repositoryPassword,
    /** the admin key of the backup target (OpenSSH), for `mailstack backup prune` and `snapshots` */
    backupAdminPrivateKey: stack.backup?.adminPrivateKey,
    /** the deployment's root key (OpenSSH): `mailstack backup status` and `restore-mailbox` log in with it */
    deployerPrivateKey: stack.host.deployerPrivateKey,
    /** rspamd's controller password (secret): `pulumi stack output --show-secrets rspamdControllerPassword` */
    rspamdControllerPassword: stack.daemon.rspamdControllerPassword,
  };
}
