// The `backup` section: where the mail is backed up (a Hetzner Storage Box by default, or an SFTP
// host or S3 bucket the user names), how often, how long snapshots are kept, and what an empty
// volume is restored from. Absent: no backup.
//
// Every rule is in readBackup, in the order the keys are documented (README "backup"), so the
// section can move to a schema library as one piece. Facts behind the rules:
// - Storage Box locations: fsn1 and hel1 are documented (terraform-provider-hcloud e2e tests,
//   ansible hetzner.hcloud 6.3.0); nbg1 and the non-EU locations are not (research hetzner.md sec. 9).
//   A backup beside the server dies with its datacenter, so the server's location is refused.
// - Types bx11 and bx21 are in terraform-provider-hcloud's tests; bx31 and bx41 are Hetzner's larger
//   sizes (unconfirmed here). The snapshot plan's maxSnapshots is capped per type by Hetzner
//   (`snapshot_limit`, not known here): up to 40 is admitted, Hetzner refuses more than the type allows.
// - restic needs 0.14 (repository format 2): debian-12 ships 0.14, ubuntu-24.04 0.16, ubuntu-22.04
//   0.12, which is refused.
// - The timer's interval divides a day (server-bootstrap/systemd/backup-units.ts).
import type { BackupSpec, ServerSpec } from "../spec";
import { Problems } from "./config-error";
import { SecretValue } from "./secret";
import { isAbsent, keyPath, readBoolean, readEnum, readInteger, readObject, readString, show } from "./shape";
import { CHECK_SUBSET, SNAPSHOT_ID } from "../../server-bootstrap/backup/settings";
import { BACKUP_INTERVALS_MINUTES } from "../../server-bootstrap/systemd/backup-units";

export const BACKUP_KEYS = ["storageBox", "sftp", "s3", "schedule", "retention", "checkSubset", "restoreFrom"] as const;
export const STORAGE_BOX_LOCATIONS = ["fsn1", "hel1"] as const;
export const STORAGE_BOX_TYPES = ["bx11", "bx21", "bx31", "bx41"] as const;
/** `schedule` values and their minutes. */
export const BACKUP_SCHEDULES: Readonly<Record<string, number>> = Object.fromEntries(
  BACKUP_INTERVALS_MINUTES.map((m) => [m < 60 ? `${m}m` : `${m / 60}h`, m]),
);
/** Images whose restic is too old for the repository format the job writes. */
const IMAGES_WITHOUT_RESTIC_014: Readonly<Record<string, string>> = { "ubuntu-22.04": "0.12" };

export const BACKUP_DEFAULTS = {
  storageBoxType: "bx11",
  snapshots: { keep: 7, hour: 3, minute: 30 },
  sftpPort: 22,
  s3Prefix: "mailstack",
  schedule: "1h",
  retention: { hourly: 24, daily: 7, weekly: 4, monthly: 6 },
  checkSubset: "5%",
  restoreFrom: "latest",
  repositoryPath: "mailstack-restic",
} as const;

/** The default Storage Box location: the other documented one than the server's. */
export function defaultStorageBoxLocation(serverLocation: string | undefined): (typeof STORAGE_BOX_LOCATIONS)[number] {
  return serverLocation === "hel1" ? "fsn1" : "hel1";
}

export interface BackupContext {
  /** the validated server section (its location and image), when it was valid */
  server?: ServerSpec;
  /** config keys Pulumi holds as secrets; when given, a plain-text S3 secret is refused */
  secretKeys?: ReadonlySet<string>;
}

