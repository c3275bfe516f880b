// The life of a mailstack deployment in the local internet: the real Pulumi program
// (infra/program.ts, stack file stacks/Pulumi.<stack>.yaml) run by the offline engine
// (infra/offline/simulate.ts) in `up` mode against the provider stand-ins, the stand-ins wired to
// real servers:
//   hcloud      HcloudWorld whose servers are machines in the box namespace (machine-backend.ts):
//               cloud-init, sshd with the pinned host key, systemd, the volume on a loop device
//   cloudflare  CloudflareWorld, every change written into knot (the zones' authoritative server),
//               and its API over HTTP for the ACME DNS-01 solver (`cloudflare:baseUrl`)
//   command     the real executor: every @pulumi/command create/update/delete over SSH into the box
//   dynamic     AcmeCertificate (and any other dynamic resource) in the Node dynamic provider host,
//               issuing from pebble
// Each user flow is a preview then an `up` of the changed stack, as a user runs them; what the
// engine did, the commands it ran and the DNS changes are kept for the caller to check.
//
// The Pulumi project the engine runs is a copy of this package's program and its sources (the
// user's project); a new maild build is a changed daemon source in that copy.
import * as dns from "node:dns";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { LocalInternet } from "../local-internet/netns";
import { startKnot, type KnotServer } from "../local-internet/knot";
import { startPebble, type PebbleCa } from "../local-internet/pebble";
import { NamespaceMachineBackend } from "../local-internet/machine/machine-backend";
import { buildDemoNetwork, type DemoHosts } from "../demo/demo-network";
import { NAMESERVER, NAMESERVER_ZONE, reverseZone } from "../demo/zones";
import { demoUsers, type DemoUser } from "../demo/planned-stack";
import { argon2idHash } from "../../components/shared/argon2id";
import { randomBytes } from "node:crypto";
import { reverseName } from "../../components/records/address";
import { readStackFile } from "../../components/config/stack-file";
import { configFromStackValues, stackFilePath } from "../cli/plan";
import { CONFIG_NAMESPACE } from "../stack-config";
import { EMPTY_CHECKPOINT, simulate, type SimulateResult } from "../offline/simulate";
import type { Checkpoint, Step } from "../offline/model";
import { dynamicProviderHost } from "../offline/providers/dynamic-host";
import {
  CloudflareWorld,
  HcloudWorld,
  RealCommandExecutor,
  standInProviders,
  startCloudflareApi,
  type CloudflareApiServer,
  type CommandExecutor,
  type LocalRun,
  type RecordChange,
  type RemoteCopy,
  type RemoteRun,
} from "../offline/providers/index";
import type { CommandOutput } from "../offline/providers/command-executor";
import { zoneLine } from "./lifecycle-dns";
import { assertFreshBuild } from "../build-check";
import { PERMISSIVE_SPAM_SETTINGS } from "../local-internet/spam-filter";

export const LIFECYCLE_CAA_IDENTITY = "pebble.internet.test";
/** The domain the lifecycle's own mail client sends from (SPF names the deployer's addresses). */
export const CLIENT_DOMAIN = `client.${NAMESERVER_ZONE}`;
const DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord";
const TTL = 300;

/** What the engine asked of the outside world during one run. */
export type ExecutedCall =
  { kind: "remote"; command: string; host: string } | { kind: "copy"; remotePath: string } | { kind: "local"; command: string };

/** The real executor, with every call noted (the lifecycle checks that an unchanged `up` runs none). */
class NotingExecutor implements CommandExecutor {
  readonly calls: ExecutedCall[] = [];
  private readonly inner = new RealCommandExecutor();

  runRemote(run: RemoteRun, log: (message: string) => void): Promise<CommandOutput> {
    this.calls.push({ kind: "remote", command: run.command, host: run.connection.host });
    return this.inner.runRemote(run, log);
  }

  copyToRemote(copy: RemoteCopy, log: (message: string) => void): Promise<void> {
    this.calls.push({ kind: "copy", remotePath: copy.remotePath });
    return this.inner.copyToRemote(copy, log);
  }

  runLocal(run: LocalRun, log: (message: string) => void): Promise<CommandOutput> {
    this.calls.push({ kind: "local", command: run.command });
    return this.inner.runLocal(run, log);
  }
}

/** A DNS record change, as `<op> <TYPE> <name>`. */
export type DnsChangeLine = string;

