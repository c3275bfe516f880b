// The outside world a `pulumi up` of the real program (infra/program.ts) reaches, as models, for
// running it through the offline engine (infra/offline/simulate.ts) with the strict provider
// stand-ins (infra/offline/providers/) and nothing leaving this process:
//
// - Hetzner: an HcloudWorld whose servers are machines: each created server gets a machine id (as
//   systemd's /etc/machine-id at first boot), SSH answers at its primary IPs while it runs, with
//   the host key its cloud-init pins and for the deployer keys it was created with.
// - Cloudflare: a CloudflareWorld with the stack's zones.
// - @pulumi/command: a RecordingExecutor that runs each command "on" the machine at the address it
//   dials (refused like SSH would refuse: nothing running there, another host key, a key not
//   authorized): the wait step prints that machine's id, a command guarded by a machine id runs its
//   body only on that machine, the install step needs the data volume attached there.
// - The Node dynamic provider host: the engine's own (infra/offline/providers/dynamic-host.ts) with
//   the program's providers as built (dist/), their own check and diff; create, update and delete
//   of AcmeAccount and AcmeCertificate go to a model CA, SshReachable's wait to the machine model.
//   Certificates carry no Authority Key Identifier, so AcmeCertificate's diff has no RFC 9773 ARI
//   id to ask a CA about (ari.ts fetchRenewalInfo); its wrapper refuses one that would.
import { randomBytes, createHash, webcrypto } from "node:crypto";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import YAML from "yaml";
import { utils as ssh2Utils } from "ssh2";
import { simulate, type SimulateResult } from "../../infra/offline/simulate";
import type { Checkpoint, ProviderStandIn } from "../../infra/offline/model";
import {
  CloudflareWorld,
  HcloudWorld,
  RecordingExecutor,
  standInProviders,
  type MachineView,
  type RecordedCall,
} from "../../infra/offline/providers/index";
import { dynamicProviderHost, type DynamicProvider } from "../../infra/offline/providers/dynamic-host";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";
import { accountKeyThumbprint, checkAccountInputs, type AccountOutputs } from "../../components/providers/acme-account";
import { checkCertificateInputs, planCertificate, type CertificateOutputs } from "../../components/providers/acme-certificate";
import { sshReachableOutputs, type SshReachableOutputs } from "../../components/providers/ssh-reachable";
import { plainProperties } from "../../components/providers/engine-values";
import { readCertificateRequest } from "../../components/shared/acme/certificate-request";
import { ariCertificateId, readCertificateInfo } from "../../components/shared/acme/certificate-info";
import { sameNames } from "../../components/shared/acme/certificate-names";
import { CLOUDFLARE_TOKEN, ROOT } from "./program-stand-ins";

export const DEV_VALUES = readStackFile(path.join(ROOT, "stacks", "Pulumi.dev.yaml"));
const DAY = 86_400_000;

/** The program's config for stack values as a stack file holds them, with the Cloudflare token set. */
export function configOf(values: Record<string, unknown>): { config: Record<string, string>; secretKeys: string[] } {
  const { config, secretKeys } = configFromStackValues(values);
  return { config: { ...config, "cloudflare:apiToken": CLOUDFLARE_TOKEN }, secretKeys: [...secretKeys, "cloudflare:apiToken"] };
}

/** What a deploy step ran, and where. */
export interface Ran {
  /** wait, copy maild.js, copy install.sh, install, stop, release-volume, release-volume create */
  step: string;
  serverId: number;
  machineId: string;
  /** for a command guarded by a machine id: whether its body ran on this machine */
  guardPassed?: boolean;
}

/** One thing that happened in the world, in order: a Hetzner action, or a deploy step on a machine. */
export type WorldEvent = { kind: "hcloud"; what: string; serverId?: number } | ({ kind: "ssh" } & Ran);

interface Machine {
  machineId: string;
  hostKey: string;
  /** base64 blobs of the authorized deployer keys */
  authorized: string[];
}

/** A provider's typed outputs as the host passes them on. */
const record = (outs: object) => outs as Record<string, unknown>;

/** The base64 key blob of an OpenSSH public key line. */
const blobOf = (line: string) => line.trim().split(/\s+/)[1] ?? "";

/** The public half (base64 blob) of an OpenSSH or PEM private key. */
function publicBlobOf(privateKey: string): string {
  const parsed = ssh2Utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error) throw new Error(`model: the deployer key does not parse: ${key.message}`);
  return key.getPublicSSH().toString("base64");
}

