// The whole mailstack system on one machine: a local internet of network namespaces, DNS exactly
// as the Pulumi program plans it, a certificate from an ACME CA, maild deployed over SSH the way
// `pulumi up` deploys it, and mail both ways with a Postfix peer. `npm start` runs it
// (infra/demo/main.ts); the end-to-end tests run the same flow through `runDemo` and then break
// things on purpose.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { LocalInternet, runCommand, type NetHost } from "../local-internet/netns";
import { startKnot, type KnotServer } from "../local-internet/knot";
import { startPebble, type PebbleCa } from "../local-internet/pebble";
import { createAccount } from "../../components/providers/acme-account";
import { createCertificate, type CertificateOutputs } from "../../components/providers/acme-certificate";
import type { TlsaData } from "../../components/records/types";
import { parsePinnedHostKey, sha256Fingerprint } from "../../server-bootstrap/install/host-key-pin";
import { addDemoHost, buildDemoNetwork, type DemoHosts } from "./demo-network";
import { planDemoStack, demoUsers, type DemoUser, type PlannedStack } from "./planned-stack";
import { countByType, demoZones, NAMESERVER_ZONE, type KnotZone } from "./zones";
import { startBoxServer, deployToBox, type DeployedBox } from "./box";
import { PEER_DOMAIN, PEER_HOSTNAME, peerDkimKey, startPeer, type MailPeer } from "./peer";
import { checkMtaSts, checkSpamFilter, readOverImap, sendInbound, sendOutbound } from "./mail-flows";
import { Progress } from "./progress";
import type { DemoReport } from "./report";
import { stackFilePath } from "../cli/plan";

/** Pebble checks no CAA; the records name it by this identity (RFC 8659 4.2 issuer domain). */
export const DEMO_CAA_IDENTITY = "pebble.internet.test";

export interface DemoOptions {
  /** directory holding Pulumi.yaml and stacks/; default this repository */
  projectDir?: string;
  /** the example stack to run; default "dev" */
  stack?: string;
  /** where progress lines go; default stdout */
  write?: (text: string) => void;
}

export interface DemoHandle {
  /** the Pulumi project the stack came from */
  projectDir: string;
  internet: LocalInternet;
  hosts: DemoHosts;
  /** the box's IPv6 /64 (what `mailstack plan --ipv6` takes); the box is its ::1 */
  boxIpv6Network: string;
  /** another host in the local internet (e.g. where `mailstack check` runs): DNS is knot, the box is reachable */
  addHost(name: string): Promise<NetHost>;
  /** every zone knot serves, as loaded */
  zones: KnotZone[];
  knot: KnotServer;
  pebble: PebbleCa;
  /** the ACME CA's issuing root: trust it to verify the box (SMTP, HTTPS, IMAP) */
  caRootPem: string;
  caRootPemPath: string;
  plan: PlannedStack;
  users: DemoUser[];
  certificate: CertificateOutputs;
  box: DeployedBox;
  peer: MailPeer;
  report: DemoReport;
  /**
   * The \`mailstack check\` arguments (after \`mailstack\`) that check this system from this machine,
   * every row passing: the stack's first domain, compared with the stack as deployed here (a copy
   * of the project whose stack names pebble as its CA), through knot, trusting pebble's root.
   */
  checkArgs: string[];
  /** tears everything down (idempotent); never rejects */
  stop(): Promise<void>;
}

const STEPS = 14;
const REPO = path.resolve(__dirname, "../..");

/** Root on Debian or Ubuntu, then the Debian packages the local internet runs on. */
async function preflight(projectDir: string): Promise<string> {
  if (process.getuid?.() !== 0)
    throw new Error("the demo needs root (network namespaces, servers on ports 25-993): run it as root, e.g. sudo npm start");
  const osRelease = fs.existsSync("/etc/os-release") ? fs.readFileSync("/etc/os-release", "utf8") : "";
  const field = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, "m").exec(osRelease)?.[1] ?? "";
  const family = `${field("ID")} ${field("ID_LIKE")}`;
  if (!/\b(debian|ubuntu)\b/.test(family)) {
    throw new Error(
      `the demo runs on Debian or Ubuntu (it installs Debian packages); this is ${field("PRETTY_NAME") || "an unknown system"}`,
    );
  }
  const script = path.join(projectDir, "infra/local-internet/install-packages.sh");
  const r = await runCommand(["bash", script]);
  if (r.code !== 0)
    throw new Error(`${script} failed (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" | ")}`);
  return `${field("PRETTY_NAME")}, packages ${/apt-get|Setting up/.test(r.stdout) ? "installed" : "present"}`;
}

