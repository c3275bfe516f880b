// What a deployment puts on the box for the backup job, read back by the job's own parser; the
// units checked by systemd's tools; the status as maild's /metrics shows it; the Storage Box's
// authorized_keys and the secrets derived for it.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles, type DeployBackup, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { parseBackupSettings, secretPaths } from "../../server-bootstrap/backup/settings";
import {
  backupCheckService,
  backupCheckTimer,
  backupService,
  backupTimer,
  onCalendarEvery,
  overdueAfterSeconds,
} from "../../server-bootstrap/systemd/backup-units";
import { renderBackupMetrics } from "../../server-bootstrap/maild/backup-metrics";
import { writeStatus } from "../../server-bootstrap/backup/status";
import { countRemoved, describeTarget, keepOptions, parseEnvFile, pickSnapshot, resticError } from "../../server-bootstrap/backup/restic";
import { storageBoxAuthorizedKeys } from "../../components/backup/authorized-keys";
import { derivedSecret, storageBoxPassword } from "../../components/backup/derived-secret";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const NODE = path.resolve(__dirname, "../../node_modules/node/bin/node");
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const roots: string[] = [];
after(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

function backup(over: Partial<DeployBackup> = {}): DeployBackup {
  return {
    settings: {
      repository: { kind: "rclone", host: "u1-sub1.your-storagebox.de", port: 23, user: "u1-sub1", path: "mailstack-restic" },
      prune: false,
      retention: { hourly: 24, daily: 7, weekly: 4, monthly: 6 },
      checkSubset: "5%",
      restoreFrom: "latest",
    },
    intervalMinutes: 60,
    jobJs: "// the job\n",
    repositoryPassword: "repository-password",
    sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----",
    targetHostKey: HOST_KEY,
    ...over,
  };
}

function input(b: DeployBackup | undefined): DeployInput {
  return {
    hostname: "mail.example.org",
    domains: [{ name: "example.org", dkim: [] }],
    users: [],
    aliases: [],
    tls: { certificatePem: "cert", privateKeyPem: "key" },
    spam: TEST_DEPLOY_SPAM,
    ...(b ? { backup: b } : {}),
  };
}

describe("the backup job's files in the deploy manifest", () => {
  const layout = boxLayout();
  const files = deployFiles(layout, input(backup()));
  const byPath = new Map(files.map((f) => [f.path, f]));
  const secrets = secretPaths(layout.backupSettings);

  test("settings, password and key are root's alone; the pinned host key and the job are readable; units restart the timers", () => {
    assert.deepEqual(
      [layout.backupJs, layout.backupSettings, secrets.password, secrets.sshKey, secrets.knownHosts].map((p) => [
        p,
        byPath.get(p)?.mode,
        byPath.get(p)?.owner,
        byPath.get(p)?.effect,
      ]),
      [
        ["/usr/local/lib/mailstack/backup.js", "0644", "0:0", "none"],
        ["/etc/mailstack/backup/settings.json", "0600", "0:0", "none"],
        ["/etc/mailstack/backup/repository-password", "0600", "0:0", "none"],
        ["/etc/mailstack/backup/ssh-key", "0600", "0:0", "none"],
        ["/etc/mailstack/backup/known_hosts", "0644", "0:0", "none"],
      ],
    );
    assert.equal(byPath.get(secrets.knownHosts)!.content, `mailstack-backup-target ${HOST_KEY}\n`);
    for (const unit of [
      "mailstack-backup.service",
      "mailstack-backup.timer",
      "mailstack-backup-check.service",
      "mailstack-backup-check.timer",
    ]) {
      assert.equal(byPath.get(`/etc/systemd/system/${unit}`)?.effect, "backup-units", unit);
    }
    assert.equal(byPath.has(secrets.s3Credentials), false);
  });

  test("the settings file parses back as the job reads it, with the layout's data and cache directories and the overdue bound", () => {
    const parsed = parseBackupSettings(byPath.get(layout.backupSettings)!.content);
    assert.deepEqual(parsed, {
      version: 1,
      hostname: "mail.example.org",
      dataDir: "/var/lib/maild",
      repository: backup().settings.repository,
      prune: false,
      retention: { hourly: 24, daily: 7, weekly: 4, monthly: 6 },
      checkSubset: "5%",
      restoreFrom: "latest",
      overdueAfterSeconds: 2 * 3600 + 360 + 900,
      cacheDir: "/var/cache/mailstack-backup",
    });
  });

  test("an S3 target gets a credentials file and no SSH key", () => {
    const s3 = deployFiles(
      layout,
      input(
        backup({
          settings: {
            ...backup().settings,
            repository: { kind: "s3", endpoint: "https://s3.example.net", bucket: "b-1", prefix: "mailstack" },
            prune: true,
          },
          sshPrivateKey: undefined,
          targetHostKey: undefined,
          s3Credentials: { accessKeyId: "AKIA1", secretAccessKey: "s3cr3t" },
        }),
      ),
    );
    const creds = s3.find((f) => f.path === secrets.s3Credentials)!;
    assert.deepEqual([creds.mode, creds.content], ["0600", "AWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY=s3cr3t\n"]);
    assert.deepEqual(parseEnvFile(creds.content), { AWS_ACCESS_KEY_ID: "AKIA1", AWS_SECRET_ACCESS_KEY: "s3cr3t" });
    assert.equal(
      s3.some((f) => f.path === secrets.sshKey),
      false,
    );
  });

  test("an SSH target without a host key to pin is refused", () => {
    assert.throws(
      () => deployFiles(layout, input(backup({ targetHostKey: "AAAA" }))),
      /backup\.targetHostKey: "AAAA" is not an SSH public key .*pinned/,
    );
  });

  test("no backup: no backup files", () => {
    assert.equal(
      deployFiles(layout, input(undefined)).some((f) => f.path.includes("backup")),
      false,
    );
  });
});

describe("the job's settings parser names the key at fault", () => {
  const good = () =>
    JSON.parse(deployFiles(boxLayout(), input(backup())).find((f) => f.path.endsWith("settings.json"))!.content) as Record<string, any>;
  const cases: [string, (s: Record<string, any>) => void, RegExp][] = [
    [
      "a repository host with a space",
      (s) => (s.repository.host = "a b"),
      /^repository\.host: expected a host name or IP address, got "a b"$/,
    ],
    ["an absolute repository path", (s) => (s.repository.path = "/etc"), /^repository\.path: expected a relative path/],
    ["a path leaving the home", (s) => (s.repository.path = "a/../../x"), /^repository\.path: expected a relative path/],
    [
      "a box that prunes an append-only repository",
      (s) => (s.prune = true),
      /^prune: an append-only \(rclone\) repository cannot be pruned by the box$/,
    ],
    ["an unknown key", (s) => (s.extra = 1), /^\(settings\)\.extra: unknown key/],
    ["a retention that keeps nothing", (s) => (s.retention = { hourly: 0, daily: 0, weekly: 0, monthly: 0 }), /^retention: keeps nothing/],
    ["a restoreFrom that is no id", (s) => (s.restoreFrom = "zz"), /^restoreFrom: expected latest, never or a snapshot id/],
  ];
  for (const [name, mutate, message] of cases) {
    test(name, () => {
      const s = good();
      mutate(s);
      assert.throws(() => parseBackupSettings(JSON.stringify(s)), { message });
    });
  }
});

describe("the backup units", () => {
  function analyze(args: string[]): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync("systemd-analyze", args, { encoding: "utf8" });
    if (r.error) throw new Error(`systemd-analyze is not installed (Debian package "systemd"): ${r.error.message}`);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  function unitDir(): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "backup-units-"));
    roots.push(root);
    const layout = boxLayout({ root, dataDir: path.join(root, "data") });
    fs.mkdirSync(path.dirname(layout.node), { recursive: true });
    fs.symlinkSync(NODE, layout.node);
    const dir = path.join(root, "units");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "mailstack-backup.service"), backupService(layout));
    fs.writeFileSync(path.join(dir, "mailstack-backup.timer"), backupTimer(60));
    fs.writeFileSync(path.join(dir, "mailstack-backup-check.service"), backupCheckService(layout));
    fs.writeFileSync(path.join(dir, "mailstack-backup-check.timer"), backupCheckTimer());
    return dir;
  }

  test("systemd-analyze verify prints nothing for the services and timers", () => {
    const dir = unitDir();
    const r = analyze(["verify", ...fs.readdirSync(dir).map((f) => path.join(dir, f))]);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
  });

  test("systemd-analyze security --offline=yes rates the job (root, five file capabilities) 2.4 or better", () => {
    const dir = unitDir();
    const r = analyze(["security", "--offline=yes", path.join(dir, "mailstack-backup.service")]);
    const m = /Overall exposure level for mailstack-backup\.service: (\d+\.\d+)/.exec(r.stdout);
    assert.ok(m && Number(m[1]) <= 2.4, r.stdout);
  });

  test("the service runs the job as the timer's ExecStart, kept from the metadata service, needing the data volume", () => {
    const unit = backupService(boxLayout());
    assert.match(
      unit,
      /^ExecStart=\/usr\/local\/bin\/node \/usr\/local\/lib\/mailstack\/backup\.js run --settings \/etc\/mailstack\/backup\/settings\.json$/m,
    );
    assert.match(unit, /^IPAddressDeny=169\.254\.0\.0\/16$/m);
    assert.match(unit, /^RequiresMountsFor=\/var\/lib\/maild$/m);
    assert.match(unit, /^CapabilityBoundingSet=CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID$/m);
  });

  test("the timer's calendar events: every interval from midnight, each accepted by systemd-analyze calendar", () => {
    const events = [15, 60, 120, 1440].map(onCalendarEvery);
    assert.deepEqual(events, ["*-*-* *:00/15:00", "*-*-* 00/1:00:00", "*-*-* 00/2:00:00", "*-*-* 00:00:00"]);
    const r = analyze(["calendar", ...events]);
    assert.equal(r.code, 0, r.stderr);
    assert.throws(() => onCalendarEvery(45), /use one of 15, 30, 60/);
    assert.equal(overdueAfterSeconds(60), 7200 + 360 + 900);
  });
});

