import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ASSET_SIG, Secret, SPECIAL_SIG_KEY, Unknown, type CallContext, type PropertyMap } from "../../infra/offline/model";
import { commandStandIn, COPY_TO_REMOTE, LOCAL_COMMAND, REMOTE_COMMAND } from "../../infra/offline/providers/command";
import { RecordingExecutor, type RecordedCall } from "../../infra/offline/providers/command-executor";
import { runLocalCommand } from "../../infra/offline/providers/local-executor";
import { packageOf, standInProviders } from "../../infra/offline/providers/index";
import { CloudflareWorld } from "../../infra/offline/providers/cloudflare-world";
import { HcloudWorld } from "../../infra/offline/providers/hcloud-world";
import { reveal } from "../../infra/offline/providers/property";

const ctx = (name: string, preview = false, log: string[] = []): CallContext => ({
  urn: `urn:pulumi:dev::mailstack::command:remote:Command::${name}`,
  preview,
  log: (m) => log.push(m),
});
const connection = (host: string) => new Secret({ host, privateKey: "KEY", hostKey: "ssh-ed25519 AAAA" });
const text = (t: string) => ({ [SPECIAL_SIG_KEY]: ASSET_SIG, text: t });

function setup(respond?: (call: RecordedCall) => { stdout: string; stderr: string } | Error | void) {
  const executor = new RecordingExecutor(respond);
  const command = commandStandIn(executor);
  const create = async (type: string, name: string, inputs: PropertyMap) => {
    const checked = await command.check(ctx(name), type, undefined, inputs);
    assert.deepEqual(checked.failures, []);
    const { id, outputs } = await command.create(ctx(name), type, checked.inputs);
    return { id: id as string, inputs: checked.inputs, outputs };
  };
  return { executor, command, create };
}

