// What a deployment writes on the box, from plain values: maild's configuration, the systemd
// unit, Dovecot's configuration and passwd-file, the TLS certificate and key, the DKIM keys.
// Pure: MailDaemon calls it inside an apply (secrets stay secret there), the SSH tests call it
// directly, so both deploy byte-identical files.
import type { BoxLayout } from "./layout";
import { AUTH_POLICY_PORT, dkimKeyPath } from "./layout";
import type { ManifestFile } from "./file-manifest";
import { maildUnit } from "../systemd/maild-unit";
import { tlsReloadPathUnit, tlsReloadServiceUnit } from "../systemd/tls-reload-units";
import { dovecotDropIn, metadataGuardRules, metadataGuardUnit } from "../systemd/metadata-guard";
import { dovecotAuthPolicySecrets, dovecotConf } from "../dovecot/dovecot-conf";
import { passwdFile } from "../dovecot/passwd-file";
import { DEFAULT_LIMITS, DEFAULT_STORAGE, type MaildConfigFile } from "../maild/config";
import { backupCheckService, backupCheckTimer, backupService, backupTimer, overdueAfterSeconds } from "../systemd/backup-units";
import { BACKUP_SETTINGS_VERSION, secretPaths, SSH_TARGET_ALIAS, type BackupSettings } from "../backup/settings";
import { RSPAMD_USER } from "./layout";
import type { SpamSettings } from "../../components/shared/spam-settings";
import { rspamdLocalFiles } from "../spam/rspamd-conf";
import { redisConf, redisDropIn } from "../spam/redis-conf";
import { unboundConf } from "../spam/unbound-conf";
import { LEARN_HAM_FILE, LEARN_HAM_SIEVE, LEARN_SPAM_FILE, LEARN_SPAM_SIEVE, learnerScript } from "../spam/learn";

export interface DeployDkimKey {
  selector: string;
  algorithm: "rsa" | "ed25519";
  privateKeyPem: string;
}

export interface DeployDomain {
  name: string;
  /** newest first; the first key of each algorithm signs */
  dkim: DeployDkimKey[];
  /** RFC 8461 policy text served at https://mta-sts.<name>/.well-known/mta-sts.txt */
  mtaStsPolicy?: string;
}

/** maild settings beyond what the stack describes; absent keys take maild's defaults. */
export type MaildTuning = Pick<
  MaildConfigFile,
  "listen" | "outbound" | "submission" | "limits" | "dnsServers" | "recipientDelimiter" | "shutdownTimeoutMs"
>;

/**
 * On-box certificate renewal (maild's `acme` section). The account key is the one the Pulumi side
 * issues with: the CAA record's accounturi (RFC 8657) admits no other account.
 */
export interface DeployAcme {
  directoryUrl: string;
  /** secret; lands 0600, owned by maild */
  accountKeyPem: string;
  email?: string;
  /** names the certificate carries (the hostname first) */
  names: string[];
  renewBeforeFraction?: number;
  /** PEM of an extra CA for the directory (test CAs) */
  extraCaPem?: string;
  checkIntervalSeconds?: number;
}

/**
 * The backup job (server-bootstrap/backup/): its settings, its secrets and its timers. The box gets
 * only what reaches the repository: the repository password and either its own SSH key (an SSH
 * target, whose host key is pinned) or S3 credentials; never a Hetzner token or the Storage Box's
 * password.
 */