describe("the status on maild's /metrics", () => {
  test("the age of the last good backup, the last attempt's result and whether it is overdue", async () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), "backup-metrics-"));
    roots.push(data);
    assert.equal(renderBackupMetrics(data), "", "no status file: no backup metrics");
    await writeStatus(path.join(data, ".mailstack-backup", "status.json"), {
      version: 1,
      target: "t",
      appendOnly: true,
      overdueAfterSeconds: 8460,
      lastSuccess: { snapshot: "abcd1234", time: "2026-09-01T10:00:00.000Z", files: 10, bytes: 2048, dataAdded: 100, durationMs: 5 },
      lastAttempt: { time: "2026-09-01T11:00:00.000Z", ok: false, error: "restic cannot reach the repository" },
      beyondRetention: 3,
    });
    const text = renderBackupMetrics(data, Date.parse("2026-09-01T12:00:00Z"));
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    assert.equal(value("mailstack_backup_age_seconds"), 7200);
    assert.equal(value("mailstack_backup_last_success_timestamp_seconds"), Date.parse("2026-09-01T10:00:00Z") / 1000);
    assert.equal(value("mailstack_backup_last_attempt_ok"), 0);
    assert.equal(value("mailstack_backup_overdue"), 0);
    assert.equal(value("mailstack_backup_snapshots_beyond_retention"), 3);
    assert.match(text, /^# TYPE mailstack_backup_age_seconds gauge$/m);
    const later = renderBackupMetrics(data, Date.parse("2026-09-01T12:21:01Z"));
    assert.match(later, /^mailstack_backup_overdue 1$/m);
  });
});

