import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import { LocalInternet, withLocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot, type KnotServer } from "../../infra/local-internet/knot";
import { startPebble, httpsGetText, type PebbleCa } from "../../infra/local-internet/pebble";

const NODE = process.execPath;

/** A one-shot TCP echo of "hello from <name>" on port 7000, reached from `from`. */
async function tcpHello(from: NetHost, to: NetHost, address: string): Promise<string> {
  const connect = `const s=require("net").connect(7000,process.argv[1]);let d="";s.on("data",c=>d+=c);s.on("end",()=>process.stdout.write(d));s.on("error",e=>{console.error(e.message);process.exit(1)})`;
  for (let attempt = 0; ; attempt++) {
    const r = await from.run([NODE, "-e", connect, address], { timeoutMs: 5000 });
    if (r.code === 0) return r.stdout;
    // the server may still be binding
    if (attempt > 40) throw new Error(`connect from ${from.name} to ${to.name} at ${address}: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe("local-internet harness", () => {
  let net: LocalInternet;
  let dns: NetHost;
  let a: NetHost;
  let b: NetHost;
  let ca: NetHost;
  let knot: KnotServer;
  let pebble: PebbleCa;

  before(async () => {
    net = await LocalInternet.create();
    dns = await net.addHost("dns");
    a = await net.addHost("a");
    b = await net.addHost("b");
    ca = await net.addHost("ca");
    knot = await startKnot(net, dns, [
      { origin: "example.test.", lines: [`b.example.test. 300 IN A ${b.ipv4}`, `b.example.test. 300 IN AAAA ${b.ipv6}`] },
    ]);
    await net.setResolver(dns.ipv4);
    pebble = await startPebble(net, ca, { dnsServer: `${dns.ipv4}:53` });
  });
  after(async () => {
    await net?.destroy();
  });

  test("two hosts reach each other over IPv4 and IPv6", async () => {
    b.spawn([NODE, "-e", `require("net").createServer(s=>s.end("hello from b")).listen(7000,"::")`]);
    assert.equal(await tcpHello(a, b, b.ipv4), "hello from b");
    assert.equal(await tcpHello(a, b, b.ipv6), "hello from b");
  });

  test("a host resolves a name served by knot with dig and with node's resolver", async () => {
    const dig = await a.run(["dig", "+short", "b.example.test", "A"]);
    assert.equal(dig.stdout.trim(), b.ipv4);
    const viaNode = await a.run([
      NODE,
      "-e",
      `require("dns").promises.resolve6("b.example.test").then(r=>process.stdout.write(r.join(",")),e=>{console.error(e.message);process.exit(1)})`,
    ]);
    assert.equal(viaNode.stdout, b.ipv6);
  });

  test("addRecords replaces records and removeRecords deletes them", async () => {
    await knot.addRecords("example.test.", [`txt.example.test. 60 IN TXT "first value"`]);
    await knot.addRecords("example.test.", [`txt.example.test. 60 IN TXT "second value"`]);
    const r1 = await a.run(["dig", "+short", "txt.example.test", "TXT"]);
    assert.equal(r1.stdout.trim(), `"second value"`);
    await knot.removeRecords("example.test.", "txt.example.test.", "TXT");
    const r2 = await a.run(["dig", "+short", "txt.example.test", "TXT"]);
    assert.equal(r2.stdout.trim(), "");
  });

  test("an RFC 2136 update signed with the TSIG key becomes visible", async () => {
    const script = [
      `server ${dns.ipv4} 53`,
      "zone example.test.",
      `update add dyn.example.test. 60 IN TXT "via nsupdate"`,
      "send",
      "",
    ].join("\n");
    const r = await a.run(["nsupdate", "-y", `${knot.tsig.algorithm}:${knot.tsig.name}:${knot.tsig.secretB64}`], { input: script });
    assert.equal(r.code, 0, r.stderr);
    const dig = await a.run(["dig", "+short", "dyn.example.test", "TXT"]);
    assert.equal(dig.stdout.trim(), `"via nsupdate"`);
  });

  test("an RFC 2136 update with a wrong TSIG secret is refused", async () => {
    const script = [`server ${dns.ipv4} 53`, "zone example.test.", `update add bad.example.test. 60 IN TXT "forged"`, "send", ""].join(
      "\n",
    );
    const wrong = Buffer.alloc(32, 7).toString("base64");
    const r = await a.run(["nsupdate", "-y", `hmac-sha256:${knot.tsig.name}:${wrong}`], { input: script });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NOTAUTH|BADSIG|tsig verify failure/i);
    const dig = await a.run(["dig", "+short", "bad.example.test", "TXT"]);
    assert.equal(dig.stdout.trim(), "");
  });

  test("pebble's directory answers over HTTPS trusting listenerCaPem", async () => {
    const dir = JSON.parse(await httpsGetText(pebble.directoryUrl, pebble.listenerCaPem)) as Record<string, unknown>;
    assert.equal(typeof dir.newOrder, "string");
    assert.equal(typeof dir.newAccount, "string");
    const root = new X509Certificate(await pebble.issuingRootPem());
    assert.equal(root.ca, true);
  });
});

describe("local-internet teardown", () => {
  test("destroy() leaves no namespace, veth, process or work dir behind", async () => {
    let prefix = "";
    let workDir = "";
    let pid = 0;
    await withLocalInternet(async (net) => {
      prefix = net.prefix;
      workDir = net.workDir;
      const h = await net.addHost("x");
      await net.addHost("y");
      const child = h.spawn(["sleep", "600"]);
      pid = child.pid!;
      assert.match(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(`${prefix}-x`));
    });
    assert.doesNotMatch(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(prefix));
    assert.doesNotMatch(execFileSync("ip", ["link"], { encoding: "utf8" }), new RegExp(prefix));
    assert.equal(fs.existsSync(`/etc/netns/${prefix}-x`), false);
    assert.equal(fs.existsSync(workDir), false);
    assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
  });

  test("withLocalInternet cleans up when the test body throws", async () => {
    let prefix = "";
    await assert.rejects(
      withLocalInternet(async (net) => {
        prefix = net.prefix;
        await net.addHost("z");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.doesNotMatch(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(prefix));
    assert.doesNotMatch(execFileSync("ip", ["link"], { encoding: "utf8" }), new RegExp(prefix));
  });

  test("a test process that crashes leaves nothing behind (exit hook)", async () => {
    const script = `
      const { LocalInternet } = require(${JSON.stringify(require.resolve("../../infra/local-internet/netns"))});
      (async () => {
        const net = await LocalInternet.create();
        const h = await net.addHost("crash");
        h.spawn(["sleep", "600"]);
        process.stdout.write(net.prefix);
        throw new Error("crash on purpose");
      })();`;
    let out = "";
    try {
      execFileSync(NODE, ["--import", "tsx", "-e", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      out = (err as { stdout: string }).stdout;
    }
    assert.match(out, /^ms[0-9a-f]{4}$/);
    assert.doesNotMatch(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(out));
    assert.doesNotMatch(execFileSync("ip", ["link"], { encoding: "utf8" }), new RegExp(out));
  });
});
