// A new mailbox password: typed twice without echo at a terminal, or read from standard input in
// scripts. Only its argon2id hash leaves this process (components/shared/argon2id.ts).
import { UsageError } from "./command";
import { PromptInterrupted, readAll, type Prompter } from "./prompt";

/**
 * The password guards IMAP and submission logins that any host on the internet can try, behind
 * only a login throttle: long enough to make guessing hopeless (NIST SP 800-63B asks at least 8,
 * and 15 where the password is the only factor).
 */
export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length === 0) return "the password is empty";
  if ([...password].some((c) => c < " " || c === "\x7f")) return "the password holds a control character (a tab or line break?)";
  if (length < MIN_PASSWORD_LENGTH) return `the password has ${length} characters; use at least ${MIN_PASSWORD_LENGTH}`;
  if (length > MAX_PASSWORD_LENGTH) return `the password has ${length} characters; at most ${MAX_PASSWORD_LENGTH} are accepted`;
  return undefined;
}

/** Asks until two equal, acceptable entries are typed. Undefined when input ends. */
export async function askNewPassword(prompter: Prompter, address: string, say: (text: string) => void): Promise<string | undefined> {
  for (;;) {
    const first = await prompter.secret(`New password for ${address} (not shown): `);
    if (first === undefined) return undefined;
    const problem = passwordProblem(first);
    if (problem !== undefined) {
      say(`  ${problem}; try again\n`);
      continue;
    }
    const second = await prompter.secret("The same password again: ");
    if (second === undefined) return undefined;
    if (second !== first) {
      say("  the two entries differ; try again\n");
      continue;
    }
    return first;
  }
}

/** From standard input (scripts): all of it but one trailing newline, judged like a typed one. */
export async function passwordFromStdin(input: NodeJS.ReadableStream): Promise<string> {
  const password = await readAll(input);
  const problem = passwordProblem(password);
  if (problem !== undefined) throw new UsageError(`standard input: ${problem} (the password is read from stdin when it is not a terminal)`);
  return password;
}

export { PromptInterrupted };
