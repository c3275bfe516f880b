// Replacements in the offline engine: replaceOnChanges, create-before-delete (the old one deleted
// after every create and update), delete-before-replace with its dependents, protect, and the
// import option.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { simulate, type SimulateOptions, type SimulateResult } from "../../infra/offline/simulate";
import { Unknown, type Checkpoint } from "../../infra/offline/model";
import { FakeProvider, FakeResource } from "../harness/fake-stand-ins";

const run = (
  mode: "preview" | "up",
  program: () => unknown,
  providers: FakeProvider[],
  checkpoint?: Checkpoint,
  extra: Partial<SimulateOptions> = {},
) => simulate({ mode, stack: "test", project: "proj", program, providers, checkpoint, parallel: 1, ...extra });

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
/** the steps that change something, the stack's own create left out */
const steps = (r: SimulateResult) =>
  r.steps.filter((s) => s.op !== "same" && s.type !== "pulumi:pulumi:Stack").map((s) => `${s.op} ${nameOf(s.urn)}`);
const stateOf = (r: SimulateResult, name: string) => r.checkpoint.resources.filter((s) => nameOf(s.urn) === name);
const URN = (type: string, name: string) => `urn:pulumi:test::proj::fake:index:${type}::${name}`;

describe("replaceOnChanges and create-before-delete", () => {
  let generation = 0;
  const fake = () => new FakeProvider("fake", { computed: { out: () => `gen-${++generation}` } });
  // like mail-install: @pulumi/command's SDK adds replaceOnChanges ["triggers[*]"]; its provider
  // diff reports a changed element as an update
  const program = (trigger: string, size: number) => () => {
    const install = new FakeResource(
      "Command",
      "install",
      { triggers: [trigger, "fixed"], create: "install.sh" },
      { replaceOnChanges: ["triggers[*]"] },
    );
    new FakeResource("Thing", "after", { from: install.out });
    new FakeResource("Thing", "other", { size });
  };

  test("a changed triggers element replaces create-first; the old one is deleted last, after every create and update", async () => {
    const first = await run("up", program("v1", 1), [fake()]);
    const provider = fake();
    const second = await run("up", program("v2", 2), [provider], first.checkpoint);
    assert.deepEqual(second.diagnostics, []);
    // `other` depends on nothing: it may run before or after the replacement, but before the delete
    const order = steps(second);
    assert.deepEqual(
      order.filter((s) => !s.endsWith(" other")),
      ["create-replacement install", "update after", "delete-replaced-old install"],
    );
    assert.ok(order.indexOf("update other") < order.indexOf("delete-replaced-old install"));
    const replace = second.steps.find((s) => s.op === "create-replacement")!;
    assert.deepEqual(replace.detailedDiff, { "triggers[0]": { kind: "update", replace: true } });
    assert.match(replace.reason, /replaceOnChanges "triggers\[\*\]" matches triggers\[0\]/);
    assert.match(replace.reason, /create-before-delete/);
    const mutations = provider.calls.filter((c) => ["create", "update", "delete"].includes(c.method)).map((c) => `${c.method} ${c.name}`);
    assert.deepEqual(
      mutations.filter((m) => m !== "update other"),
      ["create install", "update after", "delete install"],
    );
    assert.equal(mutations.at(-1), "delete install");
    assert.equal(provider.calls.find((c) => c.method === "delete")!.id, stateOf(first, "install")[0].id);
    assert.deepEqual(
      stateOf(second, "install").map((s) => s.delete ?? false),
      [false],
    );
  });

  test("triggers[*] does not match the whole array: triggers appearing where there were none is an update", async () => {
    const first = await run(
      "up",
      () => void new FakeResource("Command", "install", { create: "install.sh" }, { replaceOnChanges: ["triggers[*]"] }),
      [fake()],
    );
    const second = await run(
      "preview",
      () => void new FakeResource("Command", "install", { create: "install.sh", triggers: ["v1"] }, { replaceOnChanges: ["triggers[*]"] }),
      [fake()],
      first.checkpoint,
    );
    assert.deepEqual(steps(second), ["update install"]);
    assert.deepEqual(second.steps[1].detailedDiff, { triggers: { kind: "add", replace: false } });
  });

  test("in preview, a trigger waiting on an updated resource's output is unknown, and unknown under triggers replaces", async () => {
    const program2 = (size: number) => () => {
      const box = new FakeResource("Thing", "box", { size });
      new FakeResource("Command", "install", { triggers: [box.out] }, { replaceOnChanges: ["triggers[*]"] });
    };
    const first = await run("up", program2(1), [fake()]);
    const provider = fake();
    const preview = await run("preview", program2(2), [provider], first.checkpoint);
    assert.deepEqual(steps(preview), ["update box", "create-replacement install", "delete-replaced-old install"]);
    const diff = provider.calls.find((c) => c.method === "diff" && c.name === "install")!;
    assert.deepEqual(diff.news!.triggers, [Unknown]);
    assert.deepEqual(provider.callsOf("delete"), []);
  });

  test("an explicit deleteBeforeReplace: false keeps create-first although the provider asks for delete-first", async () => {
    const provider = new FakeProvider("fake", { forceNew: ["image"], deleteBeforeReplace: true });
    const program2 = (image: string, deleteBeforeReplace?: boolean) => () =>
      void new FakeResource("Server", "server", { image }, { deleteBeforeReplace });
    const first = await run("up", program2("debian-12"), [provider]);
    assert.deepEqual(steps(await run("preview", program2("debian-13"), [provider], first.checkpoint)), [
      "delete-replaced server",
      "create-replacement server",
    ]);
    assert.deepEqual(steps(await run("preview", program2("debian-13", false), [provider], first.checkpoint)), [
      "create-replacement server",
      "delete-replaced-old server",
    ]);
  });
});

