// Destroy keeping the addresses, their PTRs and the mail volume, and come back: the resource
// options the real program registers under mocks for `server.keepOnDestroy` and `server.adopt`.
// The engine's rules these options rely on (engine.md): a delete of a resource with
// retainOnDelete skips the provider's Delete (sec. 6), and `protect` is checked first, so a
// protected resource would fail the destroy (sec. 6-7); an `import` reads the resource with that id
// and then diffs as usual, an update being fine and a replace an error in `up` (sec. 8).
// TODO(engine): once the offline engine plans steps, run destroy and the come-back `up` through it.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { runOffline, Secret, type OfflineRun, type RecordedResource } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";

const devValues = readStackFile(path.resolve(__dirname, "..", "..", "stacks", "Pulumi.dev.yaml"));
const ADOPT = { ipv4: "52418876", ipv6: "52418877", volume: "100200300" };
const KEPT = ["mail-ipv4", "mail-ipv6", "mail-ptr-ipv4", "mail-ptr-ipv6", "mail-data"];

function withServer(extra: Record<string, unknown>): Record<string, unknown> {
  return { ...devValues, server: { ...(devValues.server as Record<string, unknown>), ...extra } };
}

async function runWith(values: Record<string, unknown>): Promise<OfflineRun> {
  const { config, secretKeys } = configFromStackValues(values);
  return runOffline(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      const { stack: _stack, ...outputs } = defineMailStack();
      return outputs;
    },
    { stack: "dev", config, secretKeys, ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::" },
  );
}

const reveal = (v: unknown): unknown => (v instanceof Secret ? reveal(v.value) : v);
const custom = (run: OfflineRun) => run.resources.filter((r) => r.custom);
const byName = (run: OfflineRun, name: string): RecordedResource => {
  const found = run.resources.find((r) => r.custom && r.name === name);
  assert.ok(found, `no resource ${name}`);
  return found;
};

describe("server.keepOnDestroy and server.adopt (mocks)", async () => {
  const plain = await runWith(devValues);
  const protectedPlain = await runWith(withServer({ deleteProtection: true }));
  const keep = await runWith(withServer({ keepOnDestroy: true, deleteProtection: true }));
  const adopted = await runWith(withServer({ keepOnDestroy: true, adopt: ADOPT }));

  test("without them, nothing is retained or imported", () => {
    for (const r of custom(plain)) {
      assert.equal(r.options.retainOnDelete, false, r.name);
      assert.equal(r.options.importId, "", r.name);
    }
  });

  test("keepOnDestroy retains exactly the addresses, their PTRs and the volume; everything else is deleted by a destroy", () => {
    assert.deepEqual(
      custom(keep)
        .filter((r) => r.options.retainOnDelete)
        .map((r) => r.name)
        .sort(),
      [...KEPT].sort(),
    );
  });

  test("keepOnDestroy with deleteProtection: no Pulumi protect (it would fail the destroy), Hetzner's delete protection stays", () => {
    for (const name of ["mail-ipv4", "mail-ipv6", "mail-data"]) {
      assert.equal(byName(protectedPlain, name).options.protect, true, `${name} without keepOnDestroy`);
      assert.equal(byName(keep, name).options.protect, false, name);
      assert.equal(reveal(byName(keep, name).inputs.deleteProtection), true, name);
    }
    assert.deepEqual(
      custom(keep)
        .filter((r) => r.options.protect)
        .map((r) => r.name),
      [],
    );
  });

  test("adopt imports the two addresses and the volume by id, under MailHost with the names (and so URNs) a created one has", () => {
    const imported = custom(adopted)
      .filter((r) => r.options.importId !== "")
      .map((r) => [r.name, r.options.importId]);
    assert.deepEqual(imported, [
      ["mail-ipv4", ADOPT.ipv4],
      ["mail-ipv6", ADOPT.ipv6],
      ["mail-data", ADOPT.volume],
    ]);
    const host = adopted.resources.find((r) => r.type === "mailstack:index:MailHost");
    for (const name of ["mail-ipv4", "mail-ipv6", "mail-data"]) {
      assert.equal(byName(adopted, name).parent, host!.urn, name);
      assert.equal(byName(adopted, name).urn, byName(plain, name).urn, name);
    }
  });

  test("the stack output adoptIds is what server.adopt takes: the ids of the addresses and the volume", () => {
    assert.deepEqual(adopted.outputs.adoptIds, ADOPT);
    assert.deepEqual(plain.outputs.adoptIds, {
      ipv4: reveal(byName(plain, "mail-ptr-ipv4").inputs.primaryIpId)!.toString(),
      ipv6: reveal(byName(plain, "mail-ptr-ipv6").inputs.primaryIpId)!.toString(),
      volume: reveal(byName(plain, "mail-data-attachment").inputs.volumeId)!.toString(),
    });
  });

  test("adopted resources are declared with the inputs an import reads back (type, location, autoDelete false), so it diffs to no replacement", () => {
    for (const [name, type] of [
      ["mail-ipv4", "ipv4"],
      ["mail-ipv6", "ipv6"],
    ]) {
      const r = byName(adopted, name);
      assert.deepEqual([r.inputs.type, r.inputs.location, r.inputs.autoDelete, r.inputs.name], [type, "fsn1", false, undefined], name);
    }
    assert.equal(byName(adopted, "mail-data").inputs.location, "fsn1");
  });

  test("the new server takes the adopted addresses and the adopted volume is the one attached and mounted", () => {
    const server = byName(adopted, "mail-server");
    const nets = reveal(server.inputs.publicNets) as Record<string, unknown>[];
    assert.deepEqual([reveal(nets[0].ipv4), reveal(nets[0].ipv6)], [Number(ADOPT.ipv4), Number(ADOPT.ipv6)]);
    assert.equal(reveal(byName(adopted, "mail-data-attachment").inputs.volumeId), Number(ADOPT.volume));
    assert.match(String(reveal(server.inputs.userData)), new RegExp(`scsi-0HC_Volume_${ADOPT.volume}`));
    assert.deepEqual(
      [reveal(byName(adopted, "mail-ptr-ipv4").inputs.primaryIpId), reveal(byName(adopted, "mail-ptr-ipv6").inputs.primaryIpId)],
      [Number(ADOPT.ipv4), Number(ADOPT.ipv6)],
    );
    assert.equal(byName(adopted, "mail-ptr-ipv4").options.importId, "", "a PTR is created (set again), never imported");
  });
});
