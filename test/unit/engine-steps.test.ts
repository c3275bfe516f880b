// The offline engine's per-registration rules: Check then Diff, same vs update, the DIFF_UNKNOWN
// input comparison, ignoreChanges, what a preview gives the program, default providers, URNs, when a
// registration is processed and how many run at once, and that the first error stops `up`.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { simulate, type SimulateOptions, type SimulateResult } from "../../infra/offline/simulate";
import { Unknown, type Checkpoint } from "../../infra/offline/model";
import { FakeComponent, FakeProvider, FakeResource } from "../harness/fake-stand-ins";

const run = (
  mode: "preview" | "up",
  program: () => unknown,
  providers: FakeProvider[],
  checkpoint?: Checkpoint,
  extra: Partial<SimulateOptions> = {},
) => simulate({ mode, stack: "test", project: "proj", program, providers, checkpoint, parallel: 1, ...extra });

const steps = (r: SimulateResult) => r.steps.map((s) => `${s.op} ${s.urn.slice(s.urn.lastIndexOf("::") + 2)}`);
const stateOf = (r: SimulateResult, name: string) => r.checkpoint.resources.filter((s) => s.urn.endsWith(`::${name}`));

describe("same and update", () => {
  test("an unchanged second run yields only same steps, keeps ids and outputs, and calls no provider method but check and diff", async () => {
    let n = 0;
    const fake = new FakeProvider("fake", { computed: { out: () => `generated-${++n}` } });
    const program = () => {
      const c = new FakeComponent("c");
      const a = new FakeResource("Thing", "a", { size: 1 }, { parent: c });
      const b = new FakeResource("Thing", "b", { from: a.out });
      return { b: b.out };
    };
    const first = await run("up", program, [fake]);
    assert.deepEqual(first.diagnostics, []);
    for (const mode of ["preview", "up"] as const) {
      fake.calls.length = 0;
      const again = await run(mode, program, [fake], first.checkpoint);
      assert.deepEqual(steps(again), ["same proj-test", "same c", "same a", "same b"], mode);
      assert.deepEqual(
        fake.calls.map((c) => `${c.method} ${c.name}`),
        ["check a", "diff a", "check b", "diff b"],
        mode,
      );
      assert.deepEqual(again.outputs, { b: "generated-2" }, mode);
    }
    const up = await run("up", program, [fake], first.checkpoint);
    assert.deepEqual(
      up.checkpoint.resources.map((r) => [r.urn, r.id, r.outputs.out]),
      first.checkpoint.resources.map((r) => [r.urn, r.id, r.outputs.out]),
    );
  });

  test("a changed input is an update: the provider's update gets the old id and inputs and the new inputs", async () => {
    const fake = new FakeProvider("fake");
    const program = (size: number) => () => void new FakeResource("Thing", "a", { size, name: "fixed" });
    const first = await run("up", program(1), [fake]);
    fake.calls.length = 0;
    const second = await run("up", program(2), [fake], first.checkpoint);
    assert.deepEqual(steps(second), ["same proj-test", "update a"]);
    assert.deepEqual(second.steps[1].changedKeys, ["size"]);
    const update = fake.calls.find((c) => c.method === "update")!;
    assert.equal(update.id, stateOf(first, "a")[0].id);
    assert.deepEqual([update.olds!.size, update.news!.size], [1, 2]);
    assert.equal(stateOf(second, "a")[0].id, stateOf(first, "a")[0].id);
  });

  test("a provider answering DIFF_UNKNOWN: equal inputs are same, a change is an update and never a replacement, unless replaceOnChanges matches", async () => {
    const fake = new FakeProvider("fake", { diffUnknown: true, forceNew: ["image"] });
    const program =
      (image: string, replaceOnChanges: string[] = []) =>
      () =>
        void new FakeResource("Thing", "a", { image }, { replaceOnChanges });
    const first = await run("up", program("debian-12"), [fake]);
    assert.deepEqual(steps(await run("preview", program("debian-12"), [fake], first.checkpoint)), ["same proj-test", "same a"]);
    const changed = await run("preview", program("debian-13"), [fake], first.checkpoint);
    assert.deepEqual(steps(changed), ["same proj-test", "update a"]);
    assert.deepEqual(changed.steps[1].detailedDiff, { image: { kind: "update", replace: false } });
    const roc = await run("preview", program("debian-13", ["image"]), [fake], first.checkpoint);
    assert.deepEqual(steps(roc), ["same proj-test", "create-replacement a", "delete-replaced-old a"]);
  });

  test("unknown against known is a change: an input waiting on an updated resource's new output is an update in preview", async () => {
    let n = 0;
    const fake = new FakeProvider("fake", { computed: { out: () => `generated-${++n}` } });
    const program = (size: number) => () => {
      const a = new FakeResource("Thing", "a", { size });
      new FakeResource("Thing", "b", { from: a.out });
    };
    const first = await run("up", program(1), [fake]);
    fake.calls.length = 0;
    const preview = await run("preview", program(2), [fake], first.checkpoint);
    assert.deepEqual(steps(preview), ["same proj-test", "update a", "update b"]);
    const diffB = fake.calls.find((c) => c.method === "diff" && c.name === "b")!;
    assert.equal(diffB.news!.from, Unknown);
    assert.equal(diffB.olds!.from, "generated-1");
  });
});