describe("delete-before-replace", () => {
  // server (deleteBeforeReplace) <- attachment.serverId (forces a new attachment)
  //                              <- ptr.server (an in-place update)
  //                              <- watcher (dependsOn only)
  const program =
    (image: string, protectAttachment = false) =>
    () => {
      const server = new FakeResource("Server", "server", { image }, { deleteBeforeReplace: true });
      new FakeResource("Attachment", "attachment", { serverId: server.out, volume: "vol-1" }, { protect: protectAttachment });
      new FakeResource("Rdns", "ptr", { server: server.out, ptr: "mail.example.org" });
      new FakeResource("Thing", "watcher", { size: 1 }, { dependsOn: [server] });
    };
  let generation = 0;
  const fake = () => new FakeProvider("fake", { forceNew: ["image", "serverId"], computed: { out: () => `gen-${++generation}` } });

  test("the dependents whose property dependency makes their own diff say replace go first, in reverse order, and come back without a diff; dependsOn-only and update-only dependents stay", async () => {
    const first = await run("up", program("debian-12"), [fake()]);
    const provider = fake();
    const second = await run("up", program("debian-13"), [provider], first.checkpoint);
    assert.deepEqual(second.diagnostics, []);
    assert.deepEqual(steps(second), [
      "delete-replaced attachment",
      "delete-replaced server",
      "create-replacement server",
      "create-replacement attachment",
      "update ptr",
    ]);
    assert.deepEqual(
      second.steps.filter((s) => s.op === "same").map((s) => nameOf(s.urn)),
      ["proj-test", "watcher"],
    );
    // the engine asks each property-dependent's provider (attachment: replace; ptr: update only);
    // watcher, a dependsOn-only dependent, is never asked and only diffed when it registers
    assert.deepEqual(
      provider.calls.filter((c) => c.method !== "check" && c.name !== "watcher").map((c) => `${c.method} ${c.name}`),
      [
        "diff server",
        "diff attachment",
        "diff ptr",
        "delete attachment",
        "delete server",
        "create server",
        "create attachment",
        "diff ptr",
        "update ptr",
      ],
    );
    assert.deepEqual(
      provider.calls.filter((c) => c.name === "watcher").map((c) => c.method),
      ["check", "diff"],
    );
    // the dependent's diff: its old inputs against the same inputs with serverId made unknown
    const dependentDiff = provider.calls.find((c) => c.method === "diff" && c.name === "attachment")!;
    assert.equal(dependentDiff.news!.serverId, Unknown);
    assert.equal(dependentDiff.news!.volume, "vol-1");
    // the re-created dependent is checked as a new resource
    assert.equal(provider.calls.filter((c) => c.method === "check" && c.name === "attachment").at(-1)!.olds, undefined);
    // one state each, none left pending replacement or marked for deletion
    assert.deepEqual(
      second.checkpoint.resources
        .map((s) => [nameOf(s.urn), s.pendingReplacement ?? false, s.delete ?? false])
        .filter(([n]) => n !== "proj-test" && !String(n).startsWith("default"))
        .sort(),
      [
        ["attachment", false, false],
        ["ptr", false, false],
        ["server", false, false],
        ["watcher", false, false],
      ],
    );
  });

  test("a chain of dependents is deleted dependents-first before the root and re-created after it; one deletedWith the root goes too, without a diff", async () => {
    const chain = (image: string) => () => {
      const server = new FakeResource("Server", "server", { image }, { deleteBeforeReplace: true });
      const attachment = new FakeResource("Attachment", "attachment", { serverId: server.out });
      new FakeResource("Mount", "mount", { serverId: attachment.out });
      new FakeResource("Thing", "agent", { size: 1 }, { deletedWith: server });
    };
    const first = await run("up", chain("debian-12"), [fake()]);
    const provider = fake();
    const second = await run("up", chain("debian-13"), [provider], first.checkpoint);
    assert.deepEqual(second.diagnostics, []);
    const order = steps(second);
    // the dependents in reverse snapshot order (agent, unrelated to the chain, has its own place)
    assert.deepEqual(
      order.slice(0, 5).filter((s) => !s.endsWith(" agent")),
      ["delete-replaced mount", "delete-replaced attachment", "delete-replaced server", "create-replacement server"],
    );
    assert.ok(order.indexOf("delete-replaced agent") < order.indexOf("delete-replaced server"));
    assert.deepEqual(order.slice(5).sort(), ["create-replacement agent", "create-replacement attachment", "create-replacement mount"]);
    assert.ok(order.indexOf("create-replacement attachment") < order.indexOf("create-replacement mount"));
    // agent is replaced because it is deleted with the server: no diff is asked for, and its own
    // delete makes no provider call since the server's delete takes it along
    assert.deepEqual(
      provider.calls.filter((c) => c.name === "agent").map((c) => c.method),
      ["check", "create"],
    );
  });

  test("a protected dependent stops the delete-before-replace, in preview and in up, before anything is deleted", async () => {
    const first = await run("up", program("debian-12", true), [fake()]);
    for (const mode of ["preview", "up"] as const) {
      const provider = fake();
      const r = await run(mode, program("debian-13", true), [provider], first.checkpoint);
      assert.equal(r.failed, true, mode);
      assert.deepEqual(
        r.diagnostics.map((d) => d.message),
        [
          `unable to replace resource "${URN("Attachment", "attachment")}" as part of replacing "${URN("Server", "server")}" as it is currently marked for protection. ` +
            "To unprotect the resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`, or use the command:\n" +
            `\`pulumi state unprotect '${URN("Attachment", "attachment")}'\``,
        ],
        mode,
      );
      assert.deepEqual(steps(r), [], mode);
      assert.deepEqual([...provider.callsOf("delete"), ...provider.callsOf("create")], [], mode);
    }
  });
});

