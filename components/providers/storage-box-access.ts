// StorageBoxAccess's provider (components/storage-box-access.ts): from the deployer's machine, inside
// the engine's provider process, it logs in to a Storage Box sub-account with the sub-account's
// password over SFTP and writes the account's `.ssh/authorized_keys`
// (components/backup/authorized-keys.ts). So the keys are set without the Storage Box's `sshKeys`
// input (a change of which replaces the Storage Box and loses its data: terraform-provider-hcloud
// internal/storagebox/resource.go, ssh_keys RequiresReplace), and the password never reaches the
// mail server. Loaded by the engine's provider host as `mailstack/providers/storage-box-access`.
//
// The Storage Box's SSH host key is published nowhere we found: the first login takes the key it is
// shown (and logs its fingerprint), every later login of this resource insists on it, and the box is
// given it to pin.
//
// Stored: the inputs (the password a secret, as the program marks it); the outputs carry the host
// key seen and the SHA-256 of what was written, never the password.
import { createHash, randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { type Client, type SFTPWrapper } from "ssh2";
import { Checks, containsUnknown, mayDiffer, plainProperties, type CheckFailure } from "./engine-values";
import { providerLog } from "./provider-log";
import { sha256Fingerprint } from "../../server-bootstrap/install/host-key-pin";
import { connectCheckingHostKey } from "../shared/ssh-session";

const fingerprint = (line: string) => sha256Fingerprint(Buffer.from(line.split(" ")[1] ?? "", "base64"));

export interface StorageBoxAccessInputs {
  /** the sub-account's SSH host name (`uNNN-subN.your-storagebox.de`) */
  host: string;
  /** 23: Hetzner's SSH service that runs rclone and takes OpenSSH-format keys */
  port: number;
  user: string;
  /** the sub-account's password */
  password: string;
  /** the whole file */
  authorizedKeys: string;
  /** bound on the first login's retries while Hetzner enables SSH, whole seconds; default 300 */
  timeoutSeconds?: number;
  /** pause between attempts; default 5000 (tests) */
  retryDelayMs?: number;
}

export interface StorageBoxAccessOutputs {
  host: string;
  port: number;
  user: string;
  /** the Storage Box's SSH host key, `ssh-ed25519 AAAA...`, as first seen and pinned since */
  hostKey: string;
  /** sha256 (hex) of the authorized_keys written */
  authorizedKeysSha256: string;
}

export function checkStorageBoxAccessInputs(i: Record<string, unknown>): CheckFailure[] {
  const c = new Checks();
  c.known("host", i.host, (v) => {
    if (typeof v !== "string" || !/^[A-Za-z0-9.-]+$|^[0-9a-fA-F:]+$/.test(v))
      throw new Error(`host: ${JSON.stringify(v)} is not a host name`);
  });
  c.known("port", i.port, (v) => {
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw new Error(`port: ${String(v)} is not a port 1-65535`);
  });
  c.known("user", i.user, (v) => {
    if (typeof v !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(v))
      throw new Error(`user: ${JSON.stringify(v)} is not an account name`);
  });
  c.known("password", i.password, (v) => {
    if (typeof v !== "string" || v === "") throw new Error("password: the sub-account's password is required");
  });
  c.known("authorizedKeys", i.authorizedKeys, (v) => {
    if (typeof v !== "string" || !v.endsWith("\n"))
      throw new Error("authorizedKeys: must end with a newline (Hetzner reads the last line only then)");
  });
  return c.failures;
}

/** `type base64` of a raw SSH public key blob (RFC 4253 6.6: the blob starts with its type string). */
export function publicKeyLine(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return `${blob.subarray(4, 4 + len).toString("latin1")} ${blob.toString("base64")}`;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function sftpOf(conn: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => conn.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

/** One login: the host key it saw, and the error if any (a key other than `pinned` is refused). */
async function login(i: StorageBoxAccessInputs, pinned: string | undefined): Promise<{ conn: Client; hostKey: string }> {
  const { conn, hostKey } = await connectCheckingHostKey(
    { host: i.host, port: i.port, username: i.user, password: i.password, tryKeyboard: false, readyTimeout: 30_000 },
    {
      accepts: (key) => pinned === undefined || publicKeyLine(key) === pinned,
      refused: (key) =>
        new HostKeyChanged(
          `${i.host}:${i.port} presents the host key ${fingerprint(publicKeyLine(key))}, not the one first seen (${fingerprint(pinned!)}); ` +
            "if Hetzner really changed it, replace this resource (pulumi up --replace <urn of the storage box access>)",
        ),
    },
  );
  return { conn, hostKey: publicKeyLine(hostKey) };
}

class HostKeyChanged extends Error {}

async function writeKeys(conn: Client, content: string): Promise<void> {
  const sftp = await sftpOf(conn);
  try {
    await new Promise<void>((resolve) => sftp.mkdir(".ssh", { mode: 0o700 }, () => resolve()));
    await new Promise<void>((resolve, reject) =>
      sftp.writeFile(".ssh/authorized_keys", content, { mode: 0o600 }, (err) => (err ? reject(err) : resolve())),
    );
    const back = await new Promise<Buffer>((resolve, reject) =>
      sftp.readFile(".ssh/authorized_keys", (err, b) => (err ? reject(err) : resolve(b))),
    );
    if (back.toString("utf8") !== content) throw new Error(".ssh/authorized_keys reads back other than written");
  } finally {
    sftp.end();
  }
}

async function apply(raw: Record<string, unknown>, pinned: string | undefined): Promise<StorageBoxAccessOutputs> {
  const i = plainProperties(raw) as unknown as StorageBoxAccessInputs;
  const failures = checkStorageBoxAccessInputs(i as unknown as Record<string, unknown>);
  if (failures.length) throw new Error(`storage-box-access: ${failures.map((f) => f.reason).join("; ")}`);
  // A new Storage Box turns SSH on a little after it exists: retry until the bound.
  const deadline = Date.now() + (i.timeoutSeconds ?? 300) * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const { conn, hostKey } = await login(i, pinned);
      try {
        if (pinned === undefined)
          providerLog("info", `storage-box-access: ${i.host}:${i.port} presents ${fingerprint(hostKey)}; pinned from now on`);
        await writeKeys(conn, i.authorizedKeys);
      } finally {
        conn.end();
      }
      return { host: i.host, port: i.port, user: i.user, hostKey, authorizedKeysSha256: sha256Hex(i.authorizedKeys) };
    } catch (err) {
      if (err instanceof HostKeyChanged || Date.now() + (i.retryDelayMs ?? 5000) > deadline) {
        throw new Error(`storage-box-access: cannot write ${i.user}@${i.host}:${i.port} .ssh/authorized_keys: ${(err as Error).message}`);
      }
      if (attempt === 1) providerLog("info", `storage-box-access: ${i.host}:${i.port} not ready (${(err as Error).message}); retrying`);
      await new Promise((r) => setTimeout(r, i.retryDelayMs ?? 5000));
    }
  }
}

/** What changed: any of these rewrites the file (an update); nothing replaces the resource. */
export function storageBoxAccessChanges(olds: StorageBoxAccessOutputs & { password?: string }, news: Record<string, unknown>): string[] {
  const changed: string[] = (["host", "port", "user"] as const).filter((k) => mayDiffer(olds[k], news[k]));
  const content = news.authorizedKeys;
  if (containsUnknown(content) || olds.authorizedKeysSha256 !== sha256Hex(String(content))) changed.push("authorizedKeys");
  if (mayDiffer(olds.password, news.password)) changed.push("password");
  return changed;
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: checkStorageBoxAccessInputs(plainProperties(news)) };
  },
  async diff(_id: string, olds: StorageBoxAccessOutputs, news: Record<string, unknown>) {
    const changed = storageBoxAccessChanges(plainProperties(olds as unknown as Record<string, unknown>) as never, plainProperties(news));
    return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
  },
  async create(inputs: Record<string, unknown>) {
    const outs = await apply(inputs, undefined);
    return { id: `${outs.user}@${outs.host}/${randomBytes(4).toString("hex")}`, outs: { ...plainProperties(inputs), ...outs } };
  },
  async update(_id: string, olds: StorageBoxAccessOutputs, news: Record<string, unknown>) {
    const n = plainProperties(news);
    // The same account keeps its host key; another host is met afresh.
    const pinned = n.host === olds.host && n.port === olds.port ? olds.hostKey : undefined;
    return { outs: { ...n, ...(await apply(news, pinned)) } };
  },
  async delete() {
    // The keys stay: the sub-account is protected, and a backup may still be running. The
    // install step removes the job from the box when the stack no longer has a backup.
  },
};
