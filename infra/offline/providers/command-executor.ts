// What the @pulumi/command stand-in (command.ts) asks of the outside world: run a command over SSH,
// copy a file over SFTP, run a local command. The real executor (ssh-executor.ts,
// local-executor.ts) does it the way pulumi-command v1.2.1 does; the recording executor below only
// records, for tests of the engine's behaviour.

/** remote.Connection after the SDK's defaults (user root, port 22, dialErrorLimit 10, perDialTimeout 15). */
export interface SshConnection {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** OpenSSH or PEM (PKCS#1, SEC1, PKCS#8) private key */
  privateKey?: string;
  privateKeyPassword?: string;
  /** an ssh-agent socket; default: $SSH_AUTH_SOCK when set (connection.go SSHConfig) */
  agentSocketPath?: string;
  /** `<type> <base64> [comment]`: when given, any other host key is refused; when absent, none is checked */
  hostKey?: string;
  /** dial attempts allowed to fail before giving up; -1: unlimited */
  dialErrorLimit: number;
  /** seconds per dial; 0: no bound */
  perDialTimeout: number;
  /** a bastion to dial through */
  proxy?: SshConnection;
}

export type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";

export interface RemoteRun {
  connection: SshConnection;
  command: string;
  /** the resource's `environment`: a variable the server refuses fails the command (session.Setenv error) */
  environment: Record<string, string>;
  /** PULUMI_COMMAND_STDOUT/STDERR: set optimistically; a refusal is only a warning */
  optionalEnvironment: Record<string, string>;
  /** written to the command's stdin, then EOF; empty or absent: EOF at once */
  stdin?: string;
  logging: Logging;
}

export interface LocalRun {
  command: string;
  /** default ["/bin/sh", "-c"] */
  interpreter?: string[];
  /** default: the working directory of the process */
  dir?: string;
  /** added to the process's own environment, PULUMI_COMMAND_STDOUT/STDERR included */
  environment: Record<string, string>;
  stdin?: string;
  logging: Logging;
}

export type CopySource = { kind: "text"; text: string } | { kind: "file"; path: string } | { kind: "directory"; path: string };

export interface RemoteCopy {
  connection: SshConnection;
  source: CopySource;
  remotePath: string;
}

/** What the command printed, as printed (the provider trims one trailing newline). */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

export interface CommandExecutor {
  /** Dials (with the connection's retries), runs, and fails with pulumi-command's text when the command fails. */
  runRemote(run: RemoteRun, log: (message: string) => void): Promise<CommandOutput>;
  copyToRemote(copy: RemoteCopy, log: (message: string) => void): Promise<void>;
  runLocal(run: LocalRun, log: (message: string) => void): Promise<CommandOutput>;
}

export type RecordedCall = ({ kind: "remote" } & RemoteRun) | ({ kind: "copy" } & RemoteCopy) | ({ kind: "local" } & LocalRun);

/**
 * Records every call and answers from `respond` (default: empty output). A response that is an
 * Error makes the call fail with it.
 */
export class RecordingExecutor implements CommandExecutor {
  readonly calls: RecordedCall[] = [];

  constructor(private readonly respond: (call: RecordedCall) => CommandOutput | Error | void = () => undefined) {}

  private answer(call: RecordedCall): CommandOutput {
    this.calls.push(call);
    const response = this.respond(call);
    if (response instanceof Error) throw response;
    return response ?? { stdout: "", stderr: "" };
  }

  async runRemote(run: RemoteRun): Promise<CommandOutput> {
    return this.answer({ kind: "remote", ...run });
  }

  async copyToRemote(copy: RemoteCopy): Promise<void> {
    this.answer({ kind: "copy", ...copy });
  }

  async runLocal(run: LocalRun): Promise<CommandOutput> {
    return this.answer({ kind: "local", ...run });
  }
}
