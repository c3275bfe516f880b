// The machine's cloud-init stand-in reads the user data the program renders, and refuses what it
// would not carry out (infra/local-internet/machine/in-machine/cloud-init.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { packageNames, parseUserData } from "../../infra/local-internet/machine/in-machine/cloud-init";
import { FIRST_BOOT_PACKAGES, renderCloudInit } from "../../server-bootstrap/cloud-init";

describe("user data", () => {
  const key = generateKeyPairSync("ed25519");
  const userData = renderCloudInit({
    hostKeyPrivateOpenssh: key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    hostKeyPublicOpenssh: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    volumeId: "12345",
  });

  test("the program's #cloud-config is accepted whole: every key it uses is modeled", () => {
    const config = parseUserData(userData);
    assert.equal(config.disable_root, false);
    assert.deepEqual(config.ssh_genkeytypes, []);
    assert.deepEqual(packageNames(config), FIRST_BOOT_PACKAGES);
    assert.deepEqual(config.runcmd, [["/usr/local/sbin/mailstack-bootstrap"]]);
  });

  test("a key cloud-init would act on but the stand-in does not is refused by name", () => {
    assert.throws(
      () => parseUserData(`${userData}bootcmd:\n  - [touch, /x]\n`),
      /key "bootcmd" is not modeled by the machine's cloud-init stand-in/,
    );
  });

  test("only #cloud-config user data is modeled", () => {
    assert.throws(() => parseUserData("#!/bin/sh\necho hi\n"), /only "#cloud-config" is modeled/);
  });

  test("a write_files encoding the stand-in does not decode is refused", () => {
    assert.throws(
      () => parseUserData("#cloud-config\nwrite_files:\n  - path: /x\n    encoding: gzip\n    content: abc\n"),
      /write_files\[0\]\.encoding "gzip" is not modeled/,
    );
  });

  test("the local internet's package script installs every package the user data installs (machines cannot run apt)", () => {
    const script = fs.readFileSync("infra/local-internet/install-packages.sh", "utf8");
    const block = /^packages=\($([\s\S]*?)^\)$/m.exec(script)![1];
    const listed = block
      .split("\n")
      .map((l) => l.replace(/#.*/, ""))
      .flatMap((l) => l.split(/\s+/))
      .filter(Boolean);
    for (const p of FIRST_BOOT_PACKAGES) assert.ok(listed.includes(p), `install-packages.sh does not install ${p}`);
  });
});
