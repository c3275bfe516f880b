// Issue 13 item 2: during a preview the engine hands a dynamic provider's check and diff the
// unknown sentinel for every input not known yet, anywhere in the inputs (research/engine.md 10:
// the host calls toJavaScript() on the wire form; rpc.ts unknownValue). The first preview of a
// fresh stack has the keys unknown; so does every preview that replaces a key.
//
// For each provider and for every input path (whole values, object fields, array elements), the
// input is made unknown and:
// - check reports no failure and hands the inputs back as they came (sentinel included);
// - diff reports the change the unknown may be: the replacement keys exactly when the input
//   replaces the resource, an update when it changes the state, nothing when it never does.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UNKNOWN } from "../../components/providers/engine-values";
import * as account from "../../components/providers/acme-account";
import * as certificate from "../../components/providers/acme-certificate";
import * as ssh from "../../components/providers/ssh-reachable";
import { readCertificateInfo, spkiSha256OfKey } from "../../components/shared/acme/certificate-info";

const DAY = 86_400_000;
const ecPem = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();

// Never contacted: the certificate below has no Authority Key Identifier, so the diff has no ARI
// certificate ID (RFC 9773 4.1) to ask the directory about.
const DIRECTORY = "https://127.0.0.1:9/directory";
const names = ["mail.example.org", "mta-sts.example.org"];
const accountKeyPem = ecPem();
const certificateKeyPem = ecPem();

