// SshReachable's provider (components/ssh-reachable.ts): waits, inside the engine's provider
// process on the deployer's machine, until the server answers SSH with the pinned host key and
// accepts the deployer key (server-bootstrap/install/wait-for-ssh.ts). Loaded by the engine's
// provider host as `mailstack/providers/ssh-reachable`: no interpreter, script or checkout path
// is in the state.
//
// Replaced when the machine (`instance`) or the pinned host key changes, so a rebuilt server is
// waited for again; a new address, port, user or deployer key is an update that waits again.
// Stored: the inputs (the deployer key as a secret, as the program marks it); the outputs carry
// only public facts (fingerprints), never the private key.
import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { utils } from "ssh2";
import { deployerKeyForSsh2 } from "../../server-bootstrap/install/deployer-key";
import { hostPort, parsePinnedHostKey, sha256Fingerprint } from "../../server-bootstrap/install/host-key-pin";
import { waitForSsh } from "../../server-bootstrap/install/wait-for-ssh";
import { Checks, containsUnknown, mayDiffer, plainProperties, type CheckFailure } from "./engine-values";
import { providerLog } from "./provider-log";

export interface SshReachableInputs {
  host: string;
  port: number;
  user: string;
  /** the pinned host key, `ssh-ed25519 AAAA...` */
  hostKey: string;
  /** the deployer's private key (OpenSSH or PEM) */
  privateKey: string;
  /** bound on the wait, whole seconds */
  timeoutSeconds: number;
  /** changes when the machine is replaced (a server id); "" when unknown to the caller */
  instance: string;
  /** pause between dials; default 2000 (tests) */
  retryDelayMs?: number;
}

export interface SshReachableOutputs {
  host: string;
  port: number;
  user: string;
  hostKey: string;
  instance: string;
  /** OpenSSH SHA256 fingerprint of the deployer key's public half (to see a new deployer key) */
  deployerKeyFingerprint: string;
  /** what the wait found, e.g. `SSH at 203.0.113.7:22 presents the pinned ssh-ed25519 host key SHA256:...` */
  message: string;
}

/** What a wait that found SSH answering (as `message` says) records of its inputs. */
export function sshReachableOutputs(
  i: Pick<SshReachableInputs, "host" | "port" | "user" | "hostKey" | "privateKey" | "instance">,
  message: string,
): SshReachableOutputs {
  return {
    host: i.host,
    port: i.port,
    user: i.user,
    hostKey: i.hostKey,
    instance: i.instance,
    deployerKeyFingerprint: deployerKeyFingerprint(i.privateKey),
    message,
  };
}

/** The OpenSSH fingerprint of a private key's public half. */
export function deployerKeyFingerprint(privateKey: string): string {
  const parsed = utils.parseKey(deployerKeyForSsh2(privateKey, "privateKey"));
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error) throw new Error(`privateKey: ${key.message}`);
  return sha256Fingerprint(key.getPublicSSH());
}

export function checkSshReachableInputs(i: Record<string, unknown>): CheckFailure[] {
  const c = new Checks();
  c.known("host", i.host, (v) => {
    if (typeof v !== "string" || v.trim() === "") throw new Error("host: the server's address or name is required");
  });
  c.known("port", i.port, (v) => {
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw new Error(`port: ${String(v)} is not a port 1-65535`);
  });
  c.known("user", i.user, (v) => {
    if (typeof v !== "string" || v.trim() === "") throw new Error("user: the SSH user is required (e.g. root)");
  });
  c.known("hostKey", i.hostKey, (v) => parsePinnedHostKey(String(v), "hostKey"));
  c.known("privateKey", i.privateKey, (v) => deployerKeyFingerprint(String(v)));
  c.known("timeoutSeconds", i.timeoutSeconds, (v) => {
    if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`timeoutSeconds: ${String(v)} is not a whole number of seconds >= 1`);
  });
  c.known("instance", i.instance, (v) => {
    if (typeof v !== "string") throw new Error("instance: must be a string (e.g. the server id)");
  });
  return c.failures;
}

/** Replace keys and in-place changes; an unknown value counts as the change it may be. */
export function sshReachableDiff(olds: SshReachableOutputs, news: Record<string, unknown>): { replaces: string[]; updates: string[] } {
  const replaces = (["instance", "hostKey"] as const).filter((k) => mayDiffer(olds[k], news[k]));
  const updates: string[] = (["host", "port", "user"] as const).filter((k) => mayDiffer(olds[k], news[k]));
  let fingerprint: unknown = news.privateKey;
  if (!containsUnknown(fingerprint)) {
    try {
      fingerprint = deployerKeyFingerprint(String(fingerprint));
    } catch {
      // an unreadable key is a change; check reports why
    }
  }
  if (mayDiffer(olds.deployerKeyFingerprint, fingerprint)) updates.push("privateKey");
  return { replaces, updates };
}

async function wait(raw: Record<string, unknown>): Promise<SshReachableOutputs> {
  const i = plainProperties(raw) as unknown as SshReachableInputs;
  const failures = checkSshReachableInputs(i as unknown as Record<string, unknown>);
  if (failures.length) throw new Error(`ssh-reachable: ${failures.map((f) => f.reason).join("; ")}`);
  const outcome = await waitForSsh({
    host: i.host,
    port: i.port,
    user: i.user,
    privateKey: deployerKeyForSsh2(i.privateKey, "privateKey"),
    hostKey: parsePinnedHostKey(i.hostKey, "hostKey"),
    timeoutSeconds: i.timeoutSeconds,
    retryDelayMs: i.retryDelayMs,
    onProgress: (m) => providerLog("info", `ssh-reachable: ${m}`),
  });
  if (!outcome.ok) throw new Error(`ssh-reachable: ${outcome.message}`);
  return sshReachableOutputs(i, outcome.message);
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
    return { inputs: news, failures: checkSshReachableInputs(plainProperties(news)) };
  },
  async diff(_id: string, olds: SshReachableOutputs, news: Record<string, unknown>) {
    const { replaces, updates } = sshReachableDiff(olds, plainProperties(news));
    return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: false };
  },
  async create(inputs: Record<string, unknown>) {
    const outs = await wait(inputs);
    return { id: `${hostPort(outs.host, outs.port)}/${randomBytes(4).toString("hex")}`, outs };
  },
  async update(_id: string, _olds: SshReachableOutputs, news: Record<string, unknown>) {
    return { outs: await wait(news) };
  },
  async delete() {
    // Waiting leaves nothing behind.
  },
};
