// What a deploy writes for the account split and the box's secrets (server-bootstrap/install/
// deploy-files.ts): Dovecot's mail processes as vmail, quotas that maild and Dovecot agree on,
// SRS and the auth policy key only where they must be, and the secrets derived by the program.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { deployFiles, maildConfig, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { boxLayout, MAIL_UID, MAIL_GID, MAILD_GID } from "../../server-bootstrap/install/layout";
import { validateMaildConfig } from "../../server-bootstrap/maild/config";
import { deriveBoxSecrets } from "../../components/box-secrets";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const layout = boxLayout();
const secrets = { srs: "a".repeat(64), authPolicyKey: "b".repeat(64), authPolicyNonce: "c".repeat(64) };
const input: DeployInput = {
  hostname: "mail.example.org",
  domains: [{ name: "example.org", dkim: [] }],
  users: [
    { address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH },
    { address: "bob@example.org", passwordHash: TEST_PASSWORD_HASH, quotaBytes: 1_048_576 },
  ],
  aliases: [],
  tls: { certificatePem: "CERT", privateKeyPem: "KEY" },
  spam: TEST_DEPLOY_SPAM,
  storage: { quotaBytes: 2_097_152, reserveBytes: 4_194_304 },
  secrets,
};
const files = new Map(deployFiles(layout, input).map((f) => [f.path, f]));

describe("deploy files: Dovecot's own account, quotas, the box's secrets", () => {
  test("Dovecot's mail processes run as vmail (2526), not as maild", () => {
    assert.match(files.get(layout.dovecotConf)!.content, new RegExp(`^mail_uid = ${MAIL_UID}$`, "m"));
    for (const line of files.get(layout.dovecotPasswd)!.content.trim().split("\n")) {
      assert.equal(line.split(":").slice(2, 4).join(":"), `${MAIL_UID}:${MAIL_GID}`, line);
    }
  });

  test("keys stay out of vmail's reach: owned by root or maild, in maild's group, never world-readable", () => {
    for (const f of files.values()) {
      if (!/key|\.pem$|config\.json|auth-policy/.test(f.path) || f.path === layout.tlsCert) continue;
      assert.ok(!/[4-7]$/.test(f.mode), `${f.path} is world-readable (${f.mode})`);
      assert.ok([`0:${MAILD_GID}`, "root:dovecot", `${layout.uid}:${layout.gid}`].includes(f.owner), `${f.path} owned by ${f.owner}`);
    }
  });

  test("maild and Dovecot get the same quota for each mailbox: the user's own, else the default", () => {
    const cfg = validateMaildConfig(maildConfig(layout, input));
    assert.deepEqual(cfg.storage, { quotaBytes: 2_097_152, reserveBytes: 4_194_304 });
    assert.deepEqual(
      cfg.users.map((u) => u.quotaBytes ?? cfg.storage.quotaBytes),
      [2_097_152, 1_048_576],
    );
    assert.deepEqual(
      files
        .get(layout.dovecotPasswd)!
        .content.trim()
        .split("\n")
        .map((l) => l.split(":").slice(7).join(":")),
      ["userdb_quota_rule=*:bytes=2097152", "userdb_quota_rule=*:bytes=1048576"],
    );
  });

  test("maild signs SRS with the secret and serves the auth policy on loopback with the key Dovecot sends", () => {
    const cfg = validateMaildConfig(maildConfig(layout, input));
    assert.deepEqual(cfg.srs, { secrets: [secrets.srs], maxAgeDays: 21 });
    assert.deepEqual(cfg.authPolicy, { listen: { host: "127.0.0.1", port: 12525 }, apiKey: secrets.authPolicyKey });
    const policy = files.get(layout.dovecotAuthPolicy)!;
    assert.deepEqual([policy.mode, policy.owner, policy.effect], ["0640", "root:dovecot", "dovecot-reload"]);
    assert.match(policy.content, new RegExp(`^auth_policy_server_api_header = X-API-Key:${secrets.authPolicyKey}$`, "m"));
    assert.match(policy.content, new RegExp(`^auth_policy_hash_nonce = ${secrets.authPolicyNonce}$`, "m"));
    assert.doesNotMatch(files.get(layout.dovecotConf)!.content, new RegExp(secrets.authPolicyKey));
  });

  test("without secrets: no SRS, no auth policy endpoint, no secrets file", () => {
    const { secrets: _s, ...plain } = input;
    const cfg = validateMaildConfig(maildConfig(layout, plain));
    assert.equal(cfg.srs, undefined);
    assert.equal(cfg.authPolicy, undefined);
    assert.ok(!deployFiles(layout, plain).some((f) => f.path === layout.dovecotAuthPolicy));
  });

  test("the program derives each secret from one Ed25519 key: stable, distinct, and none equal to the key", () => {
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const a = deriveBoxSecrets(pem);
    assert.deepEqual(deriveBoxSecrets(pem), a);
    assert.equal(new Set(Object.values(a)).size, 3);
    for (const v of Object.values(a)) assert.match(v, /^[0-9a-f]{64}$/);
    const other = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    assert.notEqual(deriveBoxSecrets(other).srs, a.srs);
  });
});
