// Runs on the deployer's machine before any remote step (the SshReachable resource's provider,
// in the engine's provider process): dials the new server's SSH every ~2 s until it answers
// with the pinned host key and accepts the deployer key, within a bound. @pulumi/command's own
// dialing neither pauses between dials (pulumi-command#1238) nor tells a wrong host key from a
// server still booting, so both failures would end in a generic timeout.
import { Client, type ConnectConfig } from "ssh2";
import {
  hostKeyAlgorithms,
  hostKeyMismatchMessage,
  hostPort,
  noPinnedKeyTypeMessage,
  sha256Fingerprint,
  type PinnedHostKey,
} from "./host-key-pin";

export interface WaitForSshOptions {
  host: string;
  port: number;
  user: string;
  /** unencrypted, in a form ssh2 reads (deployerKeyForSsh2) */
  privateKey: string;
  hostKey: PinnedHostKey;
  timeoutSeconds: number;
  /** pause after a failed dial; default 2000 */
  retryDelayMs?: number;
  /** bound on one dial (TCP connect, handshake, authentication); default 10000 */
  dialTimeoutMs?: number;
  /** told every ~30 s while waiting */
  onProgress?: (message: string) => void;
}

export type WaitForSshOutcome = { ok: true; message: string } | { ok: false; reason: "host-key" | "timeout"; message: string };

type Dial =
  | { kind: "ready" }
  | { kind: "mismatch"; presented: Buffer }
  | { kind: "no-key-of-pinned-type" }
  | { kind: "auth"; error: string }
  | { kind: "unreachable"; error: string };

function dialOnce(o: WaitForSshOptions, timeoutMs: number): Promise<Dial> {
  return new Promise((resolve) => {
    const conn = new Client();
    let presented: Buffer | undefined;
    let settled = false;
    const settle = (d: Dial) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      if (d.kind === "ready") conn.end();
      else conn.destroy();
      resolve(d);
    };
    // ssh2's readyTimeout should end every dial; this guards against a dial that never reports.
    const guard = setTimeout(
      () => settle({ kind: "unreachable", error: `no answer within ${Math.round(timeoutMs / 1000)} s` }),
      timeoutMs + 2000,
    );
    const config: ConnectConfig = {
      host: o.host,
      port: o.port,
      username: o.user,
      privateKey: o.privateKey,
      readyTimeout: timeoutMs,
      // Offer only the pinned key's algorithms, so the server answers with its key of that type.
      algorithms: { serverHostKey: hostKeyAlgorithms(o.hostKey) as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] },
      hostVerifier: (key: Buffer) => {
        if (key.equals(o.hostKey.blob)) return true;
        presented = Buffer.from(key);
        return false;
      },
    };
    conn.once("ready", () => settle({ kind: "ready" }));
    conn.on("error", (err: Error & { level?: string; code?: string }) => {
      if (presented) settle({ kind: "mismatch", presented });
      else if (/no matching host key format/i.test(err.message)) settle({ kind: "no-key-of-pinned-type" });
      else if (err.level === "client-authentication") settle({ kind: "auth", error: `${o.user} refused: ${err.message}` });
      else settle({ kind: "unreachable", error: err.message });
    });
    conn.once("close", () =>
      settle(
        presented ? { kind: "mismatch", presented } : { kind: "unreachable", error: "connection closed before the SSH handshake finished" },
      ),
    );
    try {
      conn.connect(config);
    } catch (err) {
      settle({ kind: "unreachable", error: (err as Error).message });
    }
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitForSsh(o: WaitForSshOptions): Promise<WaitForSshOutcome> {
  const retryDelayMs = o.retryDelayMs ?? 2000;
  const dialTimeoutMs = o.dialTimeoutMs ?? 10_000;
  const address = hostPort(o.host, o.port);
  const start = Date.now();
  const deadline = start + o.timeoutSeconds * 1000;
  let nextProgress = start + 30_000;
  let last: Dial | undefined;
  for (;;) {
    const d = await dialOnce(o, Math.max(500, Math.min(dialTimeoutMs, deadline - Date.now())));
    const elapsed = Math.round((Date.now() - start) / 1000);
    if (d.kind === "ready") {
      return {
        ok: true,
        message: `SSH at ${address} presents the pinned ${o.hostKey.type} host key ${sha256Fingerprint(o.hostKey.blob)}; logged in as ${o.user} after ${elapsed} s`,
      };
    }
    if (d.kind === "mismatch") return { ok: false, reason: "host-key", message: hostKeyMismatchMessage(address, d.presented, o.hostKey) };
    if (d.kind === "no-key-of-pinned-type") return { ok: false, reason: "host-key", message: noPinnedKeyTypeMessage(address, o.hostKey) };
    last = d;
    if (Date.now() >= nextProgress) {
      o.onProgress?.(`still waiting for SSH at ${address} (${elapsed} s of ${o.timeoutSeconds} s; last error: ${d.error})`);
      nextProgress += 30_000;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await sleep(Math.min(retryDelayMs, remaining));
    if (Date.now() >= deadline) break;
  }
  const message =
    last?.kind === "auth"
      ? `SSH at ${address} presents the pinned host key but did not accept the deployer key within ${o.timeoutSeconds} s (last error: ${last.error})`
      : `no SSH answer from ${address} within ${o.timeoutSeconds} s (last error: ${last?.error ?? "none"})`;
  return { ok: false, reason: "timeout", message };
}
