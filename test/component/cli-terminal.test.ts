// A new user's first stack, typed at a real terminal (a pseudo-terminal through util-linux
// `script`): mailstack init -> user add -> alias add -> plan. Every prompt first gets a bad answer,
// which is explained and asked again while nothing is written; passwords are never echoed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { readStackFile } from "../../components/config/stack-file";
import { validateValues } from "../../infra/cli/stack-edit";
import { MAIN, mailstack, makeSandbox, NODE, ROOT, TSX, type Sandbox } from "../harness/mailstack-cli";
import { PtySession } from "../harness/pty";

const ALICE = "alice types this long password";
const BOB = "bob has a password too";

let s: Sandbox;
before(() => {
  s = makeSandbox();
  // An existing stack the new one must not overwrite.
  fs.copyFileSync(path.join(ROOT, "stacks", "Pulumi.prod.yaml"), path.join(s.projectDir, "stacks", "Pulumi.prod.yaml"));
});
after(() => s.remove());

const stackFile = () => path.join(s.projectDir, "stacks", "Pulumi.mail.yaml");
const terminal = (args: string) => new PtySession(`exec "${NODE}" --import "${TSX}" "${MAIN}" ${args}`, { cwd: s.projectDir, env: s.env });

describe("a new user's path at a terminal", () => {
  test("init: each bad answer is explained and asked again; the good ones make the stack", async () => {
    const t = terminal("init");
    const answer = async (prompt: RegExp | string, bad: string[], good: string) => {
      await t.expect(prompt);
      for (const [i, b] of bad.entries()) {
        t.type(b);
        // The echoed answer, then the reason, then the same question again.
        await t.expect(new RegExp(`${b.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\r?\\n`));
        const said = await t.expect(prompt);
        assert.match(said, /^ {2}\S.*\r?\n$/, `no reason given for ${JSON.stringify(b)} (${i})`);
      }
      t.type(good);
    };
    await answer("Stack name (stacks/Pulumi.NAME.yaml): ", ["bad name!", "prod"], "mail");
    assert.match(t.screen, /"bad name!" is not a stack name: use letters, digits, _ \. -/);
    assert.match(t.screen, /stacks\/Pulumi\.prod\.yaml exists already; pick another name \(init never overwrites\)/);
    await answer("Mail domains, comma-separated (e.g. example.org): ", ["exa mple.org"], "example.org, Example.NET");
    assert.match(t.screen, /"exa mple\.org" is not a domain name: it contains " "/);
    await answer("Cloudflare zone holding example.org's records [example.org]: ", ["example.net"], "");
    assert.match(t.screen, /zone example\.net does not contain example\.org; the zone is the domain itself or a parent of it/);
    await answer("Cloudflare zone holding example.net's records [example.net]: ", ["org"], "");
    await answer("Mail host name (MX target, HELO and PTR) [mail.example.org]: ", ["mail.other.test", "example.org"], "");
    assert.match(t.screen, /mail\.other\.test is in none of the zones example\.org, example\.net/);
    assert.match(t.screen, /example\.org is also a mail domain; use a host name such as mail\.example\.org/);
    await answer("First mailbox address (e.g. you@example.org): ", ["bob@other.org"], "Alice@example.org");
    assert.match(t.screen, /bob@other\.org is in none of the mail domains \(example\.org, example\.net\)/);
    await answer("ACME account contact (expiry notices) [alice@example.org]: ", ["not-an-email"], "");
    assert.match(t.screen, /"not-an-email" is not an email address: it has no @/);
    await answer(
      /ACME CA: letsencrypt, letsencrypt-staging or an https:\/\/ directory URL \[letsencrypt\]: /,
      ["ftp://ca.example"],
      "letsencrypt-staging",
    );
    await answer("Hetzner location: fsn1, nbg1, hel1, ash, hil, sin [fsn1]: ", ["mars"], "hel1");
    assert.match(t.screen, /"mars" is not a Hetzner location/);
    await answer(/Server type sold in hel1: cx23 cx33 .* ccx63 \[cx23\]: /, ["cpx11"], "cax11");
    assert.match(t.screen, /cpx11 is not offered in "hel1" \(CPX gen 1 is sold in ash, hil only\); in hel1 use cx23, /);

    // Nothing is written while answers are still coming.
    await t.expect("New password for alice@example.org (not shown): ");
    assert.equal(fs.existsSync(stackFile()), false);
    t.type("too short");
    await t.expect("the password has 9 characters; use at least 12; try again");
    await t.expect("New password for alice@example.org (not shown): ");
    t.type(ALICE);
    await t.expect("The same password again: ");
    t.type(`${ALICE}!`);
    await t.expect("the two entries differ; try again");
    await t.expect("New password for alice@example.org (not shown): ");
    t.type(ALICE);
    await t.expect("The same password again: ");
    t.type(ALICE);
    await t.expect("wrote stacks/Pulumi.mail.yaml");
    assert.equal(await t.wait(), 0, t.screen);
    assert.ok(!t.screen.includes(ALICE) && !t.screen.includes("too short"), "a password was echoed");

    const config = (parse(fs.readFileSync(stackFile(), "utf8")) as { config: Record<string, unknown> }).config;
    assert.deepEqual(config["mailstack:server"], { type: "cax11", location: "hel1" });
    assert.deepEqual(config["mailstack:acme"], { email: "alice@example.org", directory: "letsencrypt-staging" });
    assert.equal(config["mailstack:hostname"], "mail.example.org");
    assert.equal(validateValues(readStackFile(stackFile())).users[0].address, "alice@example.org");
  });

  test("user add: the password twice, without echo; a bad one asked again", async () => {
    const t = terminal("user add bob@example.net --stack mail");
    await t.expect("New password for bob@example.net (not shown): ");
    t.type("");
    await t.expect("the password is empty; try again");
    await t.expect("New password for bob@example.net (not shown): ");
    t.type(BOB);
    await t.expect("The same password again: ");
    t.type(BOB);
    await t.expect("added user bob@example.net to stack mail (mailstack:users[1]");
    assert.equal(await t.wait(), 0, t.screen);
    assert.ok(!t.screen.includes(BOB), "the password was echoed");
  });

  test("Ctrl-C at the password prompt changes nothing", async () => {
    const before = fs.readFileSync(stackFile());
    const t = terminal("user passwd bob@example.net --stack mail");
    await t.expect("New password for bob@example.net (not shown): ");
    t.send("half typed\x03");
    await t.expect("mailstack user: interrupted; nothing was changed");
    assert.equal(await t.wait(), 1);
    assert.deepEqual(fs.readFileSync(stackFile()), before);
  });

  test("alias add, then plan: the stack validates and plans", () => {
    const alias = mailstack(s, ["alias", "add", "info@example.net", "bob@example.net", "alice@example.org", "--stack", "mail"]);
    assert.equal(alias.code, 0, alias.stderr);
    const spec = validateValues(readStackFile(stackFile()));
    assert.deepEqual(
      spec.users.map((u) => u.address),
      ["alice@example.org", "bob@example.net"],
    );
    assert.deepEqual(spec.aliases[0], { address: "info@example.net", to: ["bob@example.net", "alice@example.org"] });
    const plan = mailstack(s, ["plan", "--stack", "mail"]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^Stack mail: mail host mail\.example\.org, \d+ resources, 2 DNS zones$/m);
    assert.match(plan.stdout, /hcloud:Server\s+mail-server\s+.*serverType=cax11/);
  });
});