export interface DeployBackup {
  /** what the job needs beyond this deployment's hostname and layout */
  settings: Pick<BackupSettings, "repository" | "prune" | "retention" | "checkSubset" | "restoreFrom">;
  /** minutes between runs (systemd/backup-units.ts BACKUP_INTERVALS_MINUTES) */
  intervalMinutes: number;
  /** the job, bundled into one file (install/daemon-bundle.ts bundleBackupJob) */
  jobJs: string;
  /** secret */
  repositoryPassword: string;
  /** an SSH target (rclone, sftp): the box's key, OpenSSH format; secret */
  sshPrivateKey?: string;
  /** an SSH target: the host key it must present, `ssh-ed25519 AAAA...` */
  targetHostKey?: string;
  /** an S3 target; secret */
  s3Credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Secrets the program generates for the box (components/box-secrets.ts): the SRS key maild signs
 * forwarded senders with, and what maild and Dovecot share for the auth policy requests.
 */
export interface DeploySecrets {
  srs: string;
  authPolicyKey: string;
  authPolicyNonce: string;
}

export interface DeployInput {
  hostname: string;
  domains: DeployDomain[];
  /** quotaBytes: the mailbox's own quota (default: storage.quotaBytes); 0 for none */
  users: { address: string; passwordHash: string; quotaBytes?: number }[];
  aliases: { address: string; to: string[] }[];
  tls: { certificatePem: string; privateKeyPem: string };
  /** absent: the certificate changes only with deploys */
  acme?: DeployAcme;
  maild?: MaildTuning;
  /** monitoring, alerts, digest, reports and the status page (maild's operations section) */
  operations?: NonNullable<MaildConfigFile["operations"]>;
  /** Dovecot listeners; default all addresses, 143 and 993 */
  dovecot?: { listen?: string[]; ports?: { imap: number; imaps: number } };
  /** absent: no backup job */
  backup?: DeployBackup;
  /** the spam filter (rspamd, Redis, unbound); not optional: rspamd also verifies SPF/DKIM/DMARC/ARC */
  spam: DeploySpam;
  /** mailbox quota default and free-space reserve; absent keys take maild's defaults */
  storage?: { quotaBytes?: number; reserveBytes?: number };
  /** absent: no SRS, and Dovecot does not consult maild's login throttle */
  secrets?: DeploySecrets;
}

export interface DeploySpam {
  settings: SpamSettings;
  /** rspamd's controller password as `rspamadm pw` writes it (components/rspamd-password.ts): only the hash reaches the box */
  controllerPasswordHash: string;
}

/** The backup job's settings file for this box. */
export function backupSettings(layout: BoxLayout, hostname: string, backup: DeployBackup): BackupSettings {
  return {
    version: BACKUP_SETTINGS_VERSION,
    hostname,
    dataDir: layout.dataDir,
    repository: backup.settings.repository,
    prune: backup.settings.prune,
    retention: { ...backup.settings.retention },
    checkSubset: backup.settings.checkSubset,
    restoreFrom: backup.settings.restoreFrom,
    overdueAfterSeconds: overdueAfterSeconds(backup.intervalMinutes),
    cacheDir: layout.backupCacheDir,
  };
}

function backupFiles(layout: BoxLayout, hostname: string, backup: DeployBackup): ManifestFile[] {
  const secrets = secretPaths(layout.backupSettings);
  const rootOnly = (path: string, content: string): ManifestFile => ({ path, content, mode: "0600", owner: "0:0", effect: "none" });
  const files: ManifestFile[] = [
    { path: layout.backupJs, content: backup.jobJs, mode: "0644", owner: "0:0", effect: "none" },
    rootOnly(layout.backupSettings, JSON.stringify(backupSettings(layout, hostname, backup), null, 2) + "\n"),
    rootOnly(secrets.password, withNewline(backup.repositoryPassword)),
  ];
  const repo = backup.settings.repository;
  if (repo.kind === "s3") {
    if (!backup.s3Credentials) throw new Error("backup.s3Credentials: an S3 target needs an access key id and secret");
    const { accessKeyId, secretAccessKey } = backup.s3Credentials;
    files.push(rootOnly(secrets.s3Credentials, `AWS_ACCESS_KEY_ID=${accessKeyId}\nAWS_SECRET_ACCESS_KEY=${secretAccessKey}\n`));
  } else {
    if (!backup.sshPrivateKey) throw new Error(`backup.sshPrivateKey: an ${repo.kind} target needs the box's SSH key`);
    const hostKey = (backup.targetHostKey ?? "").trim().split(/\s+/);
    if (hostKey.length < 2 || !/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa)$/.test(hostKey[0])) {
      throw new Error(
        `backup.targetHostKey: ${JSON.stringify(backup.targetHostKey)} is not an SSH public key (ssh-ed25519 AAAA...); the target's host key is pinned`,
      );
    }
    files.push(rootOnly(secrets.sshKey, withNewline(backup.sshPrivateKey)));
    files.push({
      path: secrets.knownHosts,
      content: `${SSH_TARGET_ALIAS} ${hostKey[0]} ${hostKey[1]}\n`,
      mode: "0644",
      owner: "0:0",
      effect: "none",
    });
  }
  const unit = (path: string, content: string): ManifestFile => ({ path, content, mode: "0644", owner: "0:0", effect: "backup-units" });
  files.push(
    unit(layout.backupServiceFile, backupService(layout)),
    unit(layout.backupTimerFile, backupTimer(backup.intervalMinutes)),
    unit(layout.backupCheckServiceFile, backupCheckService(layout)),
    unit(layout.backupCheckTimerFile, backupCheckTimer()),
  );
  return files;
}

