// The demo's stack as `pulumi up` would see it: stacks/Pulumi.<stack>.yaml completed the way a
// user completes it before the first `pulumi up` (each user's password hash set as a secret),
// pointed at the local internet's ACME CA, and run through the real Pulumi program
// (infra/program.ts) under the offline engine with the box's namespace addresses standing in for
// what Hetzner would assign.
//
// From that one run come both halves of the demo, so they cannot drift apart: the DNS records and
// PTRs knot serves, and the files the MailDaemon install step would put on the box (the secret file
// manifest: maild's config, DKIM keys, TLS key, ACME account key, Dovecot config and passwd-file).
import { randomBytes } from "node:crypto";
import { argon2idHash } from "../../components/shared/argon2id";
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import type { DkimPublicKey, PlannedRecord } from "../../components/records/types";
import { runOffline, Secret, type RecordedResource } from "../offline/engine";
import { configFromStackValues, stackFilePath } from "../cli/plan";
import { CONFIG_NAMESPACE } from "../stack-config";
import { boxLayout, dkimKeyPath } from "../../server-bootstrap/install/layout";
import { deployFiles, type DeployDomain, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { parseManifest, renderManifest } from "../../server-bootstrap/install/file-manifest";
import { STAGED } from "../../server-bootstrap/install/deploy-commands";
import { readSpam } from "../../components/config/spam";
import { Problems } from "../../components/config/config-error";
import type { SpamSettings } from "../../components/shared/spam-settings";

export interface DemoUser {
  address: string;
  /** random, printed for the person running the demo */
  password: string;
  /** argon2id PHC string, what `pulumi config set --secret --path 'mailstack:users[N].passwordHash'` stores */
  passwordHash: string;
}

/** What the program asks the ACME CA for (the AcmeAccount and AcmeCertificate resources' inputs). */
export interface PlannedCertificate {
  directoryUrl: string;
  email?: string;
  accountKeyPem: string;
  /** the account URL the program was run with (the offline engine's stand-in before the account exists) */
  accountUrl: string;
  /** the certificate request the program made from its stable TLS key */
  csrPem: string;
  names: string[];
}

export interface PlannedStack {
  stack: string;
  hostname: string;
  /** every DNS record the program plans, by Cloudflare zone */
  zones: Record<string, PlannedRecord[]>;
  /** the reverse DNS the program sets through Hetzner (Rdns resources) */
  ptr: { address: string; ptr: string }[];
  /** how many resources the program declares (custom resources, as `pulumi up` would create) */
  resourceCount: number;
  certificate: PlannedCertificate;
  /**
   * What MailDaemon deploys, as plain values (renderable for any box layout). The certificate
   * is still empty: under mocks the ACME certificate does not exist yet.
   */
  deploy: DeployInput;
  /** absolute path of the maild bundle the program built for the deployment */
  daemonBundle: string;
  /** the program's dkimPublicKeys output: what `pulumi stack output dkimPublicKeys --json` prints */
  dkimPublicKeys: Record<string, DkimPublicKey[]>;
  /** the program's rspamdControllerPassword output (secret): rspamd's web interface on the box */
  rspamdControllerPassword: string;
}

export interface PlanDemoStackOptions {
  /** directory holding Pulumi.yaml and stacks/ */
  projectDir: string;
  stack: string;
  users: DemoUser[];
  /** the local internet's ACME CA */
  acme: { directoryUrl: string; caaIdentity: string };
  /** the box's addresses: IPv4, and the IPv6 /64 network whose ::1 the box holds */
  ipv4: string;
  ipv6Network: string;
  /** the ACME account URL for CAA accounturi, once the account exists */
  acmeAccountUrl?: string;
}

/** The stack file's users, each with a fresh random password. */
export function demoUsers(projectDir: string, stack: string): DemoUser[] {
  const values = readStackFile(stackFilePath(projectDir, stack));
  const users = values.users;
  if (!Array.isArray(users) || users.length === 0) {
    throw new Error(`${stackFilePath(projectDir, stack)}: mailstack:users is empty; the demo needs at least one user to log in as`);
  }
  return users.map((u, i) => {
    const address = (u as { address?: unknown }).address;
    if (typeof address !== "string") throw new Error(`${stackFilePath(projectDir, stack)}: mailstack:users[${i}].address is missing`);
    const password = randomBytes(12).toString("base64url");
    return { address: address.toLowerCase(), password, passwordHash: argon2idHash(password) };
  });
}

/** The stack file's values with the demo's secrets and CA filled in, as Pulumi would hand them to the program. */
function demoConfig(opts: PlanDemoStackOptions): { config: Record<string, string>; secretKeys: string[] } {
  const values = readStackFile(stackFilePath(opts.projectDir, opts.stack));
  const users = (values.users as Record<string, unknown>[]).map((u, i) => ({ ...u, passwordHash: opts.users[i].passwordHash }));
  const acme = { ...(values.acme as Record<string, unknown>), directory: opts.acme.directoryUrl, caaIdentity: opts.acme.caaIdentity };
  const { config, secretKeys } = configFromStackValues({ ...values, users, acme });
  // `pulumi config set --secret --path 'mailstack:users[N].passwordHash'` makes the whole key secret.
  const usersKey = `${CONFIG_NAMESPACE}:users`;
  return { config, secretKeys: secretKeys.includes(usersKey) ? secretKeys : [...secretKeys, usersKey] };
}

/** The stack file's spam settings as the program validates them. */
function demoSpamSettings(opts: PlanDemoStackOptions): SpamSettings {
  const values = readStackFile(stackFilePath(opts.projectDir, opts.stack));
  const problems = new Problems();
  const spam = readSpam(values.spam, "spam", problems);
  if (spam === undefined)
    throw new Error(`${stackFilePath(opts.projectDir, opts.stack)}: ${problems.list.map((p) => `${p.path}: ${p.message}`).join("; ")}`);
  return spam;
}

function plain(value: unknown): unknown {
  return value instanceof Secret ? plain(value.value) : value;
}

function one(resources: RecordedResource[], what: string, match: (r: RecordedResource) => boolean): RecordedResource {
  const found = resources.filter(match);
  if (found.length !== 1) throw new Error(`the program declared ${found.length} ${what}, the demo expects exactly one`);
  return found[0];
}

const copyTo = (file: keyof typeof STAGED) => (r: RecordedResource) =>
  r.type === "command:remote:CopyToRemote" && String(plain(r.inputs.remotePath)).endsWith(`/${STAGED[file]}`);

/**
 * Reads the MailDaemon's file manifest back into deploy inputs, and proves the reading lossless:
 * rendered again for the same (real box) layout it must be the program's manifest byte for byte.
 */
function deployInputFromManifest(manifest: string, spam: SpamSettings): DeployInput {
  const layout = boxLayout();
  const files = new Map(parseManifest(manifest).map((f) => [f.path, f.content]));
  const file = (p: string) => {
    const content = files.get(p);
    if (content === undefined) throw new Error(`the program's deploy manifest has no ${p}`);
    return content;
  };
  const config = JSON.parse(file(layout.configJson)) as {
    hostname: string;
    domains: { name: string; mtaStsPolicy?: string; dkim: { selector: string; algorithm: "rsa" | "ed25519" }[] }[];
    users: { address: string; passwordHash: string; quotaBytes?: number }[];
    aliases: { address: string; to: string[] }[];
    acme?: { directoryUrl: string; email?: string; names: string[] };
    operations?: DeployInput["operations"];
    limits?: NonNullable<DeployInput["maild"]>["limits"];
    storage?: { quotaBytes?: number; reserveBytes?: number };
    srs?: { secrets: string[] };
    authPolicy?: { apiKey: string };
  };
  const nonce = config.authPolicy ? /^auth_policy_hash_nonce = (\S+)$/m.exec(file(layout.dovecotAuthPolicy))?.[1] : undefined;
  const domains: DeployDomain[] = config.domains.map((d) => ({
    name: d.name,
    dkim: d.dkim.map((k) => ({
      selector: k.selector,
      algorithm: k.algorithm,
      privateKeyPem: file(dkimKeyPath(layout, d.name, k.selector)),
    })),
    ...(d.mtaStsPolicy !== undefined ? { mtaStsPolicy: d.mtaStsPolicy } : {}),
  }));
  // rspamd's controller file names the password's hash (server-bootstrap/spam/rspamd-conf.ts)
  const controller = /^password = "([^"]+)";$/m.exec(file(`${layout.rspamdConfDir}/local.d/worker-controller.inc`))?.[1];
  if (controller === undefined) throw new Error("the program's deploy manifest has no rspamd controller password hash");
  const input: DeployInput = {
    hostname: config.hostname,
    spam: { settings: spam, controllerPasswordHash: controller },
    domains,
    users: config.users,
    aliases: config.aliases,
    tls: { certificatePem: file(layout.tlsCert), privateKeyPem: file(layout.tlsKey) },
    ...(config.acme
      ? {
          acme: {
            directoryUrl: config.acme.directoryUrl,
            email: config.acme.email,
            names: config.acme.names,
            accountKeyPem: file(layout.acmeAccountKey),
          },
        }
      : {}),
    ...(config.operations ? { operations: config.operations } : {}),
    ...(config.limits ? { maild: { limits: config.limits } } : {}),
    ...(config.storage ? { storage: config.storage } : {}),
    ...(config.srs && config.authPolicy && nonce
      ? { secrets: { srs: config.srs.secrets[0], authPolicyKey: config.authPolicy.apiKey, authPolicyNonce: nonce } }
      : {}),
  };
  if (renderManifest(deployFiles(layout, input)) !== manifest) {
    throw new Error(
      "the demo cannot reproduce the program's deploy manifest from its parts (server-bootstrap/install changed?): infra/demo/planned-stack.ts needs updating",
    );
  }
  return input;
}

