// The deploy's first step, SshReachable's provider (components/providers/ssh-reachable.ts), run
// as the engine's provider host calls it, against OpenSSH's sshd in a network namespace: the
// right pin passes, a wrong pin is refused at once naming both fingerprints, silence ends at the
// bound with the last connection error, a server that comes up late is waited for.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, runCommand, type NetHost } from "../../infra/local-internet/netns";
import { ed25519KeyPair, startSshd, type KeyPair, type SshServer } from "../../infra/local-internet/sshd";
import { provider, type SshReachableOutputs } from "../../components/providers/ssh-reachable";

interface Target {
  host: string;
  port: number;
  hostKey: string;
  privateKey: string;
  timeoutSeconds: number;
}

/** create() as the host calls it; rejects with "killed" when it is still waiting after `guardMs`. */
async function reach(t: Target, guardMs = 60_000): Promise<{ id: string; outs: SshReachableOutputs }> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`killed: still waiting after ${guardMs} ms`)), guardMs);
  });
  try {
    return (await Promise.race([provider.create({ user: "root", instance: "4711", ...t }), guard])) as {
      id: string;
      outs: SshReachableOutputs;
    };
  } finally {
    clearTimeout(timer);
  }
}

/** OpenSSH's own SHA256 fingerprint of a public key line (ssh-keygen -l), to check ours against. */
async function opensshFingerprint(dir: string, publicKey: string): Promise<string> {
  const file = path.join(dir, `fp-${Math.random().toString(36).slice(2)}.pub`);
  fs.writeFileSync(file, `${publicKey}\n`);
  const r = await runCommand(["ssh-keygen", "-l", "-E", "sha256", "-f", file]);
  assert.equal(r.code, 0, `ssh-keygen -l: ${r.stderr}`);
  return r.stdout.split(" ")[1];
}

describe("SshReachable against sshd in a namespace", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let sshd: SshServer;
  let stranger: KeyPair;

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("wait-for-ssh tests need root (network namespaces, sshd)");
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    sshd = await startSshd(internet, box);
    stranger = await ed25519KeyPair(internet.workDir, "stranger");
  });

  after(async () => {
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

  test("the right pinned key: create resolves naming the verified fingerprint; the outputs hold no private key", async () => {
    const { outs } = await reach(target());
    const fp = await opensshFingerprint(internet.workDir, sshd.hostKey);
    assert.match(
      outs.message,
      new RegExp(
        `^SSH at ${reEscape(box.ipv4)}:22 presents the pinned ssh-ed25519 host key ${reEscape(fp)}; logged in as root after \\d+ s$`,
      ),
    );
    assert.equal(outs.deployerKeyFingerprint, await opensshFingerprint(internet.workDir, sshd.client.publicKey));
    assert.deepEqual(
      { host: outs.host, port: outs.port, user: outs.user, hostKey: outs.hostKey, instance: outs.instance },
      { host: box.ipv4, port: 22, user: "root", hostKey: sshd.hostKey, instance: "4711" },
    );
    const keyBody = sshd.client.privateKey.split("\n")[1];
    assert.equal(JSON.stringify(outs).includes(keyBody), false);
  });

  test("a wrong pinned key: create fails at once (not at the 600 s bound) naming both fingerprints and refusing to deploy", async () => {
    const presented = await opensshFingerprint(internet.workDir, sshd.hostKey);
    const pinned = await opensshFingerprint(internet.workDir, stranger.publicKey);
    // The guard gives up on a create still dialing after 30 s.
    await assert.rejects(reach(target({ hostKey: stranger.publicKey }), 30_000), (err: Error) => {
      assert.ok(
        err.message.startsWith(
          `ssh-reachable: SSH host key mismatch at ${box.ipv4}:22: the server presents ssh-ed25519 ${presented} ` +
            `but this stack pinned ssh-ed25519 ${pinned}: the server was not created by this stack, or its host key changed; refusing to deploy.`,
        ),
        err.message,
      );
      return true;
    });
  });

  test("a port nobody listens on, 3 s bound: create fails with the timeout and the last error", async () => {
    await assert.rejects(reach(target({ port: 2222, timeoutSeconds: 3 }), 30_000), {
      message: `ssh-reachable: no SSH answer from ${box.ipv4}:2222 within 3 s (last error: connect ECONNREFUSED ${box.ipv4}:2222)`,
    });
  });

  test("a deployer key the server does not authorise, 3 s bound: fails saying the host key matched but the key was refused", async () => {
    await assert.rejects(
      reach(target({ privateKey: stranger.privateKey, timeoutSeconds: 3 }), 30_000),
      new RegExp(
        `^Error: ssh-reachable: SSH at ${reEscape(box.ipv4)}:22 presents the pinned host key but did not accept the deployer key within 3 s \\(last error: root refused: .+\\)$`,
      ),
    );
  });

  test("a server that comes up while create waits (link down, then up): keeps dialing and resolves", async () => {
    const late = await internet.addHost("late");
    const lateSshd = await startSshd(internet, late);
    try {
      const down = await late.run(["ip", "link", "set", "eth0", "down"]);
      assert.equal(down.code, 0, down.stderr);
      const running = reach({
        ...target(),
        host: late.ipv4,
        hostKey: lateSshd.hostKey,
        privateKey: lateSshd.client.privateKey,
        timeoutSeconds: 120,
      });
      await new Promise((r) => setTimeout(r, 5000));
      const up = await late.run(["ip", "link", "set", "eth0", "up"]);
      assert.equal(up.code, 0, up.stderr);
      const { outs } = await running;
      assert.match(outs.message, new RegExp(`^SSH at ${reEscape(late.ipv4)}:22 presents the pinned ssh-ed25519 host key`));
    } finally {
      await lateSshd.stop();
    }
  });

  test("a PKCS#8 Ed25519 deployer key (@pulumi/tls privateKeyPem), authorised on the box: logs in", async () => {
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
    const { outs } = await reach(target({ privateKey: pem }));
    assert.match(outs.message, /logged in as root/);
  });

  test("bad settings are refused before any dial: a host key that is not an OpenSSH public key", async () => {
    await assert.rejects(reach(target({ hostKey: "ssh-ed25519 bm90IGEga2V5" }), 5_000), {
      message: 'ssh-reachable: hostKey: the base64 after "ssh-ed25519" is not a ssh-ed25519 public key',
    });
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