export interface FlowResult {
  name: string;
  preview: SimulateResult;
  up: SimulateResult;
  /** the DnsRecord changes the preview planned (`create TXT s2-rsa._domainkey.example.org`) */
  dnsPlanned: DnsChangeLine[];
  /** the DnsRecord changes the engine made in `up` */
  dnsStepped: DnsChangeLine[];
  /** what the Cloudflare API saw change, ACME challenge records aside */
  dnsApplied: DnsChangeLine[];
  /** what the command stand-in ran during `up` */
  commands: ExecutedCall[];
  seconds: number;
}

export interface LifecycleOptions {
  /** the Pulumi project to copy (Pulumi.yaml, stacks/, the program and its sources); default this package */
  projectDir?: string;
  stack?: string;
  /** lifetime of the certificates pebble issues; a renewal is due after two thirds of it */
  certificateValiditySeconds?: number;
  /** images the machines stand in for (this computer's Debian runs under each name) */
  images?: string[];
  log?: (line: string) => void;
}

const REPO = path.resolve(__dirname, "../..");

function dnsLine(op: string, inputs: Record<string, unknown> | undefined): DnsChangeLine {
  const reveal = (v: unknown): unknown => (v && typeof v === "object" && "value" in (v as object) ? (v as { value: unknown }).value : v);
  return `${op} ${String(reveal(inputs?.type))} ${String(reveal(inputs?.name)).toLowerCase().replace(/\.$/, "")}`;
}

/** The DnsRecord steps as changes (same steps left out), sorted. */
export function dnsChangesOf(steps: Step[]): DnsChangeLine[] {
  const lines: string[] = [];
  for (const s of steps) {
    if (s.type !== DNS_RECORD) continue;
    if (s.op === "create" || s.op === "import") lines.push(dnsLine("create", s.newInputs));
    else if (s.op === "update") lines.push(dnsLine("update", s.newInputs));
    else if (s.op === "create-replacement") lines.push(dnsLine("replace", s.newInputs));
    else if (s.op === "delete" || s.op === "retain") lines.push(dnsLine("delete", s.oldInputs));
  }
  return lines.sort();
}

/**
 * What the API saw, record by record: created, updated or deleted. A record created and deleted in
 * the same run (the ACME DNS-01 challenge) was never part of the zone's state and is left out.
 */
function appliedChanges(changes: RecordChange[]): DnsChangeLine[] {
  const byId = new Map<string, { kinds: string[]; type: string; name: string }>();
  for (const c of changes) {
    const entry = byId.get(c.record.id) ?? { kinds: [], type: c.record.type, name: c.record.name };
    entry.kinds.push(c.kind);
    byId.set(c.record.id, entry);
  }
  const lines: string[] = [];
  for (const { kinds, type, name } of byId.values()) {
    if (kinds[0] === "create" && kinds[kinds.length - 1] === "delete") continue;
    const op = kinds.includes("create") ? "create" : kinds.includes("delete") ? "delete" : "update";
    lines.push(`${op} ${type} ${name}`);
  }
  return lines.sort();
}

/** A planned replacement of a record is a delete and a create at the API. */
export function asApiChanges(lines: DnsChangeLine[]): DnsChangeLine[] {
  return lines
    .flatMap((l) => (l.startsWith("replace ") ? [l.replace(/^replace /, "create "), l.replace(/^replace /, "delete ")] : [l]))
    .sort();
}

/**
 * Where the project copies live: inside this package's tsconfig (test/**), so the TypeScript loader
 * compiles them with the same settings as the package (useDefineForClassFields: false keeps a
 * resource's declared outputs, as Pulumi's ts-node does with the project's tsconfig); git ignores it.
 */
const PROJECTS_DIR = path.join(REPO, "test", "lifecycle-projects");

