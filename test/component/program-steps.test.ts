// The real program (infra/program.ts, stacks/Pulumi.dev.yaml) through the offline engine's `up`
// (infra/offline/simulate.ts: the real engine's step rules) with the strict provider stand-ins over
// a model of Hetzner, Cloudflare, the machines and the CA (test/harness/deployment-world.ts), in
// the order a user runs them, each from the previous state and world:
// first up, unchanged up, a user, an alias, a DKIM rotation (and dropping the old keys), a new
// maild build, a resize, a server replacement (DESIGN invariant 1), a destroy that keeps the
// addresses, their PTRs and the volume, and coming back by adopting them.
// What each asserts: the engine's steps, what ran on which machine and in what order, and what
// the worlds hold afterwards. Nothing leaves this process (no-outside-traffic.ts).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Checkpoint, Step } from "../../infra/offline/model";
import type { SimulateResult } from "../../infra/offline/simulate";
import { bundleDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { DeploymentWorld, DEV_VALUES, type WorldEvent } from "../harness/deployment-world";
import { refuseOutsideTraffic, refused } from "../harness/no-outside-traffic";

refuseOutsideTraffic();

const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
/** The steps that change something, as `op name` (same steps left out). */
const changes = (r: SimulateResult) => r.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${nameOf(s.urn)}`);
const typeOf = (r: Step) => r.type;

type Values = Record<string, unknown>;
const withServer = (values: Values, server: Record<string, unknown>): Values => ({
  ...values,
  server: { ...(values.server as Record<string, unknown>), ...server },
});
const withDkim = (values: Values, generations: string[]): Values => ({
  ...values,
  domains: (values.domains as Record<string, unknown>[]).map((d, i) => (i === 0 ? { ...d, dkim: { generations } } : d)),
});

describe("the dev stack's life, step by step, through the engine's rules", () => {
  const world = new DeploymentWorld();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "program-steps-"));
  // One maild bundle for the whole life: a new build is this file with other content.
  const bundle = path.join(work, "maild.js");
  let values: Values = DEV_VALUES;
  let checkpoint: Checkpoint | undefined;
  let last: SimulateResult;
  /** counts before the current flow, to see what it added */
  let mark = { ran: 0, calls: 0, timeline: 0, actions: 0, issued: 0 };

  const up = async (next: Values, opts: { program?: () => unknown } = {}) => {
    mark = {
      ran: world.ran.length,
      calls: world.executor.calls.length,
      timeline: world.timeline.length,
      actions: world.hcloud.actions.length,
      issued: world.ca.issued.length,
    };
    last = await world.run(next, checkpoint, { daemonBundlePath: bundle, ...opts });
    assert.deepEqual(
      last.diagnostics.map((d) => d.message),
      [],
    );
    assert.equal(last.failed, false);
    values = next;
    checkpoint = last.checkpoint;
    return last;
  };
  const ranSince = () => world.ran.slice(mark.ran);
  const timelineSince = (): WorldEvent[] => world.timeline.slice(mark.timeline);
  const server = () => {
    assert.equal(world.hcloud.servers.size, 1, "one server");
    return [...world.hcloud.servers.values()][0];
  };
  const machineOf = (serverId: number) => world.machines.get(serverId)!.machineId;
  /** every DNS record as Cloudflare holds it: id, type, name, content, data */
  const dns = () =>
    [...world.cloudflare.records.values()]
      .map((r) => `${r.id} ${r.type} ${r.name} ${r.content} ${JSON.stringify(r.data ?? null)} ${r.priority ?? ""}`)
      .sort();
  const ptrs = () => [...world.hcloud.primaryIps.values()].map((ip) => `${ip.id} ${ip.ip} ${JSON.stringify([...ip.dnsPtr])}`).sort();
  const ids = (type: string) =>
    Object.fromEntries(
      checkpoint!.resources
        .filter((r) => r.type === type)
        .map((r) => [nameOf(r.urn), r.id])
        .sort(),
    );
  const stateOf = (name: string) => checkpoint!.resources.find((r) => nameOf(r.urn) === name && r.custom)!;

  before(() => {
    fs.copyFileSync(bundleDaemon(), bundle);
  });
  after(() => {
    fs.rmSync(work, { recursive: true, force: true });
    assert.deepEqual(refused, [], "nothing tried to leave this machine");
  });

  test("first up: everything is created; the daemon is deployed on the server once its volume is attached", async () => {
    const r = await up(DEV_VALUES);
    assert.deepEqual([...new Set(r.steps.map((s) => s.op))], ["create"]);
    const srv = server();
    const machine = machineOf(srv.id);
    assert.deepEqual(
      ranSince().map((x) => [x.step, x.serverId, x.machineId]),
      ["wait", "copy maild.js", "copy install.sh", "install", "release-volume create"].map((step) => [step, srv.id, machine]),
    );
    const events = timelineSince().map((e) => (e.kind === "ssh" ? e.step : e.what));
    const volume = [...world.hcloud.volumes.values()][0];
    assert.ok(events.indexOf(`volume ${volume.id} attached`) < events.indexOf("install"), events.join(", "));
    assert.equal(volume.serverId, srv.id);
    assert.deepEqual(
      [srv.ipv4Id, srv.ipv6Id],
      [...world.hcloud.primaryIps.values()].map((ip) => ip.id),
    );
    for (const ip of world.hcloud.primaryIps.values()) {
      const address = ip.type === "ipv4" ? ip.ip : `${ip.ip}1`;
      assert.equal(ip.dnsPtr.get(address), "mail.example.org", `PTR of ${address}`);
    }
    const records = r.steps.filter((s) => s.type === "cloudflare:index/dnsRecord:DnsRecord");
    assert.equal(world.cloudflare.records.size, records.length);
    assert.deepEqual(
      world.ca.issued.map((c) => c.reason),
      ["new certificate"],
    );
    // nothing is retained on a destroy, protected or imported without server.keepOnDestroy/adopt
    assert.deepEqual(
      checkpoint!.resources.filter((x) => x.retainOnDelete || x.protect || x.importId).map((x) => nameOf(x.urn)),
      [],
    );
  });

  test("unchanged up: no step changes anything, no command runs, no API call is made", async () => {
    const before = { dns: dns(), ptrs: ptrs() };
    const r = await up(values);
    assert.deepEqual(changes(r), []);
    assert.equal(world.executor.calls.length, mark.calls);
    assert.equal(world.hcloud.actions.length, mark.actions);
    assert.equal(world.ca.issued.length, mark.issued);
    assert.deepEqual({ dns: dns(), ptrs: ptrs() }, before);
  });

  for (const [flow, edit] of [
    [
      "a user added",
      (v: Values) => ({ ...v, users: [...(v.users as object[]), { ...(v.users as object[])[0], address: "carol@example.org" }] }),
    ],
    [
      "an alias added",
      (v: Values) => ({ ...v, aliases: [...(v.aliases as object[]), { address: "sales@example.org", to: ["alice@example.org"] }] }),
    ],
  ] as const) {
    test(`${flow}: only the install step is updated, in place, and runs once on the same machine; no DNS change`, async () => {
      const before = { dns: dns(), serverId: server().id };
      const r = await up(edit(values));
      assert.deepEqual(changes(r), ["update mail-install"]);
      assert.deepEqual(r.steps.find((s) => s.op === "update")!.changedKeys.sort(), ["create", "stdin", "update"]);
      assert.deepEqual(
        ranSince().map((x) => [x.step, x.serverId, x.machineId]),
        [["install", before.serverId, machineOf(before.serverId)]],
      );
      assert.equal(world.executor.calls.length, mark.calls + 1);
      assert.deepEqual(dns(), before.dns);
    });
  }

  test("a DKIM rotation: new keys and their selectors' records are created, the install updated; nothing is deleted", async () => {
    const before = dns();
    const r = await up(withDkim(values, ["s2", "s1"]));
    const done = changes(r);
    assert.deepEqual([...done].sort(), [
      "create example.org-dkim-s2-ed25519",
      "create example.org-dkim-s2-rsa",
      "create example.org/txt/s2-ed25519._domainkey.example.org",
      "create example.org/txt/s2-rsa._domainkey.example.org",
      "update mail-install",
    ]);
    // Steps that do not depend on each other run in any order (the real engine runs them in
    // parallel); what must hold is that a record and the install wait for the keys they carry.
    const at = (step: string) => done.indexOf(step);
    for (const alg of ["rsa", "ed25519"]) {
      assert.ok(at(`create example.org-dkim-s2-${alg}`) < at(`create example.org/txt/s2-${alg}._domainkey.example.org`), alg);
      assert.ok(at(`create example.org-dkim-s2-${alg}`) < at("update mail-install"), alg);
    }
    assert.deepEqual(
      ranSince().map((x) => x.step),
      ["install"],
    );
    const added = dns().filter((d) => !before.includes(d));
    assert.deepEqual(added.map((d) => d.split(" ").slice(1, 3).join(" ")).sort(), [
      "TXT s2-ed25519._domainkey.example.org",
      "TXT s2-rsa._domainkey.example.org",
    ]);
    assert.equal(dns().length, before.length + 2);
  });

  test("dropping the old DKIM generation: the install is updated first, then exactly its records and keys are deleted, records before keys", async () => {
    const before = dns();
    const r = await up(withDkim(values, ["s2"]));
    // Deletes run in waves (antichains, run in parallel): the order inside a wave is free.
    const steps = r.steps.filter((s) => s.op !== "same").map((s) => [s.op, nameOf(s.urn), s.wave] as const);
    assert.deepEqual(steps[0], ["update", "mail-install", undefined]);
    assert.deepEqual(
      steps
        .slice(1)
        .map((s) => JSON.stringify(s))
        .sort(),
      [
        ["delete", "example.org-dkim-s1-ed25519", 1],
        ["delete", "example.org-dkim-s1-rsa", 1],
        ["delete", "example.org/txt/s1-ed25519._domainkey.example.org", 0],
        ["delete", "example.org/txt/s1-rsa._domainkey.example.org", 0],
      ].map((s) => JSON.stringify(s)),
    );
    assert.deepEqual(
      steps.slice(1).map((s) => s[2]),
      [0, 0, 1, 1],
      "the records' wave runs before the keys'",
    );
    const removed = before.filter((d) => !dns().includes(d));
    assert.deepEqual(removed.map((d) => d.split(" ").slice(1, 3).join(" ")).sort(), [
      "TXT s1-ed25519._domainkey.example.org",
      "TXT s1-rsa._domainkey.example.org",
    ]);
    assert.equal(dns().length, before.length - 2);
  });

  test("a new maild build: the bundle is copied again and the install updated in place, on the same machine", async () => {
    fs.appendFileSync(bundle, "\n// another build\n");
    const serverId = server().id;
    const r = await up(values);
    assert.deepEqual(changes(r), ["update mail-daemon", "update mail-install"]);
    assert.deepEqual(r.steps.find((s) => nameOf(s.urn) === "mail-daemon" && s.op === "update")!.changedKeys, ["source"]);
    assert.deepEqual(
      ranSince().map((x) => [x.step, x.serverId]),
      [
        ["copy maild.js", serverId],
        ["install", serverId],
      ],
    );
  });

  test("a resize: the server is updated in place with a power cycle; nothing else changes, nothing is replaced", async () => {
    const before = { dns: dns(), serverId: server().id, machine: machineOf(server().id) };
    const r = await up(withServer(values, { type: "cx33" }));
    assert.deepEqual(changes(r), ["update mail-server"]);
    assert.deepEqual(
      timelineSince().map((e) => (e.kind === "hcloud" ? [e.what, e.serverId] : [e.step, e.serverId])),
      [
        ["server poweroff", before.serverId],
        ["server type cx23 -> cx33", before.serverId],
        ["server powered on", before.serverId],
      ],
    );
    assert.deepEqual([server().id, server().type.name, machineOf(server().id)], [before.serverId, "cx33", before.machine]);
    assert.deepEqual(dns(), before.dns);
  });

  test("a new image replaces the server: the engine's delete-before-replace cascade runs on the old machine first; addresses, PTRs, volume, DNS and keys stay (DESIGN invariant 1)", async () => {
    const old = server();
    const oldMachine = machineOf(old.id);
    const volume = [...world.hcloud.volumes.values()][0];
    const before = {
      dns: dns(),
      ptrs: ptrs(),
      ips: [old.ipv4Id, old.ipv6Id],
      keys: ids("tls:index/privateKey:PrivateKey"),
      request: ids("tls:index/certRequest:CertRequest"),
      certificate: stateOf("mail-certificate").outputs.serialHex,
    };
    const r = await up(withServer(values, { image: "ubuntu-24.04" }));
    const cascade = [
      "mail-release-volume",
      "mail-install",
      "mail-installer",
      "mail-daemon",
      "mail-wait-for-ssh",
      "mail-ssh-reachable",
      "mail-data-attachment",
    ];
    assert.deepEqual(changes(r), [
      ...cascade.map((n) => `delete-replaced ${n}`),
      "delete-replaced mail-server",
      "create-replacement mail-server",
      ...[...cascade].reverse().map((n) => `create-replacement ${n}`),
    ]);
    const fresh = server();
    assert.notEqual(fresh.id, old.id);
    const newMachine = machineOf(fresh.id);
    assert.deepEqual(
      timelineSince().map((e) => (e.kind === "ssh" ? [e.step, e.serverId, e.machineId, e.guardPassed] : [e.what, e.serverId])),
      [
        // the old machine releases the volume and stops maild, each guarded by its own machine id
        ["release-volume", old.id, oldMachine, true],
        ["stop", old.id, oldMachine, true],
        [`volume ${volume.id} detached`, old.id],
        ["server shutdown", old.id],
        ["server deleted", old.id],
        ["server created", fresh.id],
        [`volume ${volume.id} attached`, fresh.id],
        ["wait", fresh.id, newMachine, undefined],
        ["copy maild.js", fresh.id, newMachine, undefined],
        ["copy install.sh", fresh.id, newMachine, undefined],
        ["install", fresh.id, newMachine, undefined],
        ["release-volume create", fresh.id, newMachine, undefined],
      ],
    );
    assert.deepEqual([fresh.ipv4Id, fresh.ipv6Id], before.ips, "the same primary IPs");
    assert.equal(world.hcloud.volumes.get(volume.id)!.serverId, fresh.id, "the same volume, on the new server");
    assert.deepEqual(ptrs(), before.ptrs);
    assert.deepEqual(dns(), before.dns);
    assert.deepEqual(ids("tls:index/privateKey:PrivateKey"), before.keys, "no DKIM, TLS, host or account key changed");
    assert.deepEqual(ids("tls:index/certRequest:CertRequest"), before.request);
    assert.equal(stateOf("mail-certificate").outputs.serialHex, before.certificate);
  });

  let adoptIds: Record<string, string>;
  /** the URNs of the kept resources, which adopted ones must have again */
  let keptUrns: string[];

  test("server.keepOnDestroy with deleteProtection: Hetzner's delete protection goes on in place; the addresses, PTRs and volume are retained on delete; nothing is Pulumi-protected", async () => {
    const r = await up(withServer(values, { keepOnDestroy: true, deleteProtection: true }));
    assert.deepEqual(
      r.steps.filter((s) => s.op !== "same").map((s) => [s.op, nameOf(s.urn), s.changedKeys]),
      [
        ["update", "mail-ipv4", ["deleteProtection"]],
        ["update", "mail-ipv6", ["deleteProtection"]],
        ["update", "mail-data", ["deleteProtection"]],
      ],
    );
    assert.deepEqual(
      [...world.hcloud.primaryIps.values(), ...world.hcloud.volumes.values()].map((x) => x.deleteProtection),
      [true, true, true],
    );
    assert.deepEqual(
      checkpoint!.resources
        .filter((x) => x.retainOnDelete)
        .map((x) => nameOf(x.urn))
        .sort(),
      ["mail-data", "mail-ipv4", "mail-ipv6", "mail-ptr-ipv4", "mail-ptr-ipv6"],
    );
    // Pulumi's protect would fail the destroy (a protected delete errors before retainOnDelete is looked at)
    assert.deepEqual(
      checkpoint!.resources.filter((x) => x.protect).map((x) => nameOf(x.urn)),
      [],
    );
    adoptIds = r.outputs.adoptIds as Record<string, string>;
    keptUrns = ["mail-ipv4", "mail-ipv6", "mail-data"].map((n) => stateOf(n).urn);
    const [v4, v6] = [...world.hcloud.primaryIps.values()];
    assert.deepEqual(adoptIds, { ipv4: String(v4.id), ipv6: String(v6.id), volume: String([...world.hcloud.volumes.keys()][0]) });
  });

  test("destroy with keepOnDestroy: everything else is deleted, dependents first; the addresses, PTRs and volume stay in Hetzner", async () => {
    const kept = { ptrs: ptrs(), volumes: [...world.hcloud.volumes.keys()] };
    const old = server();
    const oldState = checkpoint!;
    const r = await up(values, { program: () => ({}) });
    const ROOT_STACK = "pulumi:pulumi:Stack";
    assert.deepEqual([...new Set(r.steps.filter((s) => s.type !== ROOT_STACK).map((s) => s.op))].sort(), ["delete", "retain"]);
    assert.deepEqual(
      r.steps
        .filter((s) => s.op === "retain")
        .map((s) => nameOf(s.urn))
        .sort(),
      ["mail-data", "mail-ipv4", "mail-ipv6", "mail-ptr-ipv4", "mail-ptr-ipv6"],
    );
    // the engine's order: in waves over the old state's dependencies, each resource after everything that depends on it
    const deletes = r.steps.filter((s) => s.wave !== undefined);
    const waveOf = new Map(deletes.map((s) => [s.urn, s.wave!]));
    assert.deepEqual(
      deletes.map((s) => s.wave),
      deletes.map((s) => s.wave).sort((a, b) => a! - b!),
    );
    for (const res of oldState.resources) {
      if (!waveOf.has(res.urn)) continue;
      const uses = [...res.dependencies, ...Object.values(res.propertyDependencies).flat(), ...(res.parent ? [res.parent] : [])];
      for (const dependency of uses) {
        if (waveOf.has(dependency))
          assert.ok(waveOf.get(res.urn)! < waveOf.get(dependency)!, `${nameOf(res.urn)} before ${nameOf(dependency)}`);
      }
    }
    assert.deepEqual(
      r.steps
        .filter(
          (s) => typeOf(s).startsWith("command:") || ["mail-ssh-reachable", "mail-data-attachment", "mail-server"].includes(nameOf(s.urn)),
        )
        .map((s) => [nameOf(s.urn), s.wave]),
      [
        ["mail-release-volume", 0],
        ["mail-install", 1],
        ["mail-daemon", 2],
        ["mail-installer", 2],
        ["mail-wait-for-ssh", 3],
        ["mail-ssh-reachable", 4],
        ["mail-data-attachment", 6],
        ["mail-server", 7],
      ],
    );
    const machine = machineOf(old.id);
    const volumeId = kept.volumes[0];
    assert.deepEqual(
      timelineSince().map((e) => (e.kind === "ssh" ? [e.step, e.machineId, e.guardPassed] : [e.what, e.serverId])),
      [
        ["release-volume", machine, true],
        ["stop", machine, true],
        [`volume ${volumeId} detached`, old.id],
        ["server shutdown", old.id],
        ["server deleted", old.id],
      ],
    );
    assert.deepEqual(
      [world.hcloud.servers.size, world.hcloud.firewalls.size, world.hcloud.sshKeys.size, world.cloudflare.records.size],
      [0, 0, 0, 0],
    );
    assert.deepEqual(ptrs(), kept.ptrs, "the addresses and their PTRs are still there");
    assert.deepEqual([...world.hcloud.volumes.keys()], kept.volumes);
    assert.equal(world.hcloud.volumes.get(volumeId)!.serverId, undefined);
    assert.deepEqual(
      checkpoint!.resources.map((x) => x.type),
      ["pulumi:pulumi:Stack"],
    );
  });

  test("coming back with server.adopt: the addresses and the volume are imported, none made; the PTRs are set again; a new server gets them", async () => {
    const before = { ips: [...world.hcloud.primaryIps.keys()], volumes: [...world.hcloud.volumes.keys()] };
    const r = await up(withServer(values, { keepOnDestroy: true, adopt: adoptIds }));
    const hcloudSteps = r.steps.filter((s) => s.type.startsWith("hcloud:")).map((s) => `${s.op} ${nameOf(s.urn)}`);
    assert.deepEqual(
      hcloudSteps.filter((s) => /mail-(ipv4|ipv6|data)$/.test(s)),
      [
        "import mail-ipv4",
        // the bridge autonames `name`: an import's Read reports the Hetzner name as no default, so
        // the program's autoname differs and is written (and a volume's format/automount, which
        // Hetzner's Read does not report and its Update ignores): updates, never a replacement
        "update mail-ipv4",
        "import mail-ipv6",
        "update mail-ipv6",
        "import mail-data",
        "update mail-data",
      ],
    );
    assert.deepEqual(
      r.steps.filter((s) => s.op === "update").map((s) => [nameOf(s.urn), s.changedKeys.sort()]),
      [
        ["mail-ipv4", ["name"]],
        ["mail-ipv6", ["name"]],
        ["mail-data", ["automount", "format", "name"]],
      ],
    );
    assert.deepEqual(
      r.steps
        .filter((s) => !["create", "import", "update"].includes(s.op) && s.type !== "pulumi:pulumi:Stack")
        .map((s) => `${s.op} ${nameOf(s.urn)}`),
      [],
    );
    assert.deepEqual(
      r.steps.filter((s) => s.op === "import").map((s) => s.urn),
      keptUrns,
      "imported under MailHost with the URNs the created ones had",
    );
    assert.deepEqual([...world.hcloud.primaryIps.keys()], before.ips, "no new address");
    assert.deepEqual([...world.hcloud.volumes.keys()], before.volumes, "no new volume");
    for (const name of ["mail-ipv4", "mail-ipv6", "mail-data"])
      assert.equal(stateOf(name).id, adoptIds[name === "mail-data" ? "volume" : name.slice(5)]);
    const ptrEvents = timelineSince().filter((e) => e.kind === "hcloud" && e.what.startsWith("ptr "));
    assert.deepEqual(
      ptrEvents.map((e) => (e as { what: string }).what).sort(),
      [...world.hcloud.primaryIps.values()].map((ip) => `ptr ${ip.type === "ipv4" ? ip.ip : `${ip.ip}1`} -> mail.example.org`).sort(),
    );
    const fresh = server();
    assert.deepEqual([fresh.ipv4Id, fresh.ipv6Id].map(String), [adoptIds.ipv4, adoptIds.ipv6]);
    assert.equal(world.hcloud.volumes.get(Number(adoptIds.volume))!.serverId, fresh.id);
    assert.match(fresh.userData, new RegExp(`scsi-0HC_Volume_${adoptIds.volume}\\b`), "cloud-init mounts the adopted volume");
    assert.deepEqual(
      ranSince().map((x) => [x.step, x.serverId]),
      ["wait", "copy maild.js", "copy install.sh", "install", "release-volume create"].map((step) => [step, fresh.id]),
    );
    const ipv4 = world.hcloud.primaryIps.get(Number(adoptIds.ipv4))!.ip;
    assert.equal(
      world.cloudflare.zoneByName("example.org") &&
        [...world.cloudflare.records.values()].find((x) => x.type === "A" && x.name === "mail.example.org")?.content,
      ipv4,
    );
  });
});