describe("protect", () => {
  const program = (image: string) => () => void new FakeResource("Volume", "data", { image }, { protect: true });
  const fake = () => new FakeProvider("fake", { forceNew: ["image"] });
  const message =
    `unable to replace resource "${URN("Volume", "data")}"\nas it is currently marked for protection. ` +
    "To unprotect the resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`";

  test("replacing a protected resource: up stops before the create with the engine's message", async () => {
    const first = await run("up", program("a"), [fake()]);
    const provider = fake();
    const up = await run("up", program("b"), [provider], first.checkpoint);
    assert.equal(up.failed, true);
    assert.deepEqual(
      up.diagnostics.map((d) => [d.severity, d.message]),
      [["error", message]],
    );
    assert.deepEqual(steps(up), []);
    assert.deepEqual(provider.callsOf("create"), []);
    assert.deepEqual(stateOf(up, "data")[0].inputs.image, "a");
  });

  test("replacing a protected resource: preview reports the error and still shows the replacement", async () => {
    const first = await run("up", program("a"), [fake()]);
    const preview = await run("preview", program("b"), [fake()], first.checkpoint);
    assert.equal(preview.failed, true);
    assert.deepEqual(
      preview.diagnostics.map((d) => d.message),
      [message],
    );
    assert.deepEqual(steps(preview), ["create-replacement data", "delete-replaced-old data"]);
  });

  test("unprotecting and replacing in the same run is allowed (the new goal's protect is false)", async () => {
    const first = await run("up", program("a"), [fake()]);
    const r = await run(
      "up",
      () => void new FakeResource("Volume", "data", { image: "b" }, { protect: false }),
      [fake()],
      first.checkpoint,
    );
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(steps(r), ["create-replacement data", "delete-replaced-old data"]);
  });
});

