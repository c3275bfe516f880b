// `mailstack init`: a new stack file from a few answers, asked at a terminal or given as flags
// (scripts: every answer a flag, the password on stdin). Each answer is checked as it is given:
// at a terminal a bad one is explained and asked again, as a flag it is a usage error (exit 2)
// and nothing is written. The whole configuration is validated before the file is written; the
// file is never overwritten. The first user's password hash is then stored as a secret by the
// user's Pulumi CLI, which holds the stack's secrets provider:
//   pulumi stack select --create NAME
//   pulumi config set --secret --path 'mailstack:users[0].passwordHash'   (the hash on its stdin)
// If either fails, the file is removed again.
import * as fs from "node:fs";
import * as path from "node:path";
import { ACME_DIRECTORIES } from "../../components/config/acme";
import { SERVER_LOCATIONS } from "../../components/config/hetzner-offer";
import { normaliseDomain } from "../../components/config/name-syntax";
import { argon2idHash } from "../../components/shared/argon2id";
import { readStackFile } from "../../components/config/stack-file";
import { ConfigError } from "../../components/config/validate";
import { parseCommandArgs } from "./args";
import { UsageError, type Command, type CommandIo } from "./command";
import { BadAnswer, LOCATION_NAMES, questions, serverTypesIn, stackFileTaken, type AnswersSoFar, type Question } from "./init-questions";
import { askNewPassword, passwordFromStdin } from "./password";
import { stackFilePath } from "./plan";
import { projectDirFrom } from "./project-dir";
import { Prompter, PromptInterrupted } from "./prompt";
import { configSetSecret, describeCall, mustRunPulumi, requirePulumi, stackSelectCreate } from "./pulumi-cli";
import { STORED_SECRET, validateValues } from "./stack-edit";
import { renderStackFile, stackValues, type InitAnswers } from "./stack-template";

const LOCATIONS_HELP = SERVER_LOCATIONS.map((l) => `      ${l.padEnd(5)} ${LOCATION_NAMES[l]}: ${serverTypesIn(l).join(" ")}`).join("\n");

export const INIT_USAGE = `usage: mailstack init [--stack NAME] [--domain NAME]... [--zone DOMAIN=ZONE]... [--hostname NAME]
                      [--user ADDRESS] [--acme-email ADDRESS] [--acme-ca CA] [--caa-identity NAME]
                      [--location LOC] [--server-type TYPE] [--project DIR]

  Writes a new, commented stacks/Pulumi.NAME.yaml (never over an existing one) and stores the
  first user's password hash in it as a secret through your Pulumi CLI (logged in; for a
  passphrase-protected stack export PULUMI_CONFIG_PASSPHRASE). At a terminal it asks for what
  the flags do not give; otherwise (scripts) it takes the flags, the password from stdin.
  --stack        the stack name (required in scripts)
  --domain       a mail domain; repeatable or comma-separated (required in scripts)
  --zone         the Cloudflare zone holding DOMAIN's records (default: the domain itself)
  --hostname     the mail host (default: mail.<first domain>)
  --user         the first mailbox, e.g. alice@example.org (required in scripts)
  --acme-email   the ACME account contact (default: the first user)
  --acme-ca      letsencrypt (default), letsencrypt-staging, or an https:// ACME directory URL
  --caa-identity with a directory URL: the CA's CAA issuer domain (RFC 8659 4.2)
  --location     the Hetzner location (default fsn1)
  --server-type  a server type sold in that location (default: the cheapest there):
${LOCATIONS_HELP}`;

interface Asker {
  ask<T>(q: Question<T>, given: string | undefined): Promise<T>;
}

/** Flags only: a missing answer takes its default or is a usage error; a bad one is a usage error. */
function flagAsker(): Asker {
  return {
    async ask<T>(q: Question<T>, given: string | undefined): Promise<T> {
      const text = given ?? q.default;
      if (text === undefined) throw new UsageError(`--${q.flag} is required when standard input is not a terminal`);
      try {
        return q.parse(text);
      } catch (err) {
        if (err instanceof BadAnswer) throw new UsageError(`--${q.flag}: ${err.message}`);
        throw err;
      }
    },
  };
}

