// Where everything lives on the box. One place, so the install script, the systemd unit, the
// Dovecot configuration, maild's configuration and the tests agree on every path.
//
// `root` prefixes every system path (tests install into a temp directory standing in for `/`);
// the data directory is given whole, because it is the mounted volume that outlives the server
// and a rebuild points a new root at the same data directory.
import * as path from "node:path";
import { CERT_FILE, KEY_FILE } from "../../components/shared/acme/keeper";
import { TLS_RELOAD_PATH_UNIT, TLS_RELOAD_SERVICE_UNIT } from "../systemd/tls-reload-units";
import { METADATA_GUARD_UNIT } from "../systemd/metadata-guard";
import { BACKUP_CACHE_NAME, BACKUP_UNITS } from "../systemd/backup-units";
import { REDIS_DIR } from "../backup/stage";

/** Node.js release installed on the box: pinned, and verified by SHA-256 before it is unpacked. */
export const NODE_VERSION = "24.21.0";

/**
 * SHA-256 of the official tarballs, as listed in https://nodejs.org/dist/v24.21.0/SHASUMS256.txt.
 * Keyed by `uname -m`. A version bump changes these with it.
 */
export const NODE_TARBALLS: Readonly<Record<string, { file: string; sha256: string }>> = {
  x86_64: { file: `node-v${NODE_VERSION}-linux-x64.tar.xz`, sha256: "fd8e59d5a511510f6a298afb548f18c7d2b1be404d8b4a27d94fbe49f56cb2d6" },
  aarch64: { file: `node-v${NODE_VERSION}-linux-arm64.tar.xz`, sha256: "6ad1325edbdb5649c379b75a237147a666c95d4f9ae8d340fef2d1575d289ad2" },
};

export const NODE_DIST_URL = `https://nodejs.org/dist/v${NODE_VERSION}`;

/**
 * Fixed numeric ids for the `maild` account: mail on the volume is owned by number, so a rebuilt
 * server must give the account the same ids or it could not read the mail it kept. Above the
 * system range on purpose: no package ever allocates it dynamically.
 */
export const MAILD_UID = 2525;
export const MAILD_GID = 2525;
export const MAILD_USER = "maild";

/** The accounts Debian's rspamd and redis-server packages create (their postinst scripts). */
export const RSPAMD_USER = "_rspamd";
export const REDIS_USER = "redis";

/**
 * Dovecot's mail processes run as an account of their own (dovecot-conf.ts mail_uid), in a group
 * maild belongs to: the mail tree is that group's, and nothing else of maild's is (keys, the
 * queue, the configuration stay out of its reach). Fixed ids for the same reason as maild's.
 */
export const MAIL_UID = 2526;
export const MAIL_GID = 2526;
export const MAIL_USER = "vmail";

/** maild's Dovecot auth policy endpoint (auth-policy-server.ts), on the box's loopback only. */
export const AUTH_POLICY_PORT = 12525;

/** Mount point of the data volume on a real box. */
export const DEFAULT_DATA_DIR = "/var/lib/maild";

export interface BoxLayoutOptions {
  /** prefix of every system path; "/" on a real box */
  root?: string;
  /** the data directory (the volume's mount point); never prefixed by root */
  dataDir?: string;
  user?: string;
  uid?: number;
  gid?: number;
  /** Dovecot's mail processes (default vmail, MAIL_UID/MAIL_GID) */
  mailUser?: string;
  mailUid?: number;
  mailGid?: number;
}

export interface BoxLayout {
  root: string;
  dataDir: string;
  user: string;
  uid: number;
  gid: number;
  /** the account Dovecot's mail processes run as, whose group owns the mail tree */
  mailUser: string;
  mailUid: number;
  mailGid: number;
  /** the Node binary the unit runs (installed under <root>/usr/local) */
  node: string;
  nodePrefix: string;
  /** the one bundled daemon file */
  daemonJs: string;
  configJson: string;
  unitFile: string;
  /** the unit name systemctl knows it by */
  unitName: string;
  /** the path unit that reloads Dovecot when maild renews the certificate, and its service */
  tlsReloadPathFile: string;
  tlsReloadServiceFile: string;
  dovecotConf: string;
  dovecotPasswd: string;
  /** the secrets of Dovecot's auth policy settings (API key, hash nonce), included by dovecot.conf */
  dovecotAuthPolicy: string;
  /** Dovecot's systemd drop-in (the metadata fence) */
  dovecotDropIn: string;
  /** the nftables ruleset that keeps the metadata service from every account but root, and its unit */
  metadataGuardRules: string;
  metadataGuardUnitFile: string;
  /**
   * TLS certificate chain and key, on the volume so a certificate renewed on the box survives a
   * rebuild; named as the on-box renewal (components/shared/acme/keeper.ts) writes them, in a directory
   * maild owns so it can replace them atomically.
   */
  tlsDir: string;
  tlsCert: string;
  tlsKey: string;
  /** the ACME account key on-box renewal signs with (same account as the Pulumi side: CAA pins it) */
  acmeAccountKey: string;
  /** an extra CA the on-box renewal trusts for the ACME directory (test CAs) */
  acmeExtraCa: string;
  dkimDir: string;
  /** where maild runs from when there is no systemd (tests): pid file and log */
  runDir: string;
  /** the bundled backup job (server-bootstrap/backup/main.ts) */
  backupJs: string;
  /** the backup job's settings; its secrets sit in the same directory (backup/settings.ts) */
  backupSettings: string;
  /** restic's cache (systemd's CacheDirectory= of the backup units) */
  backupCacheDir: string;
  /** the backup units: the run and its timer, the integrity check and its timer */
  backupServiceFile: string;
  backupTimerFile: string;
  backupCheckServiceFile: string;
  backupCheckTimerFile: string;
  /** rspamd's $LOCAL_CONFDIR: our local.d/ and override.d/ files (server-bootstrap/spam/rspamd-conf.ts) */
  rspamdConfDir: string;
  /** the controller's UNIX socket the learner uses (in the unit's RuntimeDirectory, /run/rspamd) */
  rspamdLearnSocket: string;
  /** our Redis configuration (includes Debian's) and the redis-server drop-in that runs it */
  redisConf: string;
  redisDropIn: string;
  /** Debian's Redis configuration, which ours includes */
  redisDebianConf: string;
  /** Redis's data on the volume: what the filter learned survives a rebuild */
  redisDataDir: string;
  /** our unbound settings, in the directory Debian's unbound.conf includes */
  unboundConf: string;
  /** the IMAPSieve scripts (learn-spam.sieve, learn-ham.sieve) and the learner they pipe to */
  sieveDir: string;
  learner: string;
}

