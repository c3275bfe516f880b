// The deploy's first step, run exactly as MailDaemon's local.Command runs it (same interpreter,
// script, environment and stdin), against OpenSSH's sshd in a network namespace: the right pin
// passes, a wrong pin is refused at once naming both fingerprints, silence ends at the bound.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import { LocalInternet, runCommand, type NetHost, type RunResult } from "../../infra/local-internet/netns";
import { ed25519KeyPair, startSshd, type KeyPair, type SshServer } from "../../infra/local-internet/sshd";
import {
  waitForSshEnvironment,
  waitForSshInvocation,
  type WaitForSshInvocation,
} from "../../server-bootstrap/install/wait-for-ssh-command";

const REPO = path.resolve(__dirname, "../..");
const INSTALL_DIR = path.join(REPO, "server-bootstrap/install");

interface Target {
  host: string;
  port: number;
  hostKey: string;
  privateKey: string;
  timeoutSeconds: number;
}

/** Runs the script; `guardMs` kills it if it hangs (then its code is not 0, 1 or 2). */
function runWait(invocation: WaitForSshInvocation, t: Target, guardMs = 60_000): Promise<RunResult> {
  const env = waitForSshEnvironment({
    host: t.host,
    port: String(t.port),
    user: "root",
    hostKey: t.hostKey,
    timeoutSeconds: String(t.timeoutSeconds),
  });
  return runCommand([...invocation.interpreter, invocation.script], {
    env: { PATH: process.env.PATH, ...env },
    input: t.privateKey,
    timeoutMs: guardMs,
  });
}

/** OpenSSH's own SHA256 fingerprint of a public key line (ssh-keygen -l), to check ours against. */
async function opensshFingerprint(dir: string, publicKey: string): Promise<string> {
  const file = path.join(dir, `fp-${Math.random().toString(36).slice(2)}.pub`);
  fs.writeFileSync(file, `${publicKey}\n`);
  const r = await runCommand(["ssh-keygen", "-l", "-E", "sha256", "-f", file]);
  assert.equal(r.code, 0, `ssh-keygen -l: ${r.stderr}`);
  return r.stdout.split(" ")[1];
}

/** The published package's layout: the install folder compiled to .js as tsc emits it, no TypeScript loader. */
function compiledCopy(): string {
  const cache = path.join(REPO, "node_modules", ".cache");
  fs.mkdirSync(cache, { recursive: true });
  const dir = fs.mkdtempSync(path.join(cache, "wait-for-ssh-"));
  for (const name of fs
    .readdirSync(INSTALL_DIR)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.slice(0, -3))) {
    const source = fs.readFileSync(path.join(INSTALL_DIR, `${name}.ts`), "utf8");
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2023, esModuleInterop: true },
      fileName: `${name}.ts`,
    });
    fs.writeFileSync(path.join(dir, `${name}.js`), out.outputText);
  }
  return dir;
}

