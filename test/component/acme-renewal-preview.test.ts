// Issue 13 item 7: the preview of a `pulumi up` in which only the certificate is due for renewal,
// and that `up`. The real program runs through the offline engine (infra/offline/simulate.ts)
// with the strict stand-ins and the engine's own Node dynamic provider host over the deployment
// model (test/harness/deployment-world.ts), whose CA issued the certificate 70 days ago: at 20 of
// 90 days left, AcmeCertificate's own diff says re-issue (a third or less remains).
//
// In that preview the host has no preview support, so the engine answers the certificate's update
// with its checked inputs and every output-only property (certificatePem, notAfter, ...) is unknown
// to the program (research/engine.md 2 and 10). What shows as changing must be the certificate and
// the deploy of the new certificate (the install step, whose manifest carries it), nothing else: no
// DNS record (CAA pins the account, which a renewal does not touch), no key, no account, no server.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Checkpoint } from "../../infra/offline/model";
import { containsUnknowns } from "../../infra/offline/property-values";
import { DeploymentWorld, DEV_VALUES } from "../harness/deployment-world";
import { refuseOutsideTraffic, refused } from "../harness/no-outside-traffic";

refuseOutsideTraffic();

const DAY = 86_400_000;
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

describe("a pending certificate renewal, previewed and applied through the engine's rules", async () => {
  const world = new DeploymentWorld();
  world.ca.now = () => new Date(Date.now() - 70 * DAY);
  const first = await world.run(DEV_VALUES, undefined);
  assert.deepEqual(first.diagnostics, []);
  world.ca.now = () => new Date();
  let checkpoint: Checkpoint = first.checkpoint;
  const accountUrl = String(checkpoint.resources.find((r) => nameOf(r.urn) === "mail-acme-account")!.outputs.accountUrl);
  const preview = await world.run(DEV_VALUES, checkpoint, { mode: "preview" });

  test("the preview shows the certificate and the install step as updates, and nothing else", () => {
    assert.deepEqual(preview.diagnostics, []);
    assert.deepEqual(
      preview.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${nameOf(s.urn)}`),
      ["update mail-certificate", "update mail-install"],
    );
  });

  test("no DNS record has an unknown input: every CAA record still names the same account", () => {
    const records = preview.resources.filter((r) => r.type === "cloudflare:index/dnsRecord:DnsRecord");
    assert.equal(records.length, world.cloudflare.records.size);
    assert.deepEqual(
      records.filter((r) => containsUnknowns(r.inputs)).map((r) => r.name),
      [],
    );
    const caa = records.filter((r) => r.inputs.type === "CAA" && (r.inputs.data as { tag: string }).tag === "issue");
    assert.equal(caa.length, 2);
    for (const r of caa) assert.match(String((r.inputs.data as { value: string }).value), new RegExp(`accounturi=${accountUrl};`));
  });

  test("only the deploy of the new certificate waits on it: the install step; the certificate's own inputs are all known", () => {
    assert.deepEqual(
      preview.resources.filter((r) => containsUnknowns(r.inputs)).map((r) => `${r.type} ${r.name}`),
      ["command:remote:Command mail-install"],
    );
  });

  test("the up re-issues once for the same key, runs the install once on the same machine, and changes no DNS record", async () => {
    const before = {
      dns: [...world.cloudflare.records.values()].map((r) => JSON.stringify(r)).sort(),
      ran: world.ran.length,
      issued: world.ca.issued.length,
      spki: checkpoint.resources.find((r) => nameOf(r.urn) === "mail-certificate")!.outputs.spkiSha256,
    };
    const up = await world.run(DEV_VALUES, checkpoint);
    assert.deepEqual(up.diagnostics, []);
    checkpoint = up.checkpoint;
    assert.deepEqual(
      up.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${nameOf(s.urn)}`),
      ["update mail-certificate", "update mail-install"],
    );
    assert.deepEqual(
      world.ca.issued.slice(before.issued).map((c) => c.reason.split(" (")[0]),
      ["a third or less of the 90 days lifetime remains"],
    );
    const certificate = checkpoint.resources.find((r) => nameOf(r.urn) === "mail-certificate")!.outputs;
    assert.equal(certificate.spkiSha256, before.spki);
    assert.ok(Date.parse(String(certificate.notAfter)) > Date.now() + 89 * DAY);
    const serverId = [...world.hcloud.servers.keys()][0];
    assert.deepEqual(
      world.ran.slice(before.ran).map((x) => [x.step, x.serverId]),
      [["install", serverId]],
    );
    assert.deepEqual([...world.cloudflare.records.values()].map((r) => JSON.stringify(r)).sort(), before.dns);
  });

  test("afterwards a preview is quiet again", async () => {
    const again = await world.run(DEV_VALUES, checkpoint, { mode: "preview" });
    assert.deepEqual(
      again.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${nameOf(s.urn)}`),
      [],
    );
    assert.deepEqual(refused, []);
  });
});
