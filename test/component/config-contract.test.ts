// One contract between the stack file and the box: whatever `mailstack plan` accepts, maild's
// validator accepts too. Each case below breaks one rule of maild's validator
// (server-bootstrap/maild/config.ts) through the stack file; the real program then runs offline
// (infra/offline/), and the maild configuration it would deploy is read from the install step's
// manifest and validated as the box validates it. A case passes when the stack validator refuses
// it at plan time, or when the box accepts what the plan deploys; never plan-valid and box-invalid.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { runOffline, Secret, type OfflineRun } from "../../infra/offline/engine";
import { configFromStackValues } from "../../infra/cli/plan";
import { readStackFile } from "../../components/config/stack-file";
import { validateStackConfig } from "../../components/config/validate";
import { ConfigError as StackConfigError } from "../../components/config/config-error";
import { parseManifest } from "../../server-bootstrap/install/file-manifest";
import { boxLayout } from "../../server-bootstrap/install/layout";
import { validateMaildConfig, ConfigError as MaildConfigError } from "../../server-bootstrap/maild/config";
import { DEFAULT_SMTP_LIMITS } from "../../components/shared/smtp-limits";

const root = path.resolve(__dirname, "..", "..");
const devValues = readStackFile(path.join(root, "stacks", "Pulumi.dev.yaml")) as Record<string, unknown>;
const TOKENS = {
  "hcloud:token": "hcloud-token-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
  "cloudflare:apiToken": "cf-token-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210",
};

type Values = Record<string, unknown> & {
  users: { address: string; passwordHash: unknown }[];
  aliases: { address: string; to: string[] }[];
};

/** The dev stack: its password hashes are `secure:` values, which the box gets as a well-formed stand-in. */
function dev(): Values {
  const v = { ...devValues } as Values;
  v.users = (devValues.users as Values["users"]).map((u) => ({ ...u }));
  v.aliases = (devValues.aliases as Values["aliases"]).map((a) => ({ ...a, to: [...a.to] }));
  v.domains = (devValues.domains as Record<string, unknown>[]).map((d) => ({ ...d }));
  v.acme = { ...(devValues.acme as Record<string, unknown>) };
  return v;
}

type Verdict =
  | { plan: "refused"; problems: string[] }
  | { plan: "accepted"; box: "accepted" }
  | { plan: "accepted"; box: "refused"; problems: string[] };

/** What `mailstack plan` says of the stack values, and if it accepts them, what maild says of the config it would deploy. */
async function judge(values: Values): Promise<Verdict> {
  // The program validates first (infra/program.ts); refused values never get as far as resources.
  try {
    validateStackConfig(values);
  } catch (e) {
    if (e instanceof StackConfigError) return { plan: "refused", problems: e.problems.map((p) => `${p.path}: ${p.message}`) };
    throw e;
  }
  const text = await deployedMaildConfig(values);
  try {
    validateMaildConfig(JSON.parse(text));
    return { plan: "accepted", box: "accepted" };
  } catch (e) {
    if (e instanceof MaildConfigError) return { plan: "accepted", box: "refused", problems: e.problems };
    throw e;
  }
}

/** The maild configuration file the offline run of the program would deploy for these values. */
async function deployedMaildConfig(values: Values): Promise<string> {
  const { config, secretKeys } = configFromStackValues(values);
  const run: OfflineRun = await runOffline(
    () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
      const { stack: _stack, ...outputs } = defineMailStack();
      return outputs;
    },
    {
      stack: "dev",
      config: { ...config, ...TOKENS },
      secretKeys: [...secretKeys, ...Object.keys(TOKENS)],
      ipv4: "198.51.100.25",
      ipv6Network: "2001:db8:1::",
    },
  );
  const install = run.resources.find((r) => r.name === "mail-install");
  assert.ok(install, "the plan has no install step");
  const stdin = install.inputs.stdin;
  const manifest = parseManifest(String(stdin instanceof Secret ? stdin.value : stdin));
  const file = manifest.find((f) => f.path === boxLayout().configJson);
  assert.ok(file, "the manifest has no maild configuration");
  return file.content;
}

/** One rule of maild's validator reached from the stack file: the change, and what the plan must say. */
interface Case {
  rule: string;
  change: (v: Values) => void;
  /** the plan's problem for this input, when it refuses it */
  refusedWith?: RegExp;
}

