// A command on a real pseudo-terminal (util-linux `script`), driven as a person would: wait for a
// prompt, type an answer. What the terminal shows (prompts, echoed input) is kept for assertions.
import { spawn, type ChildProcess } from "node:child_process";

export class PtySession {
  private readonly child: ChildProcess;
  /** everything the terminal showed */
  screen = "";
  private seen = 0;
  private readonly exited: Promise<number>;

  constructor(command: string, options: { cwd: string; env: NodeJS.ProcessEnv }) {
    // -q: no banner; -e: exit with the command's status; -c: the command; /dev/null: no typescript file.
    this.child = spawn("script", ["-qec", command, "/dev/null"], { cwd: options.cwd, env: { ...options.env, TERM: "xterm" } });
    this.child.stdout!.on("data", (d: Buffer) => (this.screen += d.toString()));
    this.child.stderr!.on("data", (d: Buffer) => (this.screen += d.toString()));
    this.exited = new Promise((resolve) => this.child.on("close", (code) => resolve(code ?? -1)));
  }

  /** Waits until the terminal shows `pattern` after what was already matched; returns what came before it. */
  async expect(pattern: RegExp | string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.screen.slice(this.seen);
      const m =
        typeof pattern === "string" ? (rest.includes(pattern) ? { index: rest.indexOf(pattern), 0: pattern } : null) : pattern.exec(rest);
      if (m) {
        this.seen += m.index + m[0].length;
        return rest.slice(0, m.index);
      }
      if (Date.now() > deadline) throw new Error(`the terminal did not show ${String(pattern)} within ${timeoutMs} ms; it shows:\n${rest}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Types `text` and Enter (a carriage return, as a terminal's Enter key sends). */
  type(text: string): void {
    this.child.stdin!.write(`${text}\r`);
  }

  /** Sends raw bytes (e.g. Ctrl-C). */
  send(bytes: string): void {
    this.child.stdin!.write(bytes);
  }

  wait(): Promise<number> {
    return this.exited;
  }
}