/** At a terminal: a flag still answers (a bad one is a usage error); otherwise ask until the answer is good. */
function terminalAsker(prompter: Prompter, io: CommandIo): Asker {
  const flags = flagAsker();
  return {
    async ask<T>(q: Question<T>, given: string | undefined): Promise<T> {
      if (given !== undefined) return flags.ask(q, given);
      if (q.help) io.stdout(`${q.help}\n`);
      for (;;) {
        const typed = await prompter.line(`${q.prompt}${q.default !== undefined ? ` [${q.default}]` : ""}: `);
        if (typed === undefined) throw new Error(`no answer for --${q.flag} (input ended); nothing was written`);
        const text = typed.trim() === "" ? q.default : typed.trim();
        if (text === undefined) {
          io.stderr("  an answer is needed here\n");
          continue;
        }
        try {
          return q.parse(text);
        } catch (err) {
          if (!(err instanceof BadAnswer)) throw err;
          io.stderr(`  ${err.message}\n`);
        }
      }
    },
  };
}

function parseZoneFlags(list: string[]): Map<string, string> {
  const zones = new Map<string, string>();
  for (const item of list.flatMap((z) => z.split(","))) {
    const [domain, zone, extra] = item.split("=");
    if (zone === undefined || extra !== undefined || domain.trim() === "" || zone.trim() === "") {
      throw new UsageError(`--zone: "${item}" is not DOMAIN=ZONE, e.g. lists.example.org=example.org`);
    }
    const name = normaliseDomain(domain.trim());
    zones.set(name.ok ? name.value : domain.trim(), zone.trim());
  }
  return zones;
}

async function gatherAnswers(
  asker: Asker,
  flags: Record<string, string | string[] | boolean | undefined>,
  projectDir: string,
): Promise<InitAnswers> {
  const a: AnswersSoFar = { projectDir };
  const str = (k: string) => flags[k] as string | undefined;
  a.stack = await asker.ask(questions(a).stack, str("stack"));
  const domainFlags = flags.domain as string[];
  a.domains = await asker.ask(questions(a).domains, domainFlags.length > 0 ? domainFlags.join(",") : undefined);
  const zoneFlags = parseZoneFlags(flags.zone as string[]);
  for (const d of zoneFlags.keys()) {
    if (!a.domains.includes(d)) throw new UsageError(`--zone: ${d} is not one of the mail domains (${a.domains.join(", ")})`);
  }
  a.zones = {};
  for (const d of a.domains) a.zones[d] = await asker.ask(questions(a).zone(d), zoneFlags.get(d));
  a.hostname = await asker.ask(questions(a).hostname, str("hostname"));
  a.user = await asker.ask(questions(a).user, str("user"));
  a.acmeEmail = await asker.ask(questions(a).acmeEmail, str("acme-email"));
  a.acmeDirectory = await asker.ask(questions(a).acmeCa, str("acme-ca"));
  if (ACME_DIRECTORIES[a.acmeDirectory] === undefined) a.caaIdentity = await asker.ask(questions(a).caaIdentity, str("caa-identity"));
  else if (str("caa-identity") !== undefined)
    throw new UsageError(`--caa-identity: ${a.acmeDirectory} has its own (${ACME_DIRECTORIES[a.acmeDirectory].caaIdentity}); leave it out`);
  a.location = await asker.ask(questions(a).location, str("location"));
  a.serverType = await asker.ask(questions(a).serverType, str("server-type"));
  const { projectDir: _p, ...answers } = a;
  return answers as InitAnswers;
}

