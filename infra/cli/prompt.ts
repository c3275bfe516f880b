// Questions for a person at a terminal: a line with echo (the terminal's own line editing), and a
// secret without echo (raw mode, so the terminal shows nothing while it is typed). On input that
// is not a terminal (tests with injected streams) both read plain lines.

/** The person pressed Ctrl-C at a secret prompt (in raw mode the terminal sends no SIGINT). */
export class PromptInterrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

export interface PromptInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?: (raw: boolean) => unknown;
}

export class Prompter {
  private buffer = "";
  private ended = false;
  private waiting: (() => void) | undefined;
  private readonly onData = (chunk: Buffer | string) => {
    this.buffer += chunk.toString();
    this.wake();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };

  constructor(
    private readonly input: PromptInput,
    private readonly write: (text: string) => void,
  ) {
    input.on("data", this.onData);
    input.on("end", this.onEnd);
    input.resume();
  }

  /** A line typed with echo, without its line ending; undefined at end of input. */
  async line(prompt: string): Promise<string | undefined> {
    this.write(prompt);
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      if (end >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + (this.buffer.startsWith("\r\n", end) ? 2 : 1));
        return line;
      }
      if (this.ended) {
        if (this.buffer === "") return undefined;
        const rest = this.buffer;
        this.buffer = "";
        return rest;
      }
      await this.more();
    }
  }

  /** A line typed without echo; undefined at end of input. Throws PromptInterrupted on Ctrl-C. */
  async secret(prompt: string): Promise<string | undefined> {
    const tty = this.input.isTTY === true && typeof this.input.setRawMode === "function";
    if (!tty) return this.line(prompt);
    // Raw mode before the prompt shows: whatever is typed once it shows is never echoed.
    this.input.setRawMode!(true);
    this.write(prompt);
    let typed = "";
    try {
      for (;;) {
        while (this.buffer.length > 0) {
          const c = this.buffer[0];
          this.buffer = this.buffer.slice(1);
          if (c === "\r" || c === "\n") {
            if (c === "\r" && this.buffer.startsWith("\n")) this.buffer = this.buffer.slice(1);
            return typed;
          }
          if (c === "\x03") throw new PromptInterrupted();
          if (c === "\x04") {
            if (typed === "") return undefined;
            continue;
          }
          if (c === "\x7f" || c === "\b") typed = [...typed].slice(0, -1).join("");
          else if (c === "\x15")
            typed = ""; // Ctrl-U, as the terminal's own line editing has it
          else if (c >= " ") typed += c;
        }
        if (this.ended) return typed === "" ? undefined : typed;
        await this.more();
      }
    } finally {
      this.input.setRawMode!(false);
      this.write("\n");
    }
  }

  /** Stops reading, so the process can exit. */
  close(): void {
    this.input.removeListener("data", this.onData);
    this.input.removeListener("end", this.onEnd);
    this.input.pause();
  }

  private more(): Promise<void> {
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}

/** All of standard input, with one trailing newline removed (as `pulumi config set` reads a value). */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8").replace(/\n$/, "");
}