describe("restic helpers", () => {
  test("forget's keep options leave out zero counts", () => {
    assert.deepEqual(keepOptions({ hourly: 24, daily: 0, weekly: 4, monthly: 0 }), ["--keep-hourly", "24", "--keep-weekly", "4"]);
  });
  test("forget --json: the snapshots every group would remove", () => {
    assert.equal(countRemoved('[{"keep":[{}],"remove":[{},{}]},{"keep":[],"remove":null}]'), 2);
  });
  test("snapshots are picked by latest or a unique id prefix", () => {
    const s = [
      { id: "aa11", short_id: "aa11", time: "2026-01-01T00:00:00Z", paths: ["/x"], hostname: "h" },
      { id: "aa22", short_id: "aa22", time: "2026-01-02T00:00:00Z", paths: ["/x"], hostname: "h" },
    ];
    assert.equal(pickSnapshot(s, "latest")?.id, "aa22");
    assert.equal(pickSnapshot(s, "aa1")?.id, "aa11");
    assert.equal(pickSnapshot(s, "bb"), undefined);
    assert.throws(() => pickSnapshot(s, "aa"), /snapshot id aa is ambiguous: aa11, aa22/);
  });
  test("an error is restic's Fatal line, without the remote rclone's notices or Go stack frames", () => {
    const stderr =
      'rclone: 2026/12/06 16:14:31 NOTICE: Config file "/home/.config/rclone/rclone.conf" not found - using defaults\n' +
      "Fatal: unable to open repository at rclone:x: error talking HTTP to rclone: unexpected EOF\n" +
      "github.com/restic/restic/internal/backend.(*RetryBackend).Remove\n\tgithub.com/x.go:1\n";
    assert.equal(
      resticError({ code: 1, stdout: "", stderr }),
      "Fatal: unable to open repository at rclone:x: error talking HTTP to rclone: unexpected EOF",
    );
  });
  test("targets are described without credentials", () => {
    assert.equal(
      describeTarget({ kind: "rclone", host: "u1-sub1.your-storagebox.de", port: 23, user: "u1-sub1", path: "r" }),
      "u1-sub1@u1-sub1.your-storagebox.de:23 r (rclone serve restic, append-only)",
    );
    assert.equal(describeTarget({ kind: "s3", endpoint: "https://s3.example", bucket: "b", prefix: "p" }), "s3:https://s3.example/b/p");
  });
});

