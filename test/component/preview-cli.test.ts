// `mailstack preview` end to end, as a user runs it: the CLI's own provider wiring (no stand-ins
// injected: infra/offline/providers/ over empty worlds, the engine's Node dynamic provider host
// with the program's real providers) against a state written by an offline `up` of the real
// program over the deployment model (test/harness/deployment-world.ts), exported as
// `pulumi stack export` writes it. "No changes" for an unchanged stack, a DNS record change as
// name, type, old -> new, a content change of the deploy as an in-place update, JSON without
// secrets, and bad arguments refused. Nothing leaves this process (no-outside-traffic.ts).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatStackExport } from "../../infra/offline/checkpoint";
import { findProjectDir } from "../../infra/cli/main";
import { runPreview } from "../../infra/cli/preview";
import { CLOUDFLARE_TOKEN, ROOT } from "../harness/program-stand-ins";
import { DeploymentWorld, DEV_VALUES } from "../harness/deployment-world";
import { refuseOutsideTraffic, refused } from "../harness/no-outside-traffic";

refuseOutsideTraffic();

const work = fs.mkdtempSync(path.join(os.tmpdir(), "preview-cli-"));
const stateFile = path.join(work, "state.json");
const devStack = fs.readFileSync(path.join(ROOT, "stacks", "Pulumi.dev.yaml"), "utf8");

/**
 * A project directory like this checkout whose dev stack file is `stackText`: its own Pulumi.yaml
 * and stacks/, and this checkout's package.json, build and node_modules, so the dynamic providers
 * load `mailstack/providers/*` from it as from any checkout of mailstack.
 */
function projectWith(stackText: string): string {
  const dir = fs.mkdtempSync(path.join(work, "project-"));
  fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  for (const shared of ["package.json", "dist", "node_modules"]) fs.symlinkSync(path.join(ROOT, shared), path.join(dir, shared));
  fs.mkdirSync(path.join(dir, "stacks"));
  fs.writeFileSync(path.join(dir, "stacks", "Pulumi.dev.yaml"), stackText);
  return dir;
}

async function preview(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runPreview(args, {
    findProjectDir,
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
  });
  return { code, out, err };
}

before(async () => {
  const up = await new DeploymentWorld().run(DEV_VALUES, undefined);
  assert.deepEqual(up.diagnostics, []);
  fs.writeFileSync(stateFile, formatStackExport(up.checkpoint));
});
after(() => {
  fs.rmSync(work, { recursive: true, force: true });
  assert.deepEqual(refused, [], "nothing tried to leave this machine");
});

