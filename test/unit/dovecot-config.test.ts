import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { passwdFile, PasswdFileError } from "../../server-bootstrap/dovecot/passwd-file";
import {
  dovecotAuthPolicySecrets,
  dovecotConf,
  DovecotConfError,
  type DovecotConfInput,
} from "../../server-bootstrap/dovecot/dovecot-conf";

const hash = "$argon2id$v=19$m=65536,t=3,p=1$C53CmgyxVrrlT9WmSMugXQ$g8jQhz9otV7fUji806KOTaT8cLt91M0VjftW8iopDo8";
const opts = { dataDir: "/var/lib/maild", uid: 990, gid: 990 };

describe("passwdFile", () => {
  test("writes one line per user: lowercase address, {ARGON2ID} + PHC hash, uid, gid, home", () => {
    assert.equal(
      passwdFile(
        [
          { address: "Alice@Example.com", passwordHash: hash },
          { address: "bob.b@example.org", passwordHash: hash },
        ],
        opts,
      ),
      `alice@example.com:{ARGON2ID}${hash}:990:990::/var/lib/maild/mail/example.com/alice::\n` +
        `bob.b@example.org:{ARGON2ID}${hash}:990:990::/var/lib/maild/mail/example.org/bob.b::\n`,
    );
  });

  test("a user's quota becomes Dovecot's quota rule in bytes; none without one", () => {
    assert.equal(
      passwdFile(
        [
          { address: "alice@example.com", passwordHash: hash, quotaBytes: 5_368_709_120 },
          { address: "bob@example.com", passwordHash: hash, quotaBytes: 0 },
        ],
        opts,
      ),
      `alice@example.com:{ARGON2ID}${hash}:990:990::/var/lib/maild/mail/example.com/alice::userdb_quota_rule=*:bytes=5368709120\n` +
        `bob@example.com:{ARGON2ID}${hash}:990:990::/var/lib/maild/mail/example.com/bob::\n`,
    );
  });

  test("writes an empty file for no users", () => {
    assert.equal(passwdFile([], opts), "");
  });

  const bad: [string, Parameters<typeof passwdFile>[0], Partial<typeof opts>, string][] = [
    ["an address without @", [{ address: "alice", passwordHash: hash }], {}, 'users[0].address: "alice" is not local@domain'],
    [
      "an address with a colon",
      [{ address: "a:b@example.com", passwordHash: hash }],
      {},
      'users[0].address: "a:b@example.com" is not local@domain',
    ],
    ["an address with a newline", [{ address: "a@example.com\nx", passwordHash: hash }], {}, "users[0].address:"],
    [
      "a bcrypt hash",
      [{ address: "a@example.com", passwordHash: "$2y$10$abcdefghijklmnopqrstuu" }],
      {},
      "users[0].passwordHash: not an argon2id PHC string",
    ],
    [
      "an argon2i hash",
      [{ address: "a@example.com", passwordHash: hash.replace("argon2id", "argon2i") }],
      {},
      "users[0].passwordHash: not an argon2id PHC string",
    ],
    [
      "a hash with a colon",
      [{ address: "a@example.com", passwordHash: hash + ":0:0" }],
      {},
      "users[0].passwordHash: not an argon2id PHC string",
    ],
    [
      "the same address twice, in different case",
      [
        { address: "a@example.com", passwordHash: hash },
        { address: "A@EXAMPLE.COM", passwordHash: hash },
      ],
      {},
      'users[1].address: "A@EXAMPLE.COM" repeats users[0].address',
    ],
    ["uid 0", [], { uid: 0 }, "uid: 0 must be a positive integer"],
    ["a relative dataDir", [], { dataDir: "data" }, 'dataDir: "data" must be an absolute path'],
  ];
  for (const [name, users, over, message] of bad) {
    test(`refuses ${name}, naming the key`, () => {
      assert.throws(
        () => passwdFile(users, { ...opts, ...over }),
        (err: unknown) => err instanceof PasswdFileError && err.message.startsWith(message),
      );
    });
  }
});

