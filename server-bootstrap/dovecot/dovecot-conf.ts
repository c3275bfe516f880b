// A complete, standalone dovecot.conf (Dovecot 2.3, Debian 12) for the box: IMAP only, over
// implicit TLS (993, RFC 8314 3.3) and 143 where STARTTLS must come before any login
// (RFC 3501 6.2.3 LOGINDISABLED; Dovecot: ssl=required + disable_plaintext_auth).
// Mail is the daemon's Maildir tree, read and written by Dovecot's mail processes under an account
// of their own (vmail) whose group owns the tree (server-bootstrap/maild/maildir.ts); users, their
// argon2id hashes and quotas come from passwd-file.ts. Quotas are Maildir++ (`maildirsize`), the
// file maild's deliveries count in too (maild/mailbox-quota.ts); logins are throttled by maild
// through the auth policy protocol (maild/auth-policy-server.ts).
import { MAIL_PORTS } from "../../components/shared/mail-ports";
import { dovecotLearning, type DovecotLearningInput } from "../spam/learn";

/**
 * The Dovecot major version this configuration is written for. Dovecot 2.4 refuses it
 * (`dovecot_config_version` must come first, `%{user}` variables, named passdb/userdb:
 * doc.dovecot.org/2.4.1/installation/upgrade/2.3-to-2.4.html); the stack config admits only images
 * that ship this version (components/config/hetzner-offer.ts).
 */
export const DOVECOT_CONFIG_VERSION = "2.3";

export interface DovecotConfInput {
  /** the daemon's data directory; mail is at <dataDir>/mail/<domain>/<local>/Maildir */
  dataDir: string;
  /** the passwd-file written from passwdFile() */
  passwdFilePath: string;
  tls: { certPath: string; keyPath: string };
  /** numeric uid/gid Dovecot's mail processes run as (vmail: not maild, which holds the keys) */
  uid: number;
  gid: number;
  /** addresses to listen on; default all IPv4 and IPv6 */
  listen?: string[];
  /** default 143 and 993 */
  ports?: { imap: number; imaps: number };
  /** runtime directory (sockets); default /run/dovecot */
  baseDir?: string;
  /** state directory; default /var/lib/dovecot */
  stateDir?: string;
  /** where logs go; default /dev/stderr (journald on the box) */
  logPath?: string;
  /** DH parameters for non-ECDHE suites; default Debian's /usr/share/dovecot/dh.pem */
  dhPath?: string;
  /** spam learning: moves into and out of Junk teach rspamd (IMAPSieve, server-bootstrap/spam/learn.ts) */
  learning?: DovecotLearningInput;
  /**
   * maild's auth policy endpoint (http://127.0.0.1:<port>/) and the file with its API key and the
   * hash nonce (dovecotAuthPolicySecrets), kept out of this world-readable file; absent: none
   */
  authPolicy?: { url: string; secretsPath: string };
}

export class DovecotConfError extends Error {}

const safePath = /^\/[A-Za-z0-9._/+-]*$/;
const listenAddress = /^(\*|::|[0-9.]+|[0-9a-fA-F:]+)$/;

function checkPath(key: string, value: string): string {
  if (!safePath.test(value)) {
    throw new DovecotConfError(`${key}: ${JSON.stringify(value)} must be an absolute path of letters, digits and ._/+-`);
  }
  return value;
}

function checkId(key: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new DovecotConfError(`${key}: ${value} must be a positive integer (mail is never owned by root)`);
  }
  return value;
}

function checkAccount(key: string, value: string): string {
  // Dovecot looks listener owners up by name (a uid is refused: "User doesn't exist").
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(value)) throw new DovecotConfError(`${key}: ${JSON.stringify(value)} is not an account name`);
  return value;
}

function checkPort(key: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new DovecotConfError(`${key}: ${value} must be a port number 1..65535`);
  }
  return value;
}