/** maild's configuration file (server-bootstrap/maild/config.ts) for this box. */
export function maildConfig(layout: BoxLayout, input: DeployInput): MaildConfigFile {
  const tuning = input.maild ?? {};
  return {
    hostname: input.hostname,
    domains: input.domains.map((d) => ({
      name: d.name,
      dkim: d.dkim.map((k) => ({ selector: k.selector, algorithm: k.algorithm, keyPath: dkimKeyPath(layout, d.name, k.selector) })),
      ...(d.mtaStsPolicy !== undefined ? { mtaStsPolicy: d.mtaStsPolicy } : {}),
    })),
    users: input.users.map((u) => ({
      address: u.address,
      passwordHash: u.passwordHash,
      ...(u.quotaBytes !== undefined ? { quotaBytes: u.quotaBytes } : {}),
    })),
    aliases: input.aliases.map((a) => ({ address: a.address, to: [...a.to] })),
    tls: { certPath: layout.tlsCert, keyPath: layout.tlsKey },
    dataDir: layout.dataDir,
    ...(tuning.listen !== undefined ? { listen: tuning.listen } : {}),
    ...(tuning.limits !== undefined ? { limits: tuning.limits } : {}),
    ...(tuning.dnsServers !== undefined ? { dnsServers: tuning.dnsServers } : {}),
    ...(tuning.recipientDelimiter !== undefined ? { recipientDelimiter: tuning.recipientDelimiter } : {}),
    ...(tuning.shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs: tuning.shutdownTimeoutMs } : {}),
    ...(tuning.outbound !== undefined ? { outbound: tuning.outbound } : {}),
    ...(tuning.submission !== undefined ? { submission: tuning.submission } : {}),
    ...(input.acme !== undefined ? { acme: acmeConfig(layout, input.acme) } : {}),
    ...(input.operations !== undefined ? { operations: input.operations } : {}),
    ...(input.storage !== undefined ? { storage: { ...input.storage } } : {}),
    ...(input.secrets !== undefined ? secretsConfig(input.secrets) : {}),
  };
}

/** maild's side of the program's generated secrets: SRS signing, and the auth policy endpoint Dovecot asks. */
function secretsConfig(secrets: DeploySecrets): Pick<MaildConfigFile, "srs" | "authPolicy"> {
  return {
    srs: { secrets: [secrets.srs] },
    authPolicy: { listen: { host: "127.0.0.1", port: AUTH_POLICY_PORT }, apiKey: secrets.authPolicyKey },
  };
}

/** The default quota as maild applies it, so Dovecot gets the same number (maild/config.ts DEFAULT_STORAGE). */
function quotaOf(user: DeployInput["users"][number], input: DeployInput): number {
  return user.quotaBytes ?? input.storage?.quotaBytes ?? DEFAULT_STORAGE.quotaBytes;
}