function caaAccountUris(plan: PlannedStack): string[] {
  const uris = Object.values(plan.zones)
    .flat()
    .filter((r) => r.type === "CAA")
    .map((r) => /accounturi=([^;"\s]+)/.exec(r.content)?.[1])
    .filter((u): u is string => u !== undefined);
  return [...new Set(uris)];
}

function tlsaSha256(plan: PlannedStack): string | undefined {
  const tlsa = Object.values(plan.zones)
    .flat()
    .find((r) => r.type === "TLSA");
  // The planner writes the hex as Cloudflare returns it (upper case); digests compare in lower case.
  return (tlsa?.data as TlsaData | undefined)?.certificate.toLowerCase();
}

interface CheckSetup {
  projectDir: string;
  stack: string;
  plan: PlannedStack;
  acme: { directoryUrl: string; caaIdentity: string };
  resolver: string;
  caRootPemPath: string;
  ipv4: string;
  ipv6Network: string;
  acmeAccountUrl: string;
}

/**
 * What \`mailstack check\` needs to compare this system with its plan, as a user has it after
 * \`pulumi up\`: the stack file with the CA it was deployed with (pebble, not the example's Let's
 * Encrypt: the CAA records name pebble), and the deployed DKIM keys (\`pulumi stack output
 * dkimPublicKeys --json\`). Returns the check's arguments.
 */
function writeCheckSetup(workDir: string, c: CheckSetup): string[] {
  const project = path.join(workDir, "check-project");
  fs.mkdirSync(path.join(project, "stacks"), { recursive: true });
  fs.copyFileSync(path.join(c.projectDir, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
  const stackFile = parseDocument(fs.readFileSync(stackFilePath(c.projectDir, c.stack), "utf8"));
  stackFile.setIn(["config", "mailstack:acme", "directory"], c.acme.directoryUrl);
  stackFile.setIn(["config", "mailstack:acme", "caaIdentity"], c.acme.caaIdentity);
  fs.writeFileSync(stackFilePath(project, c.stack), stackFile.toString());
  const dkimKeys = path.join(workDir, "dkim-public-keys.json");
  fs.writeFileSync(dkimKeys, JSON.stringify(c.plan.dkimPublicKeys));
  const domain = c.plan.deploy.domains[0].name;
  return [
    "check",
    domain,
    "--stack",
    c.stack,
    "--project",
    project,
    "--resolver",
    c.resolver,
    "--ca",
    c.caRootPemPath,
    "--ipv4",
    c.ipv4,
    "--ipv6",
    c.ipv6Network,
    "--acme-account",
    c.acmeAccountUrl,
    "--dkim-keys",
    dkimKeys,
  ];
}

/**
 * Builds the local internet and runs the whole flow. Infrastructure failures (DNS, certificate,
 * deployment) tear everything down and reject; the mail checks never reject: their failures are
 * in `report` (see reportFailures) and the system stays up for inspection until `stop()`.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoHandle> {
  const projectDir = opts.projectDir ?? REPO;
  const stack = opts.stack ?? "dev";
  const progress = new Progress(STEPS, opts.write ?? ((t) => process.stdout.write(t)));
  const stoppers: (() => Promise<void>)[] = [];
  let internet: LocalInternet | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // Each server gracefully (they are independent: all at once), then the namespaces with
      // whatever still runs in them.
      await Promise.all(stoppers.map((s) => s().catch(() => undefined)));
      await internet?.destroy().catch(() => undefined);
    })();
    return stopping;
  };

  try {
    await progress.step(
      "checking the machine: root, Debian/Ubuntu, Debian packages",
      () => preflight(projectDir),
      (note) => ({ ok: true, note }),
    );

    const network = await progress.step(
      "building the local internet: namespaces dns, ca, box, peer",
      async () => {
        internet = await LocalInternet.create();
        const n = await buildDemoNetwork(internet);
        await internet.setResolver(n.hosts.dns.ipv4);
        return n;
      },
      (n) => ({ ok: true, note: `box ${n.hosts.box.ipv4} ${n.hosts.box.ipv6}, peer ${n.hosts.peer.ipv4}` }),
    );
    const { dns, ca, box, peer } = network.hosts;
    const net = internet!;

    const pebble = await progress.step(
      "starting the ACME CA (pebble) on ca",
      async () => {
        const p = await startPebble(net, ca, { dnsServer: `${dns.ipv4}:53` });
        stoppers.push(() => p.stop());
        return p;
      },
      (p) => ({ ok: true, note: p.directoryUrl }),
    );
    const caRootPem = await pebble.issuingRootPem();
    const caRootPemPath = path.join(net.workDir, "ca-root.pem");
    fs.writeFileSync(caRootPemPath, caRootPem, { mode: 0o644 });

    const users = await progress.step(
      `creating the stack's users with random passwords (argon2id)`,
      async () => demoUsers(projectDir, stack),
      (u) => ({ ok: true, note: u.map((x) => x.address).join(", ") }),
    );

    const plan = await progress.step(
      `running the Pulumi program offline for stack ${stack} (box addresses, pebble as CA)`,
      async () => {
        const base = {
          projectDir,
          stack,
          users,
          acme: { directoryUrl: pebble.directoryUrl, caaIdentity: DEMO_CAA_IDENTITY },
          ipv4: box.ipv4,
          ipv6Network: network.boxIpv6Network,
        };
        // The CAA record names the ACME account (RFC 8657), which exists once the program's account
        // key is registered: plan, register that key as AcmeAccount's provider does, plan again
        // with its URL (same keys: the offline engine keeps them per resource, as Pulumi's state would).
        const first = await planDemoStack(base);
        const { outs: account } = await createAccount({
          directoryUrl: pebble.directoryUrl,
          accountKeyPem: first.certificate.accountKeyPem,
          ...(first.certificate.email !== undefined ? { email: first.certificate.email } : {}),
          extraCaPem: pebble.listenerCaPem,
        });
        return planDemoStack({ ...base, acmeAccountUrl: account.accountUrl });
      },
      (p) => ({
        ok: true,
        note: `${p.resourceCount} resources, ${Object.values(p.zones).flat().length} DNS records, ${p.ptr.length} PTRs`,
      }),
    );

    for (const own of [PEER_DOMAIN, NAMESERVER_ZONE]) {
      if (Object.keys(plan.zones).some((z) => z === own || z.endsWith(`.${own}`) || own.endsWith(`.${z}`))) {
        throw new Error(`stack ${stack} manages ${own}, which the demo's local internet uses itself; pick another stack`);
      }
    }
    const peerDkim = peerDkimKey();
    const zones = demoZones({
      planned: plan.zones,
      ptr: plan.ptr,
      nameserver: { ipv4: dns.ipv4, ipv6: dns.ipv6 },
      peer: {
        domain: PEER_DOMAIN,
        hostname: PEER_HOSTNAME,
        ipv4: peer.ipv4,
        ipv6: peer.ipv6,
        dkimSelector: peerDkim.selector,
        dkimPublicKeyB64: peerDkim.publicKeyB64,
      },
    });
    const knot = await progress.step(
      "publishing DNS on knot: the planned zones, PTRs, the peer's domain",
      async () => {
        const k = await startKnot(net, dns, zones);
        stoppers.push(() => k.stop());
        return k;
      },
      () => ({ ok: true, note: zones.map((z) => z.origin.replace(/\.$/, "")).join(", ") }),
    );

    const certificate = await progress.step(
      "issuing the certificate from pebble (DNS-01 via RFC 2136 into knot)",
      async () => {
        const { email: _email, ...request } = plan.certificate;
        const { outs } = await createCertificate({
          // the program's own account and certificate request
          ...request,
          dns01: {
            provider: "rfc2136",
            server: dns.ipv4,
            tsigName: knot.tsig.name,
            tsigAlgorithm: knot.tsig.algorithm,
            tsigSecret: knot.tsig.secretB64,
          },
          propagationTimeoutSeconds: 20,
          propagationResolvers: [dns.ipv4],
          extraCaPem: pebble.listenerCaPem,
          backoffMinMs: 100,
        });
        const caa = caaAccountUris(plan);
        if (caa.length !== 1 || caa[0] !== outs.accountUrl) {
          throw new Error(`the certificate was ordered by ${outs.accountUrl}, but CAA names ${caa.join(", ") || "no account"}`);
        }
        return outs;
      },
      (c) => ({ ok: true, note: `${c.names.length} names, expires ${c.notAfter}` }),
    );

    const deployed = await progress.step(
      "deploying maild over SSH into box (pinned host key), starting Dovecot and the spam filter (rspamd, Redis, unbound)",
      async () => {
        const server = await startBoxServer(net, box);
        const d = await deployToBox(
          server,
          {
            ...plan.deploy,
            tls: { certificatePem: certificate.certificatePem, privateKeyPem: plan.deploy.tls.privateKeyPem },
            // What MailStack deploys when given `certificate.extraCaPem`: the box renews from a test CA.
            ...(plan.deploy.acme ? { acme: { ...plan.deploy.acme, extraCaPem: pebble.listenerCaPem } } : {}),
          },
          plan.daemonBundle,
          plan.rspamdControllerPassword,
        );
        // maild stops over SSH, as deleting the deployment does: sshd goes last.
        stoppers.push(() => d.stop().finally(() => server.sshd.stop()));
        return d;
      },
      (d) => ({ ok: true, note: d.installSummary.replace(/changed=\S+ /, "") }),
    );

    const mailPeer = await progress.step(
      "starting the peer: Postfix with opendkim, opendmarc, postfix-mta-sts-resolver",
      async () => {
        const p = await startPeer(net, peer, { dkim: peerDkim, trustRootPem: caRootPem });
        stoppers.push(() => p.stop());
        return p;
      },
      (p) => ({ ok: true, note: `${p.hostname}, mailbox ${p.user}` }),
    );

    const user = users[0];
    const inbound = await progress.step(
      `mail ${mailPeer.user} -> ${user.address} (Postfix, MX, STARTTLS)`,
      () => sendInbound(mailPeer, user.address),
      (r) => ({ ok: r.ok, note: r.ok ? r.tls : r.error }),
    );

    const imapLogin = { host: box.ipv4, servername: plan.hostname, caPem: caRootPem, user: user.address, password: user.password };
    const imap = await progress.step(
      `${user.address} reads it over IMAPS (Dovecot, 993)`,
      () => readOverImap(imapLogin, inbound.messageId, plan.hostname),
      (r) => ({
        ok: r.ok,
        note: r.ok ? `Authentication-Results: spf=${r.verdicts.spf} dkim=${r.verdicts.dkim} dmarc=${r.verdicts.dmarc}` : r.error,
      }),
    );

    const outbound = await progress.step(
      `mail ${user.address} -> ${mailPeer.user} (submission 587, maild delivers)`,
      () => sendOutbound(imapLogin, mailPeer, deployed.maildLogPath),
      (r) => ({
        ok: r.ok,
        note: r.ok ? `the peer says spf=${r.peerVerdicts.spf} dkim=${r.peerVerdicts.dkim} dmarc=${r.peerVerdicts.dmarc}` : r.error,
      }),
    );

    const mtaSts = await progress.step(
      "checking MTA-STS: policy over HTTPS, id in DNS, the peer's resolver",
      () => Promise.all(plan.deploy.domains.map((d) => checkMtaSts(d.name, d.mtaStsPolicy, dns.ipv4, caRootPem, mailPeer))),
      (rs) => ({ ok: rs.every((r) => r.ok), note: rs.map((r) => r.error ?? `${r.domain} ${r.mode}`).join("; ") }),
    );

    const spam = await progress.step(
      "checking the spam filter: rspamd's verdict on that mail, GTUBE refused at DATA",
      () =>
        checkSpamFilter(
          { host: box.ipv4, servername: plan.hostname, caPem: caRootPem, to: user.address },
          deployed.maildLogPath,
          mailPeer.user,
        ),
      (r) => ({
        ok: r.ok,
        note: r.ok
          ? `the peer's mail: ${r.inbound!.action} (score ${r.inbound!.score}, ${r.inbound!.outcome}); GTUBE: ${r.gtubeReply}`
          : r.error,
      }),
    );

    const checkArgs = writeCheckSetup(net.workDir, {
      projectDir,
      stack,
      plan,
      acme: { directoryUrl: pebble.directoryUrl, caaIdentity: DEMO_CAA_IDENTITY },
      resolver: dns.ipv4,
      caRootPemPath,
      ipv4: box.ipv4,
      ipv6Network: network.boxIpv6Network,
      acmeAccountUrl: certificate.accountUrl,
    });

    const report: DemoReport = {
      stack,
      hostname: plan.hostname,
      dns: {
        zones: Object.keys(plan.zones),
        byType: countByType(plan.zones),
        total: Object.values(plan.zones).flat().length,
        ptr: plan.ptr,
      },
      certificate: {
        issuer: certificate.issuer,
        names: certificate.names,
        notAfter: certificate.notAfter,
        accountUrl: certificate.accountUrl,
        caaAccountUris: caaAccountUris(plan),
        spkiSha256: certificate.spkiSha256,
        tlsaSha256: tlsaSha256(plan),
      },
      deploy: {
        hostKeyFingerprint: sha256Fingerprint(parsePinnedHostKey(deployed.ssh.hostKey).blob),
        installSummary: deployed.installSummary,
      },
      inbound,
      imap,
      outbound,
      mtaSts,
      spam,
    };
    return {
      projectDir,
      internet: net,
      hosts: network.hosts,
      boxIpv6Network: network.boxIpv6Network,
      addHost: (name) => addDemoHost(net, name, network.boxIpv6Network),
      zones,
      knot,
      pebble,
      caRootPem,
      caRootPemPath,
      plan,
      users,
      certificate,
      box: deployed,
      peer: mailPeer,
      report,
      checkArgs,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