describe("mailstack preview against the deployed state", () => {
  test("an unchanged stack prints no changes and exits 0", async () => {
    const { code, out } = await preview(["--stack", "dev", "--state", stateFile, "--project", ROOT]);
    assert.equal(code, 0);
    assert.match(out, /^Previewing stack dev against the state in .*state\.json \(\d+ resources\)$/m);
    assert.match(out, /^no changes: \d+ resources unchanged$/m);
    assert.doesNotMatch(out, /^Steps/m);
  });

  test("a changed DMARC policy is one record update, printed as name, type, old -> new; the box's drift watch learns it in place", async () => {
    const project = projectWith(devStack.replace("policy: quarantine", "policy: reject"));
    const { code, out } = await preview(["--stack", "dev", "--state", stateFile, "--project", project]);
    assert.equal(code, 0);
    assert.match(out, /^ {2}~ {2}_dmarc\.example\.net {2}TXT {2}"v=DMARC1; p=quarantine;[^"]*" -> "v=DMARC1; p=reject;[^"]*"$/m);
    assert.match(out, /^ +\d+\. ~ {2}update {2}cloudflare:DnsRecord {2}example\.net\/txt\/_dmarc\.example\.net$/m);
    assert.match(out, /^ {8}changed: content$/m);
    // the box compares DNS with the plan's records (operations.expectedRecords), so its manifest changes too
    assert.match(out, /^ +\d+\. ~ {2}update {2}command:Command {2}mail-install$/m);
    assert.match(out, /^ {4}~ 2 to update$/m);
    assert.doesNotMatch(out, /to replace|to create|to delete/);
  });

  test("a new DKIM generation shows its two records as creates and no other record as changed (a new key is unknown in a preview)", async () => {
    const rotated = devStack.replace(
      "    - name: example.org\n      zone: example.org\n",
      "    - name: example.org\n      zone: example.org\n      dkim:\n        generations: [s2, s1]\n",
    );
    assert.notEqual(rotated, devStack);
    const project = projectWith(rotated);
    const { code, out } = await preview(["--stack", "dev", "--state", stateFile, "--project", project]);
    assert.equal(code, 0);
    const dnsLines = out
      .slice(out.indexOf("DNS records:"))
      .split("\n")
      .filter((l) => /^ {2}[+~-] {2}/.test(l));
    assert.deepEqual(dnsLines.map((l) => l.split(/ {2}/).slice(1, 4).join(" ")).sort(), [
      "+ s2-ed25519._domainkey.example.org TXT",
      "+ s2-rsa._domainkey.example.org TXT",
    ]);
  });

  test("a new alias updates the install step in place (its manifest on stdin changed) and replaces or deletes nothing", async () => {
    const project = projectWith(
      devStack.replace("  mailstack:aliases:\n", "  mailstack:aliases:\n    - address: sales@example.org\n      to: [alice@example.org]\n"),
    );
    const { code, out } = await preview(["--stack", "dev", "--state", stateFile, "--project", project, "--diff"]);
    assert.equal(code, 0);
    assert.match(out, /^ +\d+\. ~ {2}update {2}command:Command {2}mail-install$/m);
    // the manifest's digest is on the install command line, so the commands change with it
    assert.match(out, /^ {8}changed: create, update, stdin$/m);
    // the command lines differ in the manifest's digest at their end: that part is what is shown
    const update = /^ {8}~ update: (\S.*) => (\S.*)$/m.exec(out);
    assert.ok(update, out);
    const digest = (shown: string) => /--files-sha256 ([0-9a-f]{64})/.exec(shown)?.[1];
    assert.ok(digest(update[1]) && digest(update[2]) && digest(update[1]) !== digest(update[2]), update[0]);
    assert.match(out, /^ {8}~ stdin: \[secret\] => \[secret\]$/m, "--diff shows the manifest changed, as [secret]");
    assert.doesNotMatch(out, /to replace|to delete|replacement|delete replaced/);
    assert.match(out, /^ {4}~ 1 to update$/m);
  });

  test("a new image replaces the server delete-first, after its dependents in the engine's cascade; no DNS record or address changes", async () => {
    const project = projectWith(devStack.replace("    location: fsn1\n", "    location: fsn1\n    image: ubuntu-24.04\n"));
    const { code, out } = await preview(["--stack", "dev", "--state", stateFile, "--project", project, "--diff"]);
    assert.equal(code, 0);
    const steps = [...out.matchAll(/^ +\d+\. (.+?) {2}(\S+) {2}(\S+)$/gm)].map((m) => `${m[1]} ${m[3]}`);
    const cascade = [
      "mail-release-volume",
      "mail-install",
      "mail-installer",
      "mail-daemon",
      "mail-wait-for-ssh",
      "mail-ssh-reachable",
      "mail-data-attachment",
    ];
    assert.deepEqual(steps, [
      ...[...cascade, "mail-server"].map((n) => `-- delete before replacement ${n}`),
      ...["mail-server", ...[...cascade].reverse()].map((n) => `++ create replacement (delete-first) ${n}`),
    ]);
    assert.match(out, /^ {8}~ image: "debian-12" => "ubuntu-24\.04" \(forces replacement\)$/m);
    assert.match(out, /^ {4}\+-8 to replace$/m);
    assert.doesNotMatch(out, /to create|to update|to delete|DnsRecord|PrimaryIp|Rdns|Volume /);
  });

  test("--json lists the steps in order with their reasons, and no secret reaches the output", async () => {
    const project = projectWith(devStack.replace("policy: quarantine", "policy: reject"));
    const { code, out } = await preview(["--stack", "dev", "--state", stateFile, "--project", project, "--json"]);
    assert.equal(code, 0);
    const report = JSON.parse(out) as {
      steps: { order: number; op: string; name: string; reason: string }[];
      dns: { op: string; name: string; type: string; old?: string; new?: string }[];
      failed: boolean;
    };
    assert.equal(report.failed, false);
    const changed = report.steps.filter((s) => s.op !== "same");
    assert.deepEqual(
      changed.map((s) => [s.op, s.name, s.reason]),
      [
        ["update", "example.net/txt/_dmarc.example.net", "changed: content"],
        ["update", "mail-install", "changed: create, update, stdin"],
      ],
    );
    assert.deepEqual(
      report.steps.map((s) => s.order),
      report.steps.map((_, i) => i + 1),
    );
    assert.deepEqual(
      report.dns.map((d) => [d.op, d.name, d.type]),
      [["update", "_dmarc.example.net", "TXT"]],
    );
    assert.match(report.dns[0].old!, /^"v=DMARC1; p=quarantine;/);
    assert.match(report.dns[0].new!, /^"v=DMARC1; p=reject;/);
    assert.doesNotMatch(out, /PRIVATE KEY|\$argon2|v1:REPLACE/);
    assert.ok(!out.includes(CLOUDFLARE_TOKEN));
  });
});

describe("mailstack preview of a first deploy", () => {
  test("without --state every resource is a create; records whose content waits on Hetzner's addresses show [unknown], the others their content", async () => {
    const { code, out } = await preview(["--stack", "dev", "--project", ROOT]);
    assert.equal(code, 0);
    assert.match(out, /^warning: no --state: comparing against an empty stack \(a first deploy\)$/m);
    assert.match(out, /^ {2}\+ {2}mail\.example\.org {2}A {2}\[unknown\]$/m);
    assert.match(
      out,
      /^ {2}\+ {2}_dmarc\.example\.net {2}TXT {2}"v=DMARC1; p=quarantine; sp=quarantine; adkim=r; aspf=r; rua=mailto:dmarc-reports@example\.net"$/m,
    );
    assert.match(out, /^ {4}\+ \d+ to create$/m);
    assert.doesNotMatch(out, /to update|to replace|to delete/);
  });
});

describe("bad arguments", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "infra", "cli", "main.ts"), "preview", ...args], {
      cwd: ROOT,
      encoding: "utf8",
    });

  test("no --stack: exit 2 with the usage", () => {
    const r = cli("--state", stateFile);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^mailstack preview: --stack: required/);
    assert.match(r.stderr, /usage: mailstack preview --stack NAME/);
  });

  test("a state file that is not there: exit 1 naming it", () => {
    const r = cli("--stack", "dev", "--state", path.join(work, "missing.json"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^mailstack preview: --state .*missing\.json: no such file$/m);
  });
});
