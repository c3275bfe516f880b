// The load of issue 15, measured on a running maild in the local internet: ten clients send at
// once a message with 300 DKIM-Signature fields (each a valid Ed25519 signature with its own l=,
// small values, so they are cheap to make and each costs a verifier a pass over the whole body if
// it hashes them all) and an 8 MB body, while an ordinary message is sent every second. Every
// ordinary message must be answered within 5 s, and maild's peak RSS must stay under 200 MiB.
// The figures (time to answer under load, peak RSS) are printed; the README's "maild under hostile
// load" section records them before and after.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { LocalInternet, type NetHost } from "../../infra/local-internet/netns";
import { startKnot } from "../../infra/local-internet/knot";
import { makeTestTls } from "../../infra/local-internet/test-tls";
import { startMaild, type MaildProcess } from "../harness/maild";
import { maildConfig } from "../fixtures/maild-config";
import { relaxedBody, relaxedHeader } from "../../server-bootstrap/maild/dkim-sign";

const NODE = path.resolve(__dirname, "../../node_modules/.bin/node");
const CLIENTS = 10;
const SIGNATURES = 300;
const BODY_BYTES = 8 * 1024 * 1024;
const ANSWER_WITHIN_MS = 5000;
const MAX_RSS_MIB = 200;

const dkimKey = generateKeyPairSync("ed25519");

/**
 * The hostile message: `SIGNATURES` DKIM-Signature fields over the same header fields, each with
 * its own l= (RFC 6376 3.5) and so its own body hash, all valid. Made by hand because no signer
 * writes hundreds of signatures with chosen body lengths; RFC 6376 3.7 and RFC 8463 3 (Ed25519
 * signs the SHA-256 of the data) as in server-bootstrap/maild/dkim-sign.ts.
 */
function hostileMessage(): Buffer {
  const line = "The quick brown fox jumps over the lazy dog, again and again, for a long while.\r\n";
  const body = Buffer.from(line.repeat(Math.ceil(BODY_BYTES / line.length)).slice(0, BODY_BYTES - (BODY_BYTES % line.length)), "latin1");
  const fields = [
    "From: Ann <ann@load.test>\r\n",
    "To: alice@example.org\r\n",
    "Subject: three hundred signatures\r\n",
    "Date: Sat, 21 Nov 2026 05:00:00 +0000\r\n",
    "Message-ID: <load@load.test>\r\n",
  ];
  const signedData = fields.map((f) => relaxedHeader(f) + "\r\n").join("");
  const canonical = relaxedBody(body);
  let signatures = "";
  for (let i = 0; i < SIGNATURES; i++) {
    const length = 64 + i * 97;
    const bh = createHash("sha256").update(canonical.subarray(0, length)).digest("base64");
    const unsigned = `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=load.test; s=s1; l=${length}; h=from:to:subject:date:message-id; bh=${bh}; b=`;
    const digest = createHash("sha256")
      .update(signedData + relaxedHeader(unsigned))
      .digest();
    signatures += `${unsigned}${sign(null, digest, dkimKey.privateKey).toString("base64")}\r\n`;
  }
  return Buffer.concat([Buffer.from(signatures + fields.join("") + "\r\n", "latin1"), body]);
}

const ORDINARY =
  "From: Ann <ann@load.test>\r\nTo: alice@example.org\r\nSubject: an ordinary message\r\nDate: Sat, 21 Nov 2026 05:00:00 +0000\r\n" +
  "Message-ID: <ordinary@load.test>\r\n\r\nHello.\r\n";

let internet: LocalInternet;
let mx: NetHost, sender: NetHost;
let maild: MaildProcess;

before(async () => {
  internet = await LocalInternet.create();
  const dns = await internet.addHost("dns");
  mx = await internet.addHost("mx");
  sender = await internet.addHost("sender");
  const publicKey = dkimKey.publicKey.export({ type: "spki", format: "der" }).subarray(-32).toString("base64");
  await startKnot(internet, dns, [
    {
      origin: "load.test.",
      lines: [
        `load.test. TXT "v=spf1 ip4:${sender.ipv4} ip6:${sender.ipv6} -all"`,
        `s1._domainkey.load.test. TXT "v=DKIM1; k=ed25519; p=${publicKey}"`,
        `_dmarc.load.test. TXT "v=DMARC1; p=none"`,
      ],
    },
  ]);
  await internet.setResolver(dns.ipv4);
  const tlsFiles = await makeTestTls(path.join(internet.workDir, "tls"), ["mx.example.org"], "mx");
  const config = maildConfig(mx, { dataDir: path.join(internet.workDir, "data"), tls: tlsFiles }, { dnsServers: [dns.ipv4] });
  maild = await startMaild(internet, mx, config as unknown as Record<string, unknown>);
});