describe("command stand-in: remote.Command", () => {
  test("preview create runs nothing; stdout and stderr are unknown; the id is already known", async () => {
    const { executor, command } = setup();
    const { id, outputs } = await command.create(ctx("install", true), REMOTE_COMMAND, {
      connection: connection("198.51.100.2"),
      create: "install.sh",
    });
    assert.deepEqual(executor.calls, []);
    assert.deepEqual([outputs.stdout, outputs.stderr], [Unknown, Unknown]);
    assert.match(String(id), /^install[0-9a-f]{8}$/);
  });

  test("check fills in the connection defaults (root, port 22, 10 dial errors, 15 s per dial) and keeps it secret", async () => {
    const { command } = setup();
    const { inputs } = await command.check(ctx("install"), REMOTE_COMMAND, undefined, { connection: connection("h"), create: "x" });
    assert.ok(inputs.connection instanceof Secret);
    assert.deepEqual(reveal(inputs.connection), {
      user: "root",
      port: 22,
      dialErrorLimit: 10,
      perDialTimeout: 15,
      host: "h",
      privateKey: "KEY",
      hostKey: "ssh-ed25519 AAAA",
    });
  });

  test("create runs `create` over the connection; stdout loses one trailing newline; the connection output is secret", async () => {
    const { executor, create } = setup(() => ({ stdout: "machine-1\n\n", stderr: "warn\n" }));
    const made = await create(REMOTE_COMMAND, "wait", { connection: connection("198.51.100.2"), create: "cat /etc/machine-id" });
    assert.equal(executor.calls.length, 1);
    const call = executor.calls[0] as RecordedCall & { kind: "remote" };
    assert.deepEqual(
      [call.kind, call.command, call.connection.host, call.connection.dialErrorLimit],
      ["remote", "cat /etc/machine-id", "198.51.100.2", 10],
    );
    assert.deepEqual([made.outputs.stdout, made.outputs.stderr], ["machine-1\n", "warn"]);
    assert.ok(made.outputs.connection instanceof Secret);
  });

  test("update runs `update` (else `create`) with the new connection and the previous output in PULUMI_COMMAND_STDOUT/STDERR", async () => {
    const { executor, create, command } = setup(() => ({ stdout: "v1", stderr: "e1" }));
    const made = await create(REMOTE_COMMAND, "install", {
      connection: connection("198.51.100.2"),
      create: "install",
      update: "reinstall",
      triggers: ["a"],
    });
    const news = { ...made.inputs, connection: connection("198.51.100.9"), triggers: ["b"] };
    await command.update(ctx("install"), REMOTE_COMMAND, made.id, made.inputs, made.outputs, news, []);
    const call = executor.calls[1] as RecordedCall & { kind: "remote" };
    assert.deepEqual([call.command, call.connection.host], ["reinstall", "198.51.100.9"]);
    assert.deepEqual(call.optionalEnvironment, { PULUMI_COMMAND_STDOUT: "v1", PULUMI_COMMAND_STDERR: "e1" });
    const noUpdate = await create(REMOTE_COMMAND, "wait", { connection: connection("198.51.100.2"), create: "wait" });
    await command.update(
      ctx("wait"),
      REMOTE_COMMAND,
      noUpdate.id,
      noUpdate.inputs,
      noUpdate.outputs,
      { ...noUpdate.inputs, stdin: "x" },
      [],
    );
    assert.equal((executor.calls[3] as RecordedCall & { kind: "remote" }).command, "wait");
  });

  test("addPreviousOutputInEnv false leaves the previous output out", async () => {
    const { executor, create, command } = setup(() => ({ stdout: "v1", stderr: "" }));
    const made = await create(REMOTE_COMMAND, "x", { connection: connection("h"), create: "c", addPreviousOutputInEnv: false });
    await command.update(ctx("x"), REMOTE_COMMAND, made.id, made.inputs, made.outputs, { ...made.inputs, create: "c2" }, []);
    assert.deepEqual((executor.calls[1] as RecordedCall & { kind: "remote" }).optionalEnvironment, {});
  });

  test("preview update runs nothing and leaves stdout unknown", async () => {
    const { executor, create, command } = setup(() => ({ stdout: "v1", stderr: "" }));
    const made = await create(REMOTE_COMMAND, "x", { connection: connection("h"), create: "c" });
    const { outputs } = await command.update(
      ctx("x", true),
      REMOTE_COMMAND,
      made.id,
      made.inputs,
      made.outputs,
      { ...made.inputs, create: "c2" },
      [],
    );
    assert.equal(executor.calls.length, 1);
    assert.equal(outputs.stdout, Unknown);
    assert.equal(outputs.create, "c2");
  });

  test("delete runs the OLD `delete` over the OLD connection; without a `delete` nothing runs", async () => {
    const { executor, create, command } = setup(() => ({ stdout: "running", stderr: "" }));
    const made = await create(REMOTE_COMMAND, "install", { connection: connection("198.51.100.2"), create: "install", delete: "stop" });
    await command.delete(ctx("install"), REMOTE_COMMAND, made.id, made.inputs, made.outputs);
    const call = executor.calls[1] as RecordedCall & { kind: "remote" };
    assert.deepEqual(
      [call.command, call.connection.host, call.optionalEnvironment],
      ["stop", "198.51.100.2", { PULUMI_COMMAND_STDOUT: "running" }],
    );
    const bare = await create(REMOTE_COMMAND, "wait", { connection: connection("198.51.100.2"), create: "wait" });
    const before = executor.calls.length;
    await command.delete(ctx("wait"), REMOTE_COMMAND, bare.id, bare.inputs, bare.outputs);
    assert.equal(executor.calls.length, before);
  });

  test("a failing command fails the step with the executor's text and no state", async () => {
    const { command } = setup(() => new Error('Process exited with status 3: running "install":\nboom'));
    await assert.rejects(
      command.create(ctx("install"), REMOTE_COMMAND, { connection: connection("h"), create: "install" }),
      /^Error: Process exited with status 3: running "install":\nboom$/,
    );
  });

  test("diff: a changed trigger element is an update at triggers[i] (the engine's replaceOnChanges replaces it); the whole array changing is the provider's replace", async () => {
    const { create, command } = setup();
    const made = await create(REMOTE_COMMAND, "install", { connection: connection("h"), create: "c", triggers: ["m1", "b1"] });
    const element = await command.diff(
      ctx("install"),
      REMOTE_COMMAND,
      made.id,
      made.inputs,
      made.outputs,
      { ...made.inputs, triggers: ["m1", "b2"] },
      [],
    );
    assert.deepEqual(
      [element.changes, element.changedKeys, element.replaceKeys, element.detailedDiff],
      ["some", ["triggers"], [], { "triggers[1]": { kind: "update", replace: false } }],
    );
    const unknown = await command.diff(
      ctx("install"),
      REMOTE_COMMAND,
      made.id,
      made.inputs,
      made.outputs,
      { ...made.inputs, triggers: Unknown },
      [],
    );
    assert.deepEqual([unknown.replaceKeys, unknown.detailedDiff], [["triggers"], { triggers: { kind: "update", replace: true } }]);
    const moved = (await command.check(ctx("install"), REMOTE_COMMAND, made.inputs, { ...made.inputs, connection: connection("h2") }))
      .inputs;
    const host = await command.diff(ctx("install"), REMOTE_COMMAND, made.id, made.inputs, made.outputs, moved, []);
    assert.deepEqual([host.changedKeys, host.replaceKeys, Object.keys(host.detailedDiff)], [["connection"], [], ["connection.host"]]);
    const same = await command.diff(ctx("install"), REMOTE_COMMAND, made.id, made.inputs, made.outputs, made.inputs, []);
    assert.equal(same.changes, "none");
  });
});

