// The operations section on both sides: maild's (server-bootstrap/maild/operations-config.ts,
// through validateMaildConfig) and the stack file's (components/config/operations.ts), each bad
// input named by its key.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, validateMaildConfig } from "../../server-bootstrap/maild/config";
import { validateStackConfig } from "../../components/config/validate";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";
import { maildOperations } from "../../components/operations";

const base = {
  hostname: "mx.example.org",
  domains: [{ name: "example.org" }],
  users: [{ address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH }],
  tls: { certPath: "/etc/maild/cert.pem", keyPath: "/etc/maild/key.pem" },
  dataDir: "/var/lib/maild",
};

function problems(operations: unknown): string[] {
  try {
    validateMaildConfig({ ...base, operations });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe("maild's operations section", () => {
  test("only the addresses are required; the rest has documented defaults", () => {
    const cfg = validateMaildConfig({ ...base, operations: { addresses: ["198.51.100.2", "2001:db8:1::2"] } });
    assert.deepEqual(cfg.operations, {
      addresses: ["198.51.100.2", "2001:db8:1::2"],
      ipBlocklists: ["zen.spamhaus.org", "bl.spamcop.net"],
      domainBlocklists: ["dbl.spamhaus.org"],
      blocklistIntervalSeconds: 3600,
      checkIntervalSeconds: 300,
      reportAddresses: [],
      reportRetentionDays: 90,
      alertTo: ["postmaster@example.org"],
      digestTime: "06:00",
      admins: [],
      reportFrom: "postmaster@example.org",
      sendTlsReports: true,
      sendDmarcReports: true,
      thresholds: { certificateDays: 14, queueSize: 200, queueAgeSeconds: 21600, diskPercent: 90 },
      expectedRecords: [],
    });
  });

  const cases: [string, unknown, string][] = [
    [
      "an address that is not an IP",
      { addresses: ["mx.example.org"] },
      'operations.addresses[0]: "mx.example.org" is not an IPv4 or IPv6 address',
    ],
    [
      "a zone that is not a name",
      { addresses: [], ipBlocklists: ["bl..test"] },
      'operations.ipBlocklists[0]: "bl..test" is not a lowercase DNS zone name (e.g. zen.spamhaus.org)',
    ],
    [
      "an admin who is not a user",
      { addresses: [], admins: ["bob@example.org"] },
      'operations.admins[0]: "bob@example.org" is not one of the users (only a mailbox account can log in)',
    ],
    [
      "a webhook without TLS",
      { addresses: [], webhook: "http://hooks.example/x" },
      'operations.webhook: "http://hooks.example/x" is not an https URL',
    ],
    [
      "a digest time that is not HH:MM",
      { addresses: [], digestTime: "6am" },
      'operations.digestTime: "6am" is not a UTC time HH:MM (e.g. 06:00)',
    ],
    [
      "a report sender outside our domains",
      { addresses: [], reportFrom: "reports@elsewhere.example" },
      'operations.reportFrom: "reports@elsewhere.example" is not an address in one of the configured domains (its DKIM keys sign what is sent)',
    ],
    [
      "an unknown threshold",
      { addresses: [], thresholds: { queueSise: 5 } },
      "operations.thresholds.queueSise: unknown key; allowed keys are certificateDays, queueSize, queueAgeSeconds, diskPercent",
    ],
    [
      "a threshold out of range",
      { addresses: [], thresholds: { diskPercent: 120 } },
      "operations.thresholds.diskPercent: 120 is not an integer from 1 to 100",
    ],
    [
      "an expected record of an unknown type",
      { addresses: [], expectedRecords: [{ name: "x.example.org", type: "NS", value: "y" }] },
      'operations.expectedRecords[0]: {"name":"x.example.org","type":"NS","value":"y"} is not {name, type: A|AAAA|MX|TXT|CAA|TLSA|SRV, value}',
    ],
  ];
  for (const [what, operations, message] of cases) test(`refused: ${what}`, () => assert.deepEqual(problems(operations), [message]));
});

const stack = (operations?: unknown) => ({
  hostname: "mail.example.org",
  domains: [{ name: "example.org" }],
  users: [{ address: "alice@example.org", passwordHash: TEST_PASSWORD_HASH }],
  acme: { email: "alice@example.org" },
  ...(operations !== undefined ? { operations } : {}),
});

function stackProblems(operations: unknown): string[] {
  try {
    validateStackConfig(stack(operations));
    return [];
  } catch (e) {
    return (e as { problems: { path: string; message: string }[] }).problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe("the stack's operations section", () => {
  test("admins, webhook, digest time and lists as given, addresses lowercased", () => {
    const spec = validateStackConfig(
      stack({
        admins: ["Alice@example.org"],
        webhook: "https://hooks.example/maild",
        digestTime: "07:30",
        ipBlocklists: ["bl.example.net"],
        sendReports: "false",
      }),
    );
    assert.deepEqual(spec.operations, {
      alertTo: ["postmaster@example.org"],
      webhook: "https://hooks.example/maild",
      digestTime: "07:30",
      admins: ["alice@example.org"],
      ipBlocklists: ["bl.example.net"],
      domainBlocklists: ["dbl.spamhaus.org"],
      sendReports: false,
    });
  });

  const cases: [string, unknown, string][] = [
    [
      "an admin who is not a user",
      { admins: ["bob@example.org"] },
      'operations.admins[0]: "bob@example.org" is not one of users[].address: only a mailbox account can log in to the status page',
    ],
    [
      "a webhook without TLS",
      { webhook: "http://hooks.example/x" },
      'operations.webhook: "http://hooks.example/x" is not an https:// URL (alerts are POSTed there as JSON)',
    ],
    ["a bad digest time", { digestTime: "25:00" }, 'operations.digestTime: "25:00" is not a UTC time HH:MM, e.g. "06:00"'],
    ["nobody to tell", { alertTo: [] }, "operations.alertTo: is empty and there is no webhook: alerts would reach nobody"],
    ["a bad zone", { domainBlocklists: ["-bad.example"] }, 'operations.domainBlocklists[0]: "-bad.example" is not a DNS zone name'],
  ];
  for (const [what, operations, message] of cases)
    test(`refused: ${what}`, () => {
      const found = stackProblems(operations);
      assert.equal(found.length, 1, found.join("\n"));
      assert.ok(found[0].startsWith(message), `${found[0]} starts with ${message}`);
    });
});

describe("maildOperations: the deployment's operations section from the stack and the plan", () => {
  test("addresses, the rua addresses in our domains, the planned records in drift form, the stack's choices", () => {
    const spec = validateStackConfig({
      ...stack({ admins: ["alice@example.org"] }),
      domains: [
        {
          name: "example.org",
          dmarc: { rua: ["mailto:postmaster@example.org", "reports@dmarc-service.example"] },
          tlsrpt: { rua: ["https://tls.example/r"] },
        },
      ],
    });
    const ops = maildOperations(spec, ["198.51.100.2", "2001:db8:1::1"], {
      "example.org": [
        { key: "MX example.org", name: "example.org", type: "MX", content: "mail.example.org", priority: 10, ttl: 1, comment: "" },
        { key: "TXT _dmarc.example.org", name: "_dmarc.example.org", type: "TXT", content: '"v=DMARC1; p=reject"', ttl: 1, comment: "" },
      ],
    });
    assert.deepEqual(ops, {
      addresses: ["198.51.100.2", "2001:db8:1::1"],
      ipBlocklists: ["zen.spamhaus.org", "bl.spamcop.net"],
      domainBlocklists: ["dbl.spamhaus.org"],
      reportAddresses: ["postmaster@example.org"],
      alertTo: ["postmaster@example.org"],
      digestTime: "06:00",
      admins: ["alice@example.org"],
      sendTlsReports: true,
      sendDmarcReports: true,
      expectedRecords: [
        { name: "example.org", type: "MX", value: "10 mail.example.org" },
        { name: "_dmarc.example.org", type: "TXT", value: "v=DMARC1; p=reject" },
      ],
    });
    // and maild takes it as it is
    assert.ok(validateMaildConfig({ ...base, hostname: "mail.example.org", operations: ops }).operations);
  });
});
