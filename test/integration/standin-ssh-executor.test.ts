// The @pulumi/command stand-in with the real executor against OpenSSH's sshd in a network
// namespace, logging in with keys the tls stand-in made (the host key sshd serves is a tls
// PrivateKey's privateKeyOpenssh, pinned by its publicKeyOpenssh, as MailHost does it).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ASSET_SIG, Secret, SPECIAL_SIG_KEY, type CallContext, type PropertyMap } from "../../infra/offline/model";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startSshd, type SshServer } from "../../infra/local-internet/sshd";
import { commandStandIn, COPY_TO_REMOTE, REMOTE_COMMAND } from "../../infra/offline/providers/command";
import { RealCommandExecutor } from "../../infra/offline/providers/ssh-executor";
import { PRIVATE_KEY, tlsStandIn } from "../../infra/offline/providers/tls";
import { reveal } from "../../infra/offline/providers/property";

const tls = tlsStandIn();
async function ed25519(): Promise<PropertyMap> {
  const c: CallContext = { urn: "urn:pulumi:dev::mailstack::tls:index/privateKey:PrivateKey::k", preview: false, log: () => {} };
  return (await tls.create(c, PRIVATE_KEY, { algorithm: "ED25519" })).outputs;
}

describe("command stand-in over SSH and SFTP to sshd in a namespace", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let sshd: SshServer;
  let deployer: PropertyMap;
  let hostKey: string;
  let scratch: string;
  const command = commandStandIn(new RealCommandExecutor({ retryDelayMs: () => 10 }));
  const logs: string[] = [];
  const ctx = (name: string): CallContext => ({
    urn: `urn:pulumi:dev::mailstack::command:remote:Command::${name}`,
    preview: false,
    log: (m) => logs.push(m),
  });
  const connection = (extra: Record<string, unknown> = {}) =>
    new Secret({
      host: box.ipv4,
      port: 22,
      user: "root",
      privateKey: reveal(deployer.privateKeyOpenssh),
      hostKey,
      dialErrorLimit: 3,
      perDialTimeout: 15,
      ...extra,
    });
  const create = async (type: string, name: string, inputs: PropertyMap) => {
    const checked = await command.check(ctx(name), type, undefined, inputs);
    assert.deepEqual(checked.failures, []);
    const made = await command.create(ctx(name), type, checked.inputs);
    return { id: made.id as string, inputs: checked.inputs, outputs: made.outputs };
  };

  before(async () => {
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    const host = await ed25519();
    deployer = await ed25519();
    sshd = await startSshd(internet, box, {
      hostKey: { privateKey: String(reveal(host.privateKeyOpenssh)), publicKey: String(host.publicKeyOpenssh) },
      client: { privateKey: String(reveal(deployer.privateKeyOpenssh)), publicKey: String(deployer.publicKeyOpenssh).trim() },
      acceptEnv: ["MAILSTACK_*"],
    });
    hostKey = String(host.publicKeyOpenssh).trim();
    assert.equal(sshd.hostKey, hostKey);
    scratch = fs.mkdtempSync(path.join(internet.workDir, "copy-"));
  });
  after(async () => {
    await sshd?.stop();
    await internet?.destroy();
  });

  test("create runs over the pinned connection with the tls-made keys: stdin in, stdout and stderr out", async () => {
    const made = await create(REMOTE_COMMAND, "echo", {
      connection: connection(),
      create: "cat; echo to-stderr >&2",
      stdin: new Secret("machine-id\n"),
    });
    assert.deepEqual([made.outputs.stdout, made.outputs.stderr], ["machine-id", "to-stderr"]);
  });

  test("an accepted environment variable reaches the command; a refused one fails it before it runs", async () => {
    const ok = await create(REMOTE_COMMAND, "env", {
      connection: connection(),
      create: 'echo "$MAILSTACK_GREETING"',
      environment: { MAILSTACK_GREETING: "hello" },
    });
    assert.equal(ok.outputs.stdout, "hello");
    const marker = path.join(scratch, "ran");
    await assert.rejects(
      create(REMOTE_COMMAND, "refused", { connection: connection(), create: `touch ${marker}`, environment: { OTHER: "x" } }),
      /^Error: could not set environment variable "OTHER": ssh: setenv failed$/,
    );
    assert.equal(fs.existsSync(marker), false);
  });

  test("a refused PULUMI_COMMAND_STDOUT is only a warning: the update runs without it", async () => {
    const made = await create(REMOTE_COMMAND, "prev", {
      connection: connection(),
      create: "echo first",
      update: 'echo "[$PULUMI_COMMAND_STDOUT]"',
    });
    logs.length = 0;
    const news = { ...made.inputs, triggers: ["2"] };
    const updated = await command.update(ctx("prev"), REMOTE_COMMAND, made.id, made.inputs, made.outputs, news, []);
    assert.equal(updated.outputs.stdout, "[]");
    assert.ok(logs.some((l) => l.startsWith("warning: Unable to set 'PULUMI_COMMAND_STDOUT'")));
  });

  test("a failing command fails with its exit status, the command and its output", async () => {
    await assert.rejects(
      create(REMOTE_COMMAND, "fail", { connection: connection(), create: "echo out; echo err >&2; exit 3" }),
      (e: Error) => {
        assert.match(e.message, /^Process exited with status 3: running "echo out; echo err >&2; exit 3":\n/);
        assert.match(e.message, /out\n/);
        assert.match(e.message, /err\n/);
        return true;
      },
    );
  });

  test("another host key is refused as a mismatch, after dialErrorLimit more dials", async () => {
    const other = await ed25519();
    logs.length = 0;
    await assert.rejects(
      create(REMOTE_COMMAND, "pin", {
        connection: connection({ hostKey: String(other.publicKeyOpenssh).trim(), dialErrorLimit: 1 }),
        create: "true",
      }),
      /^Error: after 1 failed attempts: ssh: handshake failed: ssh: host key mismatch$/,
    );
    assert.deepEqual(logs, ["Dial 1/1 failed: retrying"]);
  });

  test("without a host key any key is taken (pulumi-command's InsecureIgnoreHostKey)", async () => {
    const c = reveal(connection()) as Record<string, unknown>;
    delete c.hostKey;
    const made = await create(REMOTE_COMMAND, "nopin", { connection: new Secret(c), create: "echo unpinned" });
    assert.equal(made.outputs.stdout, "unpinned");
  });

  test("a closed port fails the dial with Go's text", async () => {
    await assert.rejects(
      create(REMOTE_COMMAND, "closed", { connection: connection({ port: 2222, dialErrorLimit: 0 }), create: "true" }),
      new RegExp(`^Error: after 0 failed attempts: dial tcp ${box.ipv4.replace(/\./g, "\\.")}:2222: connect: connection refused$`),
    );
  });

  test("the deployer key in PKCS#8 PEM (the tls privateKeyPem of an Ed25519 key) logs in too", async () => {
    const made = await create(REMOTE_COMMAND, "pem", {
      connection: connection({ privateKey: reveal(deployer.privateKeyPem) }),
      create: "echo pem",
    });
    assert.equal(made.outputs.stdout, "pem");
  });

  test("CopyToRemote writes a text asset and a file asset over SFTP, creating parent directories", async () => {
    const target = path.join(scratch, "stage/a/b/install.sh");
    await create(COPY_TO_REMOTE, "text", {
      connection: connection(),
      source: { [SPECIAL_SIG_KEY]: ASSET_SIG, text: "#!/bin/sh\necho hi\n" },
      remotePath: target,
    });
    assert.equal(fs.readFileSync(target, "utf8"), "#!/bin/sh\necho hi\n");
    const local = path.join(scratch, "maild.js");
    fs.writeFileSync(local, "console.log(1)\n");
    const intoDir = path.join(scratch, "stage/a");
    await create(COPY_TO_REMOTE, "file", {
      connection: connection(),
      source: { [SPECIAL_SIG_KEY]: ASSET_SIG, path: local },
      remotePath: intoDir,
    });
    assert.equal(fs.readFileSync(path.join(intoDir, "maild.js"), "utf8"), "console.log(1)\n");
    await assert.rejects(
      create(COPY_TO_REMOTE, "dir", { connection: connection(), source: { [SPECIAL_SIG_KEY]: ASSET_SIG, text: "x" }, remotePath: intoDir }),
      new RegExp(`remote path ${intoDir.replace(/[/.]/g, "\\$&")} is a directory; when using a text asset, remotePath must be a file path`),
    );
  });
});
