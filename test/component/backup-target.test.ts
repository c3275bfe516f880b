// The backup target under the offline engine (infra/offline/simulate.ts) with the hcloud stand-in
// (its Storage Box rules: location and sshKeys force a new Storage Box, passwords per Hetzner's
// policy, delete protection): the real program (infra/program.ts) with a `backup` section.
// Ordinary changes never touch the Storage Box; a location change is refused by `protect`; a
// mistaken destroy leaves the Storage Box, its sub-account and the repository password behind, and
// the next `up` rebuilds around them.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { simulate, type SimulateResult } from "../../infra/offline/simulate";
import { Secret, type Checkpoint, type PropertyMap } from "../../infra/offline/model";
import { HcloudWorld } from "../../infra/offline/providers/hcloud-world";
import { hcloudStandIn } from "../../infra/offline/providers/hcloud";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { devConfig, programStandIn, ROOT } from "../harness/program-stand-ins";
import { bundleDaemon } from "../../server-bootstrap/install/daemon-bundle";

const NOW = new Date("2026-09-01T12:00:00Z");
/** What must outlive every ordinary change: the Storage Box, its sub-account, the keys its passwords and the repository's come from. */
const TARGET = ["mail-backup", "mail-backup-subaccount", "mail-backup-repository-key", "mail-backup-storage-password-key"];

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

// One maild bundle for every run: a new build is this file with other content.
const bundle = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "backup-target-")), "maild.js");
fs.copyFileSync(bundleDaemon(), bundle);

/** The program as `pulumi` runs it (infra/program.ts), with that bundle. */
function mailProgram(): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
  const { stack: _stack, ...outputs } = defineMailStack({ daemonBundlePath: bundle });
  return outputs;
}

interface StackOverrides {
  server?: Record<string, unknown>;
  backup?: Record<string, unknown>;
  users?: { address: string; passwordHash: string }[];
  domains?: unknown[];
}

function config(over: StackOverrides = {}): { config: Record<string, string>; secretKeys: string[] } {
  const dev = devConfig();
  const c = { ...dev.config };
  c["mailstack:server"] = JSON.stringify({ type: "cx23", location: "nbg1", ...over.server });
  c["mailstack:backup"] = JSON.stringify(over.backup ?? {});
  if (over.domains) c["mailstack:domains"] = JSON.stringify(over.domains);
  if (over.users) c["mailstack:users"] = JSON.stringify(over.users);
  return { config: c, secretKeys: dev.secretKeys };
}

async function run(
  world: HcloudWorld,
  mode: "preview" | "up",
  over: StackOverrides,
  checkpoint?: Checkpoint,
  program = mailProgram,
): Promise<SimulateResult> {
  const { config: c, secretKeys } = config(over);
  return simulate({
    mode,
    stack: "dev",
    config: c,
    secretKeys,
    providers: [hcloudStandIn(world), ...["tls", "cloudflare", "command", "pulumi-nodejs"].map(programStandIn)],
    projectDir: ROOT,
    parallel: 1,
    checkpoint,
    program,
  });
}

const stateOf = (cp: Checkpoint, name: string) => cp.resources.find((r) => nameOf(r.urn) === name && !r.delete);
const stepsOf = (r: SimulateResult, names: string[]) =>
  r.steps.filter((s) => names.includes(nameOf(s.urn))).map((s) => `${s.op} ${nameOf(s.urn)}`);

const devDomains = () => JSON.parse(devConfig().config["mailstack:domains"]) as { name: string; dkim?: { generations: string[] } }[];
const devUsers = () => JSON.parse(devConfig().config["mailstack:users"]) as { address: string; passwordHash: string }[];

/** A Hetzner project of its own and the first `up` of the stack in it. */
async function deployed(): Promise<{ world: HcloudWorld; first: SimulateResult }> {
  const world = new HcloudWorld({ now: () => NOW });
  const first = await run(world, "up", {});
  assert.deepEqual(first.diagnostics, []);
  return { world, first };
}

