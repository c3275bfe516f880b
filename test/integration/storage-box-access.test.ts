// StorageBoxAccess's provider (components/providers/storage-box-access.ts) against the Storage Box
// stand-in (sshd on 23, chrooted sub-account, password accepted): it writes the sub-account's
// authorized_keys over SFTP with the password, takes the host key on first use and insists on it
// afterwards.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startStorageBox, type StorageBox } from "../../infra/local-internet/storage-box";
import { provider, type StorageBoxAccessOutputs } from "../../components/providers/storage-box-access";

const PASSWORD = "Ms1-sub-account-password";
const KEYS_V1 = "# v1\nrestrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl mailstack-admin\n";
const KEYS_V2 = "# v2\nrestrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl mailstack-admin\n";

describe("StorageBoxAccess against a Storage Box stand-in", () => {
  let internet: LocalInternet;
  let host: NetHost;
  let storage: StorageBox;
  let created: StorageBoxAccessOutputs;
  const inputs = (over: Record<string, unknown> = {}) => ({
    host: host.ipv4,
    port: 23,
    user: storage.user,
    password: PASSWORD,
    authorizedKeys: KEYS_V1,
    timeoutSeconds: 5,
    retryDelayMs: 200,
    ...over,
  });

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces, sshd)");
    internet = await LocalInternet.create();
    host = await internet.addHost("storage");
    storage = await startStorageBox(internet, host, { password: PASSWORD });
  });

  after(async () => {
    await storage?.stop().catch(() => undefined);
    await internet?.destroy();
  });

  test("create writes the sub-account's authorized_keys with the password and returns the host key it saw", async () => {
    fs.rmSync(path.join(storage.home, ".ssh"), { recursive: true, force: true });
    const r = await provider.create(inputs());
    created = r.outs as StorageBoxAccessOutputs;
    assert.equal(fs.readFileSync(path.join(storage.home, ".ssh", "authorized_keys"), "utf8"), KEYS_V1);
    assert.equal(created.hostKey, storage.hostKey);
    assert.match(created.authorizedKeysSha256, /^[0-9a-f]{64}$/);
    assert.match(storage.log(), /Accepted password for u100000-sub1/);
  });

  test("a diff sees new keys or a new password as an update, never a replacement", async () => {
    const same = await provider.diff!("id", created, inputs());
    assert.deepEqual([same.changes, same.replaces], [false, []]);
    const keys = await provider.diff!("id", created, inputs({ authorizedKeys: KEYS_V2 }));
    assert.deepEqual([keys.changes, keys.replaces], [true, []]);
  });

  test("an update rewrites the file, the host key pinned", async () => {
    const r = await provider.update!("id", created, inputs({ authorizedKeys: KEYS_V2 }));
    assert.equal(fs.readFileSync(path.join(storage.home, ".ssh", "authorized_keys"), "utf8"), KEYS_V2);
    assert.equal((r.outs as StorageBoxAccessOutputs).hostKey, created.hostKey);
  });

  test("a wrong password fails at the bound with the server's refusal", async () => {
    await assert.rejects(
      provider.update!("id", created, inputs({ password: "Ms1-wrong-password-x" })),
      /storage-box-access: cannot write u100000-sub1@.*:23 \.ssh\/authorized_keys: All configured authentication methods failed/,
    );
  });

  test("another server at the same address (another host key) is refused before the password is sent", async () => {
    await storage.stop();
    storage = await startStorageBox(internet, host, { password: PASSWORD });
    const before = fs.readFileSync(path.join(storage.home, ".ssh", "authorized_keys"), "utf8");
    await assert.rejects(
      provider.update!("id", created, inputs({ authorizedKeys: KEYS_V1 })),
      /presents the host key SHA256:\S+, not the one first seen \(SHA256:\S+\); if Hetzner really changed it, replace this resource/,
    );
    assert.equal(fs.readFileSync(path.join(storage.home, ".ssh", "authorized_keys"), "utf8"), before);
    assert.doesNotMatch(storage.log(), /Accepted password|Failed password/);
  });
});