/** A copy of the Pulumi project: the program, its sources, the stack files; the packages in node_modules shared. */
function copyProject(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of [
    "Pulumi.yaml",
    "package.json",
    "tsconfig.json",
    "stacks",
    "components",
    "server-bootstrap",
    "infra/program.ts",
    "infra/stack-config.ts",
  ]) {
    fs.cpSync(path.join(from, entry), path.join(to, entry), { recursive: true });
  }
  // The packages are shared, the build cache is not: maild's bundle is written to
  // node_modules/.cache/mailstack, and a bundle of this copy's sources (which a lifecycle flow
  // changes) must not replace the checkout's own while another run is between hashing and copying it.
  fs.mkdirSync(path.join(to, "node_modules"));
  for (const entry of fs.readdirSync(path.join(from, "node_modules"))) {
    if (entry !== ".cache") fs.symlinkSync(path.join(from, "node_modules", entry), path.join(to, "node_modules", entry));
  }
  // The dynamic providers load mailstack/providers/<name> from the project: the package's build.
  fs.symlinkSync(path.join(from, "dist"), path.join(to, "dist"));
}

export class Lifecycle {
  readonly flows: FlowResult[] = [];
  checkpoint: Checkpoint = EMPTY_CHECKPOINT;
  /** the stack file's values, as the user edits them between runs */
  values: Record<string, unknown>;

  private constructor(
    readonly stack: string,
    readonly projectDir: string,
    readonly internet: LocalInternet,
    readonly hosts: DemoHosts,
    readonly boxIpv6Network: string,
    readonly knot: KnotServer,
    readonly pebble: PebbleCa,
    /** the CA root that issued the box's certificates (trusted by the lifecycle's clients) */
    readonly caRootPem: string,
    readonly hcloud: HcloudWorld,
    readonly cloudflare: CloudflareWorld,
    readonly cloudflareApi: CloudflareApiServer,
    readonly backend: NamespaceMachineBackend,
    private readonly executor: NotingExecutor,
    readonly users: DemoUser[],
    private readonly cloudflareChanges: RecordChange[],
    private readonly log: (line: string) => void,
    /** the Cloudflare API token the program is configured with (the stand-in API accepts it) */
    private readonly token: string,
  ) {
    this.values = readStackFile(stackFilePath(projectDir, stack));
    const base = this.values;
    this.values = {
      ...base,
      users: (base.users as Record<string, unknown>[]).map((u, i) => ({ ...u, passwordHash: users[i].passwordHash })),
      acme: { ...(base.acme as Record<string, unknown>), directory: pebble.directoryUrl, caaIdentity: LIFECYCLE_CAA_IDENTITY },
      // The lifecycle is about deploying, not filtering: its test messages come straight from a
      // client with no reverse name (greylisted under the real thresholds) and the box has no
      // route to Spamhaus. rspamd still verifies SPF, DKIM, DMARC and ARC (spam-filter.ts).
      spam: PERMISSIVE_SPAM_SETTINGS,
    };
  }