/** Writes the file without replacing one that appeared meanwhile; keeps a secrets-provider-only file's keys. */
function writeNewStackFile(file: string, text: string): void {
  const existing = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
  const provider = existing?.trim() ? `${existing.trimEnd()}\n` : "";
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.init-${process.pid}`;
  fs.writeFileSync(tmp, `${text.trimEnd()}\n${provider}`, { flag: "wx", mode: 0o644 });
  try {
    if (existing === undefined)
      fs.linkSync(tmp, file); // fails if the file appeared meanwhile
    else fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export const initCommand: Command = {
  name: "init",
  summary: "write a new stack file from a few answers (asked, or given as flags)",
  usage: INIT_USAGE,
  async run(argv, io) {
    const { values: flags, positionals } = parseCommandArgs(
      argv,
      {
        stack: { type: "string" },
        domain: { type: "string", multiple: true, default: [] },
        zone: { type: "string", multiple: true, default: [] },
        hostname: { type: "string" },
        user: { type: "string" },
        "acme-email": { type: "string" },
        "acme-ca": { type: "string" },
        "caa-identity": { type: "string" },
        location: { type: "string" },
        "server-type": { type: "string" },
        project: { type: "string" },
      },
      true,
    );
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"; init takes options only`);
    const projectDir = projectDirFrom(flags.project, io.cwd, { packageFallback: false });
    const pulumi = { cwd: projectDir, env: io.env };

    let answers: InitAnswers;
    let password: string;
    if (io.interactive) {
      // Before any question: without the Pulumi CLI nothing could be stored.
      await requirePulumi(pulumi);
      const prompter = new Prompter(io.stdin, io.stdout);
      try {
        answers = await gatherAnswers(terminalAsker(prompter, io), flags, projectDir);
        const typed = await askNewPassword(prompter, answers.user, io.stderr);
        if (typed === undefined) throw new Error("no password given (input ended); nothing was written");
        password = typed;
      } catch (err) {
        if (err instanceof PromptInterrupted) throw new Error("interrupted; nothing was written");
        throw err;
      } finally {
        prompter.close();
      }
    } else {
      answers = await gatherAnswers(flagAsker(), flags, projectDir);
      password = await passwordFromStdin(io.stdin);
      await requirePulumi(pulumi);
    }

    const values = stackValues(answers);
    try {
      validateValues({ ...values, users: [{ address: answers.user, passwordHash: STORED_SECRET }] });
    } catch (err) {
      if (err instanceof ConfigError) throw new Error(`the answers do not make a valid stack, so nothing was written:\n${err.message}`);
      throw err;
    }

    const file = stackFilePath(projectDir, answers.stack);
    if (stackFileTaken(projectDir, answers.stack)) throw new Error(`${file} exists already; init never overwrites it`);
    const before = fs.existsSync(file) ? fs.readFileSync(file) : undefined;
    writeNewStackFile(file, renderStackFile(answers, new Date()));
    const hashCall = configSetSecret(answers.stack, "mailstack:users[0].passwordHash", argon2idHash(password));
    try {
      await mustRunPulumi(stackSelectCreate(answers.stack, io.interactive), pulumi);
      await mustRunPulumi(hashCall, pulumi);
      const spec = validateValues(readStackFile(file));
      if (spec.users.length !== 1 || typeof spec.users[0].passwordHash === "string") {
        throw new Error(`${describeCall(hashCall)} left users[0].passwordHash unencrypted`);
      }
    } catch (err) {
      if (before === undefined) fs.rmSync(file, { force: true });
      else fs.writeFileSync(file, before);
      throw new Error(
        `${(err as Error).message}\n${before === undefined ? `${file} was removed again` : `${file} was put back as it was`}`,
      );
    }
    io.stdout(
      [
        `wrote ${path.relative(io.cwd, file) || file}: ${answers.domains.join(", ")} on ${answers.hostname}, user ${answers.user} (password hash stored as a secret)`,
        "next:",
        `  pulumi config set --stack ${answers.stack} --secret hcloud:token          # Hetzner Cloud API token (read & write)`,
        `  pulumi config set --stack ${answers.stack} --secret cloudflare:apiToken   # Cloudflare API token: Zone.DNS edit`,
        `  mailstack user add ADDRESS --stack ${answers.stack}                    # more mailboxes; mailstack alias add for aliases`,
        `  mailstack plan --stack ${answers.stack}`,
        "",
      ].join("\n"),
    );
    return 0;
  },
};
