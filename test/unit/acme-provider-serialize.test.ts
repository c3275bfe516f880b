import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { acmeCertificateProvider } from "../../components/acme-certificate";

const REPO = path.resolve(__dirname, "../..");

describe("AcmeCertificate's dynamic provider survives Pulumi's closure serialisation", () => {
  test("the serialised provider runs in a fresh Node process (no TS loader preloaded) and checks inputs", async () => {
    const provider = acmeCertificateProvider();
    // what pulumi.dynamic.Resource does with the provider object
    const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    assert.equal(
      serialized.text.length < 20_000,
      true,
      `serialised provider is ${serialized.text.length} bytes: it captured more than the loader`,
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "acme-provider-"));
    try {
      fs.writeFileSync(path.join(dir, "provider.js"), serialized.text);
      // Evaluate like the dynamic-provider host: `require` resolving from @pulumi/pulumi's own folder.
      const host = `
        const Module = require("node:module");
        const req = Module.createRequire(${JSON.stringify(path.join(REPO, "node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js"))});
        const text = require("node:fs").readFileSync(${JSON.stringify(path.join(dir, "provider.js"))}, "utf8");
        const exports = {};
        new Function("exports", "require", "module", "__filename", "__dirname", text)(exports, req, { exports }, "provider.js", ${JSON.stringify(dir)});
        const p = exports[${JSON.stringify(serialized.exportName)}]();
        p.check({}, { names: ["Bad.example.org"], directoryUrl: "http://x", dns01: { provider: "cloudflare", apiToken: "t" } })
          .then((r) => process.stdout.write(JSON.stringify(r.failures)), (e) => { console.error(e); process.exit(1); });`;
      const out = execFileSync(process.execPath, ["-e", host], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
      const failures = JSON.parse(out) as { property: string }[];
      assert.deepEqual(
        failures.map((f) => f.property),
        ["names", "directoryUrl", "accountKeyPem", "certificateKeyPem"],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