describe("ignoreChanges", () => {
  test("an ignored property keeps its old value before Check, so it causes no diff", async () => {
    const fake = new FakeProvider("fake", { forceNew: ["image"] });
    const program =
      (size: number, image = "debian-12") =>
      () =>
        void new FakeResource("Thing", "a", { size, image }, { ignoreChanges: ["size"] });
    const first = await run("up", program(1), [fake]);
    fake.calls.length = 0;
    const second = await run("up", program(2), [fake], first.checkpoint);
    assert.deepEqual(steps(second), ["same proj-test", "same a"]);
    assert.equal(fake.calls.find((c) => c.method === "check")!.news!.size, 1);
    assert.equal(stateOf(second, "a")[0].inputs.size, 1);
  });

  test("a replacement forced by another property is created with the program's value of the ignored one", async () => {
    const fake = new FakeProvider("fake", { forceNew: ["image"] });
    const program = (size: number, image: string) => () =>
      void new FakeResource("Thing", "a", { size, image }, { ignoreChanges: ["size"] });
    const first = await run("up", program(1, "debian-12"), [fake]);
    fake.calls.length = 0;
    const second = await run("up", program(2, "debian-13"), [fake], first.checkpoint);
    assert.deepEqual(steps(second), ["same proj-test", "create-replacement a", "delete-replaced-old a"]);
    const create = fake.calls.find((c) => c.method === "create")!;
    assert.deepEqual([create.news!.size, create.news!.image], [2, "debian-13"]);
    // the re-Check of a replacement gets no olds
    assert.deepEqual(
      fake.calls.filter((c) => c.method === "check").map((c) => c.olds === undefined),
      [false, true],
    );
  });
});

describe("what the program sees", () => {
  test("in preview, an output the stand-in leaves unknown is unknown to the program: its applies do not run and dependents get Unknown", async () => {
    const fake = new FakeProvider("fake", { computed: { out: () => "generated" } });
    let applied = false;
    const preview = await run(
      "preview",
      () => {
        const a = new FakeResource("Thing", "a", { size: 1 });
        a.out.apply(() => (applied = true));
        new FakeResource("Thing", "b", { from: a.out, size: a.value });
      },
      [fake],
    );
    assert.equal(applied, false);
    const b = preview.resources.find((r) => r.name === "b")!;
    assert.equal(b.inputs.from, Unknown);
    // `value` is a declared output missing from what the stand-in returned: unknown too
    assert.equal(b.inputs.size, Unknown);
    assert.deepEqual(fake.callsOf("create"), ["a", "b"]);
    assert.ok(fake.calls.every((c) => c.preview));
  });

  test("a same step hands the program the old outputs, in preview as in up", async () => {
    const fake = new FakeProvider("fake", { computed: { out: () => "generated-once" } });
    const program = () => {
      const a = new FakeResource("Thing", "a", { size: 1 });
      new FakeResource("Thing", "b", { from: a.out });
    };
    const first = await run("up", program, [fake]);
    const preview = await run("preview", program, [fake], first.checkpoint);
    assert.equal(preview.resources.find((r) => r.name === "b")!.inputs.from, "generated-once");
  });
});