  static async start(opts: LifecycleOptions = {}): Promise<Lifecycle> {
    const log = opts.log ?? (() => undefined);
    const stack = opts.stack ?? "dev";
    const sourceDir = opts.projectDir ?? REPO;
    assertFreshBuild(sourceDir, "components/providers/acme-certificate.js", "the dynamic providers load the package's build");
    const internet = await LocalInternet.create();
    try {
      const network = await buildDemoNetwork(internet);
      const { dns: dnsHost, ca, box } = network.hosts;
      await internet.setResolver(dnsHost.ipv4);

      const projectDir = path.join(PROJECTS_DIR, path.basename(internet.workDir));
      copyProject(sourceDir, projectDir);
      const users = demoUsers(projectDir, stack);
      const values = readStackFile(stackFilePath(projectDir, stack));
      const zones = [...new Set((values.domains as { name: string; zone?: string }[]).map((d) => (d.zone ?? d.name).toLowerCase()))];

      const apex = (origin: string) => [
        `${origin}. ${TTL} IN SOA ${NAMESERVER}. hostmaster.${origin}. 1 7200 3600 1209600 300`,
        `${origin}. ${TTL} IN NS ${NAMESERVER}.`,
      ];
      const knot = await startKnot(internet, dnsHost, [
        {
          origin: NAMESERVER_ZONE,
          lines: [
            ...apex(NAMESERVER_ZONE),
            `${NAMESERVER}. ${TTL} IN A ${dnsHost.ipv4}`,
            `${NAMESERVER}. ${TTL} IN AAAA ${dnsHost.ipv6}`,
            `${CLIENT_DOMAIN}. ${TTL} IN A ${internet.localIpv4}`,
            `${CLIENT_DOMAIN}. ${TTL} IN TXT "v=spf1 ip4:${internet.localIpv4} ip6:${internet.localIpv6} -all"`,
          ],
        },
        ...zones.map((z) => ({ origin: z, lines: apex(z) })),
        ...[box.ipv4, box.ipv6].map((a) => ({ origin: reverseZone(a), lines: apex(reverseZone(a)) })),
      ]);

      // This process is the deployer's machine: its resolver is the local internet's DNS (the ACME
      // solver waits for its TXT there), and it trusts the CA the local internet's ACME server uses.
      dns.setServers([dnsHost.ipv4]);
      const pebble = await startPebble(internet, ca, {
        dnsServer: `${dnsHost.ipv4}:53`,
        ...(opts.certificateValiditySeconds ? { certificateValidityPeriodSeconds: opts.certificateValiditySeconds } : {}),
      });
      const caRootPem = await pebble.issuingRootPem();
      tls.setDefaultCACertificates([...tls.getCACertificates("default"), pebble.listenerCaPem, caRootPem]);

      const cloudflareChanges: RecordChange[] = [];
      const cloudflare = new CloudflareWorld({
        onRecordsChanged: async (zone, records, change) => {
          cloudflareChanges.push(change);
          const { name, type } = change.record;
          const same = records.filter((r) => r.name === name && r.type === type);
          if (same.length) await knot.addRecords(zone, same.map(zoneLine));
          else await knot.removeRecords(zone, `${name}.`, type);
        },
      });
      for (const z of zones) cloudflare.addZone(z);
      const token = "lifecycle-cloudflare-token-0123456789abcdef";
      const cloudflareApi = await startCloudflareApi(cloudflare, { host: "127.0.0.1", tokens: [token] });

      const backend = new NamespaceMachineBackend({
        host: box,
        ipv6Network: network.boxIpv6Network,
        resolver: dnsHost.ipv4,
        dir: path.join(internet.workDir, "hetzner"),
        images: opts.images ?? ["debian-12", "ubuntu-24.04", "ubuntu-22.04"],
        ptrChanged: async (ip, ptr) => {
          const zone = reverseZone(ip);
          if (ptr === undefined) await knot.removeRecords(zone, `${reverseName(ip)}.`, "PTR");
          else await knot.addRecords(zone, [`${reverseName(ip)}. ${TTL} IN PTR ${ptr.replace(/\.$/, "")}.`]);
        },
      });
      const hcloud = new HcloudWorld({
        backend,
        allocateIpv4: () => box.ipv4,
        allocateIpv6Network: () => network.boxIpv6Network,
      });

      const lifecycle = new Lifecycle(
        stack,
        projectDir,
        internet,
        network.hosts,
        network.boxIpv6Network,
        knot,
        pebble,
        caRootPem,
        hcloud,
        cloudflare,
        cloudflareApi,
        backend,
        new NotingExecutor(),
        users,
        cloudflareChanges,
        log,
        token,
      );
      return lifecycle;
    } catch (err) {
      await internet.destroy();
      fs.rmSync(path.join(PROJECTS_DIR, path.basename(internet.workDir)), { recursive: true, force: true });
      throw err;
    }
  }

  private adoptIds?: Record<string, string>;

  /** The `adoptIds` stack output of the last run that had one (what `pulumi stack output adoptIds` printed before a destroy). */
  lastAdoptIds(): Record<string, string> {
    if (!this.adoptIds) throw new Error("lastAdoptIds: no run so far had an adoptIds output");
    return { ...this.adoptIds };
  }

  /** The config the program gets: the stack values, the providers' tokens and endpoints. */
  private config(): { config: Record<string, string>; secretKeys: string[] } {
    const { config, secretKeys } = configFromStackValues(this.values);
    const usersKey = `${CONFIG_NAMESPACE}:users`;
    return {
      config: {
        ...config,
        "hcloud:token": "lifecycle-hcloud-token-0123456789abcdef0123456789abcdef0123456789abcdef0123",
        "cloudflare:apiToken": this.token,
        "cloudflare:baseUrl": this.cloudflareApi.baseUrl,
      },
      secretKeys: [...new Set([...secretKeys, usersKey, "hcloud:token", "cloudflare:apiToken"])],
    };
  }

