import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  validateMaildConfig,
  type MaildConfigFile,
  loadMaildConfig,
  ConfigError,
  DEFAULT_LIMITS,
  DEFAULT_ACME_CHECK_INTERVAL_SECONDS,
  DEFAULT_OUTBOUND,
  DEFAULT_SUBMISSION,
  DEFAULT_STORAGE,
} from "../../server-bootstrap/maild/config";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

const HASH = TEST_PASSWORD_HASH;

function base(): Record<string, unknown> {
  return {
    hostname: "mx.example.org",
    dataDir: "/var/lib/maild",
    tls: { certPath: "/etc/maild/cert.pem", keyPath: "/etc/maild/key.pem" },
    domains: [
      {
        name: "example.org",
        dkim: [{ selector: "g1-rsa", algorithm: "rsa", keyPath: "/etc/maild/dkim/g1-rsa.pem" }],
        mtaStsPolicy: "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\n",
      },
      { name: "example.net" },
    ],
    users: [{ address: "alice@example.org", passwordHash: HASH }],
    aliases: [
      { address: "postmaster@example.org", to: ["alice@example.org"] },
      { address: "@example.net", to: ["alice@example.org"] },
    ],
  };
}

function problems(mutate: (c: Record<string, any>) => void): string[] {
  const c = base() as Record<string, any>;
  mutate(c);
  try {
    validateMaildConfig(c);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e.problems;
  }
  return [];
}

describe("maild config: valid input", () => {
  test("a validated configuration is itself a valid file (MaildConfigFile) and validates to the same", () => {
    const validated = validateMaildConfig(base());
    const asFile: MaildConfigFile = validated;
    assert.deepEqual(validateMaildConfig(JSON.parse(JSON.stringify(asFile))), validated);
  });

  test("a minimal config gets the documented defaults", () => {
    const cfg = validateMaildConfig(base());
    assert.equal(cfg.recipientDelimiter, "+");
    assert.deepEqual(cfg.limits, DEFAULT_LIMITS);
    assert.deepEqual(cfg.listen.smtp, [{ host: "::", port: 25 }]);
    assert.equal(cfg.shutdownTimeoutMs, 30000);
    assert.equal(cfg.dnsServers, undefined);
    assert.equal(cfg.domains[1].dkim.length, 0);
    assert.deepEqual(cfg.listen.submission, [{ host: "::", port: 587 }]);
    assert.deepEqual(cfg.listen.submissions, [{ host: "::", port: 465 }]);
    assert.deepEqual(cfg.outbound, DEFAULT_OUTBOUND);
    assert.deepEqual(cfg.submission, DEFAULT_SUBMISSION);
  });

  test("outbound and submission settings are kept", () => {
    const cfg = validateMaildConfig({
      ...base(),
      outbound: { ipv6: false, sourceIpv4: "198.51.100.5", retryBaseSeconds: 60, extraCaPath: "/etc/maild/ca.pem", dane: false },
      submission: { maxFailuresPerIp: 3 },
    });
    assert.deepEqual(cfg.outbound, {
      ...DEFAULT_OUTBOUND,
      ipv6: false,
      sourceIpv4: "198.51.100.5",
      retryBaseSeconds: 60,
      extraCaPath: "/etc/maild/ca.pem",
      dane: false,
    });
    assert.deepEqual(cfg.submission, { ...DEFAULT_SUBMISSION, maxFailuresPerIp: 3 });
  });

  test("explicit listen, limits, dnsServers and delimiter are kept", () => {
    const cfg = validateMaildConfig({
      ...base(),
      listen: { smtp: [{ host: "198.51.100.5", port: 2525 }], http: [], https: [{ host: "2001:db8:1::5", port: 443 }] },
      limits: { maxMessageBytes: 2048, maxRecipients: 200 },
      dnsServers: ["198.51.100.2", "198.51.100.3:5353", "[2001:db8:1::2]:53"],
      recipientDelimiter: "+-",
    });
    assert.deepEqual(cfg.listen, {
      smtp: [{ host: "198.51.100.5", port: 2525 }],
      http: [],
      https: [{ host: "2001:db8:1::5", port: 443 }],
      // not given: the defaults
      submission: [{ host: "::", port: 587 }],
      submissions: [{ host: "::", port: 465 }],
    });
    assert.equal(cfg.limits.maxMessageBytes, 2048);
    assert.equal(cfg.limits.maxRecipients, 200);
    assert.equal(cfg.limits.maxConnectionsPerIp, DEFAULT_LIMITS.maxConnectionsPerIp);
    assert.deepEqual(cfg.dnsServers, ["198.51.100.2", "198.51.100.3:5353", "[2001:db8:1::2]:53"]);
    assert.equal(cfg.recipientDelimiter, "+-");
  });
});