export function readBackup(value: unknown, path: string, problems: Problems, context: BackupContext = {}): BackupSpec | undefined {
  if (isAbsent(value)) return undefined;
  // `backup: {}` (or `backup: true`) asks for the defaults: a Storage Box.
  const raw = value === true || value === "true" ? {} : readObject(value, path, BACKUP_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const at = (k: string) => keyPath(path, k);

  // --- the target: exactly one of storageBox, sftp, s3 (none: a Storage Box with defaults)
  const given = (["storageBox", "sftp", "s3"] as const).filter((k) => !isAbsent(raw[k]));
  if (given.length > 1) problems.add(path, `has ${given.join(" and ")}; choose one backup target`);
  let target: BackupSpec["target"] | undefined;
  const kind = given[0] ?? "storageBox";
  if (kind === "storageBox") {
    const sb = isAbsent(raw.storageBox) ? {} : readObject(raw.storageBox, at("storageBox"), ["location", "type", "snapshots"], problems);
    if (sb !== undefined) {
      const serverLocation = context.server?.location;
      let location: string | undefined = defaultStorageBoxLocation(serverLocation);
      if (!isAbsent(sb.location)) {
        location = readEnum(sb.location, keyPath(at("storageBox"), "location"), STORAGE_BOX_LOCATIONS, problems);
        if (location !== undefined && location === serverLocation) {
          problems.add(
            keyPath(at("storageBox"), "location"),
            `"${location}" is the server's location; a backup there is lost with the datacenter, use ${defaultStorageBoxLocation(location)}`,
          );
          location = undefined;
        }
      }
      const type = isAbsent(sb.type)
        ? BACKUP_DEFAULTS.storageBoxType
        : readEnum(sb.type, keyPath(at("storageBox"), "type"), STORAGE_BOX_TYPES, problems);
      const snapPath = keyPath(at("storageBox"), "snapshots");
      const snaps = isAbsent(sb.snapshots) ? {} : readObject(sb.snapshots, snapPath, ["keep", "hour", "minute"], problems);
      const d = BACKUP_DEFAULTS.snapshots;
      const keep = isAbsent(snaps?.keep)
        ? d.keep
        : readInteger(snaps?.keep, keyPath(snapPath, "keep"), 0, 40, problems, " (daily Storage Box snapshots; 0: none)");
      const hour = isAbsent(snaps?.hour) ? d.hour : readInteger(snaps?.hour, keyPath(snapPath, "hour"), 0, 23, problems, " (UTC)");
      const minute = isAbsent(snaps?.minute) ? d.minute : readInteger(snaps?.minute, keyPath(snapPath, "minute"), 0, 59, problems);
      if (
        location !== undefined &&
        type !== undefined &&
        snaps !== undefined &&
        keep !== undefined &&
        hour !== undefined &&
        minute !== undefined
      ) {
        target = { kind: "storageBox", location, type, snapshots: { keep, hour, minute } };
      }
    }
  } else if (kind === "sftp") {
    const p = at("sftp");
    const s = readObject(raw.sftp, p, ["host", "port", "user", "path", "hostKey", "appendOnly"], problems);
    if (s !== undefined) {
      const required = (k: string, what: string) =>
        isAbsent(s[k]) ? (problems.add(keyPath(p, k), `is required: ${what}`), undefined) : readString(s[k], keyPath(p, k), problems, what);
      const host = required("host", "the SFTP server's host name or IP address");
      if (host !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9a-fA-F:]+$/.test(host))
        problems.add(keyPath(p, "host"), `${show(host)} is not a host name or IP address`);
      const port = isAbsent(s.port) ? BACKUP_DEFAULTS.sftpPort : readInteger(s.port, keyPath(p, "port"), 1, 65535, problems);
      const user = required("user", "the account the box logs in as");
      if (user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(user))
        problems.add(keyPath(p, "user"), `${show(user)} is not an account name`);
      const repoPath = isAbsent(s.path)
        ? BACKUP_DEFAULTS.repositoryPath
        : readString(s.path, keyPath(p, "path"), problems, "a path relative to the account's home");
      if (repoPath !== undefined && (!/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(repoPath) || repoPath.includes(".."))) {
        problems.add(keyPath(p, "path"), `${show(repoPath)} must be relative to the account's home, of letters, digits and _./-`);
      }
      const hostKey = required("hostKey", "the server's SSH host key (`ssh-keyscan -t ed25519 HOST`), pinned: ssh-ed25519 AAAA...");
      if (
        hostKey !== undefined &&
        !/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+=*$/.test(hostKey.split(/\s+/).slice(0, 2).join(" "))
      ) {
        problems.add(keyPath(p, "hostKey"), `${show(hostKey)} is not an SSH public key such as ssh-ed25519 AAAA...`);
      }
      const appendOnly = isAbsent(s.appendOnly) ? false : readBoolean(s.appendOnly, keyPath(p, "appendOnly"), problems);
      if (problems.count === before) {
        target = {
          kind: "sftp",
          host: host!,
          port: port!,
          user: user!,
          path: repoPath!,
          hostKey: hostKey!.split(/\s+/).slice(0, 2).join(" "),
          appendOnly: appendOnly!,
        };
      }
    }
  } else {
    const p = at("s3");
    const s = readObject(raw.s3, p, ["endpoint", "bucket", "prefix", "region", "accessKeyId", "secretAccessKey"], problems);
    if (s !== undefined) {
      const endpoint = isAbsent(s.endpoint)
        ? (problems.add(keyPath(p, "endpoint"), "is required: https://host of the S3 service"), undefined)
        : readString(s.endpoint, keyPath(p, "endpoint"), problems, "an https:// URL");
      if (endpoint !== undefined && !/^https:\/\/[A-Za-z0-9.-]+(:[0-9]+)?$/.test(endpoint))
        problems.add(keyPath(p, "endpoint"), `${show(endpoint)} is not https://host[:port] (no path: the bucket is its own key)`);
      const bucket = isAbsent(s.bucket)
        ? (problems.add(keyPath(p, "bucket"), "is required: the bucket name"), undefined)
        : readString(s.bucket, keyPath(p, "bucket"), problems, "a bucket name");
      if (bucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
        problems.add(keyPath(p, "bucket"), `${show(bucket)} is not an S3 bucket name (3-63 of a-z, 0-9, ".", "-")`);
      const prefix = isAbsent(s.prefix) ? BACKUP_DEFAULTS.s3Prefix : readString(s.prefix, keyPath(p, "prefix"), problems, "a key prefix");
      if (prefix !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(prefix))
        problems.add(keyPath(p, "prefix"), `${show(prefix)} must be letters, digits and _./-`);
      const region = isAbsent(s.region) ? undefined : readString(s.region, keyPath(p, "region"), problems, "a region name");
      const accessKeyId = isAbsent(s.accessKeyId)
        ? (problems.add(keyPath(p, "accessKeyId"), "is required: the S3 access key id"), undefined)
        : readString(s.accessKeyId, keyPath(p, "accessKeyId"), problems, "an access key id");
      let secretAccessKey: string | SecretValue | undefined;
      const secretPath = keyPath(p, "secretAccessKey");
      if (isAbsent(s.secretAccessKey))
        problems.add(secretPath, `is required: set it with pulumi config set --secret --path 'mailstack:${secretPath}'`);
      else if (s.secretAccessKey instanceof SecretValue) secretAccessKey = s.secretAccessKey;
      else {
        secretAccessKey = readString(s.secretAccessKey, secretPath, problems, "the S3 secret key");
        if (secretAccessKey !== undefined && context.secretKeys !== undefined && !context.secretKeys.has(path)) {
          problems.add(
            secretPath,
            `is stored in plain text in the stack file; store it encrypted: pulumi config set --secret --path 'mailstack:${secretPath}' ...`,
          );
        }
      }
      if (problems.count === before) {
        target = {
          kind: "s3",
          endpoint: endpoint!,
          bucket: bucket!,
          prefix: prefix!,
          ...(region !== undefined ? { region } : {}),
          accessKeyId: accessKeyId!,
          secretAccessKey: secretAccessKey!,
        };
      }
    }
  }

  // --- schedule, retention, check, restore
  let intervalMinutes: number | undefined = BACKUP_SCHEDULES[BACKUP_DEFAULTS.schedule];
  if (!isAbsent(raw.schedule)) {
    const text = readString(raw.schedule, at("schedule"), problems, "an interval");
    intervalMinutes = text === undefined ? undefined : BACKUP_SCHEDULES[text];
    if (text !== undefined && intervalMinutes === undefined) {
      problems.add(at("schedule"), `${show(text)} is not one of ${Object.keys(BACKUP_SCHEDULES).join("|")} (intervals that divide a day)`);
    }
  }
  const retPath = at("retention");
  const ret = isAbsent(raw.retention) ? {} : readObject(raw.retention, retPath, ["hourly", "daily", "weekly", "monthly"], problems);
  const counts = { ...BACKUP_DEFAULTS.retention } as Record<"hourly" | "daily" | "weekly" | "monthly", number | undefined>;
  for (const k of ["hourly", "daily", "weekly", "monthly"] as const) {
    if (ret !== undefined && !isAbsent(ret[k])) counts[k] = readInteger(ret[k], keyPath(retPath, k), 0, 10000, problems, " snapshots");
  }
  if (ret !== undefined && Object.values(counts).every((n) => n === 0))
    problems.add(retPath, "keeps nothing; at least one of hourly, daily, weekly, monthly must be above 0");
  let checkSubset: string | undefined = BACKUP_DEFAULTS.checkSubset;
  if (!isAbsent(raw.checkSubset)) {
    checkSubset = readString(
      typeof raw.checkSubset === "number" ? `${raw.checkSubset}%` : raw.checkSubset,
      at("checkSubset"),
      problems,
      "a share of the data such as 5%",
    );
    if (checkSubset !== undefined && !CHECK_SUBSET.test(checkSubset)) {
      problems.add(at("checkSubset"), `${show(checkSubset)} is not a percentage (0.1% to 100%) or n/t (part n of t)`);
      checkSubset = undefined;
    }
  }
  let restoreFrom: string | undefined = BACKUP_DEFAULTS.restoreFrom;
  if (!isAbsent(raw.restoreFrom)) {
    restoreFrom = readString(raw.restoreFrom, at("restoreFrom"), problems, "latest, never or a snapshot id");
    if (restoreFrom !== undefined && !(restoreFrom === "latest" || restoreFrom === "never" || SNAPSHOT_ID.test(restoreFrom))) {
      problems.add(
        at("restoreFrom"),
        `${show(restoreFrom)} is not latest, never or a snapshot id (8 to 64 hex digits, from mailstack backup snapshots)`,
      );
    }
  }

  // --- what the server must offer
  const image = context.server?.image;
  if (image !== undefined && IMAGES_WITHOUT_RESTIC_014[image] !== undefined) {
    problems.add(
      path,
      `needs restic 0.14 or later on the server; ${image} ships ${IMAGES_WITHOUT_RESTIC_014[image]}: use debian-12 or ubuntu-24.04 (server.image)`,
    );
  }

  if (problems.count > before || target === undefined) return undefined;
  return {
    target,
    intervalMinutes: intervalMinutes!,
    retention: counts as BackupSpec["retention"],
    checkSubset: checkSubset!,
    restoreFrom: restoreFrom!,
  };
}