describe("providers and URNs", () => {
  test("URNs: children carry their component's type, top-level resources do not carry the stack's", async () => {
    const fake = new FakeProvider("fake");
    const r = await run(
      "preview",
      () => {
        const c = new FakeComponent("c");
        new FakeResource("Thing", "a", {}, { parent: c });
        new FakeResource("Thing", "b", {});
      },
      [fake],
    );
    assert.deepEqual(r.resources.map((x) => x.urn).sort(), [
      "urn:pulumi:test::proj::fake:index:Component$fake:index:Thing::a",
      "urn:pulumi:test::proj::fake:index:Component::c",
      "urn:pulumi:test::proj::fake:index:Thing::b",
    ]);
  });

  test("resources reference their package's default provider; a new provider version replaces the provider, not the resources", async () => {
    const fake = new FakeProvider("fake");
    const program = (version: string) => () => void new FakeResource("Thing", "a", { size: 1 }, { version });
    const first = await run("up", program("1.0.0"), [fake]);
    const provider1 = first.checkpoint.resources.find((r) => r.type === "pulumi:providers:fake")!;
    assert.equal(provider1.urn, "urn:pulumi:test::proj::pulumi:providers:fake::default_1_0_0");
    assert.equal(stateOf(first, "a")[0].provider, `${provider1.urn}::${provider1.id}`);
    fake.calls.length = 0;
    const second = await run("up", program("1.1.0"), [fake], first.checkpoint);
    // provider steps are internal: not listed, as pulumi does not show default providers
    assert.deepEqual(steps(second), ["same proj-test", "same a"]);
    assert.deepEqual(fake.callsOf("delete"), []);
    const providers = second.checkpoint.resources.filter((r) => r.type === "pulumi:providers:fake");
    assert.deepEqual(
      providers.map((p) => p.urn),
      ["urn:pulumi:test::proj::pulumi:providers:fake::default_1_1_0"],
    );
    assert.equal(stateOf(second, "a")[0].provider, `${providers[0].urn}::${providers[0].id}`);
  });

  test("an invoke answers with the stand-in's outputs; one it does not know stops the run with the engine's message", async () => {
    const fake = new FakeProvider("fake", { invoke: (token, args) => ({ id: `${token}:${String(args.name)}` }) });
    let zoneId: unknown;
    const ok = await run(
      "preview",
      async () => {
        const result = await pulumi.runtime.invoke("fake:index/getZone:getZone", { name: "example.org" });
        zoneId = result.id;
      },
      [fake],
    );
    assert.deepEqual(ok.diagnostics, []);
    assert.equal(zoneId, "fake:index/getZone:getZone:example.org");
    const failing = await run(
      "preview",
      async () => {
        await pulumi.runtime.invoke("fake:index/getZone:getZone", {});
        new FakeResource("Thing", "never", {});
      },
      [new FakeProvider("fake")],
    );
    assert.equal(failing.failed, true);
    assert.deepEqual(
      failing.diagnostics.map((d) => d.message),
      ["Invoke of 'fake:index/getZone:getZone' failed: unknown function fake:index/getZone:getZone"],
    );
    assert.deepEqual(failing.resources, []);
  });

  test("a package without a stand-in fails its registration, naming the package", async () => {
    const r = await run("preview", () => void new FakeResource("Thing", "a", {}), []);
    assert.equal(r.failed, true);
    assert.match(r.diagnostics[0].message, /no provider stand-in for package "fake"/);
  });
});

describe("order and concurrency", () => {
  test("a registration is processed only after the steps it depends on completed", async () => {
    const fake = new FakeProvider("fake", { computed: { out: () => "x" }, delays: { a: 30 } });
    await run(
      "up",
      () => {
        const a = new FakeResource("Thing", "a", {});
        new FakeResource("Thing", "b", { from: a.out });
        new FakeResource("Thing", "c", {}, { dependsOn: [a] });
      },
      [fake],
      undefined,
      { parallel: 8 },
    );
    const createA = fake.calls.find((c) => c.method === "create" && c.name === "a")!;
    for (const name of ["b", "c"]) {
      const check = fake.calls.find((c) => c.method === "check" && c.name === name)!;
      assert.ok(check.start > createA.end!, `${name} was checked before a was created`);
    }
  });

  test("independent registrations run at the same time up to `parallel`, one at a time with parallel 1", async () => {
    for (const parallel of [1, 2]) {
      const fake = new FakeProvider("fake", { delays: { a: 40, b: 40 } });
      await run(
        "up",
        () => {
          new FakeResource("Thing", "a", {});
          new FakeResource("Thing", "b", {});
        },
        [fake],
        undefined,
        { parallel },
      );
      const [a, b] = ["a", "b"].map((n) => fake.calls.find((c) => c.method === "create" && c.name === n)!);
      const overlap = b.start < a.end! && a.start < b.end!;
      assert.equal(overlap, parallel > 1, `parallel ${parallel}`);
    }
  });

  test("in up the first failed step stops the run: later registrations wait forever, nothing is deleted, a replaced old one stays marked for deletion", async () => {
    let n = 0;
    const fake = new FakeProvider("fake", { forceNew: ["image"], computed: { out: () => `gen-${++n}` } });
    const program = (image: string, failing: boolean) => () => {
      const a = new FakeResource("Thing", "a", { image });
      const b = new FakeResource("Thing", "b", { from: a.out, failing });
      new FakeResource("Thing", "c", { from: b.out });
      if (!failing) new FakeResource("Thing", "gone", {});
    };
    const first = await run("up", program("debian-12", false), [fake]);
    const failing = new FakeProvider("fake", {
      forceNew: ["image"],
      computed: { out: () => `gen-${++n}` },
      failOn: { b: "quota exceeded" },
    });
    const second = await run("up", program("debian-13", true), [failing], first.checkpoint);
    assert.equal(second.failed, true);
    assert.deepEqual(
      second.diagnostics.map((d) => d.message),
      ["quota exceeded"],
    );
    assert.deepEqual(steps(second), ["same proj-test", "create-replacement a", "update b"]);
    assert.deepEqual(failing.callsOf("delete"), []);
    assert.deepEqual(failing.callsOf("check"), ["a", "a", "b"]);
    const olds = stateOf(second, "a");
    assert.deepEqual(
      olds.map((s) => [s.id, s.delete ?? false]),
      [
        [olds[0].id, false],
        [stateOf(first, "a")[0].id, true],
      ],
    );
    assert.ok(stateOf(second, "gone").length === 1, "a resource removed from the program is not deleted after a failure");
  });
});
