// maild's SRS against an independent implementation: Debian's postsrsd 1.10 (libsrs2's code), run
// in the foreground inside a namespace host of the local internet and asked over its Postfix
// tcp_table protocol (`get <url-encoded address>` -> `200 <url-encoded answer>` or `500 <reason>`;
// postsrsd 1.10 postsrsd.c handle_forward/handle_reverse). postsrsd 1.x writes the hash in base64
// with `+/`, maild (as postsrsd 2.x) with `-_`; both read either.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { waitForPort } from "../../infra/local-internet/wait-for-port";
import { Srs } from "../../server-bootstrap/maild/srs";

const SECRET = "a shared secret for both implementations";
const DOMAIN = "forwarder.example";
const FORWARD_PORT = 10001;
const REVERSE_PORT = 10002;

/** One tcp_table lookup. */
function lookup(host: string, port: number, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let got = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      got += d;
      if (got.includes("\n")) {
        socket.end();
        resolve(decodeURIComponent(got.trim()));
      }
    });
    socket.on("error", reject);
    socket.write(`get ${encodeURIComponent(address)}\n`);
  });
}

/** postsrsd 1.x spells the hash with +/, we with -_: compare in one spelling. */
const asBase64Url = (a: string) =>
  a.replace(/^(SRS[01]=)([^=]{4})/i, (_m, tag: string, h: string) => tag + h.replace(/\+/g, "-").replace(/\//g, "_"));
const asBase64 = (a: string) =>
  a.replace(/^(SRS[01]=)([^=]{4})/i, (_m, tag: string, h: string) => tag + h.replace(/-/g, "+").replace(/_/g, "/"));

const SENDERS = [
  "alice@origin.example",
  "Bob.Smith@Mixed.Case.Example",
  "x=y+z@origin.example",
  ...Array.from({ length: 40 }, (_, i) => `user${i}@host${i % 7}.example`),
];

describe("SRS: maild and Debian's postsrsd agree", () => {
  let internet: LocalInternet;
  let host: NetHost;
  let postsrsd: ChildProcess;
  const srs = new Srs({ secrets: [SECRET] });

  before(async () => {
    if (!fs.existsSync("/usr/sbin/postsrsd")) throw new Error('/usr/sbin/postsrsd not found; install the Debian package "postsrsd"');
    internet = await LocalInternet.create();
    host = await internet.addHost("srs");
    const secretFile = path.join(internet.workDir, "srs-secret");
    fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    postsrsd = host.spawn([
      "/usr/sbin/postsrsd",
      `-s${secretFile}`,
      `-d${DOMAIN}`,
      `-l${host.ipv4}`,
      `-f${FORWARD_PORT}`,
      `-r${REVERSE_PORT}`,
      "-4",
    ]);
    const alive = () => postsrsd.exitCode === null;
    await waitForPort(host.ipv4, FORWARD_PORT, "postsrsd", 10_000, alive);
    await waitForPort(host.ipv4, REVERSE_PORT, "postsrsd", 10_000, alive);
  });

  after(async () => {
    if (postsrsd) await LocalInternet.stopProcess(postsrsd);
    await internet?.destroy();
  });

  test("each SRS0 address maild writes is the one postsrsd writes for the same sender and day", async () => {
    for (const sender of SENDERS) {
      const theirs = await lookup(host.ipv4, FORWARD_PORT, sender);
      assert.match(theirs, /^200 /, `postsrsd forward ${sender}: ${theirs}`);
      assert.equal(srs.forward(sender, DOMAIN), asBase64Url(theirs.slice(4)), sender);
    }
  });

  test("postsrsd's SRS0 addresses lead maild back to the original sender", async () => {
    for (const sender of SENDERS) {
      const theirs = (await lookup(host.ipv4, FORWARD_PORT, sender)).slice(4);
      assert.deepEqual(srs.reverse(theirs), { ok: true, address: sender }, theirs);
    }
  });

  test("maild's SRS0 addresses lead postsrsd back to the original sender", async () => {
    for (const sender of SENDERS) {
      const ours = srs.forward(sender, DOMAIN);
      assert.equal(await lookup(host.ipv4, REVERSE_PORT, asBase64(ours)), `200 ${sender}`, ours);
    }
  });

  test("SRS1: both wrap another forwarder's SRS0 address alike and unwrap each other's", async () => {
    const firstHop = new Srs({ secrets: ["first hop's secret"] });
    for (const sender of SENDERS.slice(0, 10)) {
      const srs0 = firstHop.forward(sender, "first-hop.example");
      const theirs = (await lookup(host.ipv4, FORWARD_PORT, asBase64(srs0))).slice(4);
      assert.match(theirs, /^SRS1=/, `postsrsd forward ${srs0}: ${theirs}`);
      assert.equal(asBase64Url(srs.forward(asBase64(srs0), DOMAIN)), asBase64Url(theirs), srs0);
      assert.deepEqual(srs.reverse(theirs), { ok: true, address: asBase64(srs0) });
      assert.equal(await lookup(host.ipv4, REVERSE_PORT, asBase64(srs.forward(srs0, DOMAIN))), `200 ${srs0}`);
    }
  });

  test("an address with a forged hash is refused by both", async () => {
    const forged = srs.forward("victim@origin.example", DOMAIN).replace(/^SRS0=..../, "SRS0=AAAA");
    assert.deepEqual(srs.reverse(forged), { ok: false, reason: "bad-hash" });
    assert.match(await lookup(host.ipv4, REVERSE_PORT, forged), /^500 Hash invalid/);
  });
});