describe("the import option", () => {
  const existing = { "vol-123": { inputs: { size: 10, image: "a" }, outputs: { size: 10, image: "a", out: "o" } } };
  const program = (inputs: Record<string, unknown>) => () => void new FakeResource("Volume", "data", inputs, { import: "vol-123" });
  const fake = () => new FakeProvider("fake", { forceNew: ["image"], existing });

  test("the provider's Read runs in preview too; matching inputs import with no other step", async () => {
    const provider = fake();
    const r = await run("preview", program({ size: 10, image: "a" }), [provider]);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(steps(r), ["import data"]);
    assert.deepEqual(
      provider.calls.map((c) => `${c.method} ${c.id ?? ""}`.trim()),
      ["read vol-123", "check", "diff vol-123"],
    );
  });

  test("inputs that differ in place import, then update the imported resource (in up a real update)", async () => {
    const provider = fake();
    const up = await run("up", program({ size: 20, image: "a" }), [provider]);
    assert.deepEqual(steps(up), ["import data", "update data"]);
    const update = provider.calls.find((c) => c.method === "update")!;
    assert.deepEqual([update.id, update.news!.size], ["vol-123", 20]);
    assert.deepEqual(
      stateOf(up, "data").map((s) => [s.id, s.importId]),
      [["vol-123", "vol-123"]],
    );
  });

  test("a difference that would replace: a warning in preview, the engine's error in up, and nothing created", async () => {
    const message =
      "previously-imported resources that still specify an ID may not be replaced; please remove the `import` declaration from your program;\nimage: {a} => {b}";
    const preview = await run("preview", program({ size: 10, image: "b" }), [fake()]);
    assert.deepEqual(
      preview.diagnostics.map((d) => [d.severity, d.message]),
      [["warning", message]],
    );
    const provider = fake();
    const up = await run("up", program({ size: 10, image: "b" }), [provider]);
    assert.deepEqual(
      up.diagnostics.map((d) => [d.severity, d.message]),
      [["error", message]],
    );
    assert.deepEqual(provider.callsOf("create"), []);
  });

  test("an id that does not exist fails with the engine's message", async () => {
    const r = await run("preview", () => void new FakeResource("Volume", "data", {}, { import: "vol-999" }), [fake()]);
    assert.deepEqual(
      r.diagnostics.map((d) => d.message),
      ["resource 'vol-999' does not exist"],
    );
  });
});