function selfSigned(keyPem: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unknowns-"));
  try {
    fs.writeFileSync(path.join(dir, "key.pem"), keyPem);
    execFileSync("openssl", [
      "req",
      "-x509",
      "-new",
      "-key",
      path.join(dir, "key.pem"),
      "-subj",
      "/CN=mail.example.org",
      "-addext",
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      "-addext",
      "authorityKeyIdentifier=none",
      "-addext",
      "subjectKeyIdentifier=none",
      "-days",
      "90",
      "-out",
      path.join(dir, "cert.pem"),
    ]);
    return fs.readFileSync(path.join(dir, "cert.pem"), "utf8");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A certificate request for `names` made the way @pulumi/tls's CertRequest makes it: once, by OpenSSL here. */
function certificateRequest(keyPem: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unknowns-"));
  try {
    fs.writeFileSync(path.join(dir, "key.pem"), keyPem);
    return execFileSync(
      "openssl",
      [
        "req",
        "-new",
        "-key",
        path.join(dir, "key.pem"),
        "-subj",
        "/CN=mail.example.org",
        "-addext",
        `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      ],
      { encoding: "utf8" },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function opensshKeyPair(): { privateKey: string; publicKey: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "unknowns-"));
  try {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
    return { privateKey: fs.readFileSync(path.join(dir, "k"), "utf8"), publicKey: fs.readFileSync(path.join(dir, "k.pub"), "utf8").trim() };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every path into a value: each key, each element, and everything below them. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...paths(v, [...prefix, i])]);
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...paths(v, [...prefix, k])]);
  return [];
}

function withUnknownAt<T>(value: T, at: (string | number)[]): T {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of at.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[at[at.length - 1]] = UNKNOWN;
  return copy as T;
}

interface Case {
  label: string;
  provider: { check?: (o: never, n: never) => Promise<unknown>; diff?: (id: string, o: never, n: never) => Promise<unknown> };
  news: Record<string, unknown>;
  olds: Record<string, unknown>;
  /** the top-level input -> what an unknown (or any change) of it does */
  effect: Record<string, { replaces: string[] } | "update" | "none">;
}

const certificatePem = selfSigned(certificateKeyPem);
const info = readCertificateInfo(certificatePem);
const now = Date.now();
const certificateOutputs: certificate.CertificateOutputs = {
  directoryUrl: DIRECTORY,
  accountUrl: "https://127.0.0.1:9/acme/acct/1",
  names,
  certificatePem,
  notBefore: new Date(now - 10 * DAY).toISOString(),
  notAfter: new Date(now + 80 * DAY).toISOString(),
  issuer: info.issuer,
  serialHex: info.serialHex,
  spkiSha256: spkiSha256OfKey(certificateKeyPem),
  issueReason: "new certificate",
  renewBeforeFraction: 0.25,
};
const certificateInputs = {
  directoryUrl: DIRECTORY,
  accountUrl: "https://127.0.0.1:9/acme/acct/1",
  accountKeyPem,
  csrPem: certificateRequest(certificateKeyPem),
  names,
  dns01: { provider: "rfc2136", server: "192.0.2.53", tsigName: "acme.", tsigAlgorithm: "hmac-sha256", tsigSecret: "c2VjcmV0" },
  propagationTimeoutSeconds: 60,
  propagationResolvers: ["192.0.2.53"],
  revokeOnDelete: false,
  renewBeforeFraction: 0.25,
};
const deployer = opensshKeyPair();
const hostKey = opensshKeyPair().publicKey;
const sshInputs = {
  host: "198.51.100.7",
  port: 22,
  user: "root",
  hostKey,
  privateKey: deployer.privateKey,
  timeoutSeconds: 600,
  instance: "4711",
};

const CASES: Case[] = [
  {
    label: "AcmeAccount",
    provider: account.provider as Case["provider"],
    news: { directoryUrl: DIRECTORY, accountKeyPem, email: "postmaster@example.org" },
    olds: {
      directoryUrl: DIRECTORY,
      email: "postmaster@example.org",
      accountUrl: "https://127.0.0.1:9/acme/acct/1",
      accountKeyThumbprint: account.accountKeyThumbprint(accountKeyPem),
    },
    effect: { directoryUrl: { replaces: ["directoryUrl"] }, accountKeyPem: { replaces: ["accountKeyPem"] }, email: "update" },
  },
  {
    label: "AcmeCertificate",
    provider: certificate.provider as Case["provider"],
    news: certificateInputs,
    olds: certificateOutputs as unknown as Record<string, unknown>,
    effect: {
      directoryUrl: { replaces: ["directoryUrl"] },
      accountUrl: "update",
      csrPem: "update",
      names: "update",
      revokeOnDelete: "update",
      renewBeforeFraction: "update",
      // Used by the next issuance only and never stored in the outputs: no change of state. The
      // account key is stored only with revokeOnDelete (below); the account URL names the account.
      accountKeyPem: "none",
      dns01: "none",
      propagationTimeoutSeconds: "none",
      propagationResolvers: "none",
    },
  },
  {
    label: "AcmeCertificate with revokeOnDelete",
    provider: certificate.provider as Case["provider"],
    news: { ...certificateInputs, revokeOnDelete: true },
    olds: { ...certificateOutputs, revokeOnDelete: true, accountKeyPem } as unknown as Record<string, unknown>,
    effect: { accountKeyPem: "update" },
  },
  {
    label: "SshReachable",
    provider: ssh.provider as Case["provider"],
    news: sshInputs,
    olds: {
      host: "198.51.100.7",
      port: 22,
      user: "root",
      hostKey,
      instance: "4711",
      deployerKeyFingerprint: ssh.deployerKeyFingerprint(deployer.privateKey),
      message: "SSH at 198.51.100.7:22 presents the pinned ssh-ed25519 host key",
    },
    effect: {
      instance: { replaces: ["instance"] },
      hostKey: { replaces: ["hostKey"] },
      host: "update",
      port: "update",
      user: "update",
      privateKey: "update",
      timeoutSeconds: "none",
    },
  },
];

for (const c of CASES) {
  describe(`${c.label}: check and diff with unknown inputs`, () => {
    test("with every input known and unchanged: no failure, no change", async () => {
      const checked = (await c.provider.check!({} as never, c.news as never)) as { inputs: unknown; failures: unknown[] };
      assert.deepEqual(checked.failures, []);
      const d = (await c.provider.diff!("id", c.olds as never, c.news as never)) as { changes: boolean; replaces: string[] };
      assert.deepEqual({ changes: d.changes, replaces: d.replaces }, { changes: false, replaces: [] });
    });

    for (const at of paths(c.news)) {
      const top = String(at[0]);
      const effect = c.effect[top];
      if (effect === undefined) continue;
      const label = at.join(".");
      const expected =
        effect === "none"
          ? { changes: false, replaces: [] }
          : effect === "update"
            ? { changes: true, replaces: [] }
            : { changes: true, ...effect };
      test(`${label} unknown: check passes it through without failure; diff says ${JSON.stringify(expected)}`, async () => {
        const news = withUnknownAt(c.news, at);
        const checked = (await c.provider.check!({} as never, news as never)) as { inputs: unknown; failures: unknown[] };
        assert.deepEqual(checked.failures, []);
        assert.deepEqual(checked.inputs, news);
        const d = (await c.provider.diff!("id", c.olds as never, news as never)) as { changes: boolean; replaces: string[] };
        assert.deepEqual({ changes: d.changes, replaces: d.replaces }, expected);
      });
    }
  });
}

describe("unknown inputs do not hide bad known ones", () => {
  test("AcmeCertificate: keys and request unknown (a first preview), a plain-http directory still fails check by name", async () => {
    const news = {
      ...certificateInputs,
      accountKeyPem: UNKNOWN,
      csrPem: UNKNOWN,
      accountUrl: UNKNOWN,
      directoryUrl: "http://acme.example/dir",
    };
    const { failures } = (await certificate.provider.check!({}, news)) as { failures: { property: string }[] };
    assert.deepEqual(
      failures.map((f) => f.property),
      ["directoryUrl"],
    );
  });

  test("SshReachable: host unknown (the server's address before it exists), a malformed pin still fails check", async () => {
    const { failures } = (await ssh.provider.check!({}, { ...sshInputs, host: UNKNOWN, hostKey: "ssh-ed25519 bm90IGEga2V5" })) as {
      failures: { property: string; reason: string }[];
    };
    assert.deepEqual(failures, [
      { property: "hostKey", reason: 'hostKey: the base64 after "ssh-ed25519" is not a ssh-ed25519 public key' },
    ]);
  });

  test("AcmeCertificate: a request for other names than `names` fails check, naming both", async () => {
    const news = { ...certificateInputs, names: ["mail.example.org"] };
    const { failures } = (await certificate.provider.check!({}, news)) as { failures: { property: string; reason: string }[] };
    assert.deepEqual(failures, [
      { property: "csrPem", reason: "csrPem: asks for mail.example.org, mta-sts.example.org, but names are mail.example.org" },
    ]);
  });
});