export function dovecotConf(input: DovecotConfInput): string {
  const dataDir = checkPath("dataDir", input.dataDir);
  const passwd = checkPath("passwdFilePath", input.passwdFilePath);
  const cert = checkPath("tls.certPath", input.tls.certPath);
  const key = checkPath("tls.keyPath", input.tls.keyPath);
  const baseDir = checkPath("baseDir", input.baseDir ?? "/run/dovecot");
  const stateDir = checkPath("stateDir", input.stateDir ?? "/var/lib/dovecot");
  const logPath = checkPath("logPath", input.logPath ?? "/dev/stderr");
  const dh = checkPath("dhPath", input.dhPath ?? "/usr/share/dovecot/dh.pem");
  const uid = checkId("uid", input.uid);
  const gid = checkId("gid", input.gid);
  const listen = input.listen ?? ["*", "::"];
  listen.forEach((a, i) => {
    if (!listenAddress.test(a)) throw new DovecotConfError(`listen[${i}]: ${JSON.stringify(a)} is not *, :: or an IP address`);
  });
  const imapPort = checkPort("ports.imap", input.ports?.imap ?? MAIL_PORTS.imap.port);
  const policy = input.authPolicy === undefined ? "" : authPolicySettings(input.authPolicy);
  const imapsPort = checkPort("ports.imaps", input.ports?.imaps ?? MAIL_PORTS.imaps.port);
  const learning = input.learning
    ? {
        ...input.learning,
        sieveDir: checkPath("learning.sieveDir", input.learning.sieveDir),
        learner: checkPath("learning.learner", input.learning.learner),
        rspamdUser: checkAccount("learning.rspamdUser", input.learning.rspamdUser),
        mailUser: checkAccount("learning.mailUser", input.learning.mailUser),
      }
    : undefined;

  return `# Generated by mailstack (server-bootstrap/dovecot/dovecot-conf.ts). Do not edit on the box:
# the next deploy overwrites it.
protocols = imap
listen = ${listen.join(", ")}
base_dir = ${baseDir}
state_dir = ${stateDir}
log_path = ${logPath}
info_log_path = ${logPath}

# TLS before any password: 993 is implicit TLS, 143 must STARTTLS first.
ssl = required
disable_plaintext_auth = yes
ssl_cert = <${cert}
ssl_key = <${key}
ssl_dh = <${dh}
ssl_min_protocol = TLSv1.2
ssl_prefer_server_ciphers = yes

# Logins are full addresses, matched case-insensitively.
auth_username_format = %Lu
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID ${passwd}
}
userdb {
  driver = passwd-file
  args = ${passwd}
  default_fields = uid=${uid} gid=${gid} home=${dataDir}/mail/%d/%n
}

# maild delivers into this tree as a member of the mail group; Dovecot's mail processes read and
# write it as that group's own account, which reaches none of maild's keys or its queue.
mail_location = maildir:${dataDir}/mail/%d/%n/Maildir
mail_uid = ${uid}
mail_gid = ${gid}
first_valid_uid = ${uid}
last_valid_uid = ${uid}
first_valid_gid = ${gid}
last_valid_gid = ${gid}
mail_privileged_group =
mail_access_groups =

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}

${quotaSettings()}${policy}
service imap-login {
  inet_listener imap {
    port = ${imapPort}
  }
  inet_listener imaps {
    port = ${imapsPort}
    ssl = yes
  }
}
${learning ? `\n${dovecotLearning(learning)}` : ""}`;
}

/**
 * Maildir++ quota (dovecot/core 2.3.19.1 src/plugins/quota/quota-maildir.c): Dovecot keeps the
 * figure in each Maildir's `maildirsize`, as maild does for its deliveries; each user's limit is
 * the passwd-file's `userdb_quota_rule`, the same number maild's configuration carries. IMAP
 * clients see it through GETQUOTAROOT (RFC 9208, imap_quota).
 */
function quotaSettings(): string {
  return `# Quotas: Maildir++ maildirsize, shared with maild's deliveries; limits per user in the passwd-file.
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
}
`;
}

/**
 * Dovecot asks maild before every password check and reports the outcome after
 * (dovecot/core 2.3.19.1 src/auth/auth-policy.c); maild's answer is the shared login throttle's.
 * Only the login and the client address are sent: the password hash (pwhash) is not needed. If
 * maild does not answer, Dovecot goes on (auth_policy_reject_on_fail = no): IMAP stays usable.
 */
function authPolicySettings(p: { url: string; secretsPath: string }): string {
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]):\d+\/$/.test(p.url)) {
    throw new DovecotConfError(`authPolicy.url: ${JSON.stringify(p.url)} must be http://<loopback address>:<port>/`);
  }
  const secrets = checkPath("authPolicy.secretsPath", p.secretsPath);
  return `
# Logins: maild's login throttle (shared with SMTP AUTH) decides first, and learns the outcome.
auth_policy_server_url = ${p.url}
auth_policy_request_attributes = login=%{requested_username} remote=%{rip} protocol=%s
auth_policy_check_before_auth = yes
auth_policy_check_after_auth = no
auth_policy_report_after_auth = yes
auth_policy_reject_on_fail = no
# auth_policy_server_api_header and auth_policy_hash_nonce: secrets, readable by root and dovecot only
!include ${secrets}
`;
}

/** The included file of authPolicySettings: maild's API key and the nonce Dovecot requires (auth-settings.c). */
export function dovecotAuthPolicySecrets(apiKey: string, nonce: string): string {
  for (const [key, v] of [
    ["apiKey", apiKey],
    ["nonce", nonce],
  ] as const) {
    if (!/^[A-Za-z0-9_-]{16,}$/.test(v)) throw new DovecotConfError(`authPolicy.${key}: must be 16 or more of A-Z a-z 0-9 _ -`);
  }
  return `# Generated by mailstack (server-bootstrap/dovecot/dovecot-conf.ts). Secret: root and dovecot only.
auth_policy_server_api_header = X-API-Key:${apiKey}
auth_policy_hash_nonce = ${nonce}
`;
}