/** An ACME CA as far as the program's providers need one: accounts by key, certificates for requests. */
export class ModelCa {
  /** the clock certificates are issued by */
  now: () => Date = () => new Date();
  readonly accounts = new Map<string, string>();
  readonly issued: { serialHex: string; names: string[]; reason: string }[] = [];
  private keys?: webcrypto.CryptoKeyPair;
  private caCert?: x509.X509Certificate;
  private readonly algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

  /** RFC 8555 7.3: one account per key; the same key finds the same account. */
  account(directoryUrl: string, accountKeyPem: string): string {
    const thumbprint = accountKeyThumbprint(accountKeyPem);
    let url = this.accounts.get(thumbprint);
    if (!url) {
      url = `${new URL(directoryUrl).origin}/acme/acct/${this.accounts.size + 1}`;
      this.accounts.set(thumbprint, url);
    }
    return url;
  }

  /** A 90-day certificate for the request's key and names, chained to the model CA; no AKI, so no ARI id. */
  async issue(csrPem: string, names: string[], reason: string): Promise<string> {
    const request = await readCertificateRequest(csrPem);
    if (!sameNames(request.names, names))
      throw new Error(`model CA: the request asks for ${request.names.join(", ")}, the order for ${names.join(", ")}`);
    if (!this.keys) {
      this.keys = (await webcrypto.subtle.generateKey(this.algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
      this.caCert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: "01",
        name: "CN=model ACME CA",
        notBefore: new Date(Date.now() - 365 * DAY),
        notAfter: new Date(Date.now() + 3650 * DAY),
        keys: this.keys,
        signingAlgorithm: this.algorithm,
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      });
    }
    const notBefore = this.now();
    const serialHex = randomBytes(16).toString("hex");
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serialHex,
      subject: `CN=${names[0]}`,
      issuer: this.caCert!.subject,
      notBefore,
      notAfter: new Date(notBefore.getTime() + 90 * DAY),
      publicKey: new x509.Pkcs10CertificateRequest(csrPem).publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: this.algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))],
    });
    const chain = `${leaf.toString("pem")}\n${this.caCert!.toString("pem")}\n`.replace(/\r\n/g, "\n");
    if (ariCertificateId(chain) !== undefined) throw new Error("model CA: a certificate with an AKI would make diff ask a CA (ARI)");
    this.issued.push({ serialHex: readCertificateInfo(chain).serialHex, names, reason });
    return chain;
  }
}

export class DeploymentWorld {
  readonly hcloud: HcloudWorld;
  readonly cloudflare = new CloudflareWorld();
  readonly ca = new ModelCa();
  readonly executor: RecordingExecutor;
  /** the deploy steps that ran, in order */
  readonly ran: Ran[] = [];
  /** Hetzner actions and deploy steps, in the order they happened */
  readonly timeline: WorldEvent[] = [];
  /** server id -> the machine it is */
  readonly machines = new Map<number, Machine>();

  constructor() {
    this.hcloud = new HcloudWorld({
      backend: {
        serverCreated: async (server) => {
          this.machines.set(server.id, {
            machineId: randomBytes(16).toString("hex"),
            hostKey: hostKeyOf(server),
            authorized: server.sshKeys.map(blobOf),
          });
          this.event(`server created`, server.id);
        },
        serverDeleted: async (server) => this.event("server deleted", server.id),
        serverPoweredOff: async (server, how) => this.event(`server ${how}`, server.id),
        serverPoweredOn: async (server) => this.event("server powered on", server.id),
        serverTypeChanged: async (server, previous) => this.event(`server type ${previous} -> ${server.serverType}`, server.id),
        volumeAttached: async (volume, server) => this.event(`volume ${volume.id} attached`, server.id),
        volumeDetached: async (volume, server) => this.event(`volume ${volume.id} detached`, server.id),
        ptrChanged: async (ip, ptr) => this.event(`ptr ${ip} -> ${ptr ?? "(none)"}`),
      },
    });
    for (const zone of new Set((DEV_VALUES.domains as { zone: string }[]).map((d) => d.zone))) this.cloudflare.addZone(zone);
    this.executor = new RecordingExecutor((call) => this.runOnMachine(call));
  }

  private event(what: string, serverId?: number): void {
    this.timeline.push({ kind: "hcloud", what, ...(serverId !== undefined ? { serverId } : {}) });
  }

