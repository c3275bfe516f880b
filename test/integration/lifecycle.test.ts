// The life of a deployment in the local internet (issue 13): the real Pulumi program run by the
// offline engine in `up` mode, its steps in the engine's order, every @pulumi/command create,
// update and delete run on a machine that boots like a Hetzner server (infra/lifecycle/). The user
// flows run in sequence; after each one:
//   - the preview before it succeeded, and the DNS records `up` changed are exactly those the
//     preview planned (in the engine's steps and at the Cloudflare API), and knot serves what the
//     API holds;
//   - maild answers on 25/587/465/80/443 and Dovecot on 993;
//   - every message sent before it is readable over IMAPS after it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { Lifecycle, type FlowResult } from "../../infra/lifecycle/lifecycle";
import {
  DOVECOT_PORTS,
  MAILD_PORTS,
  portsAnswering,
  readMessage,
  sendMessage,
  type SentMessage,
} from "../../infra/lifecycle/lifecycle-mail";
import { flowProblems } from "../../infra/lifecycle/flow-checks";
import { NEW_BUILD_BANNER, USER_FLOWS } from "../../infra/lifecycle/user-flows";

/** Certificates pebble issues live 3 minutes: the renewal flow waits until two thirds have passed. */
const CERTIFICATE_SECONDS = 180;

function flow(name: string) {
  const f = USER_FLOWS.find((x) => x.name === name);
  if (!f) throw new Error(`no user flow "${name}"`);
  return f;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function smtpBanner(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: 25 });
    let buf = "";
    sock.setTimeout(10_000, () => sock.destroy(new Error("no banner in 10 s")));
    sock.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("\r\n")) {
        sock.end("QUIT\r\n");
        resolve(buf.split("\r\n")[0]);
      }
    });
    sock.on("error", reject);
  });
}

/** The serial of the certificate the box serves on 443 (HTTPS). */
function servedSerial(host: string, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host, port: 443, servername }, () => {
      const serial = sock.getPeerCertificate().serialNumber;
      sock.end();
      resolve(serial.toUpperCase());
    });
    sock.on("error", reject);
  });
}

