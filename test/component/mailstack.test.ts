// The real Pulumi program under the mock engine: resource graph, inputs, options, secrets.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { runOffline, Secret, type RecordedResource, type OfflineRun } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { UNKNOWN_ACME_ACCOUNT } from "../../infra/offline/mock-provider";
import { readStackFile } from "../../components/config/stack-file";
import { parseCharacterStrings } from "../../components/records/txt";
import { readCertificateRequest } from "../../components/shared/acme/certificate-request";
import type { PlannedRecord } from "../../components/records/types";

const root = path.resolve(__dirname, "..", "..");
const devValues = readStackFile(path.join(root, "stacks", "Pulumi.dev.yaml"));

interface Observed {
  run: OfflineRun;
  secrets: { dkimPrivate: boolean[]; passwordHashes: boolean[]; tlsKey: boolean; deployerKey: boolean };
  /** the stable TLS (certificate) key the program generated */
  tlsKeyPem: Promise<string>;
}

async function runDev(values: Record<string, unknown> = devValues): Promise<Observed> {
  const { config, secretKeys } = configFromStackValues(values);
  let probes: Promise<Observed["secrets"]> | undefined;
  let tlsKeyPem: Promise<string> | undefined;
  const run = await runOffline(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      const { stack, ...outputs } = defineMailStack();
      probes = (async () => ({
        dkimPrivate: await Promise.all(stack.dkimKeys.map((k) => pulumi.isSecret(k.privateKeyPem))),
        passwordHashes: await Promise.all(stack.users.map((u) => pulumi.isSecret(u.passwordHash))),
        tlsKey: await pulumi.isSecret(stack.tlsPrivateKeyPem),
        deployerKey: await pulumi.isSecret(stack.host.deployerPrivateKey),
      }))();
      tlsKeyPem = new Promise((resolve) => stack.tlsPrivateKeyPem.apply(resolve));
      return outputs;
    },
    { stack: "dev", config, secretKeys, ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::" },
  );
  return { run, secrets: await probes!, tlsKeyPem: tlsKeyPem! };
}

const byType = (run: OfflineRun, type: string): RecordedResource[] => run.resources.filter((r) => r.type === type);
const reveal = (v: unknown): unknown => (v instanceof Secret ? reveal(v.value) : v);
/** The TLSA record's digest: the SPKI SHA-256 of the stable TLS key. */
const tlsSpki = (run: OfflineRun): string =>
  String(
    (byType(run, "cloudflare:index/dnsRecord:DnsRecord").find((r) => r.inputs.type === "TLSA")!.inputs.data as { certificate: string })
      .certificate,
  ).toLowerCase();
const one = (run: OfflineRun, type: string, name: string): RecordedResource => {
  const found = run.resources.find((r) => r.type === type && r.name === name);
  assert.ok(found, `no ${type} named ${name}; have: ${run.resources.map((r) => `${r.type} ${r.name}`).join(", ")}`);
  return found;
};
const dnsRecord = (run: OfflineRun, name: string, type: string) =>
  byType(run, "cloudflare:index/dnsRecord:DnsRecord").filter((r) => r.inputs.name === name && r.inputs.type === type);