describe("the backup target under the offline engine", () => {
  let world: HcloudWorld;
  let first: SimulateResult;

  test("the first up creates a Storage Box in hel1 (the server is in nbg1), delete-protected, with a daily snapshot plan, no sshKeys, and a sub-account for the box", async () => {
    ({ world, first } = await deployed());
    assert.equal(first.failed, false);
    const boxState = stateOf(first.checkpoint, "mail-backup")!;
    const box = world.getStorageBox(Number(boxState.id))!;
    assert.deepEqual(
      [box.location, box.type, box.deleteProtection, box.sshKeys, box.snapshotPlan],
      ["hel1", "bx11", true, [], { maxSnapshots: 7, hour: 3, minute: 30 }],
    );
    assert.deepEqual(box.accessSettings, {
      reachableExternally: false,
      sambaEnabled: false,
      sshEnabled: false,
      webdavEnabled: false,
      zfsEnabled: false,
    });
    const subs = [...box.subaccounts.values()];
    assert.equal(subs.length, 1);
    assert.equal(subs[0].homeDirectory, "mailstack/mail.example.org");
    assert.deepEqual(
      [subs[0].accessSettings.sshEnabled, subs[0].accessSettings.reachableExternally, subs[0].accessSettings.readonly],
      [true, true, false],
    );
    // The passwords passed Hetzner's policy (the stand-in refuses others) and differ.
    assert.notEqual(box.password, subs[0].password);
    for (const name of ["mail-backup", "mail-backup-subaccount", "mail-backup-repository-key"]) {
      assert.equal(stateOf(first.checkpoint, name)!.protect, true, `${name} is protected`);
    }
    for (const name of ["mail-backup-box-key", "mail-backup-admin-key", "mail-backup-access"]) {
      assert.equal(stateOf(first.checkpoint, name)!.protect, false, `${name} may be replaced`);
    }
  });

  test("passwords and keys are secrets in the state and the stack outputs; the backup output holds only public facts", () => {
    assert.ok(stateOf(first.checkpoint, "mail-backup")!.inputs.password instanceof Secret);
    assert.ok(stateOf(first.checkpoint, "mail-backup-subaccount")!.inputs.password instanceof Secret);
    assert.ok(stateOf(first.checkpoint, "mail-backup-access")!.outputs.password instanceof Secret);
    const out = first.checkpoint.outputs;
    assert.ok(out.backupRepositoryPassword instanceof Secret);
    assert.match(String((out.backupRepositoryPassword as Secret).value), /^[A-Za-z0-9_-]{43}$/);
    assert.ok(out.backupAdminPrivateKey instanceof Secret);
    assert.ok(out.deployerPrivateKey instanceof Secret);
    const info = out.backup as PropertyMap;
    assert.equal(info.target, "storageBox");
    assert.equal(info.appendOnly, true);
    assert.deepEqual(info.repository, {
      kind: "rclone",
      host: `${String((info.storageBox as PropertyMap).username)}-sub1.your-storagebox.de`,
      port: 23,
      user: `${String((info.storageBox as PropertyMap).username)}-sub1`,
      path: "mailstack-restic",
    });
    assert.doesNotMatch(JSON.stringify(info), /PRIVATE KEY|Ms1-/);
  });

  test("the install step's manifest carries the box's key and the pinned host key, never a Storage Box password", () => {
    const install = stateOf(first.checkpoint, "mail-install")!;
    const manifest = String((install.inputs.stdin as Secret).value);
    const box = world.getStorageBox(Number(stateOf(first.checkpoint, "mail-backup")!.id))!;
    const sub = [...box.subaccounts.values()][0];
    assert.ok(!manifest.includes(Buffer.from(box.password).toString("base64")) && !manifest.includes(box.password));
    const files = manifest
      .split("\n")
      .filter(Boolean)
      .map((l) => ({ path: l.split(" ")[4], content: Buffer.from(l.split(" ")[5], "base64").toString("utf8") }));
    assert.ok(files.every((f) => !f.content.includes(box.password) && !f.content.includes(sub.password)));
    const settings = JSON.parse(files.find((f) => f.path === "/etc/mailstack/backup/settings.json")!.content) as {
      repository: unknown;
      prune: boolean;
    };
    assert.deepEqual(settings.repository, { kind: "rclone", host: sub.server, port: 23, user: sub.username, path: "mailstack-restic" });
    assert.equal(settings.prune, false);
    assert.match(
      files.find((f) => f.path === "/etc/mailstack/backup/known_hosts")!.content,
      /^mailstack-backup-target ssh-ed25519 [A-Za-z0-9+/]+=*\n$/,
    );
    assert.match(files.find((f) => f.path === "/etc/mailstack/backup/ssh-key")!.content, /PRIVATE KEY/);
  });

  // Each change, and a step that shows it happened.
  const ordinary: [string, StackOverrides, RegExp, (() => void)?][] = [
    ["a new maild build", {}, /^update mail-install$/, () => fs.appendFileSync(bundle, "\n// another build\n")],
    [
      "a new user",
      { users: [...devUsers(), { address: "carol@example.org", passwordHash: devUsers()[0].passwordHash }] },
      /^update mail-install$/,
    ],
    [
      "a DKIM rotation",
      { domains: devDomains().map((d, i) => (i === 0 ? { ...d, dkim: { generations: ["s2", "s1"] } } : d)) },
      /^create example\.org-dkim-s2-rsa$/,
    ],
    ["a server replacement (new image)", { server: { image: "ubuntu-24.04" } }, /^create-replacement mail-server$/],
    ["a resize of the server", { server: { type: "cx33" } }, /^update mail-server$/],
    ["another backup schedule and retention", { backup: { schedule: "30m", retention: { hourly: 48 } } }, /^update mail-install$/],
    [
      "a bigger Storage Box and more snapshots",
      { backup: { storageBox: { type: "bx21", snapshots: { keep: 14 } } } },
      /^update mail-backup$/,
    ],
  ];
  for (const [what, over, happened, change] of ordinary) {
    test(`${what} neither replaces nor deletes the Storage Box, its sub-account or the repository key`, async () => {
      const { world, first } = await deployed();
      change?.();
      const r = await run(world, "up", over, first.checkpoint);
      assert.deepEqual(r.diagnostics, []);
      const all = r.steps.map((st) => `${st.op} ${nameOf(st.urn)}`);
      assert.ok(
        all.some((st) => happened.test(st)),
        `the change itself: ${all.filter((st) => !st.startsWith("same")).join(", ")}`,
      );
      const ops = stepsOf(r, TARGET).filter((s) => !/^(same|update) /.test(s));
      assert.deepEqual(ops, []);
      for (const name of ["mail-backup-subaccount", "mail-backup-repository-key", "mail-backup-storage-password-key"]) {
        assert.ok(
          stepsOf(r, [name]).every((s) => s.startsWith("same ")),
          `${name}: ${stepsOf(r, [name]).join(", ")}`,
        );
      }
      assert.equal(stateOf(r.checkpoint, "mail-backup")!.id, stateOf(first.checkpoint, "mail-backup")!.id);
      assert.ok(world.getStorageBox(Number(stateOf(first.checkpoint, "mail-backup")!.id)), "the Storage Box still exists");
      assert.deepEqual(r.checkpoint.outputs.backupRepositoryPassword, first.checkpoint.outputs.backupRepositoryPassword);
    });
  }

  test("the type and snapshot changes are in-place updates of the Storage Box (Hetzner's change_type and snapshot plan)", async () => {
    const { world, first } = await deployed();
    const r = await run(world, "preview", { backup: { storageBox: { type: "bx21", snapshots: { keep: 14 } } } }, first.checkpoint);
    const step = r.steps.find((s) => nameOf(s.urn) === "mail-backup")!;
    assert.equal(step.op, "update");
    assert.deepEqual(step.changedKeys.sort(), ["snapshotPlan", "storageBoxType"]);
    assert.deepEqual(step.replaceKeys, []);
  });

  test("a location change would replace the Storage Box and lose its data: protect refuses it, and nothing is created or deleted", async () => {
    const { world, first } = await deployed();
    const boxId = Number(stateOf(first.checkpoint, "mail-backup")!.id);
    const before = world.actions.length;
    const preview = await run(world, "preview", { backup: { storageBox: { location: "fsn1" } } }, first.checkpoint);
    assert.equal(preview.failed, true);
    // The sub-account names the Storage Box by id, which a new Storage Box would change: it is refused too.
    assert.deepEqual(
      preview.diagnostics.map((d) => [nameOf(d.urn), d.message.split("\n")[0]]),
      ["mail-backup", "mail-backup-subaccount"].map((n) => [n, `unable to replace resource "${stateOf(first.checkpoint, n)!.urn}"`]),
    );
    const up = await run(world, "up", { backup: { storageBox: { location: "fsn1" } } }, first.checkpoint);
    assert.equal(up.failed, true);
    assert.match(up.diagnostics[0].message, /as it is currently marked for protection/);
    assert.deepEqual(
      world.actions.slice(before).filter((a) => /storage_box/.test(a.resource)),
      [],
    );
    assert.equal(world.getStorageBox(boxId)!.location, "hel1");
  });

  test("the stack's config refuses a Storage Box in the server's own location", async () => {
    const r = await run(new HcloudWorld({ now: () => NOW }), "preview", {
      backup: { storageBox: { location: "hel1" } },
      server: { location: "hel1" },
    });
    assert.equal(r.failed, true);
    assert.match(
      String(r.programError),
      /backup\.storageBox\.location: "hel1" is the server's location; a backup there is lost with the datacenter, use fsn1/,
    );
  });

  test("a mistaken destroy deletes the server but fails at the protected target, which keeps its backups and password; the next up rebuilds around it", async () => {
    const { world, first } = await deployed();
    const boxId = Number(stateOf(first.checkpoint, "mail-backup")!.id);
    const destroy = await run(world, "up", {}, first.checkpoint, () => ({}));
    assert.equal(destroy.failed, true);
    // The sub-account's delete fails, so the Storage Box it depends on is never tried (engine.md sec. 6).
    const protectedErrors = destroy.diagnostics
      .filter((d) => /cannot be deleted\nbecause it is protected/.test(d.message))
      .map((d) => nameOf(d.urn));
    assert.deepEqual(protectedErrors.sort(), ["mail-backup-repository-key", "mail-backup-subaccount"]);
    assert.equal(world.servers.size, 0, "the server is gone");
    assert.ok(world.getStorageBox(boxId), "the Storage Box is still there");
    for (const name of TARGET) assert.ok(stateOf(destroy.checkpoint, name), `${name} is still in the state`);

    const again = await run(world, "up", {}, destroy.checkpoint);
    assert.deepEqual(again.diagnostics, []);
    assert.deepEqual(stepsOf(again, ["mail-backup", "mail-backup-subaccount", "mail-backup-repository-key"]).sort(), [
      "same mail-backup",
      "same mail-backup-repository-key",
      "same mail-backup-subaccount",
    ]);
    assert.equal(world.servers.size, 1, "a new server");
    assert.deepEqual(again.checkpoint.outputs.backupRepositoryPassword, first.checkpoint.outputs.backupRepositoryPassword);
  });
});
