// Dovecot's passwd-file (https://doc.dovecot.org/2.3/configuration_manual/authentication/passwd_file/):
//   user:password:uid:gid:(gecos):home:(shell):extra_fields
// Users log in with their full address; the password field carries the same argon2id PHC string
// the daemon holds, behind Dovecot's scheme prefix `{ARGON2ID}` (libsodium verifies PHC strings
// as they are; checked against Debian 12's dovecot 2.3.19 with `doveadm pw -t`).

export interface PasswdFileUser {
  /** local@domain, the IMAP login name */
  address: string;
  /** argon2id PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash */
  passwordHash: string;
  /** the mailbox's quota in bytes (the same figure maild's configuration carries); 0 or absent: none */
  quotaBytes?: number;
}

export interface PasswdFileOptions {
  /** the data directory holding mail/<domain>/<local>/Maildir */
  dataDir: string;
  /** numeric uid/gid Dovecot's mail processes run as (vmail, the mail group's account) */
  uid: number;
  gid: number;
}

// RFC 5321 4.1.2 Dot-string local part (atext); quoted local parts are not supported for logins.
const localPart = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const domainName = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
// PHC string format with base64 (no padding) salt and hash; never a `:` or whitespace.
const argon2idPhc = /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

export class PasswdFileError extends Error {}

/** The passwd-file line for one user; mail lives under dataDir/mail/<domain>/<local>. */
function line(user: PasswdFileUser, index: number, opts: PasswdFileOptions): string {
  const address = user.address.toLowerCase();
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (at <= 0 || !localPart.test(local) || !domainName.test(domain)) {
    throw new PasswdFileError(
      `users[${index}].address: ${JSON.stringify(user.address)} is not local@domain (dot-atom local part, DNS domain)`,
    );
  }
  if (!argon2idPhc.test(user.passwordHash)) {
    throw new PasswdFileError(`users[${index}].passwordHash: not an argon2id PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash)`);
  }
  const quota = user.quotaBytes ?? 0;
  if (!Number.isSafeInteger(quota) || quota < 0) {
    throw new PasswdFileError(`users[${index}].quotaBytes: ${quota} must be a whole number of bytes, 0 for none`);
  }
  const home = `${opts.dataDir}/mail/${domain}/${local}`;
  // Dovecot's quota rule in bytes (quota-util.c quota_rule_parse_limits: `bytes=`; `storage=` is KiB)
  const extra = quota > 0 ? `userdb_quota_rule=*:bytes=${quota}` : "";
  return `${address}:{ARGON2ID}${user.passwordHash}:${opts.uid}:${opts.gid}::${home}::${extra}`;
}

export function passwdFile(users: PasswdFileUser[], opts: PasswdFileOptions): string {
  if (!/^\/[A-Za-z0-9._/+-]*$/.test(opts.dataDir)) {
    throw new PasswdFileError(`dataDir: ${JSON.stringify(opts.dataDir)} must be an absolute path of letters, digits and ._/+-`);
  }
  for (const key of ["uid", "gid"] as const) {
    if (!Number.isInteger(opts[key]) || opts[key] <= 0) {
      throw new PasswdFileError(`${key}: ${opts[key]} must be a positive integer (mail is never owned by root)`);
    }
  }
  const seen = new Map<string, number>();
  const lines = users.map((u, i) => {
    const key = u.address.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      throw new PasswdFileError(`users[${i}].address: ${JSON.stringify(u.address)} repeats users[${first}].address`);
    }
    seen.set(key, i);
    return line(u, i, opts);
  });
  return lines.map((l) => l + "\n").join("");
}
