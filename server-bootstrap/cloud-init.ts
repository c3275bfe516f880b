// The cloud-init user data for the mail host. Hetzner replaces the server whenever userData
// changes, so this stays minimal and depends only on values that are stable for the life of
// the deployment (the SSH host key); everything that evolves is pushed later over SSH.

export interface CloudInitArgs {
  /** OpenSSH-format Ed25519 host private key (a secret; only cloud-init on the box reads it). */
  hostKeyPrivateOpenssh: string;
  /** `ssh-ed25519 AAAA...` */
  hostKeyPublicOpenssh: string;
}

/** Quote a string as a YAML block scalar line-by-line, so keys survive verbatim. */
function blockScalar(text: string, indent: string): string {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => indent + line)
    .join("\n");
}

export function renderCloudInit(args: CloudInitArgs): string {
  return [
    "#cloud-config",
    // Pin the host key we generated so the deployer can verify it (no trust on first use).
    "ssh_deletekeys: true",
    "ssh_genkeytypes: []",
    "ssh_keys:",
    "  ed25519_private: |",
    blockScalar(args.hostKeyPrivateOpenssh, "    "),
    `  ed25519_public: ${args.hostKeyPublicOpenssh.trim()}`,
    "ssh_pwauth: false",
    "disable_root: false",
    "",
  ].join("\n");
}