function acmeConfig(layout: BoxLayout, acme: DeployAcme): NonNullable<MaildConfigFile["acme"]> {
  return {
    directoryUrl: acme.directoryUrl,
    accountKeyPath: layout.acmeAccountKey,
    ...(acme.email !== undefined ? { email: acme.email } : {}),
    names: [...acme.names],
    ...(acme.renewBeforeFraction !== undefined ? { renewBeforeFraction: acme.renewBeforeFraction } : {}),
    ...(acme.extraCaPem !== undefined ? { extraCaPath: layout.acmeExtraCa } : {}),
    ...(acme.checkIntervalSeconds !== undefined ? { checkIntervalSeconds: acme.checkIntervalSeconds } : {}),
  };
}

const withNewline = (s: string) => (s.endsWith("\n") ? s : `${s}\n`);

export function deployFiles(layout: BoxLayout, input: DeployInput): ManifestFile[] {
  const maildOwned = `0:${layout.gid}`;
  const files: ManifestFile[] = [
    {
      path: layout.configJson,
      content: JSON.stringify(maildConfig(layout, input), null, 2) + "\n",
      mode: "0640",
      owner: maildOwned,
      effect: "maild-restart",
    },
    { path: layout.unitFile, content: maildUnit(layout), mode: "0644", owner: "0:0", effect: "unit" },
    { path: layout.tlsReloadServiceFile, content: tlsReloadServiceUnit(), mode: "0644", owner: "0:0", effect: "tls-watch" },
    { path: layout.tlsReloadPathFile, content: tlsReloadPathUnit(layout), mode: "0644", owner: "0:0", effect: "tls-watch" },
    { path: layout.metadataGuardRules, content: metadataGuardRules(), mode: "0644", owner: "0:0", effect: "metadata-guard" },
    { path: layout.metadataGuardUnitFile, content: metadataGuardUnit(layout), mode: "0644", owner: "0:0", effect: "metadata-guard" },
    { path: layout.dovecotDropIn, content: dovecotDropIn(), mode: "0644", owner: "0:0", effect: "dovecot-unit" },
    {
      path: layout.dovecotConf,
      content: dovecotConf({
        dataDir: layout.dataDir,
        passwdFilePath: layout.dovecotPasswd,
        tls: { certPath: layout.tlsCert, keyPath: layout.tlsKey },
        uid: layout.mailUid,
        gid: layout.mailGid,
        ...(input.dovecot?.listen ? { listen: input.dovecot.listen } : {}),
        ...(input.dovecot?.ports ? { ports: input.dovecot.ports } : {}),
        learning: { sieveDir: layout.sieveDir, learner: layout.learner, rspamdUser: RSPAMD_USER, mailUser: layout.mailUser },
        ...(input.secrets !== undefined
          ? { authPolicy: { url: `http://127.0.0.1:${AUTH_POLICY_PORT}/`, secretsPath: layout.dovecotAuthPolicy } }
          : {}),
      }),
      mode: "0644",
      owner: "0:0",
      effect: "dovecot-reload",
    },
    {
      // Dovecot re-reads a passwd-file when it changes: no reload needed. Its auth process runs as
      // the `dovecot` account (default_internal_user), hence the group.
      path: layout.dovecotPasswd,
      content: passwdFile(
        input.users.map((u) => ({ address: u.address, passwordHash: u.passwordHash, quotaBytes: quotaOf(u, input) })),
        { dataDir: layout.dataDir, uid: layout.mailUid, gid: layout.mailGid },
      ),
      mode: "0640",
      owner: "root:dovecot",
      effect: "none",
    },
    {
      path: layout.tlsCert,
      content: withNewline(input.tls.certificatePem),
      mode: "0644",
      owner: "0:0",
      effect: "tls",
      kind: "C",
    },
    { path: layout.tlsKey, content: withNewline(input.tls.privateKeyPem), mode: "0640", owner: maildOwned, effect: "tls" },
  ];
  files.push(...spamFiles(layout, input));
  if (input.secrets !== undefined) {
    // Dovecot's auth process (the dovecot account) reads it through the config process.
    files.push({
      path: layout.dovecotAuthPolicy,
      content: dovecotAuthPolicySecrets(input.secrets.authPolicyKey, input.secrets.authPolicyNonce),
      mode: "0640",
      owner: "root:dovecot",
      effect: "dovecot-reload",
    });
  }
  if (input.acme !== undefined) {
    // maild reads these at start: a change restarts it.
    files.push({
      path: layout.acmeAccountKey,
      content: withNewline(input.acme.accountKeyPem),
      mode: "0600",
      owner: `${layout.uid}:${layout.gid}`,
      effect: "maild-restart",
    });
    if (input.acme.extraCaPem !== undefined) {
      files.push({
        path: layout.acmeExtraCa,
        content: withNewline(input.acme.extraCaPem),
        mode: "0644",
        owner: "0:0",
        effect: "maild-restart",
      });
    }
  }
  if (input.backup !== undefined) files.push(...backupFiles(layout, input.hostname, input.backup));
  for (const d of input.domains) {
    for (const k of d.dkim) {
      files.push({
        path: dkimKeyPath(layout, d.name, k.selector),
        content: withNewline(k.privateKeyPem),
        mode: "0640",
        owner: maildOwned,
        effect: "maild-restart",
      });
    }
  }
  return files;
}