describe("maild config: each bad input is named by its key", () => {
  const cases: [string, (c: Record<string, any>) => void, string][] = [
    [
      "hostname with trailing dot",
      (c) => (c.hostname = "mx.example.org."),
      'hostname: "mx.example.org." is not a lowercase domain name without trailing dot (e.g. mail.example.org)',
    ],
    ["missing hostname", (c) => delete c.hostname, "hostname: missing is not a non-empty string"],
    ["relative dataDir", (c) => (c.dataDir = "data"), 'dataDir: "data" is not an absolute path'],
    ["tls not an object", (c) => (c.tls = "x"), 'tls: "x" is not an object {certPath, keyPath}'],
    ["relative tls.keyPath", (c) => (c.tls.keyPath = "key.pem"), 'tls.keyPath: "key.pem" is not an absolute path'],
    [
      "unknown top-level key",
      (c) => (c.hostnmae = "x"),
      "hostnmae: unknown key; allowed keys are hostname, domains, users, aliases, recipientDelimiter, tls, dataDir, listen, dnsServers, limits, shutdownTimeoutMs, acme, outbound, submission, operations, spam, storage, srs, authPolicy",
    ],
    ["empty domains", (c) => (c.domains = []), "domains: [] must list at least one domain"],
    [
      "rspamd reached over the network",
      (c) => (c.spam = { rspamdUrl: "http://198.51.100.9:11333" }),
      'spam.rspamdUrl: "http://198.51.100.9:11333" is not an http URL of a loopback address with no path, e.g. http://127.0.0.1:11333',
    ],
    [
      "rspamd URL with a path",
      (c) => (c.spam = { rspamdUrl: "http://127.0.0.1:11333/checkv2" }),
      'spam.rspamdUrl: "http://127.0.0.1:11333/checkv2" is not an http URL of a loopback address with no path, e.g. http://127.0.0.1:11333',
    ],
    ["scan deadline of zero", (c) => (c.spam = { scanTimeoutMs: 0 }), "spam.scanTimeoutMs: 0 is not an integer from 100 to 600000"],
    ["unknown spam key", (c) => (c.spam = { enabled: false }), "spam.enabled: unknown key; allowed keys are scanTimeoutMs, rspamdUrl"],
    [
      "uppercase domain",
      (c) => (c.domains[1].name = "Example.NET"),
      'domains[1].name: "Example.NET" is not a lowercase domain name without trailing dot (e.g. mail.example.org)',
    ],
    ["duplicate domain", (c) => c.domains.push({ name: "example.org" }), 'domains[2].name: "example.org" is listed twice'],
    [
      "bad dkim algorithm",
      (c) => (c.domains[0].dkim[0].algorithm = "dsa"),
      'domains[0].dkim[0].algorithm: "dsa" is not one of rsa|ed25519',
    ],
    [
      "bad dkim selector",
      (c) => (c.domains[0].dkim[0].selector = "g1_rsa"),
      'domains[0].dkim[0].selector: "g1_rsa" is not a DKIM selector (lowercase letters, digits, "-" and ".")',
    ],
    [
      "relative dkim keyPath",
      (c) => (c.domains[0].dkim[0].keyPath = "k.pem"),
      'domains[0].dkim[0].keyPath: "k.pem" is not an absolute path',
    ],
    [
      "mta-sts policy without version",
      (c) => (c.domains[0].mtaStsPolicy = "mode: enforce\n"),
      'domains[0].mtaStsPolicy: must start with "version: STSv1" (RFC 8461 3.2)',
    ],
    [
      "user in unknown domain",
      (c) => c.users.push({ address: "bob@example.com", passwordHash: HASH }),
      'users[1].address: domain "example.com" is not one of the configured domains (example.org, example.net)',
    ],
    [
      "user with uppercase",
      (c) => (c.users[0].address = "Alice@example.org"),
      'users[0].address: "Alice@example.org" is not a lowercase address local@domain whose local part uses only a-z 0-9 . _ -',
    ],
    [
      "user containing the delimiter",
      (c) => c.users.push({ address: "al+ice@example.org", passwordHash: HASH }),
      'users[1].address: "al+ice@example.org" is not a lowercase address local@domain whose local part uses only a-z 0-9 . _ -',
    ],
    [
      "user containing a custom delimiter",
      (c) => {
        c.recipientDelimiter = "-";
        c.users[0].address = "al-ice@example.org";
        c.aliases[0].to = ["al-ice@example.org"];
        c.aliases[1].to = ["al-ice@example.org"];
      },
      'users[0].address: "al-ice@example.org" contains the recipient delimiter "-"',
    ],
    [
      "duplicate user",
      (c) => c.users.push({ address: "alice@example.org", passwordHash: HASH }),
      'users[1].address: "alice@example.org" is listed twice',
    ],
    [
      "bcrypt hash",
      (c) => (c.users[0].passwordHash = "$2y$10$abcdefghijklmnopqrstuv"),
      "users[0].passwordHash: is not an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)",
    ],
    [
      "argon2i hash",
      (c) => (c.users[0].passwordHash = HASH.replace("argon2id", "argon2i")),
      "users[0].passwordHash: is not an argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)",
    ],
    [
      "alias equal to a user",
      (c) => c.aliases.push({ address: "alice@example.org", to: ["postmaster@example.org"] }),
      'aliases[2].address: "alice@example.org" is also a user; an address is either a user or an alias',
    ],
    [
      "alias in unknown domain",
      (c) => (c.aliases[0].address = "postmaster@example.com"),
      'aliases[0].address: domain "example.com" is not one of the configured domains (example.org, example.net)',
    ],
    [
      "alias pointing nowhere",
      (c) => (c.aliases[0].to = ["bob@example.org"]),
      'aliases[0].to[0]: "bob@example.org" is in a configured domain but is neither a user nor an alias',
    ],
    ["alias with no targets", (c) => (c.aliases[0].to = []), "aliases[0].to: [] must name at least one target address"],
    [
      "alias target not an address",
      (c) => (c.aliases[1].to = ["alice"]),
      'aliases[1].to[0]: "alice" is not an address local@domain (RFC 5322 dot-atom local part, lowercase domain)',
    ],
    [
      "duplicate catch-all",
      (c) => c.aliases.push({ address: "@example.net", to: ["alice@example.org"] }),
      'aliases[2].address: "@example.net" is listed twice',
    ],
    [
      "bad delimiter",
      (c) => (c.recipientDelimiter = "#"),
      'recipientDelimiter: "#" is not a string of up to 4 of the characters + - _ . =',
    ],
    [
      "listen host not an IP",
      (c) => (c.listen = { smtp: [{ host: "localhost", port: 25 }] }),
      'listen.smtp[0].host: "localhost" is not an IPv4 or IPv6 address',
    ],
    [
      "listen port out of range",
      (c) => (c.listen = { https: [{ host: "::", port: 70000 }] }),
      "listen.https[0].port: 70000 is not an integer from 0 to 65535",
    ],
    [
      "dns server not an IP",
      (c) => (c.dnsServers = ["ns.example.org"]),
      'dnsServers[0]: "ns.example.org" is not an IP address, IPv4:port or [IPv6]:port',
    ],
    ["empty dnsServers", (c) => (c.dnsServers = []), "dnsServers: [] must list a server or be left out (system resolver)"],
    [
      "too few recipients allowed",
      (c) => (c.limits = { maxRecipients: 10 }),
      "limits.maxRecipients: 10 is not an integer from 100 to 100000",
    ],
    [
      "fractional size limit",
      (c) => (c.limits = { maxMessageBytes: 1.5e6 + 0.5 }),
      "limits.maxMessageBytes: 1500000.5 is not an integer from 1024 to 2147483647",
    ],
    [
      "unknown limit",
      (c) => (c.limits = { maxMsgs: 1 }),
      "limits.maxMsgs: unknown key; allowed keys are maxMessageBytes, maxHeaderBytes, maxConnectionsPerIp, maxConnections, maxMessagesPerIpPerMinute, maxRecipients, maxFailedRecipients, maxHops, dataTimeoutSeconds, largeMessageBytes, largeMessageConcurrency, sessionTimeoutSeconds, greetWaitMs, greetPassSeconds, greetPassClients",
    ],
    ["negative shutdown timeout", (c) => (c.shutdownTimeoutMs = -1), "shutdownTimeoutMs: -1 is not an integer from 0 to 600000"],
    [
      "submission listener not an IP",
      (c) => (c.listen = { submissions: [{ host: "mx", port: 465 }] }),
      'listen.submissions[0].host: "mx" is not an IPv4 or IPv6 address',
    ],
    [
      "unknown listener kind",
      (c) => (c.listen = { imap: [] }),
      "listen.imap: unknown key; allowed keys are smtp, submission, submissions, http, https",
    ],
    ["outbound not an object", (c) => (c.outbound = true), "outbound: true is not an object"],
    [
      "outbound retry base too small",
      (c) => (c.outbound = { retryBaseSeconds: 0 }),
      "outbound.retryBaseSeconds: 0 is not an integer from 1 to 86400",
    ],
    [
      "outbound retry max below base",
      (c) => (c.outbound = { retryBaseSeconds: 600, retryMaxSeconds: 300 }),
      "outbound.retryMaxSeconds: 300 is less than outbound.retryBaseSeconds (600)",
    ],
    [
      "delay notice after expiry",
      (c) => (c.outbound = { delayNoticeAfterSeconds: 7200, expireAfterSeconds: 3600 }),
      "outbound.delayNoticeAfterSeconds: 7200 is not less than outbound.expireAfterSeconds (3600); the delay notice would never be sent",
    ],
    [
      "outbound source address of the wrong family",
      (c) => (c.outbound = { sourceIpv4: "2001:db8:1::5" }),
      'outbound.sourceIpv4: "2001:db8:1::5" is not an IPv4 address',
    ],
    ["outbound dane not a boolean", (c) => (c.outbound = { dane: "yes" }), 'outbound.dane: "yes" is not true or false'],
    [
      "no address family left",
      (c) => (c.outbound = { ipv4: false, ipv6: false }),
      "outbound.ipv4: false together with outbound.ipv6 false leaves no way to send",
    ],
    ["relative extra CA", (c) => (c.outbound = { extraCaPath: "ca.pem" }), 'outbound.extraCaPath: "ca.pem" is not an absolute path'],
    [
      "outbound connection cache idle time above its bound",
      (c) => (c.outbound = { idleConnectionSeconds: 301 }),
      "outbound.idleConnectionSeconds: 301 is not an integer from 0 to 300",
    ],
    [
      "outbound messages per connection zero",
      (c) => (c.outbound = { maxMessagesPerConnection: 0 }),
      "outbound.maxMessagesPerConnection: 0 is not an integer from 1 to 100000",
    ],
    [
      "unknown outbound key",
      (c) => (c.outbound = { retries: 3 }),
      "outbound.retries: unknown key; allowed keys are maxConnectionsPerDomain, maxConnections, idleConnectionSeconds, maxMessagesPerConnection, maxConnectionAgeSeconds, retryBaseSeconds, retryMaxSeconds, delayNoticeAfterSeconds, expireAfterSeconds, port, timeoutMs, ipv6, ipv4, sourceIpv4, sourceIpv6, mtaSts, dane, extraCaPath",
    ],
    [
      "lockout cap below lockout",
      (c) => (c.submission = { lockoutSeconds: 600, lockoutMaxSeconds: 60 }),
      "submission.lockoutMaxSeconds: 60 is less than submission.lockoutSeconds (600)",
    ],
    [
      "zero failures allowed",
      (c) => (c.submission = { maxFailuresPerIp: 0 }),
      "submission.maxFailuresPerIp: 0 is not an integer from 1 to 100000",
    ],
  ];
  for (const [name, mutate, expected] of cases) {
    test(name, () => {
      assert.deepEqual(problems(mutate), [expected]);
    });
  }

  test("every problem is reported at once, not only the first", () => {
    const p = problems((c) => {
      c.hostname = "";
      c.dataDir = "rel";
    });
    assert.deepEqual(p, ['hostname: "" is not a non-empty string', 'dataDir: "rel" is not an absolute path']);
  });

  test("a password hash is never echoed in an error", () => {
    const p = problems((c) => (c.users[0].passwordHash = "hunter2-plaintext"));
    assert.equal(p.length, 1);
    assert.ok(!p[0].includes("hunter2"), p[0]);
  });
});