describe("dovecotConf", () => {
  const input: DovecotConfInput = {
    dataDir: "/var/lib/maild",
    passwdFilePath: "/etc/dovecot/maild.passwd",
    tls: { certPath: "/var/lib/maild/tls/cert.pem", keyPath: "/var/lib/maild/tls/key.pem" },
    uid: 990,
    gid: 991,
  };
  const conf = dovecotConf(input);
  const settings = (text: string) =>
    new Map(
      text
        .split("\n")
        .filter((l) => /^[a-z_]+ = /.test(l))
        .map((l) => [l.slice(0, l.indexOf(" = ")), l.slice(l.indexOf(" = ") + 3)] as [string, string]),
    );
  const top = settings(conf);

  test("enables only the imap protocol", () => assert.equal(top.get("protocols"), "imap"));

  test("requires TLS before any password", () => {
    assert.equal(top.get("ssl"), "required");
    assert.equal(top.get("disable_plaintext_auth"), "yes");
  });

  test("reads the certificate and key from the given paths", () => {
    assert.equal(top.get("ssl_cert"), "</var/lib/maild/tls/cert.pem");
    assert.equal(top.get("ssl_key"), "</var/lib/maild/tls/key.pem");
  });

  test("reads mail from <dataDir>/mail/<domain>/<local>/Maildir", () => {
    assert.equal(top.get("mail_location"), "maildir:/var/lib/maild/mail/%d/%n/Maildir");
  });

  test("counts quota in Maildir++ maildirsize (the file maild's deliveries count in) and shows it over IMAP", () => {
    assert.match(conf, /^mail_plugins = \$mail_plugins quota$/m);
    assert.match(conf, /^protocol imap \{\n {2}mail_plugins = \$mail_plugins imap_quota\n\}$/m);
    assert.match(conf, /^plugin \{\n {2}quota = maildir:User quota\n\}$/m);
  });

  test("without an auth policy endpoint, Dovecot asks nobody", () => {
    assert.equal(top.get("auth_policy_server_url"), undefined);
    assert.doesNotMatch(conf, /!include/);
  });

  test("with maild's endpoint: asked before each password check, told after, key and nonce from a file of their own", () => {
    const s = dovecotConf({ ...input, authPolicy: { url: "http://127.0.0.1:12525/", secretsPath: "/etc/dovecot/maild-auth-policy.conf" } });
    const t = settings(s);
    assert.equal(t.get("auth_policy_server_url"), "http://127.0.0.1:12525/");
    assert.equal(t.get("auth_policy_request_attributes"), "login=%{requested_username} remote=%{rip} protocol=%s");
    assert.deepEqual(
      ["auth_policy_check_before_auth", "auth_policy_check_after_auth", "auth_policy_report_after_auth", "auth_policy_reject_on_fail"].map(
        (k) => t.get(k),
      ),
      ["yes", "no", "yes", "no"],
    );
    assert.match(s, /^!include \/etc\/dovecot\/maild-auth-policy\.conf$/m);
    assert.doesNotMatch(s, /^auth_policy_server_api_header|^auth_policy_hash_nonce/m, "no secret in the world-readable file");
    assert.equal(
      dovecotAuthPolicySecrets("k".repeat(32), "n".repeat(32))
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .join("\n"),
      `auth_policy_server_api_header = X-API-Key:${"k".repeat(32)}\nauth_policy_hash_nonce = ${"n".repeat(32)}\n`,
    );
  });

  test("an auth policy URL off loopback, or a key that could break the file, is refused", () => {
    assert.throws(
      () => dovecotConf({ ...input, authPolicy: { url: "http://198.51.100.5:12525/", secretsPath: "/etc/x" } }),
      /authPolicy\.url: .* must be http:\/\/<loopback address>/,
    );
    assert.throws(() => dovecotAuthPolicySecrets("short", "n".repeat(32)), /authPolicy\.apiKey: must be 16 or more/);
    assert.throws(() => dovecotAuthPolicySecrets("k".repeat(32) + "\nx = y", "n".repeat(32)), /authPolicy\.apiKey/);
  });

  test("runs mail processes as the given (vmail) uid/gid and no other", () => {
    assert.deepEqual(
      ["mail_uid", "mail_gid", "first_valid_uid", "last_valid_uid", "first_valid_gid", "last_valid_gid"].map((k) => top.get(k)),
      ["990", "991", "990", "990", "991", "991"],
    );
  });

  test("authenticates and looks up users in the passwd-file, argon2id by default", () => {
    assert.match(conf, /passdb \{\n {2}driver = passwd-file\n {2}args = scheme=ARGON2ID \/etc\/dovecot\/maild\.passwd\n\}/);
    assert.match(conf, /userdb \{\n {2}driver = passwd-file\n {2}args = \/etc\/dovecot\/maild\.passwd\n/);
  });

  test("listens for imap on 143 and implicit-TLS imaps on 993 by default", () => {
    assert.match(conf, /inet_listener imap \{\n {4}port = 143\n {2}\}/);
    assert.match(conf, /inet_listener imaps \{\n {4}port = 993\n {4}ssl = yes\n {2}\}/);
  });

  test("takes listen addresses, ports and directories for tests", () => {
    const t = dovecotConf({
      ...input,
      listen: ["198.51.100.5"],
      ports: { imap: 1143, imaps: 1993 },
      baseDir: "/tmp/d/run",
      stateDir: "/tmp/d/state",
      logPath: "/tmp/d/log",
    });
    const s = settings(t);
    assert.deepEqual(
      [s.get("listen"), s.get("base_dir"), s.get("state_dir"), s.get("log_path")],
      ["198.51.100.5", "/tmp/d/run", "/tmp/d/state", "/tmp/d/log"],
    );
    assert.match(t, /port = 1143\n/);
    assert.match(t, /port = 1993\n {4}ssl = yes/);
  });

  const bad: [string, Partial<DovecotConfInput>, string][] = [
    [
      "a cert path with a space",
      { tls: { certPath: "/etc/my cert.pem", keyPath: "/k" } },
      'tls.certPath: "/etc/my cert.pem" must be an absolute path',
    ],
    ["a relative passwd-file path", { passwdFilePath: "passwd" }, 'passwdFilePath: "passwd" must be an absolute path'],
    ["uid 0", { uid: 0 }, "uid: 0 must be a positive integer"],
    ["port 70000", { ports: { imap: 70000, imaps: 993 } }, "ports.imap: 70000 must be a port number"],
    ["a listen address with a brace", { listen: ["}"] }, 'listen[0]: "}" is not *, :: or an IP address'],
  ];
  for (const [name, over, message] of bad) {
    test(`refuses ${name}, naming the key`, () => {
      assert.throws(
        () => dovecotConf({ ...input, ...over }),
        (err: unknown) => err instanceof DovecotConfError && err.message.startsWith(message),
      );
    });
  }
});