describe("the lifecycle of a deployment, on a real engine and a real box", () => {
  let lc: Lifecycle;
  const sent: SentMessage[] = [];
  const results = new Map<string, FlowResult[]>();

  before(async () => {
    lc = await Lifecycle.start({ certificateValiditySeconds: CERTIFICATE_SECONDS });
  });

  after(async () => {
    await lc?.stop();
  });

  /** Runs a flow (after sending a message, when a server is there to take it) and checks what every flow must hold. */
  async function run(name: string): Promise<FlowResult[]> {
    const f = flow(name);
    if (lc.backend.current()) sent.push(await sendMessage(lc, "alice@example.org", `sent before "${name}"`));
    const runs = await f.run(lc);
    results.set(name, runs);
    assert.deepEqual(await flowProblems(lc, f, runs, sent), []);
    return runs;
  }

  test("first up: everything is created, the box is deployed", async () => {
    const [r] = await run("first up");
    assert.ok(r.up.steps.every((s) => s.op === "create"));
    assert.ok(r.commands.some((c) => c.kind === "remote" && /install\.sh' --stage/.test(c.command)));
    assert.ok(r.dnsApplied.length > 0);
  });

  test("unchanged up: no step does anything, no command runs", async () => {
    const [r] = await run("unchanged up");
    assert.deepEqual([...new Set(r.up.steps.map((s) => s.op))], ["same"]);
    assert.deepEqual(r.commands, []);
    assert.deepEqual(r.dnsApplied, []);
  });

  test("add a user: the install step is updated in place; the new mailbox gets and reads mail", async () => {
    const [r] = await run("add a user");
    assert.deepEqual(
      r.up.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`),
      ["update mail-install"],
    );
    const m = await sendMessage(lc, "carol@example.org", "to the new mailbox");
    const read = await readMessage(lc, m);
    assert.equal(read.ok, true, read.error);
  });

  test("add an alias: mail to it reaches its mailbox", async () => {
    const [r] = await run("add an alias");
    assert.deepEqual(
      r.up.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`),
      ["update mail-install"],
    );
    const m = await sendMessage(lc, "sales@example.org", "to the new alias");
    const read = await readMessage(lc, { ...m, to: "carol@example.org" });
    assert.equal(read.ok, true, read.error);
  });

  test("rotate DKIM: the new generation's two keys are published, nothing else in DNS changes", async () => {
    const [r] = await run("rotate DKIM");
    assert.deepEqual(r.dnsApplied, ["create TXT s2-ed25519._domainkey.example.org", "create TXT s2-rsa._domainkey.example.org"]);
  });

  test("renew the certificate: a new certificate for the same key, served by the box", async () => {
    const before = lc.certificate()!;
    await run("renew the certificate");
    const after = lc.certificate()!;
    assert.notEqual(after.serialHex, before.serialHex);
    assert.deepEqual(results.get("renew the certificate")![0].dnsApplied, [], "TLSA pins the key, CAA the account: no DNS change");
    const bare = (hex: string) => hex.toUpperCase().replace(/^0+/, "");
    await until("the box serving the renewed certificate", async () =>
      bare(await servedSerial(lc.hosts.box.ipv4, lc.hostname)) === bare(after.serialHex) ? true : undefined,
    );
  });

  test("new maild build: the daemon is copied and the install updated; the new build answers", async () => {
    const [r] = await run("new maild build");
    assert.deepEqual(
      r.up.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`),
      ["update mail-daemon", "update mail-install"],
    );
    assert.match(await smtpBanner(lc.hosts.box.ipv4), new RegExp(NEW_BUILD_BANNER.replace(/[()]/g, "\\$&")));
  });

  test("resize the server type: the same machine, powered off and on with the new type; no command runs", async () => {
    const machineBefore = lc.backend.current()!.machineId;
    const [r] = await run("resize the server type");
    assert.deepEqual(
      r.up.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`),
      ["update mail-server"],
    );
    assert.equal(lc.server()!.type.name, "cx33");
    assert.equal(lc.backend.current()!.machineId, machineBefore);
  });

  test("replace the server (new image): a new machine with the same addresses, host key and volume", async () => {
    const machineBefore = lc.backend.current()!.machineId;
    const [r] = await run("replace the server (new image)");
    assert.ok(r.up.steps.some((s) => s.op === "delete-replaced" && s.urn.endsWith("::mail-server")));
    assert.notEqual(lc.backend.current()!.machineId, machineBefore);
    assert.equal(lc.server()!.image.name, "ubuntu-24.04");
    assert.deepEqual(lc.backend.detachedWhileMounted, [], "the release step unmounted the volume before it was detached");
  });

  test("destroy keeping IPs and volume: the server and the records go, the addresses and the volume stay", async () => {
    const [keep, destroy] = await run("destroy keeping IPs and volume");
    assert.deepEqual([...new Set(keep.up.steps.map((s) => s.op))], ["same"]);
    assert.deepEqual(
      destroy.up.steps
        .filter((s) => s.op === "retain")
        .map((s) => s.urn.split("::").pop())
        .sort(),
      ["mail-data", "mail-ipv4", "mail-ipv6", "mail-ptr-ipv4", "mail-ptr-ipv6"],
    );
    assert.equal(lc.server(), undefined);
    assert.equal(lc.hcloud.primaryIps.size, 2);
    assert.equal(lc.hcloud.volumes.size, 1);
    assert.equal(lc.cloudflare.records.size, 0);
    assert.deepEqual(Object.values(await portsAnswering(lc.hosts.box.ipv4, [...MAILD_PORTS, ...DOVECOT_PORTS], 1000)).some(Boolean), false);
  });

  test("come back: the addresses and the volume are adopted, and the mail kept on it is there", async () => {
    const [r] = await run("come back");
    assert.deepEqual(
      r.up.steps
        .filter((s) => s.op === "import")
        .map((s) => s.urn.split("::").pop())
        .sort(),
      ["mail-data", "mail-ipv4", "mail-ipv6"],
    );
    assert.equal(lc.server()!.ipv4Id !== undefined, true);
  });
});
