// Deletes in the offline engine: after the program, in antichain waves over the OLD state's graph
// (parents included), dependents first; retainOnDelete; protect; deletedWith.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { simulate, type SimulateResult } from "../../infra/offline/simulate";
import type { Checkpoint } from "../../infra/offline/model";
import { FakeComponent, FakeProvider, FakeResource } from "../harness/fake-stand-ins";

const run = (mode: "preview" | "up", program: () => unknown, providers: FakeProvider[], checkpoint?: Checkpoint) =>
  simulate({ mode, stack: "test", project: "proj", program, providers, checkpoint, parallel: 1 });

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
const deletes = (r: SimulateResult) => r.steps.filter((s) => s.wave !== undefined).map((s) => `${s.wave}:${s.op} ${nameOf(s.urn)}`);
const names = (r: SimulateResult) =>
  r.checkpoint.resources.map((s) => nameOf(s.urn)).filter((n) => n !== "proj-test" && !n.startsWith("default"));
const keepOnly = () => void new FakeResource("Thing", "keep", {});

describe("the order of deletes", () => {
  test("removed resources go after the program, dependents first, in waves over the old graph with parent edges", async () => {
    const fake = new FakeProvider("fake", { computed: { out: () => "o" } });
    const first = await run(
      "up",
      () => {
        keepOnly();
        const parent = new FakeComponent("group");
        const child = new FakeResource("Thing", "child", {}, { parent });
        new FakeResource("Thing", "user", { from: child.out });
        new FakeResource("Thing", "alone", {});
      },
      [fake],
    );
    fake.calls.length = 0;
    const second = await run("up", keepOnly, [fake], first.checkpoint);
    // group and alone depend on nothing condemned: the last wave; child waits for its dependent
    // `user`; the component's delete makes no provider call
    assert.deepEqual(deletes(second), ["0:delete user", "1:delete child", "2:delete group", "2:delete alone"]);
    assert.deepEqual(fake.callsOf("delete"), ["user", "child", "alone"]);
    assert.deepEqual(names(second), ["keep"]);
  });

  test("in preview the same deletes are shown and no provider delete is called", async () => {
    const fake = new FakeProvider("fake");
    const first = await run(
      "up",
      () => {
        keepOnly();
        new FakeResource("Thing", "gone", {});
      },
      [fake],
    );
    const preview = await run("preview", keepOnly, [fake], first.checkpoint);
    assert.deepEqual(deletes(preview), ["0:delete gone"]);
    assert.deepEqual(fake.callsOf("delete"), []);
  });
});

describe("retainOnDelete, protect and deletedWith", () => {
  test("a removed resource with retainOnDelete leaves the state without a provider delete", async () => {
    const fake = new FakeProvider("fake");
    const first = await run(
      "up",
      () => {
        keepOnly();
        new FakeResource("Ip", "ip", {}, { retainOnDelete: true });
      },
      [fake],
    );
    const second = await run("up", keepOnly, [fake], first.checkpoint);
    assert.deepEqual(deletes(second), ["0:retain ip"]);
    assert.deepEqual(fake.callsOf("delete"), []);
    assert.deepEqual(names(second), ["keep"]);
  });

  test("the old state's retainOnDelete decides for a replaced resource: set only now, the old one is still deleted", async () => {
    const fake = new FakeProvider("fake", { forceNew: ["image"] });
    const first = await run("up", () => void new FakeResource("Thing", "a", { image: "1" }), [fake]);
    const second = await run(
      "up",
      () => void new FakeResource("Thing", "a", { image: "2" }, { retainOnDelete: true }),
      [fake],
      first.checkpoint,
    );
    assert.deepEqual(deletes(second), ["0:delete-replaced-old a"]);
    assert.deepEqual(fake.callsOf("delete"), ["a"]);
  });

  test("deleting a protected resource fails in preview and in up; up goes on, but not with what it depends on", async () => {
    const fake = new FakeProvider("fake", { computed: { out: () => "o" } });
    const first = await run(
      "up",
      () => {
        keepOnly();
        const base = new FakeResource("Thing", "base", {});
        new FakeResource("Volume", "data", { on: base.out }, { protect: true, retainOnDelete: true });
        new FakeResource("Thing", "other", {});
      },
      [fake],
    );
    const urn = "urn:pulumi:test::proj::fake:index:Volume::data";
    const message =
      `resource "${urn}" cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the \`protect\` flag from the resource ` +
      `in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${urn}'\``;
    for (const mode of ["preview", "up"] as const) {
      fake.calls.length = 0;
      const r = await run(mode, keepOnly, [fake], first.checkpoint);
      assert.equal(r.failed, true, mode);
      // protect is checked before retainOnDelete
      assert.deepEqual(
        r.diagnostics.map((d) => d.message),
        [message],
        mode,
      );
      // base, a dependency of the protected one, is left out of the second wave
      assert.deepEqual(deletes(r), ["0:delete data", "1:delete other"], mode);
      assert.deepEqual(fake.callsOf("delete"), mode === "up" ? ["other"] : [], mode);
      if (mode === "up") assert.deepEqual(names(r), ["keep", "base", "data"]);
    }
  });

  test("a resource deletedWith another that is deleted too makes no provider call of its own", async () => {
    const fake = new FakeProvider("fake");
    const first = await run(
      "up",
      () => {
        keepOnly();
        const server = new FakeResource("Server", "server", {});
        new FakeResource("Thing", "onServer", {}, { deletedWith: server });
      },
      [fake],
    );
    const second = await run("up", keepOnly, [fake], first.checkpoint);
    assert.deepEqual(deletes(second), ["0:delete onServer", "1:delete server"]);
    assert.deepEqual(fake.callsOf("delete"), ["server"]);
  });
});