after(async () => {
  if (process.env.MAILD_TEST_KEEP_LOG) fs.copyFileSync(maild.logPath, process.env.MAILD_TEST_KEEP_LOG);
  await internet?.destroy();
});

/** maild's resident set now and at its peak (VmHWM), in MiB, from /proc. */
function rss(): { now: number; peak: number } {
  const status = fs.readFileSync(`/proc/${maild.child.pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { now: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

interface Sent {
  ms: number;
  reply: string;
}

describe("maild under the load of issue 15", () => {
  test(`${CLIENTS} clients x ${SIGNATURES} DKIM signatures x 8 MB: an ordinary message is answered within ${ANSWER_WITHIN_MS / 1000} s, maild stays under ${MAX_RSS_MIB} MiB`, async () => {
    const bigPath = path.join(internet.workDir, "hostile.eml");
    const smallPath = path.join(internet.workDir, "ordinary.eml");
    const hostile = hostileMessage();
    fs.writeFileSync(bigPath, hostile);
    fs.writeFileSync(smallPath, ORDINARY);
    const idle = rss();
    const script = path.join(internet.workDir, "load.js");
    fs.writeFileSync(
      script,
      `
      const net = require("node:net");
      const fs = require("node:fs");
      const big = fs.readFileSync(${JSON.stringify(bigPath)});
      const small = fs.readFileSync(${JSON.stringify(smallPath)});
      // One SMTP transaction; resolves with the time from connect to the reply to the final dot.
      function send(data) {
        return new Promise((resolve) => {
          const t0 = Date.now();
          const s = net.connect(25, ${JSON.stringify(mx.ipv4)});
          s.setEncoding("latin1");
          const steps = ["EHLO load.test", "MAIL FROM:<ann@load.test>", "RCPT TO:<alice@example.org>", "DATA"];
          let buf = "", step = -1, done = false;
          const finish = (reply) => { if (done) return; done = true; s.end("QUIT\\r\\n"); resolve({ ms: Date.now() - t0, reply }); };
          s.on("data", (d) => {
            buf += d;
            let m;
            while ((m = /^(\\d{3}) ([^\\r\\n]*)\\r\\n/m.exec(buf))) {
              buf = buf.slice(m.index + m[0].length);
              const code = Number(m[1]);
              if (step === steps.length) return finish(m[0].trim());
              if (code >= 400) return finish(m[0].trim());
              step++;
              if (step < steps.length) s.write(steps[step] + "\\r\\n");
              else { s.write(data); s.write(".\\r\\n"); step = steps.length; }
            }
          });
          s.on("error", (e) => finish("error " + e.message));
          s.on("close", () => finish("closed"));
        });
      }
      (async () => {
        let loaded = true;
        const bigs = Promise.all(Array.from({ length: ${CLIENTS} }, () => send(big))).then((r) => { loaded = false; return r; });
        const probes = [];
        await new Promise((r) => setTimeout(r, 1000));
        while (loaded || probes.length < 3) {
          probes.push(await send(small));
          await new Promise((r) => setTimeout(r, 1000));
        }
        console.log(JSON.stringify({ big: await bigs, probes }));
      })();
    `,
    );
    const t0 = Date.now();
    const r = await sender.run([NODE, script], { timeoutMs: 900_000 });
    const wall = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    const { big, probes } = JSON.parse(r.stdout) as { big: Sent[]; probes: Sent[] };
    const peak = rss();
    const slowest = Math.max(...probes.map((p) => p.ms));
    console.log(
      [
        `hostile message: ${(hostile.length / 1024 / 1024).toFixed(1)} MiB, header section ${hostile.indexOf("\r\n\r\n") + 4} bytes`,
        `hostile messages answered after ${big.map((b) => (b.ms / 1000).toFixed(1)).join(", ")} s (${big[0].reply})`,
        `ordinary messages under load: ${probes.map((p) => (p.ms / 1000).toFixed(2)).join(", ")} s; slowest ${(slowest / 1000).toFixed(2)} s`,
        `maild RSS: ${idle.now.toFixed(0)} MiB idle, ${peak.peak.toFixed(0)} MiB peak; run ${wall.toFixed(0)} s`,
      ].join("\n"),
    );
    for (const b of big) assert.match(b.reply, /^250 /, "each hostile message is answered (accepted: it is a valid message)");
    for (const p of probes) assert.match(p.reply, /^250 /);
    assert.ok(slowest <= ANSWER_WITHIN_MS, `the slowest ordinary message took ${slowest} ms`);
    assert.ok(peak.peak < MAX_RSS_MIB, `maild's peak RSS was ${peak.peak.toFixed(0)} MiB`);
  });
});