function acme(): Record<string, unknown> {
  return {
    directoryUrl: "https://acme-v02.api.letsencrypt.org/directory",
    accountKeyPath: "/etc/maild/acme-account-key.pem",
    names: ["mx.example.org", "mta-sts.example.org"],
  };
}

function acmeProblems(mutate: (a: Record<string, any>, c: Record<string, any>) => void): string[] {
  return problems((c) => {
    c.acme = acme();
    mutate(c.acme, c);
  });
}

describe("maild config: the acme section (on-box certificate renewal)", () => {
  test("without an acme section there is no on-box renewal", () => {
    assert.equal(validateMaildConfig(base()).acme, undefined);
  });

  test("a minimal acme section checks every 12 hours and leaves the renewal point to the keeper's default", () => {
    const cfg = validateMaildConfig({ ...base(), acme: acme() });
    assert.deepEqual(cfg.acme, {
      directoryUrl: "https://acme-v02.api.letsencrypt.org/directory",
      accountKeyPath: "/etc/maild/acme-account-key.pem",
      names: ["mx.example.org", "mta-sts.example.org"],
      checkIntervalSeconds: DEFAULT_ACME_CHECK_INTERVAL_SECONDS,
    });
    assert.equal(DEFAULT_ACME_CHECK_INTERVAL_SECONDS, 43_200);
  });

  test("email, renewBeforeFraction, extraCaPath and checkIntervalSeconds are kept", () => {
    const cfg = validateMaildConfig({
      ...base(),
      acme: {
        ...acme(),
        email: "hostmaster@example.org",
        renewBeforeFraction: 0.5,
        extraCaPath: "/etc/maild/acme-extra-ca.pem",
        checkIntervalSeconds: 60,
      },
    });
    assert.equal(cfg.acme?.email, "hostmaster@example.org");
    assert.equal(cfg.acme?.renewBeforeFraction, 0.5);
    assert.equal(cfg.acme?.extraCaPath, "/etc/maild/acme-extra-ca.pem");
    assert.equal(cfg.acme?.checkIntervalSeconds, 60);
  });

  const cases: [string, (a: Record<string, any>, c: Record<string, any>) => void, string][] = [
    ["acme not an object", (_a, c) => (c.acme = true), "acme: true is not an object {directoryUrl, accountKeyPath, names, ...}"],
    [
      "unknown acme key",
      (a) => (a.directory = "x"),
      "acme.directory: unknown key; allowed keys are directoryUrl, accountKeyPath, email, names, renewBeforeFraction, extraCaPath, checkIntervalSeconds",
    ],
    ["missing directoryUrl", (a) => delete a.directoryUrl, "acme.directoryUrl: missing is not a non-empty string"],
    [
      "plain-http directoryUrl",
      (a) => (a.directoryUrl = "http://ca.example.org/dir"),
      'acme.directoryUrl: "http://ca.example.org/dir" is not an https URL (e.g. https://acme-v02.api.letsencrypt.org/directory)',
    ],
    [
      "directoryUrl not a URL",
      (a) => (a.directoryUrl = "letsencrypt"),
      'acme.directoryUrl: "letsencrypt" is not an https URL (e.g. https://acme-v02.api.letsencrypt.org/directory)',
    ],
    ["relative accountKeyPath", (a) => (a.accountKeyPath = "account.pem"), 'acme.accountKeyPath: "account.pem" is not an absolute path'],
    ["missing accountKeyPath", (a) => delete a.accountKeyPath, "acme.accountKeyPath: missing is not a non-empty string"],
    ["email without a domain", (a) => (a.email = "hostmaster"), 'acme.email: "hostmaster" is not an email address'],
    ["names not a list", (a) => (a.names = "mx.example.org"), 'acme.names: "mx.example.org" is not a list'],
    ["empty names", (a) => (a.names = []), "acme.names: [] must list the names the certificate carries"],
    [
      "uppercase name",
      (a) => (a.names = ["mx.example.org", "MTA-STS.example.org"]),
      'acme.names[1]: "MTA-STS.example.org" must be lowercase',
    ],
    [
      "wildcard name",
      (a) => (a.names = ["mx.example.org", "*.example.org"]),
      'acme.names[1]: "*.example.org" is a wildcard; the box renews over HTTP-01, which cannot validate wildcards',
    ],
    ["duplicate name", (a) => (a.names = ["mx.example.org", "mx.example.org"]), 'acme.names[1]: "mx.example.org" is listed twice'],
    [
      "names without the hostname",
      (a) => (a.names = ["mta-sts.example.org"]),
      'acme.names: must include hostname "mx.example.org": SMTP STARTTLS serves this certificate under that name',
    ],
    [
      "renewBeforeFraction of 1",
      (a) => (a.renewBeforeFraction = 1),
      "acme.renewBeforeFraction: 1 is not a number between 0 and 1 (exclusive), e.g. 0.333 for a third of the lifetime",
    ],
    [
      "renewBeforeFraction as text",
      (a) => (a.renewBeforeFraction = "1/3"),
      'acme.renewBeforeFraction: "1/3" is not a number between 0 and 1 (exclusive), e.g. 0.333 for a third of the lifetime',
    ],
    ["relative extraCaPath", (a) => (a.extraCaPath = "pebble.pem"), 'acme.extraCaPath: "pebble.pem" is not an absolute path'],
    ["zero checkIntervalSeconds", (a) => (a.checkIntervalSeconds = 0), "acme.checkIntervalSeconds: 0 is not an integer from 1 to 604800"],
    [
      "certificate file the renewal does not write",
      (_a, c) => (c.tls.certPath = "/etc/maild/fullchain.pem"),
      'tls.certPath: "/etc/maild/fullchain.pem" must be named cert.pem when acme is set (the on-box renewal writes that file)',
    ],
    [
      "key file not beside the certificate",
      (_a, c) => (c.tls.keyPath = "/etc/maild/keys/key.pem"),
      'tls.keyPath: "/etc/maild/keys/key.pem" must be "/etc/maild/key.pem" when acme is set (beside tls.certPath, where the on-box renewal reads it)',
    ],
  ];
  for (const [name, mutate, expected] of cases) {
    test(name, () => {
      assert.deepEqual(acmeProblems(mutate), [expected]);
    });
  }

  test("any certificate file names are fine without an acme section", () => {
    const c = base() as Record<string, any>;
    c.tls = { certPath: "/etc/ssl/fullchain.pem", keyPath: "/etc/ssl/private/privkey.pem" };
    assert.deepEqual(validateMaildConfig(c).tls, c.tls);
  });
});