const CASES: Case[] = [
  {
    rule: "users[].address: mailbox local parts use only a-z 0-9 . _ - ('+' is the recipient delimiter)",
    change: (v) => v.users.push({ ...v.users[0], address: "al+ice@example.org" }),
    refusedWith: /^users\[2\]\.address: "al\+ice@example\.org" .*"\+"/,
  },
  {
    rule: "users[].address: no other RFC 5322 atext in a mailbox name",
    change: (v) => v.users.push({ ...v.users[0], address: "al!ice@example.org" }),
    refusedWith: /^users\[2\]\.address: "al!ice@example\.org"/,
  },
  {
    rule: "users[].address: a mailbox name is lowercase",
    change: (v) => v.users.push({ ...v.users[0], address: "Carol@example.org" }),
  },
  {
    rule: "users[].address: at most 64 octets of local part",
    change: (v) => v.users.push({ ...v.users[0], address: `${"a".repeat(65)}@example.org` }),
    refusedWith: /^users\[2\]\.address: .*64/,
  },
  {
    rule: "users[].address: in a configured domain",
    change: (v) => v.users.push({ ...v.users[0], address: "carol@example.com" }),
    refusedWith: /^users\[2\]\.address: .*managed domains/,
  },
  {
    rule: "users[].passwordHash: an argon2id v=19 PHC string",
    change: (v) => (v.users[0].passwordHash = "$2y$10$abcdefghijklmnopqrstuv"),
    refusedWith: /^users\[0\]\.passwordHash: is a "2y" hash/,
  },
  {
    rule: "aliases[].address: a lowercase address in a configured domain (any RFC 5322 dot-atom, '+' included)",
    change: (v) => v.aliases.push({ address: "Sales+EU@example.org", to: ["alice@example.org"] }),
  },
  {
    rule: "aliases[].address: a catch-all @domain",
    change: (v) => v.aliases.push({ address: "@example.org", to: ["alice@example.org"] }),
  },
  {
    rule: "aliases[].to[]: an outside address keeps its case (RFC 5321 2.4) and is a valid address",
    change: (v) => v.aliases.push({ address: "fwd@example.org", to: ["Bob.Smith@Example.COM"] }),
  },
  {
    rule: "aliases[].to[]: a target in a configured domain is a user or an alias",
    change: (v) => v.aliases.push({ address: "fwd@example.org", to: ["nobody@example.org"] }),
    refusedWith: /^aliases\[3\]\.to\[0\]: "nobody@example\.org" points nowhere/,
  },
  {
    rule: "aliases[].address: not also a user",
    change: (v) => v.aliases.push({ address: "alice@example.org", to: ["bob@example.net"] }),
    refusedWith: /^aliases\[3\]\.address: "alice@example\.org" is also a user/,
  },
  {
    rule: "hostname: a lowercase domain name of two labels or more",
    change: (v) => (v.hostname = "Mail.Example.ORG."),
  },
  {
    rule: "domains[].name: a lowercase domain name of two labels or more",
    change: (v) => ((v.domains as { name: string }[])[0].name = "localhost"),
    refusedWith: /^domains\[0\]\.name: /,
  },
  {
    rule: "limits.*: each an integer in the range components/shared/smtp-limits.ts gives",
    change: (v) => (v.limits = { maxHops: 5 }),
    refusedWith: /^limits\.maxHops: 5 is out of range; expected an integer from 10 to 1000/,
  },
  {
    rule: "limits.*: every limit at its bounds, written as numbers or as pulumi config's strings",
    change: (v) =>
      (v.limits = {
        maxMessageBytes: 1024,
        maxHeaderBytes: "16777216",
        maxRecipients: 100,
        maxHops: 1000,
        dataTimeoutSeconds: "86400",
        sessionTimeoutSeconds: 10,
        largeMessageConcurrency: 1000,
      }),
  },
  {
    rule: "acme.email: an email address",
    change: (v) => ((v.acme as Record<string, unknown>).email = "hostmaster"),
    refusedWith: /^acme\.email: /,
  },
];

describe("stack settings that reach maild's configuration", () => {
  test("mailstack:limits are deployed as maild's limits, every key, the unset ones at their defaults", async () => {
    const values = dev();
    values.limits = { maxHeaderBytes: 65536, sessionTimeoutSeconds: "900" };
    const deployed = JSON.parse(await deployedMaildConfig(values)) as { limits: Record<string, number> };
    assert.deepEqual(deployed.limits, { ...DEFAULT_SMTP_LIMITS, maxHeaderBytes: 65536, sessionTimeoutSeconds: 900 });
  });
});

describe("every rule of maild's validator, fed through the stack validator: nothing the plan accepts fails on the box", () => {
  test("the dev stack itself is accepted by the plan and by the box", async () => {
    assert.deepEqual(await judge(dev()), { plan: "accepted", box: "accepted" });
  });
  for (const c of CASES) {
    test(c.rule, async () => {
      const values = dev();
      c.change(values);
      const verdict = await judge(values);
      if (c.refusedWith) {
        assert.equal(verdict.plan, "refused", JSON.stringify(verdict));
        assert.ok(
          verdict.plan === "refused" && verdict.problems.some((p) => c.refusedWith!.test(p)),
          `expected a problem matching ${c.refusedWith}, got ${JSON.stringify(verdict)}`,
        );
      } else {
        assert.deepEqual(verdict, { plan: "accepted", box: "accepted" });
      }
    });
  }
});
