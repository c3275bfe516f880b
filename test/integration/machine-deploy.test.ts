// The program's real deploy commands on a machine of the local internet, systemd on: the install
// command MailDaemon runs (server-bootstrap/install/deploy-commands.ts, without --no-systemctl)
// installs and starts maild and Dovecot through the machine's systemctl; power cycles behave as
// a reboot does; a replaced server with the same volume keeps the mail.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import nodemailer from "nodemailer";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { makeTestTls, type TestTls } from "../../infra/local-internet/test-tls";
import { Machine } from "../../infra/local-internet/machine/machine";
import { MachineVolume } from "../../infra/local-internet/machine/machine-volume";
import { readOverImap } from "../../infra/demo/mail-flows";
import { bundleDaemon } from "../../server-bootstrap/install/daemon-bundle";
import { releaseVolumeCommand, type DeployCommandOptions } from "../../server-bootstrap/install/deploy-commands";
import type { DeployInput } from "../../server-bootstrap/install/deploy-files";
import { argon2idHash } from "../../components/shared/argon2id";
import { bootServer, deployOverSsh, onServer, serverKeys, sshTarget, summaryOf, type ServerKeys } from "./machine-fixture";
import { acceptsConnections } from "../../infra/local-internet/wait-for-port";
import { TEST_DEPLOY_SPAM } from "../fixtures/deploy-spam";

