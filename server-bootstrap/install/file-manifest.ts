// The files a deployment puts on the box (configuration, keys, unit), packed into one text file
// that the install script reads line by line with nothing but bash and base64:
//
//   <kind> <mode> <owner>:<group> <effect> <path> <base64 content>
//
// kind:   F = plain file; C = TLS certificate, replaced only by one issued later (a certificate
//         renewed on the box is never overwritten by an older one from a deploy)
// effect: what must happen when the file changes: the install script restarts or reloads only that.
// The manifest carries private keys and password hashes: it is a secret end to end.

export type FileKind = "F" | "C";
/**
 * `tls`: maild and Dovecot both reload (both serve the certificate). `unit`: maild's own unit.
 * `tls-watch`: the units that reload Dovecot after an on-box renewal (daemon-reload, restart them).
 * `dovecot-unit`: Dovecot's drop-in (daemon-reload, restart Dovecot: cgroup IP filters are set at start).
 * `metadata-guard`: the nftables fence around the metadata service and its unit (load it again).
 * `backup-units`: the backup job's services and timers (daemon-reload, enable and restart the timers).
 * `rspamd-restart`, `redis-restart`, `unbound-restart`: restart that service. `redis-unit`: Redis's
 * drop-in (daemon-reload, restart Redis). `sieve`: an IMAPSieve script (compile it with sievec).
 */
export type FileEffect =
  | "maild-restart"
  | "maild-reload"
  | "tls"
  | "unit"
  | "tls-watch"
  | "dovecot-reload"
  | "dovecot-unit"
  | "metadata-guard"
  | "backup-units"
  | "rspamd-restart"
  | "redis-restart"
  | "redis-unit"
  | "unbound-restart"
  | "sieve"
  | "none";

export interface ManifestFile {
  path: string;
  content: string;
  /** octal, e.g. "0640" */
  mode: string;
  /** `uid:gid` numbers, or `user:group` names for accounts a package creates (e.g. `root:dovecot`) */
  owner: string;
  effect: FileEffect;
  kind?: FileKind;
}

const EFFECTS: FileEffect[] = [
  "maild-restart",
  "maild-reload",
  "tls",
  "unit",
  "tls-watch",
  "dovecot-reload",
  "dovecot-unit",
  "metadata-guard",
  "backup-units",
  "rspamd-restart",
  "redis-restart",
  "redis-unit",
  "unbound-restart",
  "sieve",
  "none",
];

export function renderManifest(files: ManifestFile[]): string {
  const seen = new Set<string>();
  return files
    .map((f, i) => {
      const at = `files[${i}]`;
      if (!/^\/[A-Za-z0-9._/+-]*$/.test(f.path) || f.path.includes("/../") || f.path.endsWith("/")) {
        throw new Error(`${at}.path: ${JSON.stringify(f.path)} must be an absolute file path of letters, digits and ._/+-`);
      }
      if (seen.has(f.path)) throw new Error(`${at}.path: ${f.path} is listed twice`);
      seen.add(f.path);
      if (!/^0[0-7]{3}$/.test(f.mode)) throw new Error(`${at}.mode: ${JSON.stringify(f.mode)} is not an octal mode like 0640`);
      if (!/^([0-9]+:[0-9]+|[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*)$/.test(f.owner)) {
        throw new Error(`${at}.owner: ${JSON.stringify(f.owner)} is not uid:gid (numbers) or user:group (names)`);
      }
      if (!EFFECTS.includes(f.effect)) throw new Error(`${at}.effect: ${JSON.stringify(f.effect)} is not one of ${EFFECTS.join("|")}`);
      const kind = f.kind ?? "F";
      return `${kind} ${f.mode} ${f.owner} ${f.effect} ${f.path} ${Buffer.from(f.content, "utf8").toString("base64")}\n`;
    })
    .join("");
}

/** The inverse of renderManifest (tests and diagnostics). */
export function parseManifest(text: string): ManifestFile[] {
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((line, i) => {
      const parts = line.split(" ");
      if (parts.length !== 6) throw new Error(`manifest line ${i + 1}: expected 6 fields, got ${parts.length}`);
      const [kind, mode, owner, effect, path, b64] = parts;
      return {
        kind: kind as FileKind,
        mode,
        owner,
        effect: effect as FileEffect,
        path,
        content: Buffer.from(b64, "base64").toString("utf8"),
      };
    });
}
