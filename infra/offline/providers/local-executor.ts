// The local half of the real CommandExecutor: local.Command's process as pulumi-command v1.2.1
// starts it (provider/pkg/provider/local/commandOutputs.go run): the interpreter (default
// `/bin/sh -c`) with the command as its last argument, in `dir` (default: the working directory),
// with the process's environment plus the resource's, stdin from the input or /dev/null, and a
// non-zero exit failing with `exit status N: running "<cmd>":\n<output>`.
import { spawn } from "node:child_process";
import type { CommandOutput, LocalRun } from "./command-executor";

export function runLocalCommand(run: LocalRun, log: (message: string) => void): Promise<CommandOutput> {
  const argv = [...(run.interpreter && run.interpreter.length > 0 ? run.interpreter : ["/bin/sh", "-c"]), run.command];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: run.dir ?? process.cwd(),
      env: { ...process.env, ...run.environment },
      stdio: [run.stdin !== undefined && run.stdin !== "" ? "pipe" : "ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let both = "";
    const lines = (text: string) => {
      for (const line of text.split("\n")) if (line !== "") log(line);
    };
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      both += d;
      if (run.logging === "stdout" || run.logging === "stdoutAndStderr") lines(d);
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      both += d;
      if (run.logging === "stderr" || run.logging === "stdoutAndStderr") lines(d);
    });
    child.on("error", (err: Error & { code?: string; path?: string }) => {
      // os/exec: a missing program is `fork/exec <path>: no such file or directory`.
      reject(new Error(err.code === "ENOENT" ? `fork/exec ${argv[0]}: no such file or directory` : err.message));
    });
    child.on("close", (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      // os/exec ExitError: "exit status N" or "signal: <name>".
      const why = signal ? `signal: ${signal}` : `exit status ${code}`;
      reject(new Error(`${why}: running ${JSON.stringify(run.command)}:\n${both}`));
    });
    if (child.stdin) child.stdin.end(run.stdin);
  });
}