  /** The running server that answers SSH at `host` as `hostKey` and lets `privateKey` in, as SSH would decide. */
  reach(host: string, hostKey: string, privateKey: string | undefined): { server: MachineView; machine: Machine } {
    const server = [...this.hcloud.servers.values()].map((s) => this.hcloud.machineView(s)).find((s) => s.ipv4 === host || s.ipv6 === host);
    if (!server || server.status !== "running") throw new Error(`ssh: dial tcp ${host}:22: connect: no running server answers there`);
    const machine = this.machines.get(server.id)!;
    if (blobOf(hostKey) !== blobOf(machine.hostKey))
      throw new Error(`ssh: handshake failed: ${host} presents another host key than the pinned one`);
    if (!privateKey || !machine.authorized.includes(publicBlobOf(privateKey)))
      throw new Error(`ssh: handshake failed: ssh: unable to authenticate at ${host} (the deployer key is not authorized)`);
    return { server, machine };
  }

  private runOnMachine(call: RecordedCall): { stdout: string; stderr: string } | Error {
    if (call.kind === "local") return new Error("model: the program runs no local command");
    const { connection } = call;
    let reached;
    try {
      reached = this.reach(connection.host, connection.hostKey ?? "", connection.privateKey);
    } catch (error) {
      return error as Error;
    }
    const { server, machine } = reached;
    const record = (step: string, guardPassed?: boolean) => {
      const ran: Ran = { step, serverId: server.id, machineId: machine.machineId, ...(guardPassed !== undefined ? { guardPassed } : {}) };
      this.ran.push(ran);
      this.timeline.push({ kind: "ssh", ...ran });
    };
    if (call.kind === "copy") {
      record(`copy ${path.posix.basename(call.remotePath)}`);
      return { stdout: "", stderr: "" };
    }
    const command = call.command;
    // deploy-commands.ts onMachine: `if [ "$(cat /etc/machine-id ...)" = '<id>' ]; then ...; fi`
    const guard = /^if \[ "\$\(cat \/etc\/machine-id 2>\/dev\/null \|\| hostname\)" = '([^']*)' \]; then /.exec(command);
    const guardPassed = guard ? guard[1] === machine.machineId : undefined;
    if (command.includes("cloud-init status --wait")) {
      record("wait");
      return { stdout: `${machine.machineId}\n`, stderr: "" };
    }
    if (command.includes("--files-sha256")) {
      const device = /--data-device '\/dev\/disk\/by-id\/scsi-0HC_Volume_(\d+)'/.exec(command);
      if (device && !server.volumes.some((v) => v.id === Number(device[1])))
        return new Error(`mailstack-install: error: the data volume ${device[1]} is not attached to this machine`);
      record("install");
      return { stdout: "mailstack-install: changed=... actions=...\n", stderr: "" };
    }
    if (command.includes("--stop")) record("stop", guardPassed);
    else if (command.includes("--release")) record("release-volume", guardPassed);
    else if (command === "true") record("release-volume create");
    else return new Error(`model: a command the deployment does not send: ${command.slice(0, 80)}`);
    return { stdout: "", stderr: "" };
  }

  /** The engine's Node dynamic provider host, its calls to a CA or a server answered by the models. */
  dynamicHost(): ProviderStandIn {
    return dynamicProviderHost({ projectDir: ROOT, wrapProvider: (provider, source) => this.wrap(provider, source) });
  }

  private wrap(provider: DynamicProvider, source: string): DynamicProvider {
    if (source.includes('"mailstack/providers/acme-account"')) {
      const account = async (raw: Record<string, unknown>): Promise<AccountOutputs> => {
        const i = plainProperties(raw) as { directoryUrl: string; accountKeyPem: string; email?: string };
        const failures = checkAccountInputs(i);
        if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
        return {
          directoryUrl: i.directoryUrl,
          ...(i.email !== undefined ? { email: i.email } : {}),
          accountUrl: this.ca.account(i.directoryUrl, i.accountKeyPem),
          accountKeyThumbprint: accountKeyThumbprint(i.accountKeyPem),
        };
      };
      return {
        ...provider,
        create: async (inputs) => {
          const outs = await account(inputs);
          return { id: outs.accountUrl, outs: record(outs) };
        },
        update: async (_id, _olds, news) => ({ outs: record(await account(news)) }),
        // the account stays at the CA (acme-account.ts delete)
        delete: async () => undefined,
      };
    }
    if (source.includes('"mailstack/providers/acme-certificate"')) {
      const issue = async (raw: Record<string, unknown>, reason: string): Promise<CertificateOutputs> => {
        const i = plainProperties(raw) as unknown as CertificateOutputs & { csrPem: string; accountKeyPem: string };
        const failures = await checkCertificateInputs(i as unknown as Record<string, unknown>);
        if (failures.length) throw new Error(failures.map((f) => f.reason).join("; "));
        const chain = await this.ca.issue(i.csrPem, i.names, reason);
        const info = readCertificateInfo(chain);
        return {
          directoryUrl: i.directoryUrl,
          accountUrl: i.accountUrl,
          names: i.names,
          certificatePem: chain,
          notBefore: info.notBefore.toISOString(),
          notAfter: info.notAfter.toISOString(),
          issuer: info.issuer,
          serialHex: info.serialHex,
          spkiSha256: info.spkiSha256,
          issueReason: reason,
        };
      };
      const noAri = (olds: Record<string, unknown>) => {
        if (typeof olds.certificatePem === "string" && ariCertificateId(olds.certificatePem) !== undefined)
          throw new Error("model: this diff would ask a CA for ARI; the model CA issues no AKI");
      };
      return {
        ...provider,
        diff: async (id, olds, news) => {
          noAri(olds);
          return provider.diff!(id, olds, news);
        },
        create: async (inputs) => {
          const outs = await issue(inputs, "new certificate");
          return { id: `${outs.names[0]}-${randomBytes(4).toString("hex")}`, outs: record(outs) };
        },
        update: async (_id, olds, news) => {
          noAri(olds);
          // acme-certificate.ts updateCertificate: the provider's own plan decides whether to re-issue
          const plan = await planCertificate(olds, news);
          if (plan.reissue) return { outs: record(await issue(news, plan.reason)) };
          const o = plainProperties(olds) as unknown as CertificateOutputs;
          const n = plainProperties(news) as unknown as CertificateOutputs;
          return { outs: { ...o, directoryUrl: n.directoryUrl, accountUrl: n.accountUrl } };
        },
        delete: async (_id, props) => {
          if (plainProperties(props).revokeOnDelete) throw new Error("model: revokeOnDelete is not modelled");
        },
      };
    }
    if (source.includes('"mailstack/providers/ssh-reachable"')) {
      const wait = async (raw: Record<string, unknown>): Promise<SshReachableOutputs> => {
        const i = plainProperties(raw) as {
          host: string;
          port: number;
          user: string;
          hostKey: string;
          privateKey: string;
          instance: string;
        };
        this.reach(i.host, i.hostKey, i.privateKey);
        return sshReachableOutputs(i, `SSH at ${i.host}:${i.port} presents the pinned host key`);
      };
      return {
        ...provider,
        create: async (inputs) => {
          const outs = await wait(inputs);
          return { id: `${outs.host}:${outs.port}/${randomBytes(4).toString("hex")}`, outs: record(outs) };
        },
        update: async (_id, _olds, news) => ({ outs: record(await wait(news)) }),
        delete: async () => undefined,
      };
    }
    throw new Error(
      `model: a dynamic provider the program does not use: ${createHash("sha256").update(source).digest("hex").slice(0, 12)}`,
    );
  }

  /** Every provider the program needs: the strict stand-ins over these worlds, and the dynamic host. */
  providers(): ProviderStandIn[] {
    return [...Object.values(standInProviders({ hcloud: this.hcloud, cloudflare: this.cloudflare }, this.executor)), this.dynamicHost()];
  }

  /** `pulumi up` (or preview) of the real program with stack values `values`, against `checkpoint`. */
  async run(
    values: Record<string, unknown>,
    checkpoint: Checkpoint | undefined,
    opts: { mode?: "up" | "preview"; daemonBundlePath?: string; program?: () => unknown } = {},
  ): Promise<SimulateResult> {
    const { config, secretKeys } = configOf(values);
    return simulate({
      mode: opts.mode ?? "up",
      stack: "dev",
      config,
      secretKeys,
      ...(checkpoint ? { checkpoint } : {}),
      providers: this.providers(),
      projectDir: ROOT,
      parallel: 1,
      program:
        opts.program ??
        (() => {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
          const { stack: _stack, ...outputs } = defineMailStack(
            opts.daemonBundlePath !== undefined ? { daemonBundlePath: opts.daemonBundlePath } : {},
          );
          return outputs;
        }),
    });
  }
}

/** The Ed25519 host key a server's cloud-init pins (server-bootstrap/cloud-init.ts ssh_keys). */
function hostKeyOf(server: MachineView): string {
  const config = YAML.parse(server.userData) as { ssh_keys?: { ed25519_public?: string } } | null;
  const key = config?.ssh_keys?.ed25519_public;
  if (!key) throw new Error(`model: server ${server.id}'s user data pins no host key`);
  return key;
}
