// The stack's `backup` section (components/config/backup.ts): defaults, the Storage Box's location
// rules, the other targets, and every bad input named by its key.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, validateStackConfig, type ConfigProblem } from "../../components/config/validate";
import { SecretValue } from "../../components/config/secret";
import { BACKUP_SCHEDULES, defaultStorageBoxLocation } from "../../components/config/backup";

const HASH = "$argon2id$v=19$m=65536,t=3,p=1$RTM4WUlyZ1k4L042dXdKUjNkWUEzdz09$Lsw4zm1ITmFdx9Kt4fL3aW1rNi7TCDLzvs3pWrNqcGA";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

function stack(backup: unknown, server?: Record<string, unknown>): Record<string, unknown> {
  return {
    hostname: "mail.example.org",
    domains: [{ name: "example.org" }],
    users: [{ address: "alice@example.org", passwordHash: HASH }],
    acme: { email: "alice@example.org" },
    ...(server ? { server } : {}),
    backup,
  };
}

function problemsOf(raw: Record<string, unknown>, opts?: { secretKeys?: ReadonlySet<string> }): ConfigProblem[] {
  try {
    validateStackConfig(raw, opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail("the config was accepted");
}

describe("backup: defaults", () => {
  test("absent: no backup", () => {
    const spec = validateStackConfig(stack(undefined));
    assert.equal(spec.backup, undefined);
  });

  test("`backup: {}` is an hourly restic backup to a bx11 Storage Box in hel1 (the server is in fsn1), restoring empty volumes from the latest snapshot", () => {
    const spec = validateStackConfig(stack({}));
    assert.deepEqual(spec.backup, {
      target: { kind: "storageBox", location: "hel1", type: "bx11", snapshots: { keep: 7, hour: 3, minute: 30 } },
      intervalMinutes: 60,
      retention: { hourly: 24, daily: 7, weekly: 4, monthly: 6 },
      checkSubset: "5%",
      restoreFrom: "latest",
    });
  });

  test("the default Storage Box location is the documented one that is not the server's", () => {
    assert.deepEqual(
      ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"].map((l) => [l, defaultStorageBoxLocation(l)]),
      [
        ["fsn1", "hel1"],
        ["nbg1", "hel1"],
        ["hel1", "fsn1"],
        ["ash", "hel1"],
        ["hil", "hel1"],
        ["sin", "hel1"],
      ],
    );
    const spec = validateStackConfig(stack({}, { location: "hel1" }));
    assert.equal(spec.backup!.target.kind === "storageBox" && spec.backup!.target.location, "fsn1");
  });

  test("schedules are the intervals that divide a day", () => {
    assert.deepEqual(Object.keys(BACKUP_SCHEDULES), ["15m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "24h"]);
    assert.equal(validateStackConfig(stack({ schedule: "15m" })).backup!.intervalMinutes, 15);
    assert.equal(validateStackConfig(stack({ schedule: "24h" })).backup!.intervalMinutes, 1440);
  });

  test("an SFTP target of the user's own, append-only when its key runs rclone serve restic", () => {
    const spec = validateStackConfig(
      stack({ sftp: { host: "backup.example.net", user: "mail", hostKey: `${HOST_KEY} root@backup`, appendOnly: true } }),
    );
    assert.deepEqual(spec.backup!.target, {
      kind: "sftp",
      host: "backup.example.net",
      port: 22,
      user: "mail",
      path: "mailstack-restic",
      hostKey: HOST_KEY,
      appendOnly: true,
    });
  });

  test("an S3 target keeps its secret key as the encrypted marker the stack file holds", () => {
    const secret = new SecretValue("v1:abc");
    const spec = validateStackConfig(
      stack({ s3: { endpoint: "https://s3.example.net", bucket: "mail-backups", accessKeyId: "AKIA1", secretAccessKey: secret } }),
      { secretKeys: new Set(["users", "backup"]) },
    );
    assert.deepEqual(spec.backup!.target, {
      kind: "s3",
      endpoint: "https://s3.example.net",
      bucket: "mail-backups",
      prefix: "mailstack",
      accessKeyId: "AKIA1",
      secretAccessKey: secret,
    });
  });

  test("a snapshot id or `never` as restoreFrom", () => {
    assert.equal(validateStackConfig(stack({ restoreFrom: "0a1b2c3d" })).backup!.restoreFrom, "0a1b2c3d");
    assert.equal(validateStackConfig(stack({ restoreFrom: "never" })).backup!.restoreFrom, "never");
  });
});

const bad: { name: string; backup: unknown; server?: Record<string, unknown>; path: string; message: string }[] = [
  {
    name: "a Storage Box in the server's location",
    backup: { storageBox: { location: "fsn1" } },
    path: "backup.storageBox.location",
    message: `"fsn1" is the server's location; a backup there is lost with the datacenter, use hel1`,
  },
  {
    name: "a Storage Box where Hetzner does not document them",
    backup: { storageBox: { location: "nbg1" } },
    path: "backup.storageBox.location",
    message: `"nbg1" is not one of fsn1|hel1`,
  },
  {
    name: "an unknown Storage Box type",
    backup: { storageBox: { type: "bx99" } },
    path: "backup.storageBox.type",
    message: `"bx99" is not one of bx11|bx21|bx31|bx41`,
  },
  {
    name: "more snapshots than any type keeps",
    backup: { storageBox: { snapshots: { keep: 100 } } },
    path: "backup.storageBox.snapshots.keep",
    message: "100 is out of range; expected an integer from 0 to 40 (daily Storage Box snapshots; 0: none)",
  },
  {
    name: "a snapshot hour past 23",
    backup: { storageBox: { snapshots: { hour: 24 } } },
    path: "backup.storageBox.snapshots.hour",
    message: "24 is out of range",
  },
  {
    name: "two targets",
    backup: { storageBox: {}, sftp: { host: "h", user: "u", hostKey: HOST_KEY } },
    path: "backup",
    message: "has storageBox and sftp; choose one backup target",
  },
  {
    name: "an unknown key",
    backup: { schedul: "1h" },
    path: "backup.schedul",
    message: "unknown key; allowed keys here are storageBox, sftp, s3, schedule, retention, checkSubset, restoreFrom",
  },
  {
    name: "a schedule that does not divide a day",
    backup: { schedule: "5h" },
    path: "backup.schedule",
    message: `"5h" is not one of 15m|30m|1h|2h|3h|4h|6h|8h|12h|24h (intervals that divide a day)`,
  },
  {
    name: "a retention that keeps nothing",
    backup: { retention: { hourly: 0, daily: 0, weekly: 0, monthly: 0 } },
    path: "backup.retention",
    message: "keeps nothing; at least one of hourly, daily, weekly, monthly must be above 0",
  },
  {
    name: "a negative retention count",
    backup: { retention: { daily: -1 } },
    path: "backup.retention.daily",
    message: "-1 is out of range",
  },
  {
    name: "a check subset over 100%",
    backup: { checkSubset: "150%" },
    path: "backup.checkSubset",
    message: `"150%" is not a percentage (0.1% to 100%) or n/t (part n of t)`,
  },
  {
    name: "a restoreFrom that is no snapshot id",
    backup: { restoreFrom: "yesterday" },
    path: "backup.restoreFrom",
    message: `"yesterday" is not latest, never or a snapshot id`,
  },
  {
    name: "an SFTP target without a host key",
    backup: { sftp: { host: "backup.example.net", user: "mail" } },
    path: "backup.sftp.hostKey",
    message: "is required: the server's SSH host key",
  },
  {
    name: "an SFTP host key that is no key",
    backup: { sftp: { host: "h.example", user: "u", hostKey: "AAAA" } },
    path: "backup.sftp.hostKey",
    message: `"AAAA" is not an SSH public key`,
  },
  {
    name: "an SFTP path leaving the home",
    backup: { sftp: { host: "h.example", user: "u", hostKey: HOST_KEY, path: "../x" } },
    path: "backup.sftp.path",
    message: "must be relative to the account's home",
  },
  {
    name: "an S3 endpoint over plain HTTP",
    backup: { s3: { endpoint: "http://s3.example", bucket: "bucket", accessKeyId: "a", secretAccessKey: new SecretValue("x") } },
    path: "backup.s3.endpoint",
    message: "is not https://host[:port]",
  },
  {
    name: "an S3 bucket name with capitals",
    backup: { s3: { endpoint: "https://s3.example", bucket: "Bucket", accessKeyId: "a", secretAccessKey: new SecretValue("x") } },
    path: "backup.s3.bucket",
    message: "is not an S3 bucket name",
  },
  {
    name: "restic too old on the image",
    backup: {},
    server: { image: "ubuntu-22.04" },
    path: "backup",
    message: "needs restic 0.14 or later on the server; ubuntu-22.04 ships 0.12: use debian-12 or ubuntu-24.04 (server.image)",
  },
];

describe("backup: bad input names the key and how to mend it", () => {
  for (const c of bad) {
    test(c.name, () => {
      const problems = problemsOf(stack(c.backup, c.server));
      assert.ok(
        problems.some((p) => p.path === c.path && p.message.includes(c.message)),
        `expected ${c.path}: ${c.message}\ngot:\n${problems.map((p) => `${p.path}: ${p.message}`).join("\n")}`,
      );
    });
  }

  test("a password hash in plain text in the stack file is refused with the mailstack command that stores it encrypted", () => {
    const problems = problemsOf(stack(undefined), { secretKeys: new Set() });
    assert.deepEqual(problems, [
      {
        path: "users[0].passwordHash",
        message:
          "is stored in plain text in the stack file; store it encrypted with: mailstack user passwd alice@example.org (it asks for the password, hashes it and runs pulumi config set --secret)",
      },
    ]);
  });

  test("an S3 secret key in plain text in the stack file is refused with the command that stores it encrypted", () => {
    const problems = problemsOf(
      stack({ s3: { endpoint: "https://s3.example", bucket: "bucket", accessKeyId: "a", secretAccessKey: "plain" } }),
      {
        secretKeys: new Set(["users"]),
      },
    );
    assert.deepEqual(problems, [
      {
        path: "backup.s3.secretAccessKey",
        message:
          "is stored in plain text in the stack file; store it encrypted: pulumi config set --secret --path 'mailstack:backup.s3.secretAccessKey' ...",
      },
    ]);
  });
});
