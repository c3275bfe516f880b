// The `.ssh/authorized_keys` of the Storage Box sub-account that holds the restic repository.
//
// Two keys, two powers:
// - the box's key runs nothing but `rclone serve restic --stdio --append-only <path>` (OpenSSH's
//   `command=` key option, with `restrict`: no forwarding, no pty): the box can add snapshots and
//   read them back, never delete or overwrite a file (rclone cmd/serve/restic/restic.go: in
//   append-only mode DELETE is refused but for locks/, and POST to an existing file is refused), and
//   it gets no SFTP session to reach the files any other way. Hetzner serves rclone on the Storage
//   Box's port 23 (third-party reports: git.sr.ht/~fluix/fluix.one commit 32ac46e0,
//   forum.restic.net/t/5943; not documented by Hetzner);
// - the admin key (private half only in the Pulumi state, never on the box) has SFTP, for
//   `mailstack backup prune` and for reading the repository from the operator's machine.
// Hetzner wants OpenSSH-format keys on port 23 and a newline at the end of the file
// (docs.hetzner.com/robot/storage-box/backup-space-ssh-keys).

const PUBLIC_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+=*$/;
const REPOSITORY_PATH = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

export interface StorageBoxKeys {
  /** `ssh-ed25519 AAAA...` of the mail server's backup key */
  boxPublicKey: string;
  /** `ssh-ed25519 AAAA...` of the admin key */
  adminPublicKey: string;
  /** the repository, relative to the sub-account's directory */
  repositoryPath: string;
}

function keyOf(text: string, what: string): string {
  const key = text.trim().split(/\s+/).slice(0, 2).join(" ");
  if (!PUBLIC_KEY.test(key)) throw new Error(`${what}: ${JSON.stringify(text.slice(0, 40))} is not an OpenSSH public key`);
  return key;
}

/** The file's content: the box's key confined to an append-only restic server, the admin key with SFTP. */
export function storageBoxAuthorizedKeys(keys: StorageBoxKeys): string {
  if (!REPOSITORY_PATH.test(keys.repositoryPath) || keys.repositoryPath.includes("..")) {
    throw new Error(`repositoryPath: ${JSON.stringify(keys.repositoryPath)} must be a relative path of letters, digits and _./-`);
  }
  return [
    "# Written by mailstack (components/backup/authorized-keys.ts); the next pulumi up writes it again.",
    `restrict,command="rclone serve restic --stdio --append-only ${keys.repositoryPath}" ${keyOf(keys.boxPublicKey, "boxPublicKey")} mailstack-box`,
    `restrict ${keyOf(keys.adminPublicKey, "adminPublicKey")} mailstack-admin`,
    "",
  ].join("\n");
}
