// An ssh2 client session, as the deployer-side tools hold one: a login that checks the server's
// host key before authenticating (ssh2's `hostVerifier`), and a command run to its end with its
// output collected.
import { Client, type ClientChannel, type ConnectConfig } from "ssh2";

export interface HostKeyCheck {
  /** whether `key`, the host key blob the server presented, is one to log in to */
  accepts(key: Buffer): boolean;
  /** the error for a login refused because the server presented `key` */
  refused(key: Buffer): Error;
}

/**
 * Logs in with `config`, refusing any host key `check` does not accept; resolves with the session
 * and the host key the server presented. A refused key fails with `check.refused`, any other
 * failure with the ssh2 error.
 */
export function connectCheckingHostKey(
  config: Omit<ConnectConfig, "hostVerifier">,
  check: HostKeyCheck,
): Promise<{ conn: Client; hostKey: Buffer }> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let presented: Buffer | undefined;
    let refused: Buffer | undefined;
    conn.once("ready", () => resolve({ conn, hostKey: presented! }));
    conn.once("error", (err) => reject(refused ? check.refused(refused) : err));
    conn.connect({
      ...config,
      hostVerifier: (key: Buffer) => {
        presented = key;
        if (check.accepts(key)) return true;
        refused = key;
        return false;
      },
    });
  });
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` with `stdin` as its standard input, ended after it (an empty one by default), as
 * @pulumi/command's remote.Command does with its `stdin` input (remote/commandOutputs.go run).
 */
export function execCollect(conn: Client, command: string, stdin = ""): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    conn.exec(command, (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(err);
      stream.end(stdin);
      let stdout = "";
      let stderr = "";
      let code: number | null = null;
      stream.on("data", (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      stream.on("exit", (c: number | null) => (code = c));
      stream.on("close", () => resolve({ code, stdout, stderr }));
    });
  });
}
