// The first `pulumi preview` of a fresh stack, offline: the real program (infra/program.ts with
// stacks/Pulumi.dev.yaml) against an empty state, with the real Node dynamic provider host for
// AcmeCertificate and simple stand-ins for the other packages. In a preview the TLS keys are unknown,
// so AcmeCertificate's check gets the unknown sentinel (issue 13, defect 2): it must not fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { simulate } from "../../infra/offline/simulate";
import { dynamicProviderHost } from "../../infra/offline/providers/dynamic-host";
import { devConfig, mailProgram, PROGRAM_PACKAGES, programStandIn, ROOT } from "../harness/program-stand-ins";

test("the first preview of the dev stack succeeds: every resource is a create, the ACME certificate included", async () => {
  const { config, secretKeys } = devConfig();
  const preview = await simulate({
    mode: "preview",
    stack: "dev",
    config,
    secretKeys,
    providers: [...PROGRAM_PACKAGES.map(programStandIn), dynamicProviderHost({ projectDir: ROOT })],
    projectDir: ROOT,
    parallel: 1,
    program: mailProgram,
  });
  assert.deepEqual(
    preview.diagnostics.map((d) => d.message),
    [],
  );
  assert.equal(preview.failed, false);
  assert.deepEqual([...new Set(preview.steps.map((s) => s.op))], ["create"]);
  assert.ok(preview.steps.some((s) => s.type === "pulumi-nodejs:dynamic/mailstack:AcmeCertificate"));
  assert.ok(preview.steps.some((s) => s.type === "command:remote:Command" && s.urn.endsWith("::mail-install")));
});