describe("maild config: files", () => {
  const dir = mkdtempSync(join(tmpdir(), "maild-config-"));

  test("a file that is not JSON names the file and the parse error", () => {
    const f = join(dir, "bad.json");
    writeFileSync(f, "{ hostname: ");
    assert.throws(
      () => loadMaildConfig(f),
      (e: unknown) => e instanceof ConfigError && e.problems.length === 1 && e.problems[0].startsWith(`${f}: not valid JSON: `),
    );
  });

  test("a missing file names the file", () => {
    const f = join(dir, "missing.json");
    assert.throws(
      () => loadMaildConfig(f),
      (e: unknown) => e instanceof ConfigError && e.problems[0].startsWith(`${f}: cannot read: `),
    );
  });
});

describe("maild config: the spam section", () => {
  test("without it, maild asks rspamd's normal worker on loopback and waits 20 s for a verdict", () => {
    assert.deepEqual(validateMaildConfig(base()).spam, { rspamdUrl: "http://127.0.0.1:11333", scanTimeoutMs: 20_000 });
  });
  test("rspamd on IPv6 loopback and another deadline are kept", () => {
    const c = base();
    c.spam = { rspamdUrl: "http://[::1]:11333", scanTimeoutMs: 5000 };
    assert.deepEqual(validateMaildConfig(c).spam, { rspamdUrl: "http://[::1]:11333", scanTimeoutMs: 5000 });
  });
});