/** rspamd's local.d/override.d files, Redis's and unbound's configuration, the learning scripts. */
function spamFiles(layout: BoxLayout, input: DeployInput): ManifestFile[] {
  const rspamd = rspamdLocalFiles({
    settings: input.spam.settings,
    controllerPasswordHash: input.spam.controllerPasswordHash,
    learnSocket: layout.rspamdLearnSocket,
    controllerTcp: "localhost:11334",
    rspamdUser: RSPAMD_USER,
    redis: "127.0.0.1:6379",
    dnsServer: "127.0.0.1:53",
    maxMessageBytes: input.maild?.limits?.maxMessageBytes ?? DEFAULT_LIMITS.maxMessageBytes,
  });
  const redis = { dir: layout.redisDataDir, dataDir: layout.dataDir, debianConf: layout.redisDebianConf };
  return [
    ...Object.entries(rspamd).map(([rel, content]): ManifestFile => ({
      path: `${layout.rspamdConfDir}/${rel}`,
      content,
      // the controller's file holds the password hash: rspamd's account reads it, nobody else
      ...(rel.endsWith("worker-controller.inc") ? { mode: "0640", owner: `root:${RSPAMD_USER}` } : { mode: "0644", owner: "0:0" }),
      effect: "rspamd-restart",
    })),
    { path: layout.redisConf, content: redisConf(redis), mode: "0644", owner: "0:0", effect: "redis-restart" },
    {
      path: layout.redisDropIn,
      content: redisDropIn({ ...redis, conf: layout.redisConf }),
      mode: "0644",
      owner: "0:0",
      effect: "redis-unit",
    },
    { path: layout.unboundConf, content: unboundConf(), mode: "0644", owner: "0:0", effect: "unbound-restart" },
    { path: `${layout.sieveDir}/${LEARN_SPAM_FILE}`, content: LEARN_SPAM_SIEVE, mode: "0644", owner: "0:0", effect: "sieve" },
    { path: `${layout.sieveDir}/${LEARN_HAM_FILE}`, content: LEARN_HAM_SIEVE, mode: "0644", owner: "0:0", effect: "sieve" },
    { path: layout.learner, content: learnerScript({ learnSocket: layout.rspamdLearnSocket }), mode: "0755", owner: "0:0", effect: "none" },
  ];
}