  private async run(mode: "preview" | "up", program: () => unknown): Promise<SimulateResult> {
    const { config, secretKeys } = this.config();
    const cwd = process.cwd();
    // The CLI runs the program in the project directory (relative paths in it are the project's).
    process.chdir(this.projectDir);
    try {
      return await simulate({
        mode,
        stack: this.stack,
        project: "mailstack",
        config,
        secretKeys,
        checkpoint: this.checkpoint,
        providers: [
          ...Object.values(standInProviders({ hcloud: this.hcloud, cloudflare: this.cloudflare }, this.executor)),
          dynamicProviderHost({ projectDir: this.projectDir }),
        ],
        projectDir: this.projectDir,
        parallel: 1,
        program,
      });
    } finally {
      process.chdir(cwd);
    }
  }

  private program(): () => unknown {
    const file = path.join(this.projectDir, "infra", "program");
    return () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require(file) as typeof import("../program");
      const { stack: _stack, ...outputs } = defineMailStack();
      return outputs;
    };
  }

  private async flow(name: string, program: () => unknown): Promise<FlowResult> {
    const started = Date.now();
    this.log(`${name}: preview`);
    const preview = await this.run("preview", program);
    const calls = this.executor.calls.length;
    const changes = this.cloudflareChanges.length;
    this.log(`${name}: up`);
    const up = await this.run("up", program);
    if (!up.failed) {
      this.checkpoint = up.checkpoint;
      const adopt = (up.outputs as Record<string, unknown>).adoptIds;
      if (adopt && typeof adopt === "object") this.adoptIds = adopt as Record<string, string>;
    }
    const result: FlowResult = {
      name,
      preview,
      up,
      dnsPlanned: dnsChangesOf(preview.steps),
      dnsStepped: dnsChangesOf(up.steps),
      dnsApplied: appliedChanges(this.cloudflareChanges.slice(changes)),
      commands: this.executor.calls.slice(calls),
      seconds: (Date.now() - started) / 1000,
    };
    this.flows.push(result);
    return result;
  }

  /** `pulumi preview` and `pulumi up` after the user changed the stack file with `change`. */
  async up(name: string, change?: (values: Record<string, unknown>) => void): Promise<FlowResult> {
    if (change) change(this.values);
    return this.flow(name, this.program());
  }

  /** `pulumi destroy`: every resource of the stack goes (those with retainOnDelete leave the state only). */
  async destroy(name: string): Promise<FlowResult> {
    return this.flow(name, () => ({}));
  }

  /** Writes a file of the project copy (a new version of a source, as an upgrade brings it). */
  editProjectFile(relative: string, edit: (text: string) => string): void {
    const file = path.join(this.projectDir, relative);
    const before = fs.readFileSync(file, "utf8");
    const after = edit(before);
    if (after === before) throw new Error(`editProjectFile: the edit of ${relative} changed nothing`);
    fs.writeFileSync(file, after);
  }

  /** A new mailbox in the stack file, with a random password (kept here to log in with). */
  addUser(address: string): DemoUser {
    const password = randomBytes(12).toString("base64url");
    const user = { address, password, passwordHash: argon2idHash(password) };
    this.users.push(user);
    (this.values.users as Record<string, unknown>[]).push({ address, passwordHash: user.passwordHash });
    return user;
  }

  /** The stack outputs of the last successful run. */
  get outputs(): Record<string, unknown> {
    return this.checkpoint.outputs as Record<string, unknown>;
  }

  /** The ACME certificate in the state: when it was issued, until when, its serial. */
  certificate(): { notBefore: Date; notAfter: Date; serialHex: string } | undefined {
    const r = this.checkpoint.resources.find((x) => x.type === "pulumi-nodejs:dynamic/mailstack:AcmeCertificate" && !x.delete);
    if (!r) return undefined;
    return {
      notBefore: new Date(String(r.outputs.notBefore)),
      notAfter: new Date(String(r.outputs.notAfter)),
      serialHex: String(r.outputs.serialHex),
    };
  }

  /** The stack output `hostname` (the box's name in DNS and in its certificate). */
  get hostname(): string {
    return String(this.values.hostname);
  }

  /** The hcloud world's one server, if any. */
  server() {
    return [...this.hcloud.servers.values()][0];
  }

  async stop(): Promise<void> {
    await this.backend.close().catch(() => undefined);
    await this.cloudflareApi.close().catch(() => undefined);
    await this.pebble.stop().catch(() => undefined);
    await this.knot.stop().catch(() => undefined);
    await this.internet.destroy().catch(() => undefined);
    fs.rmSync(this.projectDir, { recursive: true, force: true });
  }
}