describe("MailStack under mocks (stacks/Pulumi.dev.yaml)", async () => {
  const observed = await runDev();
  const { run } = observed;

  test("declares exactly the expected resource graph", () => {
    const counts = new Map<string, number>();
    for (const r of run.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries([...counts].sort()), {
      "cloudflare:index/dnsRecord:DnsRecord": byType(run, "cloudflare:index/dnsRecord:DnsRecord").length,
      // MailDaemon: wait-for-ssh, install, release-volume; copies of daemon, installer, files
      "command:remote:Command": 3,
      "command:remote:CopyToRemote": 2,
      "hcloud:index/firewall:Firewall": 1,
      "hcloud:index/primaryIp:PrimaryIp": 2,
      "hcloud:index/rdns:Rdns": 2,
      "hcloud:index/server:Server": 1,
      "hcloud:index/sshKey:SshKey": 1,
      "hcloud:index/volume:Volume": 1,
      "hcloud:index/volumeAttachment:VolumeAttachment": 1,
      "mailstack:index:MailDaemon": 1,
      "mailstack:index:MailDomain": 2,
      "mailstack:index:MailHost": 1,
      "mailstack:index:MailStack": 1,
      "pulumi-nodejs:dynamic/mailstack:AcmeAccount": 1,
      "pulumi-nodejs:dynamic/mailstack:AcmeCertificate": 1,
      // MailDaemon's first step, on the deployer's machine
      "pulumi-nodejs:dynamic/mailstack:SshReachable": 1,
      // the certificate request made from the TLS key (AcmeCertificate's, kept in the state)
      "tls:index/certRequest:CertRequest": 1,
      // host key + deployer key + TLS key + ACME account key + rspamd controller seed (MailDaemon)
      // + box secrets key + (RSA + Ed25519) DKIM per domain
      "tls:index/privateKey:PrivateKey": 6 + 2 * 2,
    });
  });

  test("parents: hcloud resources under MailHost, DNS records under their MailDomain, keys under MailStack", () => {
    const urnOf = (type: string, name: string) => one(run, type, name).urn;
    const host = urnOf("mailstack:index:MailHost", "mail");
    const stack = urnOf("mailstack:index:MailStack", "mail");
    for (const r of run.resources.filter((r) => r.type.startsWith("hcloud:"))) assert.equal(r.parent, host, r.name);
    const domainUrns = new Map(byType(run, "mailstack:index:MailDomain").map((d) => [d.name, d.urn]));
    for (const r of byType(run, "cloudflare:index/dnsRecord:DnsRecord")) {
      const owner = r.name.split("/")[0];
      assert.equal(r.parent, domainUrns.get(owner), r.name);
    }
    for (const name of ["example.org-dkim-s1-rsa", "example.net-dkim-s1-ed25519", "mail-tls-key", "mail-box-secrets-key"]) {
      assert.equal(one(run, "tls:index/privateKey:PrivateKey", name).parent, stack, name);
    }
    assert.equal(one(run, "tls:index/certRequest:CertRequest", "mail-certificate-request").parent, stack);
    const daemon = urnOf("mailstack:index:MailDaemon", "mail");
    assert.equal(one(run, "tls:index/privateKey:PrivateKey", "mail-rspamd-controller").parent, daemon);
  });

  test("primary IPs are kept across rebuilds and the server is replaced delete-first", () => {
    for (const name of ["mail-ipv4", "mail-ipv6"]) {
      const ip = one(run, "hcloud:index/primaryIp:PrimaryIp", name);
      assert.equal(ip.inputs.autoDelete, false);
      assert.equal(ip.inputs.location, "fsn1");
    }
    assert.equal(one(run, "hcloud:index/primaryIp:PrimaryIp", "mail-ipv4").inputs.type, "ipv4");
    assert.equal(one(run, "hcloud:index/primaryIp:PrimaryIp", "mail-ipv6").inputs.type, "ipv6");
    const server = one(run, "hcloud:index/server:Server", "mail-server");
    assert.equal(server.options.deleteBeforeReplace, true);
    const nets = server.inputs.publicNets as { ipv4: number; ipv6: number; ipv4Enabled: boolean; ipv6Enabled: boolean }[];
    assert.equal(nets.length, 1);
    assert.equal(nets[0].ipv4Enabled && nets[0].ipv6Enabled, true);
    assert.ok(Number.isInteger(nets[0].ipv4) && Number.isInteger(nets[0].ipv6), "publicNets take numeric primary IP ids");
  });

  test("PTRs hang on the primary IPs and name the mail host for both addresses (IPv6 on ::1)", () => {
    const rdns = byType(run, "hcloud:index/rdns:Rdns").map((r) => ({
      ip: r.inputs.ipAddress,
      ptr: r.inputs.dnsPtr,
      viaPrimaryIp: typeof r.inputs.primaryIpId === "number",
      viaServer: r.inputs.serverId !== undefined,
    }));
    assert.deepEqual(
      rdns.sort((a, b) => String(a.ip).localeCompare(String(b.ip))),
      [
        { ip: "198.51.100.25", ptr: "mail.example.org", viaPrimaryIp: true, viaServer: false },
        { ip: "2001:db8:1::1", ptr: "mail.example.org", viaPrimaryIp: true, viaServer: false },
      ],
    );
  });

  test("firewall opens the mail ports to all and SSH only to the configured ranges", () => {
    const rules = one(run, "hcloud:index/firewall:Firewall", "mail-firewall").inputs.rules as {
      direction: string;
      protocol: string;
      port?: string;
      sourceIps: string[];
    }[];
    const tcp = rules.filter((r) => r.protocol === "tcp");
    assert.deepEqual(
      tcp.map((r) => r.port),
      ["22", "25", "80", "143", "443", "465", "587", "993"],
    );
    assert.ok(tcp.every((r) => r.direction === "in"));
    const ssh = tcp.find((r) => r.port === "22")!;
    assert.deepEqual(ssh.sourceIps, (devValues.server as { sshSourceRanges?: string[] }).sshSourceRanges ?? ["0.0.0.0/0", "::/0"]);
    for (const r of tcp.filter((r) => r.port !== "22")) assert.deepEqual(r.sourceIps, ["0.0.0.0/0", "::/0"]);
  });

  test("the ACME certificate covers the host and each domain's web names, with the stable TLS key", async () => {
    const cert = one(run, "pulumi-nodejs:dynamic/mailstack:AcmeCertificate", "mail-certificate");
    assert.deepEqual(cert.inputs.names, [
      "mail.example.org",
      ...["example.org", "example.net"].flatMap((d) => [`mta-sts.${d}`, `autoconfig.${d}`, `autodiscover.${d}`]),
    ]);
    assert.equal(cert.inputs.directoryUrl, "https://acme-staging-v02.api.letsencrypt.org/directory");
    // The request carries the stable TLS key's public half and the same names.
    const request = await readCertificateRequest(String(cert.inputs.csrPem));
    assert.deepEqual(request.names, cert.inputs.names);
    assert.equal(request.spkiSha256, tlsSpki(run));
    // The account key and the Cloudflare credentials are secrets in the engine's inputs.
    assert.ok(cert.inputs.accountKeyPem instanceof Secret);
    assert.ok(cert.inputs.dns01 instanceof Secret);
  });

  test("the certificate key reaches the certificate resource nowhere: its inputs hold the request, not the key", async () => {
    const cert = one(run, "pulumi-nodejs:dynamic/mailstack:AcmeCertificate", "mail-certificate");
    const keyPem = await observed.tlsKeyPem;
    const body = keyPem
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
    const inputs = JSON.stringify(cert.inputs, (_k, v: unknown) => (v instanceof Secret ? { secret: v.value } : v)).replace(/\\n/g, "");
    assert.ok(body.length > 40);
    assert.equal(inputs.includes(body.slice(0, 40)), false);
    assert.equal("certificateKeyPem" in cert.inputs, false);
  });

  test("the account is its own resource: AcmeAccount with the directory, the contact and the account key (secret)", () => {
    const account = one(run, "pulumi-nodejs:dynamic/mailstack:AcmeAccount", "mail-acme-account");
    assert.equal(account.inputs.directoryUrl, "https://acme-staging-v02.api.letsencrypt.org/directory");
    assert.equal(account.inputs.email, (devValues.acme as { email: string }).email);
    assert.ok(account.inputs.accountKeyPem instanceof Secret);
    const cert = one(run, "pulumi-nodejs:dynamic/mailstack:AcmeCertificate", "mail-certificate");
    assert.equal(cert.inputs.accountUrl, UNKNOWN_ACME_ACCOUNT);
    assert.equal(reveal(cert.inputs.accountKeyPem), reveal(account.inputs.accountKeyPem));
  });

  test("CAA binds issuance to the ACME account the AcmeAccount resource registered (RFC 8657)", () => {
    const [issue] = byType(run, "cloudflare:index/dnsRecord:DnsRecord").filter((r) => r.name === "example.org/caa/example.org/issue");
    assert.deepEqual(issue.inputs.data, {
      flags: 0,
      tag: "issue",
      value: `letsencrypt.org; accounturi=${UNKNOWN_ACME_ACCOUNT}; validationmethods=dns-01,http-01`,
    });
  });

  test("MX points at the mail host with priority 10", () => {
    for (const domain of ["example.org", "example.net"]) {
      const [mx] = dnsRecord(run, domain, "MX");
      assert.equal(mx.inputs.content, "mail.example.org");
      assert.equal(mx.inputs.priority, 10);
    }
  });

  test("the mail host's A/AAAA and HELO SPF are published once, in the zone that holds the hostname", () => {
    assert.equal(dnsRecord(run, "mail.example.org", "A").length, 1);
    assert.equal(dnsRecord(run, "mail.example.org", "A")[0].inputs.content, "198.51.100.25");
    assert.equal(dnsRecord(run, "mail.example.org", "AAAA")[0].inputs.content, "2001:db8:1::1");
    const helo = dnsRecord(run, "mail.example.org", "TXT");
    assert.equal(helo.length, 1);
    assert.equal(helo[0].inputs.content, '"v=spf1 ip4:198.51.100.25 ip6:2001:db8:1::1 -all"');
  });

  test("DKIM TXT records are RFC 1035 strings of at most 255 bytes joined by one space", () => {
    const [rsa] = dnsRecord(run, "s1-rsa._domainkey.example.org", "TXT");
    const content = String(rsa.inputs.content);
    const strings = parseCharacterStrings(content);
    assert.ok(strings.length >= 2, "a 2048-bit key needs more than one string");
    assert.ok(strings.every((s) => s.length <= 255));
    assert.match(content, /^"v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+" "[A-Za-z0-9+/=]+"$/);
    const [ed] = dnsRecord(run, "s1-ed25519._domainkey.example.org", "TXT");
    assert.match(String(ed.inputs.content), /^"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="$/);
  });

  test("every DNS record name is fully qualified and every TXT is quoted", () => {
    for (const r of byType(run, "cloudflare:index/dnsRecord:DnsRecord")) {
      const name = String(r.inputs.name);
      assert.ok(name.endsWith("example.org") || name.endsWith("example.net"), name);
      assert.ok(!name.endsWith("."), name);
      if (r.inputs.type === "TXT") assert.match(String(r.inputs.content), /^"/);
    }
  });

  test("secrets: DKIM and TLS private keys, the deployer key, password hashes and the server's user data", () => {
    assert.ok(observed.secrets.dkimPrivate.length === 4 && observed.secrets.dkimPrivate.every(Boolean));
    assert.ok(observed.secrets.passwordHashes.length >= 2 && observed.secrets.passwordHashes.every(Boolean));
    assert.equal(observed.secrets.tlsKey, true);
    assert.equal(observed.secrets.deployerKey, true);
    assert.ok(one(run, "hcloud:index/server:Server", "mail-server").inputs.userData instanceof Secret);
  });

  test("a second run produces identical record names and content", async () => {
    const again = await runDev();
    const records = (r: OfflineRun) => r.outputs.records as Record<string, PlannedRecord[]>;
    assert.deepEqual(records(again.run), records(run));
    const names = (r: OfflineRun) =>
      byType(r, "cloudflare:index/dnsRecord:DnsRecord").map((x) => [x.name, x.inputs.content ?? x.inputs.data]);
    assert.deepEqual(names(again.run), names(run));
  });
});

describe("bad stack configuration", () => {
  test("is refused before any resource is declared, naming the key", async () => {
    const bad = { ...devValues, domains: [{ ...(devValues.domains as object[])[0], dmarc: { policy: "rejct" } }] };
    const { config, secretKeys } = configFromStackValues(bad);
    const recorded: RecordedResource[] = [];
    await assert.rejects(
      runOffline(
        () => {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
          return defineMailStack();
        },
        { stack: "dev", config, secretKeys, recorded },
      ),
      /domains\[0\]\.dmarc\.policy: "rejct" is not one of none\|quarantine\|reject/,
    );
    assert.deepEqual(
      recorded.filter((r) => r.type !== "pulumi:pulumi:Stack").map((r) => r.type),
      [],
    );
  });
});
