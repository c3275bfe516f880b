// `mailstack user add|passwd|remove ADDRESS`: mailboxes, with the password hashed here (argon2id)
// and stored as a Pulumi secret at the right index of mailstack:users through the Pulumi CLI.
import * as fs from "node:fs";
import * as path from "node:path";
import { argon2idHash } from "../../components/shared/argon2id";
import { parseEmail } from "../../components/config/name-syntax";
import { parseCommandArgs } from "./args";
import { UsageError, type Command, type CommandIo } from "./command";
import { askNewPassword, passwordFromStdin } from "./password";
import { checkStackName, projectDirFrom } from "./project-dir";
import { Prompter, PromptInterrupted } from "./prompt";
import { configRemove, configSetSecret, configSetString } from "./pulumi-cli";
import { applyEdit, openStack, prepareEdit, STORED_SECRET, type StackFile, type StackValues } from "./stack-edit";

export const USER_USAGE = `usage: mailstack user add ADDRESS [--stack NAME] [--project DIR]
       mailstack user passwd ADDRESS [--stack NAME] [--project DIR]
       mailstack user remove ADDRESS [--stack NAME] [--project DIR]

  Adds a mailbox, sets its password, or removes it, in stacks/Pulumi.NAME.yaml (default stack:
  the only one in stacks/). The password is asked twice without echo at a terminal, or read from
  standard input otherwise (all of it, less one trailing newline), hashed with argon2id here, and
  stored encrypted by your Pulumi CLI:
    pulumi config set --secret --path 'mailstack:users[N].passwordHash'   (the hash on its stdin)
  The stack is validated before and after; a change that would make it invalid (an alias or a
  report address still pointing at a removed user) is refused and nothing changes. Needs the
  Pulumi CLI, logged in; for a passphrase-protected stack export PULUMI_CONFIG_PASSPHRASE.`;

const SUBCOMMANDS = ["add", "passwd", "remove"] as const;

/** A mailbox address as the stack keeps it (lowercased: managed addresses compare case-insensitively). */
export function mailboxAddress(text: string, what = "ADDRESS"): string {
  const email = parseEmail(text);
  if (!email.ok) throw new UsageError(`${what}: "${text}" is not an email address: it ${email.reason}`);
  return `${email.value.local.toLowerCase()}@${email.value.domain}`;
}

/** --stack, else the one stack file in stacks/. */
export function stackArgument(given: string | undefined, projectDir: string, list: () => string[]): string {
  if (given !== undefined) return checkStackName(given);
  const stacks = list();
  if (stacks.length === 1) return stacks[0];
  throw new UsageError(
    stacks.length === 0
      ? `--stack: ${projectDir}/stacks holds no stack file; create one with mailstack init`
      : `--stack: which stack? stacks/ holds ${stacks.join(", ")}`,
  );
}