const HOSTNAME = "mail.example.test";
const USER = "alice@example.test";
const PASSWORD = "alice on a machine";
const MESSAGE_ID = "<kept-across-machines@example.net>";

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("deploying onto a machine, with systemd", () => {
  let internet: LocalInternet;
  let box: NetHost;
  let keys: ServerKeys;
  let volume: MachineVolume;
  let machine: Machine;
  let tls: TestTls;
  let bundle: string;
  let input: DeployInput;
  let options: DeployCommandOptions;
  let firstMachineId: string;
  const imap = () => ({ host: box.ipv4, servername: HOSTNAME, caPem: tls.caPem, user: USER, password: PASSWORD });
  const onBox = (command: string) => onServer(sshTarget(box, keys), command);
  const mainPid = async (unit: string) => Number((await onBox(`systemctl show -p MainPID --value ${unit}`)).stdout.trim());

  before(async () => {
    internet = await LocalInternet.create();
    box = await internet.addHost("box");
    keys = await serverKeys(internet.workDir);
    // Created with format ext4, as MailHost creates it.
    volume = await MachineVolume.create({ dir: path.join(internet.workDir, "volumes"), id: "32000001", sizeGb: 10, format: "ext4" });
    machine = await bootServer({ internet, host: box, keys, volume, serverId: "11000001" });
    tls = await makeTestTls(path.join(internet.workDir, "tls"), [HOSTNAME, box.ipv4], "box");
    bundle = bundleDaemon(path.join(internet.workDir, "bundle", "maild.js"));
    input = {
      hostname: HOSTNAME,
      domains: [{ name: "example.test", dkim: [] }],
      users: [{ address: USER, passwordHash: argon2idHash(PASSWORD) }],
      aliases: [],
      tls: { certificatePem: fs.readFileSync(tls.certPath, "utf8"), privateKeyPem: fs.readFileSync(tls.keyPath, "utf8") },
      spam: TEST_DEPLOY_SPAM,
      // Nothing answers DNS on the machine's resolver: lookups fail at once instead of timing out.
      maild: { dnsServers: ["127.0.0.1"], shutdownTimeoutMs: 2000 },
    };
    options = { stageDir: "/root/.mailstack-deploy", dataDevice: volume.devicePath };
  });

  after(async () => {
    await machine?.destroy();
    await volume?.forget();
    await internet?.destroy();
  });

  test("the install command installs and starts the spam filter, maild and Dovecot through systemctl", async () => {
    const { install, machineId } = await deployOverSsh(sshTarget(box, keys), input, bundle, options);
    firstMachineId = machineId;
    assert.equal(install.code, 0, install.stderr);
    assert.match(
      summaryOf(install),
      / actions=sieve:compile,systemd:daemon-reload,metadata-guard:apply,unbound:start,redis-server:start,rspamd:start,maild:enable,maild:start,tls-watch:enable,dovecot:restart$/,
    );
    const states = await onBox(
      "systemctl is-enabled maild dovecot maild-tls-reload.path unbound redis-server rspamd; systemctl is-active maild dovecot maild-tls-reload.path unbound redis-server rspamd",
    );
    assert.deepEqual(states.stdout.trim().split("\n"), [...Array(6).fill("enabled"), ...Array(6).fill("active")]);
    for (const port of [25, 587, 465, 80, 443, 993]) assert.equal(await acceptsConnections(box.ipv4, port), true, `port ${port}`);
  });

  test("maild runs as the unit's User= with only the ambient CAP_NET_BIND_SERVICE, in the unit's cgroup", async () => {
    const pid = await mainPid("maild");
    const r = await onBox(`grep -E '^(Uid|CapEff):' /proc/${pid}/status; grep '^0::' /proc/${pid}/cgroup`);
    const [uid, capEff, cgroup] = r.stdout.trim().split("\n");
    assert.match(uid, /^Uid:\s+2525\s+2525\s+2525\s+2525$/);
    assert.equal(BigInt(`0x${capEff.split(/\s+/)[1]}`), 1n << 10n);
    assert.equal(cgroup, "0::/system.slice/maild.service");
  });

  test("a second install of the same inputs changes nothing and keeps the same maild process", async () => {
    const pid = await mainPid("maild");
    const { install } = await deployOverSsh(sshTarget(box, keys), input, bundle, options);
    assert.equal(summaryOf(install), "mailstack-install: changed=none actions=none");
    assert.equal(await mainPid("maild"), pid);
  });

  test("mail accepted on 25 is readable over IMAPS from Dovecot", async () => {
    const transport = nodemailer.createTransport({ host: box.ipv4, port: 25, secure: false, ignoreTLS: true, name: "peer.example.net" });
    await transport.sendMail({ from: "someone@example.net", to: USER, subject: "kept", text: "hello", messageId: MESSAGE_ID });
    const read = await readOverImap(imap(), MESSAGE_ID, HOSTNAME);
    assert.equal(read.ok, true, read.error);
  });

  test("maild killed with SIGKILL is started again by Restart=on-failure", async () => {
    const pid = await mainPid("maild");
    await onBox(`kill -KILL ${pid}`);
    const next = await until("maild restarted", async () => {
      const p = await mainPid("maild");
      const active = (await onBox("systemctl is-active maild")).stdout.trim();
      return p !== pid && p > 0 && active === "active" ? p : undefined;
    });
    assert.notEqual(next, pid);
    assert.match((await onBox("journalctl -u maild -n 20")).stdout, /Main process exited, code=killed, status=9\/KILL/);
  });

  test("a certificate renamed into place triggers maild-tls-reload.path, which reloads (not restarts) Dovecot", async () => {
    const pid = await mainPid("dovecot");
    await onBox(
      "cp -p /var/lib/maild/tls/cert.pem /var/lib/maild/tls/.cert.new && mv /var/lib/maild/tls/.cert.new /var/lib/maild/tls/cert.pem",
    );
    await until("dovecot reloaded", async () =>
      (await onBox("journalctl -u dovecot")).stdout.includes("Reloaded Dovecot") ? true : undefined,
    );
    assert.equal(await mainPid("dovecot"), pid);
  });

  test("after a hard power cycle the enabled services run again (the metadata fence among them), the volume is mounted from fstab and the mail is there", async () => {
    await machine.powerOff();
    assert.equal(await acceptsConnections(box.ipv4, 25), false);
    await machine.powerOn();
    await machine.waitForBoot();
    await until("maild listening", async () => ((await acceptsConnections(box.ipv4, 25)) ? true : undefined));
    const r = await onBox("systemctl is-active maild dovecot mailstack-metadata-guard; findmnt -n -o SOURCE /var/lib/maild");
    assert.deepEqual(r.stdout.trim().split("\n"), ["active", "active", "active", "/dev/sdb"]);
    // The power cycle emptied the namespace's firewall; the unit sysinit.target wants loaded it again.
    assert.equal((await onBox("nft list table inet mailstack_metadata >/dev/null && echo loaded")).stdout.trim(), "loaded");
    const read = await readOverImap(imap(), MESSAGE_ID, HOSTNAME);
    assert.equal(read.ok, true, read.error);
  });

  test("`systemctl disable --now maild` stops it, and it stays down after the next power cycle", async () => {
    const r = await onBox("systemctl disable --now maild; systemctl is-active maild; systemctl is-enabled maild");
    assert.deepEqual(r.stdout.trim().split("\n"), ["inactive", "disabled"]);
    assert.equal(await acceptsConnections(box.ipv4, 25), false);
    await machine.powerOff();
    await machine.powerOn();
    await machine.waitForBoot();
    const after = await onBox("systemctl is-active maild dovecot");
    assert.deepEqual(after.stdout.trim().split("\n"), ["inactive", "active"]);
    assert.equal(await acceptsConnections(box.ipv4, 25), false);
  });

  test("a replaced server (new disk, new machine id, same volume) keeps the mail", async () => {
    // The program's release step on the old server, then the volume moves, as the engine orders it.
    const release = await onBox(releaseVolumeCommand(options, firstMachineId));
    assert.equal(release.code, 0, release.stderr);
    const { wasMounted } = await volume.detach();
    assert.equal(wasMounted, false, "the release step unmounts the volume before it is detached");
    await machine.destroy();
    machine = await bootServer({ internet, host: box, keys, volume, serverId: "11000002", name: "mail-2" });
    const { install, machineId } = await deployOverSsh(sshTarget(box, keys), input, bundle, options);
    assert.equal(install.code, 0, install.stderr);
    assert.notEqual(machineId, firstMachineId);
    assert.match(
      summaryOf(install),
      / actions=sieve:compile,systemd:daemon-reload,metadata-guard:apply,unbound:start,redis-server:start,rspamd:start,maild:enable,maild:start,tls-watch:enable,dovecot:restart$/,
    );
    const read = await readOverImap(imap(), MESSAGE_ID, HOSTNAME);
    assert.equal(read.ok, true, read.error);
  });
});
