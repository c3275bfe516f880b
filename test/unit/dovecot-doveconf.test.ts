// The Dovecot configuration a deploy writes, checked by Dovecot's own parser (`doveconf -n -c FILE`
// reads and validates a configuration without a running Dovecot) for the Dovecot major version of
// every image the stack config admits. Only Debian 12's Dovecot 2.3 is installable here, which is
// why images shipping another major version are refused (components/config/hetzner-offer.ts).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HETZNER_IMAGES, SERVER_IMAGES } from "../../components/config/hetzner-offer";
import { DOVECOT_CONFIG_VERSION } from "../../server-bootstrap/dovecot/dovecot-conf";
import { deployFiles, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { argon2idHash } from "../../components/shared/argon2id";
import { NEW_EC_KEY } from "../../infra/local-internet/test-tls";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const temps: string[] = [];
after(() => temps.forEach((t) => fs.rmSync(t, { recursive: true, force: true })));

function run(argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
  if (r.error) throw new Error(`${argv[0]} is not installed (Debian package "dovecot-core"): ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The dovecot.conf a deploy installs, in a temp root whose TLS files exist (doveconf reads `<file` values). */
function deployedDovecotConf(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-doveconf-"));
  temps.push(root);
  const layout = boxLayout({ root, dataDir: path.join(root, "var/lib/maild") });
  fs.mkdirSync(layout.tlsDir, { recursive: true });
  const cert = run([
    "openssl",
    "req",
    "-x509",
    ...NEW_EC_KEY,
    "-keyout",
    layout.tlsKey,
    "-out",
    layout.tlsCert,
    "-days",
    "1",
    "-subj",
    "/CN=mail.example.test",
  ]);
  assert.equal(cert.code, 0, cert.stderr);
  const input: DeployInput = {
    hostname: "mail.example.test",
    domains: [{ name: "example.test", dkim: [] }],
    users: [{ address: "alice@example.test", passwordHash: argon2idHash("alice secret") }],
    aliases: [],
    tls: { certificatePem: fs.readFileSync(layout.tlsCert, "utf8"), privateKeyPem: fs.readFileSync(layout.tlsKey, "utf8") },
    spam: TEST_DEPLOY_SPAM,
    secrets: { srs: "s".repeat(64), authPolicyKey: "k".repeat(64), authPolicyNonce: "n".repeat(64) },
  };
  const files = deployFiles(layout, input);
  const conf = files.find((f) => f.path === layout.dovecotConf);
  assert.ok(conf, "the deploy writes no dovecot.conf");
  // what dovecot.conf includes: the auth policy secrets
  for (const f of files.filter((f) => f.path === layout.dovecotConf || f.path === layout.dovecotAuthPolicy)) {
    fs.mkdirSync(path.dirname(f.path), { recursive: true });
    fs.writeFileSync(f.path, f.content);
  }
  return conf.path;
}

describe("the deployed Dovecot configuration, checked by doveconf", () => {
  const majors = [...new Set(SERVER_IMAGES.map((image) => HETZNER_IMAGES[image].dovecot))];

  test("every admitted image ships the Dovecot major version the configuration is written for", () => {
    assert.deepEqual(majors, [DOVECOT_CONFIG_VERSION]);
  });

  for (const major of majors) {
    test(`Dovecot ${major} (${SERVER_IMAGES.filter((i) => HETZNER_IMAGES[i].dovecot === major).join(", ")}) parses it without a complaint`, () => {
      const version = run(["doveconf", "-c", "/dev/null", "-n"]).stdout.match(/^# (\d+\.\d+)\.\d+/m)?.[1];
      assert.equal(version, major, `this machine's doveconf is ${version ?? "unknown"}; the check for Dovecot ${major} needs that version`);
      const file = deployedDovecotConf();
      const r = run(["doveconf", "-n", "-c", file]);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^ssl = required$/m);
      assert.match(r.stdout, /^protocols = imap$/m);
      // the quota plugin over Maildir++ (maild counts in the same maildirsize)
      assert.match(r.stdout, /^mail_plugins = " quota"$/m);
      assert.match(r.stdout, /^ {2}quota = maildir:User quota$/m);
      // IMAP adds the quota's IMAP commands and the spam filter's IMAPSieve (learning) to both
      const imap = run(["doveconf", "-c", file, "-f", "protocol=imap", "mail_plugins"]);
      assert.equal(imap.stdout.trim().split(/\s+/).slice(2).join(" "), "quota imap_quota imap_sieve");
      // maild's auth policy endpoint, with the key and nonce from the included secrets file
      assert.match(r.stdout, /^auth_policy_server_url = http:\/\/127\.0\.0\.1:12525\/$/m);
      assert.match(r.stdout, /^auth_policy_server_api_header = X-API-Key:k{64}$/m);
      assert.match(r.stdout, /^auth_policy_hash_nonce = # hidden, use -P to show it$|^auth_policy_hash_nonce = n{64}$/m);
      assert.match(r.stdout, /^auth_policy_check_after_auth = no$/m);
    });
  }

  test("doveconf does refuse a setting it does not know (the check can fail)", () => {
    const file = deployedDovecotConf();
    fs.appendFileSync(file, "dovecot_config_version = 2.4.0\n");
    const r = run(["doveconf", "-n", "-c", file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unknown setting: dovecot_config_version/);
  });
});