export function listStacks(projectDir: string): string[] {
  const dir = path.join(projectDir, "stacks");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/** The mailbox list as written in the stack file (entries as pulumi keeps them). */
function usersOf(values: StackValues): Record<string, unknown>[] {
  return Array.isArray(values.users) ? (values.users as Record<string, unknown>[]) : [];
}

function indexOfUser(values: StackValues, address: string): number {
  return usersOf(values).findIndex((u) => typeof u?.address === "string" && u.address.toLowerCase() === address);
}

async function newPassword(io: CommandIo, address: string): Promise<string> {
  if (!io.interactive) return passwordFromStdin(io.stdin);
  const prompter = new Prompter(io.stdin, io.stdout);
  try {
    const password = await askNewPassword(prompter, address, io.stderr);
    if (password === undefined) throw new Error("no password given (input ended); nothing was changed");
    return password;
  } catch (err) {
    if (err instanceof PromptInterrupted) throw new Error("interrupted; nothing was changed");
    throw err;
  } finally {
    prompter.close();
  }
}

export async function userAdd(stack: StackFile, address: string, io: CommandIo): Promise<void> {
  if (indexOfUser(stack.values, address) >= 0)
    throw new UsageError(`ADDRESS: ${address} is already a user of stack ${stack.stack}; use user passwd`);
  // `--path 'users[N]'` with N equal to the list's length appends (pulumi/pulumi
  // sdk/go/common/resource/config/object.go object.Set: index == len(v) appends).
  const n = usersOf(stack.values).length;
  const intended = { ...stack.values, users: [...usersOf(stack.values), { address, passwordHash: STORED_SECRET }] };
  // Refused before the password is asked for: a user outside the managed domains, or an alias of that name.
  await prepareEdit(stack, intended, { env: io.env, what: `add user ${address}` });
  const hash = argon2idHash(await newPassword(io, address));
  await applyEdit(
    stack,
    [
      configSetString(stack.stack, `mailstack:users[${n}].address`, address),
      configSetSecret(stack.stack, `mailstack:users[${n}].passwordHash`, hash),
    ],
    intended,
    { env: io.env, what: `add user ${address}` },
  );
  io.stdout(`added user ${address} to stack ${stack.stack} (mailstack:users[${n}], password hash stored as a secret)\n`);
}

export async function userPasswd(stack: StackFile, address: string, io: CommandIo): Promise<void> {
  const n = indexOfUser(stack.values, address);
  if (n < 0) throw new UsageError(`ADDRESS: ${address} is not a user of stack ${stack.stack} (${listUsers(stack.values)})`);
  const users = usersOf(stack.values).map((u, i) => (i === n ? { ...u, passwordHash: STORED_SECRET } : u));
  const edit = { env: io.env, what: `set the password of ${address}` };
  await prepareEdit(stack, { ...stack.values, users }, edit);
  const hash = argon2idHash(await newPassword(io, address));
  await applyEdit(stack, [configSetSecret(stack.stack, `mailstack:users[${n}].passwordHash`, hash)], { ...stack.values, users }, edit);
  io.stdout(`set a new password for ${address} in stack ${stack.stack} (mailstack:users[${n}].passwordHash)\n`);
}

export async function userRemove(stack: StackFile, address: string, io: CommandIo): Promise<void> {
  const n = indexOfUser(stack.values, address);
  if (n < 0) throw new UsageError(`ADDRESS: ${address} is not a user of stack ${stack.stack} (${listUsers(stack.values)})`);
  // Removing a list element shifts the later ones down by one (object.go object.Delete: append(v[:index], v[index+1:]...)).
  const users = usersOf(stack.values).filter((_u, i) => i !== n);
  await applyEdit(
    stack,
    [configRemove(stack.stack, `mailstack:users[${n}]`)],
    { ...stack.values, users },
    {
      env: io.env,
      what: `remove user ${address}`,
    },
  );
  io.stdout(`removed user ${address} from stack ${stack.stack}; its mail stays on the server's volume\n`);
}

function listUsers(values: StackValues): string {
  const users = usersOf(values).map((u) => String(u?.address));
  return users.length > 0 ? `its users: ${users.join(", ")}` : "it has no users";
}

export const userCommand: Command = {
  name: "user",
  summary: "add a mailbox, set its password, or remove it (the hash stored as a Pulumi secret)",
  usage: USER_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { stack: { type: "string" }, project: { type: "string" } }, true);
    const [sub, addressText, ...extra] = positionals;
    if (sub === undefined) throw new UsageError(`a subcommand is missing: ${SUBCOMMANDS.join(", ")}`);
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`"${sub}" is not one of ${SUBCOMMANDS.join(", ")}`);
    if (addressText === undefined) throw new UsageError(`ADDRESS is missing, e.g. mailstack user ${sub} alice@example.org`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}": one ADDRESS per run`);
    const address = mailboxAddress(addressText);
    const projectDir = projectDirFrom(values.project, io.cwd, { packageFallback: false });
    const stack = openStack(
      projectDir,
      stackArgument(values.stack, projectDir, () => listStacks(projectDir)),
    );
    if (sub === "add") await userAdd(stack, address, io);
    else if (sub === "passwd") await userPasswd(stack, address, io);
    else await userRemove(stack, address, io);
    return 0;
  },
};
