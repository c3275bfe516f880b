/**
 * MailDaemon's deploy steps as the SSH integration tests run them: the exact command strings
 * (server-bootstrap/install/deploy-commands.ts) over ssh2 with the host key pinned, into a fresh
 * root directory that stands in for a newly booted box, with --no-systemctl.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { connectPinned, copyToRemote, exec, type SshTarget } from "../../infra/local-internet/sshd";
import { runCommand } from "../../infra/local-internet/netns";
import { type BoxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { renderManifest } from "../../server-bootstrap/install/file-manifest";
import { installScript } from "../../server-bootstrap/install/install-script";
import {
  installCommand,
  sha256Hex,
  stagedPath,
  stopCommand,
  waitCommand,
  type InstallDigests,
} from "../../server-bootstrap/install/deploy-commands";

const REPO = path.resolve(__dirname, "../..");
export const NODE = path.join(REPO, "node_modules/node/bin/node");

/** A root directory standing in for a freshly booted box: account databases, and Node where cloud-init puts it. */
export function freshRoot(base: string, name: string): string {
  const root = path.join(base, name);
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  for (const f of ["passwd", "group", "shadow", "gshadow"]) fs.copyFileSync(`/etc/${f}`, path.join(root, "etc", f));
  fs.mkdirSync(path.join(root, "usr/local/bin"), { recursive: true });
  fs.symlinkSync(NODE, path.join(root, "usr/local/bin/node"));
  return root;
}

/** A self-signed certificate with a fresh EC key, for a name and optionally IP addresses. */
export async function selfSignedCert(
  dir: string,
  name: string,
  ips: string[] = [],
): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const san = [`DNS:${name}`, ...ips.map((ip) => `IP:${ip}`)].join(",");
  const r = await runCommand([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "30",
    "-subj",
    `/CN=${name}`,
    "-addext",
    `subjectAltName=${san}`,
  ]);
  if (r.code !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { certificatePem: fs.readFileSync(cert, "utf8"), privateKeyPem: fs.readFileSync(key, "utf8") };
}

export interface Deployment {
  layout: BoxLayout;
  stageDir: string;
  input: DeployInput;
  /** the machine id the wait step read at the last deploy */
  machine?: string;
}

export interface DeployResult {
  code: number | null;
  machine: string;
  /** the install script's last line */
  summary: string;
  stdout: string;
  stderr: string;
}

/** What MailDaemon's install step gets: the manifest for its stdin, and the digests its command line names. */
export function installPayload(d: Deployment, bundle: string): { manifest: string; digests: InstallDigests } {
  const manifest = renderManifest(deployFiles(d.layout, d.input));
  return {
    manifest,
    digests: { installer: sha256Hex(installScript(d.layout)), daemon: sha256Hex(fs.readFileSync(bundle)), files: sha256Hex(manifest) },
  };
}

/** The MailDaemon steps in order (wait-for-ssh, the two copies, install with the manifest on stdin); does not assert success. */
export async function tryDeploy(target: SshTarget, d: Deployment, bundle: string): Promise<DeployResult> {
  const conn = await connectPinned(target);
  try {
    const opts = { stageDir: d.stageDir, noSystemctl: true };
    const wait = await exec(conn, waitCommand(opts));
    assert.equal(wait.code, 0, `wait step failed: ${wait.stderr}`);
    await copyToRemote(conn, fs.readFileSync(bundle), stagedPath(opts, "daemon"));
    await copyToRemote(conn, installScript(d.layout), stagedPath(opts, "installer"));
    const { manifest, digests } = installPayload(d, bundle);
    const install = await exec(conn, installCommand(opts, digests), manifest);
    d.machine = wait.stdout.trim();
    return {
      code: install.code,
      machine: d.machine,
      summary: install.stdout.trim().split("\n").pop() ?? "",
      stdout: install.stdout,
      stderr: install.stderr,
    };
  } finally {
    conn.end();
  }
}

/** tryDeploy that must succeed. */
export async function deploy(target: SshTarget, d: Deployment, bundle: string): Promise<DeployResult> {
  const r = await tryDeploy(target, d, bundle);
  assert.equal(r.code, 0, `install failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** The install step's delete (stop maild), as recorded for the machine it ran on (the last deploy's, unless named). */
export async function stopDeployment(target: SshTarget, d: Deployment, machine = d.machine): Promise<void> {
  assert.ok(machine, "stop before any deploy");
  const conn = await connectPinned(target);
  try {
    const r = await exec(conn, stopCommand({ stageDir: d.stageDir, noSystemctl: true }, machine));
    assert.equal(r.code, 0, `stop failed: ${r.stderr}`);
  } finally {
    conn.end();
  }
}

export const maildPid = (layout: BoxLayout): number | undefined => {
  const file = path.join(layout.runDir, "maild.pid");
  return fs.existsSync(file) ? Number(fs.readFileSync(file, "utf8")) : undefined;
};