describe("maild config: storage, SRS and the auth policy endpoint", () => {
  const SECRET = "0123456789abcdef0123456789abcdef";

  test("without them: the default quota and reserve, no SRS, no auth policy endpoint", () => {
    const cfg = validateMaildConfig(base());
    assert.deepEqual(cfg.storage, DEFAULT_STORAGE);
    assert.equal(cfg.srs, undefined);
    assert.equal(cfg.authPolicy, undefined);
    assert.equal(cfg.users[0].quotaBytes, undefined);
  });

  test("a user's own quota, the storage section, SRS secrets and the auth policy endpoint are kept", () => {
    const cfg = validateMaildConfig({
      ...base(),
      users: [{ address: "alice@example.org", passwordHash: HASH, quotaBytes: 0 }],
      storage: { quotaBytes: 1_000_000, reserveBytes: 5_000_000 },
      srs: { secrets: [SECRET, `old-${SECRET}`] },
      authPolicy: { listen: { host: "127.0.0.1", port: 10_240 }, apiKey: SECRET },
    });
    assert.equal(cfg.users[0].quotaBytes, 0);
    assert.deepEqual(cfg.storage, { quotaBytes: 1_000_000, reserveBytes: 5_000_000 });
    assert.deepEqual(cfg.srs, { secrets: [SECRET, `old-${SECRET}`], maxAgeDays: 21 });
    assert.deepEqual(cfg.authPolicy, { listen: { host: "127.0.0.1", port: 10_240 }, apiKey: SECRET });
  });

  const cases: [string, (c: Record<string, any>) => void, string][] = [
    [
      "negative quota",
      (c) => (c.users[0].quotaBytes = -1),
      `users[0].quotaBytes: -1 is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
    ],
    [
      "reserve not a number",
      (c) => (c.storage = { reserveBytes: "1G" }),
      `storage.reserveBytes: "1G" is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
    ],
    ["SRS without secrets", (c) => (c.srs = { secrets: [] }), "srs.secrets: [] must list at least one secret"],
    [
      "SRS secret too short",
      (c) => (c.srs = { secrets: ["short"] }),
      "srs.secrets[0]: is not a string of at least 16 characters without white space",
    ],
    ["SRS age of zero days", (c) => (c.srs = { secrets: [SECRET], maxAgeDays: 0 }), "srs.maxAgeDays: 0 is not an integer from 1 to 1000"],
    [
      "auth policy on a public address",
      (c) => (c.authPolicy = { listen: { host: "198.51.100.5", port: 10_240 }, apiKey: SECRET }),
      'authPolicy.listen.host: "198.51.100.5" is not a loopback address (127.0.0.0/8 or ::1): only the local Dovecot may ask',
    ],
    [
      "auth policy without a key",
      (c) => (c.authPolicy = { listen: { host: "::1", port: 10_240 } }),
      "authPolicy.apiKey: is not a string of at least 16 characters without white space",
    ],
  ];
  for (const [name, mutate, expected] of cases) {
    test(name, () => {
      assert.deepEqual(problems(mutate), [expected]);
    });
  }

  test("an SRS secret or API key is never echoed in an error", () => {
    const p = problems((c) => {
      c.srs = { secrets: ["hunter2 with a space in it"] };
      c.authPolicy = { listen: { host: "127.0.0.1", port: 1 }, apiKey: "hunter3" };
    });
    assert.equal(p.length, 2);
    assert.ok(!p.join("\n").includes("hunter"), p.join("\n"));
  });
});
