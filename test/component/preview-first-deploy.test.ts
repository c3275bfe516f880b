// The first `pulumi preview` of a fresh stack, offline: the real program (infra/program.ts with
// stacks/Pulumi.dev.yaml) against an empty state through the offline engine, with the strict
// provider stand-ins and the engine's own Node dynamic provider host (test/harness/deployment-world.ts).
// In a preview the TLS keys, and with them the certificate request, are unknown, so
// AcmeCertificate's check gets the unknown sentinel (issue 13, defect 2): it must not fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Unknown } from "../../infra/offline/model";
import { DeploymentWorld, DEV_VALUES } from "../harness/deployment-world";
import { refuseOutsideTraffic, refused } from "../harness/no-outside-traffic";

refuseOutsideTraffic();

test("the first preview of the dev stack succeeds: every resource is a create, the ACME certificate and its request included; nothing runs", async () => {
  const world = new DeploymentWorld();
  const preview = await world.run(DEV_VALUES, undefined, { mode: "preview" });
  assert.deepEqual(
    preview.diagnostics.map((d) => d.message),
    [],
  );
  assert.equal(preview.failed, false);
  assert.deepEqual([...new Set(preview.steps.map((s) => s.op))], ["create"]);
  const created = preview.steps.map((s) => `${s.type} ${s.urn.slice(s.urn.lastIndexOf("::") + 2)}`);
  for (const step of [
    "pulumi-nodejs:dynamic/mailstack:AcmeCertificate mail-certificate",
    "tls:index/certRequest:CertRequest mail-certificate-request",
    "command:remote:Command mail-install",
  ]) {
    assert.ok(created.includes(step), step);
  }
  const certificate = preview.resources.find((r) => r.name === "mail-certificate")!;
  assert.equal(certificate.inputs.csrPem, Unknown, "the request exists only once its CertRequest is created");
  assert.deepEqual(
    [world.executor.calls.length, world.hcloud.actions.length, world.cloudflare.records.size, world.ca.issued.length],
    [0, 0, 0, 0],
  );
  assert.deepEqual(refused, []);
});