describe("command stand-in: remote.CopyToRemote", () => {
  test("an update with only a new connection host copies nothing; a new text copies over the new connection", async () => {
    const { executor, create, command } = setup();
    const made = await create(COPY_TO_REMOTE, "installer", {
      connection: connection("198.51.100.2"),
      source: text("#!/bin/sh\n"),
      remotePath: "/root/.d/install.sh",
    });
    assert.equal(executor.calls.length, 1);
    const moved = { ...made.inputs, connection: connection("198.51.100.9") };
    const diff = await command.diff(ctx("installer"), COPY_TO_REMOTE, made.id, made.inputs, made.outputs, moved, []);
    assert.deepEqual(diff.changedKeys, ["connection"]);
    const { outputs } = await command.update(ctx("installer"), COPY_TO_REMOTE, made.id, made.inputs, made.outputs, moved, []);
    assert.equal(executor.calls.length, 1);
    const checked = (await command.check(ctx("installer"), COPY_TO_REMOTE, made.inputs, { ...moved, source: text("#!/bin/sh\necho 2\n") }))
      .inputs;
    await command.update(ctx("installer"), COPY_TO_REMOTE, made.id, moved, outputs, checked, []);
    const call = executor.calls[1] as RecordedCall & { kind: "copy" };
    assert.deepEqual(
      [call.connection.host, call.source, call.remotePath],
      ["198.51.100.9", { kind: "text", text: "#!/bin/sh\necho 2\n" }, "/root/.d/install.sh"],
    );
  });

  test("a FileAsset whose file changed under the same path is copied again: the state kept the old hash", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "standin-copy-"));
    try {
      const file = path.join(dir, "maild.js");
      fs.writeFileSync(file, "v1");
      const { executor, create, command } = setup();
      const asset = { [SPECIAL_SIG_KEY]: ASSET_SIG, path: file };
      const made = await create(COPY_TO_REMOTE, "daemon", { connection: connection("h"), source: asset, remotePath: "/r/maild.js" });
      fs.writeFileSync(file, "v2");
      const checked = (await command.check(ctx("daemon"), COPY_TO_REMOTE, made.inputs, { ...made.inputs, source: { ...asset } })).inputs;
      const diff = await command.diff(ctx("daemon"), COPY_TO_REMOTE, made.id, made.inputs, made.outputs, checked, []);
      assert.deepEqual(diff.changedKeys, ["source"]);
      await command.update(ctx("daemon"), COPY_TO_REMOTE, made.id, made.inputs, made.outputs, checked, []);
      assert.deepEqual(
        executor.calls.map((c) => (c as RecordedCall & { kind: "copy" }).source),
        [
          { kind: "file", path: file },
          { kind: "file", path: file },
        ],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("preview create copies nothing and has no id yet; delete never removes the file", async () => {
    const { executor, create, command } = setup();
    const preview = await command.create(ctx("f", true), COPY_TO_REMOTE, {
      connection: connection("h"),
      source: text("x"),
      remotePath: "/r/x",
    });
    assert.equal(preview.id, Unknown);
    assert.equal(executor.calls.length, 0);
    const made = await create(COPY_TO_REMOTE, "f", { connection: connection("h"), source: text("x"), remotePath: "/r/x" });
    await command.delete(ctx("f"), COPY_TO_REMOTE, made.id, made.inputs, made.outputs);
    assert.equal(executor.calls.length, 1);
  });

  test("check wants a path or text asset", async () => {
    const { command } = setup();
    const missing = await command.check(ctx("f"), COPY_TO_REMOTE, undefined, { connection: connection("h"), remotePath: "/r" });
    assert.deepEqual(missing.failures, [{ property: "asset", reason: "either asset or archive must be set" }]);
    const remote = await command.check(ctx("f"), COPY_TO_REMOTE, undefined, {
      connection: connection("h"),
      source: { [SPECIAL_SIG_KEY]: ASSET_SIG, uri: "https://x" },
      remotePath: "/r",
    });
    assert.deepEqual(remote.failures, [{ property: "asset", reason: "asset must be a path-based file asset or a text asset" }]);
  });
});

describe("command stand-in: local.Command", () => {
  test("runs with its interpreter, stdin and environment; update falls back to `create`", async () => {
    const { executor, create, command } = setup(() => ({ stdout: "ok\n", stderr: "" }));
    const made = await create(LOCAL_COMMAND, "reachable", {
      create: "wait-for-ssh",
      interpreter: ["/usr/bin/env", "node", "-e"],
      stdin: new Secret("KEY"),
      environment: { HOST: "h" },
    });
    const call = executor.calls[0] as RecordedCall & { kind: "local" };
    assert.deepEqual(
      [call.command, call.interpreter, call.stdin, call.environment],
      ["wait-for-ssh", ["/usr/bin/env", "node", "-e"], "KEY", { HOST: "h" }],
    );
    assert.equal(made.outputs.stdout, "ok");
    await command.update(
      ctx("reachable"),
      LOCAL_COMMAND,
      made.id,
      made.inputs,
      made.outputs,
      { ...made.inputs, environment: { HOST: "h2" } },
      [],
    );
    const second = executor.calls[1] as RecordedCall & { kind: "local" };
    assert.deepEqual([second.command, second.environment], ["wait-for-ssh", { HOST: "h2", PULUMI_COMMAND_STDOUT: "ok" }]);
  });

  test("assetPaths are refused rather than silently left out of the outputs", async () => {
    const { command, executor } = setup();
    await assert.rejects(
      command.create(ctx("build"), LOCAL_COMMAND, { create: "make", assetPaths: ["dist/**"] }),
      /assetPaths\/archivePaths are not modelled/,
    );
    assert.equal(executor.calls.length, 0);
  });

  test("the real local executor: interpreter, dir, environment, stdin, and the failure text", async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "standin-local-")));
    try {
      const out = await runLocalCommand(
        { command: 'pwd; echo "$GREETING"; cat', dir, environment: { GREETING: "hello" }, stdin: "from stdin", logging: "none" },
        () => {},
      );
      assert.deepEqual(out, { stdout: `${dir}\nhello\nfrom stdin`, stderr: "" });
      const py = await runLocalCommand(
        { command: "print(6*7)", interpreter: ["/usr/bin/python3", "-c"], environment: {}, logging: "none" },
        () => {},
      );
      assert.equal(py.stdout, "42\n");
      await assert.rejects(
        runLocalCommand({ command: "echo bad >&2; exit 4", environment: {}, logging: "none" }, () => {}),
        /^Error: exit status 4: running "echo bad >&2; exit 4":\nbad\n$/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("standInProviders", () => {
  test("serves tls, hcloud, cloudflare and command by package", () => {
    const providers = standInProviders({ hcloud: new HcloudWorld(), cloudflare: new CloudflareWorld() }, new RecordingExecutor());
    for (const type of [
      "tls:index/privateKey:PrivateKey",
      "hcloud:index/server:Server",
      "cloudflare:index/dnsRecord:DnsRecord",
      "command:remote:Command",
    ]) {
      const pkg = packageOf(type) as keyof typeof providers;
      assert.equal(providers[pkg].pkg, pkg);
    }
  });
});