describe("the Storage Box's keys and passwords", () => {
  test("authorized_keys binds the box's key to an append-only restic server and gives the admin key SFTP", () => {
    const text = storageBoxAuthorizedKeys({
      boxPublicKey: `${HOST_KEY} comment`,
      adminPublicKey: HOST_KEY.replace("IOMq", "IOMr"),
      repositoryPath: "mailstack-restic",
    });
    const lines = text.split("\n");
    assert.equal(lines[1], `restrict,command="rclone serve restic --stdio --append-only mailstack-restic" ${HOST_KEY} mailstack-box`);
    assert.equal(lines[2], `restrict ${HOST_KEY.replace("IOMq", "IOMr")} mailstack-admin`);
    assert.ok(text.endsWith("\n"), "Hetzner reads the last line only with a newline after it");
    assert.throws(
      () => storageBoxAuthorizedKeys({ boxPublicKey: HOST_KEY, adminPublicKey: HOST_KEY, repositoryPath: "x; rm -rf ." }),
      /repositoryPath/,
    );
    assert.throws(
      () => storageBoxAuthorizedKeys({ boxPublicKey: 'command="sh" ' + HOST_KEY, adminPublicKey: HOST_KEY, repositoryPath: "r" }),
      /boxPublicKey/,
    );
  });

  test("derived secrets differ by label, are stable, and the Storage Box password meets Hetzner's policy", () => {
    const pem =
      "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB2l6Bx5Rc8Hf4Kk0m6Rq5lNb4s8zO2o2p3O5yq7Xy2T\n-----END PRIVATE KEY-----\n";
    assert.equal(derivedSecret(pem, "a"), derivedSecret(pem, "a"));
    assert.notEqual(derivedSecret(pem, "a"), derivedSecret(pem, "b"));
    assert.match(derivedSecret(pem, "a"), /^[A-Za-z0-9_-]{43}$/);
    const password = storageBoxPassword(pem, "box");
    // research hetzner.md sec. 9: 12-128 characters, upper, lower, digit, a special character, from Hetzner's alphabet
    assert.ok(password.length >= 12 && password.length <= 128);
    for (const cls of [/[a-z]/, /[A-Z]/, /[0-9]/, /[-_]/]) assert.match(password, cls);
    assert.match(password, /^[a-zA-Z0-9^°!§$%/()=?+#\-.,;:~*@{}_&]+$/);
    assert.throws(() => derivedSecret("not a key", "a"), /not a PEM private key/);
  });
});
