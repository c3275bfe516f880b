// `mailstack alias add|remove ADDRESS [TARGET...]`: addresses that forward to users, other
// aliases or outside addresses, written into mailstack:aliases through the Pulumi CLI.
import { normaliseDomain, parseEmail } from "../../components/config/name-syntax";
import { parseCommandArgs } from "./args";
import { UsageError, type Command } from "./command";
import { projectDirFrom } from "./project-dir";
import { configRemove, configSetString, type PulumiCall } from "./pulumi-cli";
import { applyEdit, openStack, type StackFile, type StackValues } from "./stack-edit";
import { listStacks, mailboxAddress, stackArgument } from "./user";

export const ALIAS_USAGE = `usage: mailstack alias add ADDRESS TARGET... [--stack NAME] [--project DIR]
       mailstack alias remove ADDRESS [TARGET...] [--stack NAME] [--project DIR]

  add     creates the alias ADDRESS (local@domain, or @domain for a catch-all) delivering to each
          TARGET (a user, another alias, or an outside address), or adds TARGETs to it
  remove  removes the TARGETs from the alias, or the whole alias when no TARGET is given (or
          none would be left)
  Written into stacks/Pulumi.NAME.yaml (default stack: the only one in stacks/) with
  \`pulumi config set --path\` / \`pulumi config rm --path\`; the stack is validated before and
  after, and a change that would make it invalid (a target that points nowhere, a loop) is
  refused with nothing changed. Needs the Pulumi CLI.`;

const SUBCOMMANDS = ["add", "remove"] as const;

interface AliasEntry {
  address?: unknown;
  to?: unknown;
}

function aliasesOf(values: StackValues): AliasEntry[] {
  return Array.isArray(values.aliases) ? (values.aliases as AliasEntry[]) : [];
}

function targetsOf(entry: AliasEntry): string[] {
  return Array.isArray(entry.to) ? entry.to.map(String) : [];
}

/** local@domain, or @domain for a catch-all; lowercased as the stack keeps managed addresses. */
function aliasAddress(text: string): string {
  if (!text.startsWith("@")) return mailboxAddress(text);
  const domain = normaliseDomain(text.slice(1));
  if (!domain.ok) throw new UsageError(`ADDRESS: "${text}" is not a catch-all @domain: the domain ${domain.reason}`);
  return `@${domain.value}`;
}

/** A target as written: lowercased in a managed domain (those compare case-insensitively), else as given. */
function targetAddress(text: string, managed: readonly string[]): string {
  const email = parseEmail(text);
  if (!email.ok) throw new UsageError(`TARGET: "${text}" is not an email address: it ${email.reason}`);
  return managed.includes(email.value.domain) ? `${email.value.local.toLowerCase()}@${email.value.domain}` : email.value.address;
}

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function aliasAdd(stack: StackFile, address: string, targets: string[]): { calls: PulumiCall[]; intended: StackValues; said: string } {
  const aliases = aliasesOf(stack.values);
  const n = aliases.findIndex((a) => typeof a.address === "string" && sameAddress(a.address, address));
  const key = (i: number) => `mailstack:aliases[${i}]`;
  if (n < 0) {
    // Appending at index len(list) creates the element, and the list itself when absent
    // (pulumi/pulumi sdk/go/common/resource/config/object.go object.Set and map.go Map.Set).
    const i = aliases.length;
    return {
      calls: [
        configSetString(stack.stack, `${key(i)}.address`, address),
        ...targets.map((t, j) => configSetString(stack.stack, `${key(i)}.to[${j}]`, t)),
      ],
      intended: { ...stack.values, aliases: [...aliases, { address, to: targets }] },
      said: `added alias ${address} -> ${targets.join(", ")}`,
    };
  }
  const existing = targetsOf(aliases[n]);
  const twice = targets.find((t) => existing.some((e) => sameAddress(e, t)));
  if (twice !== undefined) throw new UsageError(`TARGET: ${twice} is already a target of ${address}`);
  return {
    calls: targets.map((t, j) => configSetString(stack.stack, `${key(n)}.to[${existing.length + j}]`, t)),
    intended: { ...stack.values, aliases: aliases.map((a, i) => (i === n ? { ...a, to: [...existing, ...targets] } : a)) },
    said: `alias ${address} now delivers to ${[...existing, ...targets].join(", ")}`,
  };
}

function aliasRemove(stack: StackFile, address: string, targets: string[]): { calls: PulumiCall[]; intended: StackValues; said: string } {
  const aliases = aliasesOf(stack.values);
  const n = aliases.findIndex((a) => typeof a.address === "string" && sameAddress(a.address, address));
  if (n < 0) {
    const known = aliases.map((a) => String(a.address));
    throw new UsageError(
      `ADDRESS: ${address} is not an alias of stack ${stack.stack} (${known.length > 0 ? `its aliases: ${known.join(", ")}` : "it has none"})`,
    );
  }
  const existing = targetsOf(aliases[n]);
  const indexes = targets.map((t) => {
    const j = existing.findIndex((e) => sameAddress(e, t));
    if (j < 0) throw new UsageError(`TARGET: ${t} is not a target of ${address} (${existing.join(", ")})`);
    return j;
  });
  const left = existing.filter((_e, j) => !indexes.includes(j));
  if (targets.length === 0 || left.length === 0) {
    // Removing a list element shifts the later ones down (object.go object.Delete).
    return {
      calls: [configRemove(stack.stack, `mailstack:aliases[${n}]`)],
      intended: { ...stack.values, aliases: aliases.filter((_a, i) => i !== n) },
      said: `removed alias ${address}`,
    };
  }
  // From the highest index down, so each index still names the element it named at the start.
  const calls = [...new Set(indexes)].sort((a, b) => b - a).map((j) => configRemove(stack.stack, `mailstack:aliases[${n}].to[${j}]`));
  return {
    calls,
    intended: { ...stack.values, aliases: aliases.map((a, i) => (i === n ? { ...a, to: left } : a)) },
    said: `alias ${address} now delivers to ${left.join(", ")}`,
  };
}

export const aliasCommand: Command = {
  name: "alias",
  summary: "add or remove an alias (an address that forwards) or some of its targets",
  usage: ALIAS_USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { stack: { type: "string" }, project: { type: "string" } }, true);
    const [sub, addressText, ...targetTexts] = positionals;
    if (sub === undefined) throw new UsageError(`a subcommand is missing: ${SUBCOMMANDS.join(", ")}`);
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`"${sub}" is not one of ${SUBCOMMANDS.join(", ")}`);
    if (addressText === undefined)
      throw new UsageError(`ADDRESS is missing, e.g. mailstack alias ${sub} info@example.org${sub === "add" ? " alice@example.org" : ""}`);
    if (sub === "add" && targetTexts.length === 0) throw new UsageError(`TARGET is missing: where should mail to ${addressText} go?`);
    const address = aliasAddress(addressText);
    const projectDir = projectDirFrom(values.project, io.cwd, { packageFallback: false });
    const stack = openStack(
      projectDir,
      stackArgument(values.stack, projectDir, () => listStacks(projectDir)),
    );
    const managed = stack.spec.domains.map((d) => d.name);
    const targets = targetTexts.map((t) => targetAddress(t, managed));
    const change = sub === "add" ? aliasAdd(stack, address, targets) : aliasRemove(stack, address, targets);
    await applyEdit(stack, change.calls, change.intended, { env: io.env, what: `${sub} alias ${address}` });
    io.stdout(`${change.said} (stack ${stack.stack})\n`);
    return 0;
  },
};