function validatePath(key: string, value: string): string {
  // Paths end up inside shell scripts, unit files and Dovecot's configuration: keep them plain.
  if (!/^\/[A-Za-z0-9._/+-]*$/.test(value)) {
    throw new Error(`${key}: ${JSON.stringify(value)} must be an absolute path of letters, digits and ._/+-`);
  }
  return value;
}

export function boxLayout(opts: BoxLayoutOptions = {}): BoxLayout {
  const root = validatePath("root", opts.root ?? "/");
  const dataDir = validatePath("dataDir", opts.dataDir ?? DEFAULT_DATA_DIR);
  const user = opts.user ?? MAILD_USER;
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(user)) throw new Error(`user: ${JSON.stringify(user)} is not a valid account name`);
  const mailUser = opts.mailUser ?? MAIL_USER;
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(mailUser)) throw new Error(`mailUser: ${JSON.stringify(mailUser)} is not a valid account name`);
  if (mailUser === user)
    throw new Error(`mailUser: ${JSON.stringify(mailUser)} must differ from user: Dovecot's mail processes must not be maild`);
  const sys = (p: string) => path.posix.join(root, p);
  return {
    root,
    dataDir,
    user,
    uid: opts.uid ?? MAILD_UID,
    gid: opts.gid ?? MAILD_GID,
    mailUser,
    mailUid: opts.mailUid ?? MAIL_UID,
    mailGid: opts.mailGid ?? MAIL_GID,
    node: sys("/usr/local/bin/node"),
    nodePrefix: sys("/usr/local"),
    daemonJs: sys("/usr/local/lib/maild/maild.js"),
    configJson: sys("/etc/maild/config.json"),
    unitFile: sys("/etc/systemd/system/maild.service"),
    unitName: "maild.service",
    tlsReloadPathFile: sys(`/etc/systemd/system/${TLS_RELOAD_PATH_UNIT}`),
    tlsReloadServiceFile: sys(`/etc/systemd/system/${TLS_RELOAD_SERVICE_UNIT}`),
    dovecotConf: sys("/etc/dovecot/dovecot.conf"),
    dovecotPasswd: sys("/etc/dovecot/maild-users"),
    dovecotAuthPolicy: sys("/etc/dovecot/maild-auth-policy.conf"),
    dovecotDropIn: sys("/etc/systemd/system/dovecot.service.d/50-mailstack.conf"),
    metadataGuardRules: sys("/etc/mailstack/metadata-guard.nft"),
    metadataGuardUnitFile: sys(`/etc/systemd/system/${METADATA_GUARD_UNIT}`),
    tlsDir: path.posix.join(dataDir, "tls"),
    tlsCert: path.posix.join(dataDir, "tls", CERT_FILE),
    tlsKey: path.posix.join(dataDir, "tls", KEY_FILE),
    acmeAccountKey: sys("/etc/maild/acme-account-key.pem"),
    acmeExtraCa: sys("/etc/maild/acme-extra-ca.pem"),
    dkimDir: path.posix.join(dataDir, "dkim"),
    runDir: sys("/run/maild"),
    backupJs: sys("/usr/local/lib/mailstack/backup.js"),
    backupSettings: sys("/etc/mailstack/backup/settings.json"),
    backupCacheDir: sys(`/var/cache/${BACKUP_CACHE_NAME}`),
    backupServiceFile: sys(`/etc/systemd/system/${BACKUP_UNITS.service}`),
    backupTimerFile: sys(`/etc/systemd/system/${BACKUP_UNITS.timer}`),
    backupCheckServiceFile: sys(`/etc/systemd/system/${BACKUP_UNITS.checkService}`),
    backupCheckTimerFile: sys(`/etc/systemd/system/${BACKUP_UNITS.checkTimer}`),
    rspamdConfDir: sys("/etc/rspamd"),
    rspamdLearnSocket: sys("/run/rspamd/learn.sock"),
    redisConf: sys("/etc/mailstack/redis.conf"),
    redisDropIn: sys("/etc/systemd/system/redis-server.service.d/50-mailstack.conf"),
    redisDebianConf: sys("/etc/redis/redis.conf"),
    redisDataDir: path.posix.join(dataDir, REDIS_DIR),
    unboundConf: sys("/etc/unbound/unbound.conf.d/50-mailstack.conf"),
    sieveDir: sys("/etc/dovecot/sieve"),
    learner: sys("/usr/local/lib/mailstack/rspamd-learn"),
  };
}

/** Where a DKIM private key lives on the box. */
export function dkimKeyPath(layout: BoxLayout, domain: string, selector: string): string {
  return path.posix.join(layout.dkimDir, domain, `${selector}.pem`);
}