/** Runs the Pulumi program offline for the demo's stack and returns what it would publish and deploy. */
export async function planDemoStack(opts: PlanDemoStackOptions): Promise<PlannedStack> {
  const { config, secretKeys } = demoConfig(opts);
  const run = await runOffline(
    () => {
      // Loaded after the mocks are in place, as the Pulumi CLI loads a program.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const program = require("../program") as typeof import("../program");
      const { stack: _stack, ...outputs } = program.defineMailStack();
      return outputs;
    },
    { stack: opts.stack, config, secretKeys, ipv4: opts.ipv4, ipv6Network: opts.ipv6Network, acmeAccountUrl: opts.acmeAccountUrl },
  );
  const certificate = one(run.resources, "ACME certificates", (r) => r.type === "pulumi-nodejs:dynamic/mailstack:AcmeCertificate").inputs;
  const account = one(run.resources, "ACME accounts", (r) => r.type === "pulumi-nodejs:dynamic/mailstack:AcmeAccount").inputs;
  // The install step gets the manifest on its stdin.
  const manifest = plain(
    one(run.resources, "install steps", (r) => r.type === "command:remote:Command" && r.inputs.stdin !== undefined).inputs.stdin,
  );
  const bundleAsset = plain(one(run.resources, "daemon bundles", copyTo("daemon")).inputs.source) as { path?: string };
  if (typeof manifest !== "string" || typeof bundleAsset.path !== "string") {
    throw new Error(
      "the program's MailDaemon steps are not a manifest on the install step's stdin and a copied file bundle any more: infra/demo/planned-stack.ts needs updating",
    );
  }
  return {
    stack: opts.stack,
    hostname: String(run.outputs.hostname),
    zones: run.outputs.records as Record<string, PlannedRecord[]>,
    ptr: run.resources
      .filter((r) => r.type === "hcloud:index/rdns:Rdns")
      .map((r) => ({ address: String(r.inputs.ipAddress), ptr: String(r.inputs.dnsPtr) })),
    resourceCount: run.resources.filter((r) => r.custom).length,
    certificate: {
      directoryUrl: String(plain(certificate.directoryUrl)),
      email: account.email === undefined ? undefined : String(plain(account.email)),
      accountKeyPem: String(plain(certificate.accountKeyPem)),
      accountUrl: String(plain(certificate.accountUrl)),
      csrPem: String(plain(certificate.csrPem)),
      names: (plain(certificate.names) as unknown[]).map((n) => String(plain(n))),
    },
    deploy: deployInputFromManifest(manifest, demoSpamSettings(opts)),
    // The program bundles relative to the working directory (the Pulumi project).
    daemonBundle: path.resolve(bundleAsset.path),
    dkimPublicKeys: plain(run.outputs.dkimPublicKeys) as Record<string, DkimPublicKey[]>,
    rspamdControllerPassword: String(plain(run.outputs.rspamdControllerPassword)),
  };
}