describe("wait-for-ssh against sshd in a namespace", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let sshd: SshServer;
  let stranger: KeyPair;
  let fromSources: WaitForSshInvocation;
  let compiledDir: string;

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("wait-for-ssh tests need root (network namespaces, sshd)");
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    sshd = await startSshd(internet, box);
    stranger = await ed25519KeyPair(internet.workDir, "stranger");
    fromSources = waitForSshInvocation(INSTALL_DIR);
    compiledDir = compiledCopy();
  });

  after(async () => {
    if (compiledDir) fs.rmSync(compiledDir, { recursive: true, force: true });
    await sshd?.stop();
    await internet?.destroy();
  });

  const target = (over: Partial<Target> = {}): Target => ({
    host: box.ipv4,
    port: sshd.port,
    hostKey: sshd.hostKey,
    privateKey: sshd.client.privateKey,
    timeoutSeconds: 600,
    ...over,
  });

  test("from sources the script runs through a TypeScript loader with this Node", () => {
    assert.equal(fromSources.interpreter[0], process.execPath);
    assert.equal(fromSources.interpreter[1], "--require");
    assert.equal(fromSources.script, path.join(INSTALL_DIR, "wait-for-ssh.ts"));
  });

  test("the right pinned key: exits 0 and names the verified fingerprint, never the private key", async () => {
    const r = await runWait(fromSources, target());
    assert.equal(r.code, 0, r.stderr);
    const fp = await opensshFingerprint(internet.workDir, sshd.hostKey);
    assert.match(
      r.stdout,
      new RegExp(
        `^SSH at ${reEscape(box.ipv4)}:22 presents the pinned ssh-ed25519 host key ${reEscape(fp)}; logged in as root after \\d+ s\\n$`,
      ),
    );
    const keyBody = sshd.client.privateKey.split("\n")[1];
    assert.ok(!r.stdout.includes(keyBody) && !r.stderr.includes(keyBody));
  });

  test("compiled to .js (the published package): runs with plain Node and exits 0 for the right key", async () => {
    const compiled = waitForSshInvocation(compiledDir);
    assert.deepEqual(compiled, { interpreter: [process.execPath], script: path.join(compiledDir, "wait-for-ssh.js") });
    const r = await runWait(compiled, target());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /presents the pinned ssh-ed25519 host key SHA256:/);
  });

  test("a wrong pinned key: exits 2 at once (not at the 600 s bound) naming both fingerprints and refusing to deploy", async () => {
    // The guard kills a script still dialing after 30 s; a killed script's code is 128.
    const r = await runWait(fromSources, target({ hostKey: stranger.publicKey }), 30_000);
    assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const presented = await opensshFingerprint(internet.workDir, sshd.hostKey);
    const pinned = await opensshFingerprint(internet.workDir, stranger.publicKey);
    assert.equal(r.stdout, "");
    assert.ok(
      r.stderr.startsWith(
        `wait-for-ssh: SSH host key mismatch at ${box.ipv4}:22: the server presents ssh-ed25519 ${presented} ` +
          `but this stack pinned ssh-ed25519 ${pinned}: the server was not created by this stack, or its host key changed; refusing to deploy.`,
      ),
      r.stderr,
    );
  });

  test("a port nobody listens on, 3 s bound: exits 1 with the timeout message and the last error", async () => {
    const r = await runWait(fromSources, target({ port: 2222, timeoutSeconds: 3 }), 30_000);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(
      r.stderr,
      `wait-for-ssh: no SSH answer from ${box.ipv4}:2222 within 3 s (last error: connect ECONNREFUSED ${box.ipv4}:2222)\n`,
    );
  });

  test("a deployer key the server does not authorise, 3 s bound: exits 1 saying the host key matched but the key was refused", async () => {
    const r = await runWait(fromSources, target({ privateKey: stranger.privateKey, timeoutSeconds: 3 }), 30_000);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^wait-for-ssh: SSH at ${reEscape(box.ipv4)}:22 presents the pinned host key but did not accept the deployer key within 3 s \\(last error: root refused: .+\\)\\n$`,
      ),
    );
  });

  test("a server that comes up while the script waits (link down, then up): keeps dialing and exits 0", async () => {
    const late = await internet.addHost("late");
    const lateSshd = await startSshd(internet, late);
    try {
      const down = await late.run(["ip", "link", "set", "eth0", "down"]);
      assert.equal(down.code, 0, down.stderr);
      const running = runWait(fromSources, {
        ...target(),
        host: late.ipv4,
        hostKey: lateSshd.hostKey,
        privateKey: lateSshd.client.privateKey,
        timeoutSeconds: 120,
      });
      await new Promise((r) => setTimeout(r, 5000));
      const up = await late.run(["ip", "link", "set", "eth0", "up"]);
      assert.equal(up.code, 0, up.stderr);
      const r = await running;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^SSH at ${reEscape(late.ipv4)}:22 presents the pinned ssh-ed25519 host key`));
    } finally {
      await lateSshd.stop();
    }
  });

  test("a PKCS#8 Ed25519 deployer key (@pulumi/tls privateKeyPem), authorised on the box: logs in and exits 0", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const raw = Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
    const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const line = `ssh-ed25519 ${Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]).toString("base64")} pkcs8`;
    // sshd reads its AuthorizedKeysFile at each login: the harness's file is the one listing its client key.
    const authorized = fs
      .readdirSync(internet.workDir)
      .filter((d) => d.startsWith("sshd-"))
      .map((d) => path.join(internet.workDir, d, "authorized_keys"))
      .find((f) => fs.readFileSync(f, "utf8").includes(sshd.client.publicKey));
    assert.ok(authorized, "the harness's authorized_keys");
    fs.appendFileSync(authorized, `${line}\n`);
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
    const r = await runWait(fromSources, target({ privateKey: pem }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /logged in as root/);
  });

  test("bad settings are refused before any dial: a host key that is not an OpenSSH public key", async () => {
    const r = await runWait(fromSources, target({ hostKey: "ssh-ed25519 bm90IGEga2V5" }));
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'wait-for-ssh: MAILSTACK_SSH_HOST_KEY: the base64 after "ssh-ed25519" is not a ssh-ed25519 public key\n');
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
