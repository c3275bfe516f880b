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
import { DEFAULT_STORAGE, type MaildConfigFile } from "../maild/config";

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
  /** Dovecot listeners; default all addresses, 143 and 993 */
  dovecot?: { listen?: string[]; ports?: { imap: number; imaps: number } };
  /** mailbox quota default and free-space reserve; absent keys take maild's defaults */
  storage?: { quotaBytes?: number; reserveBytes?: number };
  /** absent: no SRS, and Dovecot does not consult maild's login throttle */
  secrets?: DeploySecrets;
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
