import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import * as dgram from "node:dgram";
import * as net from "node:net";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  adServers,
  createAdQuery,
  encodeQuery,
  parseResponse,
  parseServer,
  RRTYPE,
  systemServers,
} from "../../server-bootstrap/maild/outbound/dns-ad";

// Hand-made wire format (RFC 1035 4.1): header, question, answers.
const u16 = (n: number) => [n >> 8, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const name = (...labels: string[]) => [...labels.flatMap((l) => [l.length, ...Buffer.from(l, "ascii")]), 0];
const QNAME = name("_25", "_tcp", "mx", "example", "org");
const TLSA_311 = [3, 1, 1, ...Buffer.alloc(32, 0xab)];

/** A response to `_25._tcp.mx.example.org TLSA` with `flags` and one TLSA answer whose owner is a pointer to the question name (offset 12). */
function tlsaResponse(id: number, flags: number, answers = 1): Buffer {
  return Buffer.from([
    ...u16(id),
    ...u16(flags),
    ...u16(1),
    ...u16(answers),
    ...u16(0),
    ...u16(0),
    ...QNAME,
    ...u16(52),
    ...u16(1),
    ...(answers ? [0xc0, 12, ...u16(52), ...u16(1), ...u32(300), ...u16(TLSA_311.length), ...TLSA_311] : []),
  ]);
}

// QR=1, RD=1, RA=1, and AD (0x0020), TC (0x0200), rcode in the low 4 bits.
const QR_RD_RA = 0x8180;
const AD = 0x0020;
const TC = 0x0200;

describe("DNS query encoding", () => {
  test("a query sets RD and AD (RFC 6840 5.7), asks one question and carries an EDNS0 OPT for 1232 bytes", () => {
    const q = encodeQuery(0x1234, "_25._tcp.mx.example.org", RRTYPE.TLSA);
    assert.equal(q.readUInt16BE(0), 0x1234);
    assert.equal(q.readUInt16BE(2), 0x0120);
    assert.deepEqual([q.readUInt16BE(4), q.readUInt16BE(6), q.readUInt16BE(8), q.readUInt16BE(10)], [1, 0, 0, 1]);
    assert.deepEqual([...q.subarray(12, 12 + QNAME.length)], QNAME);
    const after = 12 + QNAME.length;
    assert.deepEqual([q.readUInt16BE(after), q.readUInt16BE(after + 2)], [52, 1]);
    // OPT: root name, type 41, class = payload size, ttl 0 (DO clear), no options
    assert.deepEqual([...q.subarray(after + 4)], [0, ...u16(41), ...u16(1232), ...u32(0), ...u16(0)]);
  });

  test("labels longer than 63 bytes are refused", () => {
    assert.throws(() => encodeQuery(1, `${"a".repeat(64)}.example`, RRTYPE.A), /label/);
  });
});

describe("DNS response parsing", () => {
  test("AD=1 is reported as authenticated, with the TLSA record behind a compressed owner name", () => {
    const r = parseResponse(tlsaResponse(7, QR_RD_RA | AD));
    assert.equal(r.id, 7);
    assert.equal(r.authenticated, true);
    assert.equal(r.truncated, false);
    assert.equal(r.rcode, 0);
    assert.deepEqual(r.question, { name: "_25._tcp.mx.example.org", type: 52 });
    assert.equal(r.answers.length, 1);
    assert.deepEqual(
      { ...r.answers[0], data: [...r.answers[0].data] },
      { name: "_25._tcp.mx.example.org", type: 52, ttl: 300, data: TLSA_311 },
    );
  });

  test("AD=0 is not authenticated", () => {
    assert.equal(parseResponse(tlsaResponse(7, QR_RD_RA)).authenticated, false);
  });

  test("TC and the RCODE are read from the header", () => {
    const r = parseResponse(tlsaResponse(7, QR_RD_RA | TC | 3, 0));
    assert.equal(r.truncated, true);
    assert.equal(r.rcode, 3);
    assert.deepEqual(r.answers, []);
  });

  test("an MX record's exchange is decompressed (a pointer into the question)", () => {
    // example.org MX: 10 mx.<pointer to "example.org" in the question at offset 12>
    const q = name("example", "org");
    const rdata = [...u16(10), 2, ...Buffer.from("mx"), 0xc0, 12];
    const r = parseResponse(
      Buffer.from([
        ...u16(9),
        ...u16(QR_RD_RA),
        ...u16(1),
        ...u16(1),
        ...u16(0),
        ...u16(0),
        ...q,
        ...u16(15),
        ...u16(1),
        0xc0,
        12,
        ...u16(15),
        ...u16(1),
        ...u32(600),
        ...u16(rdata.length),
        ...rdata,
      ]),
    );
    assert.deepEqual(
      r.answers.map((a) => [a.name, a.type, a.ttl, a.exchange, a.data.readUInt16BE(0)]),
      [["example.org", 15, 600, "mx.example.org", 10]],
    );
  });

  test("a negative answer's lifetime is the authority SOA's TTL, at most its MINIMUM (RFC 2308 5); none without a SOA", () => {
    const q = name("_mta-sts", "example", "org");
    // SOA owner: pointer to "example.org" inside the question (offset 12 + 9: after "_mta-sts")
    const soa = (ttl: number, minimum: number) => {
      const rdata = [
        ...name("ns", "example", "org"),
        ...name("hostmaster", "example", "org"),
        ...u32(2025),
        ...u32(3600),
        ...u32(600),
        ...u32(86400),
        ...u32(minimum),
      ];
      return [0xc0, 21, ...u16(6), ...u16(1), ...u32(ttl), ...u16(rdata.length), ...rdata];
    };
    const nxdomain = (authority: number[][]) =>
      parseResponse(
        Buffer.from([
          ...u16(3),
          ...u16(QR_RD_RA | 3),
          ...u16(1),
          ...u16(0),
          ...u16(authority.length),
          ...u16(0),
          ...q,
          ...u16(16),
          ...u16(1),
          ...authority.flat(),
        ]),
      );
    assert.equal(nxdomain([soa(3600, 300)]).negativeTtl, 300);
    assert.equal(nxdomain([soa(60, 300)]).negativeTtl, 60);
    assert.equal(nxdomain([]).negativeTtl, undefined);
  });

  test("a query (QR=0), a short header, a pointer loop and a truncated record are refused", () => {
    assert.throws(() => parseResponse(tlsaResponse(7, 0x0100)), /query/);
    assert.throws(() => parseResponse(Buffer.alloc(5)), /header/);
    const loop = Buffer.from([...u16(1), ...u16(QR_RD_RA), ...u16(1), ...u16(0), ...u16(0), ...u16(0), 0xc0, 12, ...u16(1), ...u16(1)]);
    assert.throws(() => parseResponse(loop), /pointer/);
    const full = tlsaResponse(7, QR_RD_RA | AD);
    assert.throws(() => parseResponse(full.subarray(0, full.length - 5)), /truncated/);
  });
});

describe("DNS server selection", () => {
  test("server strings in config.ts form", () => {
    assert.deepEqual(parseServer("198.51.100.53"), { host: "198.51.100.53", port: 53 });
    assert.deepEqual(parseServer("198.51.100.53:5353"), { host: "198.51.100.53", port: 5353 });
    assert.deepEqual(parseServer("2001:db8::53"), { host: "2001:db8::53", port: 53 });
    assert.deepEqual(parseServer("[2001:db8::53]:5353"), { host: "2001:db8::53", port: 5353 });
  });

  test("without configured servers, resolv.conf's nameservers are used; none listed means 127.0.0.1", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dns-ad-"));
    try {
      const file = path.join(dir, "resolv.conf");
      fs.writeFileSync(file, "search example.org\nnameserver 198.51.100.53\n# nameserver 198.51.100.99\nnameserver 2001:db8::53\n");
      assert.deepEqual(systemServers(file), [
        { host: "198.51.100.53", port: 53 },
        { host: "2001:db8::53", port: 53 },
      ]);
      fs.writeFileSync(file, "options edns0\n");
      assert.deepEqual(systemServers(file), [{ host: "127.0.0.1", port: 53 }]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(adServers(["198.51.100.53:5353"]), [{ host: "198.51.100.53", port: 5353 }]);
  });
});

describe("queries over the wire (loopback)", () => {
  const closers: (() => void)[] = [];
  after(() => closers.forEach((c) => c()));

  /** A UDP (and TCP, same port) server on 127.0.0.1 that answers each query through `respond`. */
  async function fakeServer(respond: (query: Buffer, transport: "udp" | "tcp") => Buffer[]): Promise<number> {
    const udp = dgram.createSocket("udp4");
    udp.on("message", (msg, rinfo) => {
      for (const out of respond(msg, "udp")) udp.send(out, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    const port = udp.address().port;
    const tcp = net.createServer((s) => {
      s.on("data", (d) => {
        for (const out of respond(d.subarray(2), "tcp")) s.write(Buffer.concat([Buffer.from(u16(out.length)), out]));
      });
    });
    await new Promise<void>((r) => tcp.listen(port, "127.0.0.1", r));
    closers.push(
      () => udp.close(),
      () => tcp.close(),
    );
    return port;
  }

  test("an answer with another id is ignored; the matching one is returned", async () => {
    const port = await fakeServer((q) => {
      const id = q.readUInt16BE(0);
      return [tlsaResponse((id + 1) & 0xffff, QR_RD_RA), tlsaResponse(id, QR_RD_RA | AD)];
    });
    const r = await createAdQuery([{ host: "127.0.0.1", port }], 2000)("_25._tcp.mx.example.org", RRTYPE.TLSA);
    assert.equal(r.authenticated, true);
    assert.equal(r.answers.length, 1);
  });

  test("a truncated UDP answer is asked again over TCP", async () => {
    const seen: string[] = [];
    const port = await fakeServer((q, transport) => {
      seen.push(transport);
      const id = q.readUInt16BE(0);
      return [transport === "udp" ? tlsaResponse(id, QR_RD_RA | AD | TC, 0) : tlsaResponse(id, QR_RD_RA | AD)];
    });
    const r = await createAdQuery([{ host: "127.0.0.1", port }], 2000)("_25._tcp.mx.example.org", RRTYPE.TLSA);
    assert.deepEqual(seen, ["udp", "tcp"]);
    assert.equal(r.truncated, false);
    assert.equal(r.answers.length, 1);
  });

  test("a silent server is a rejection after the timeout, not a hang", async () => {
    const port = await fakeServer(() => []);
    await assert.rejects(createAdQuery([{ host: "127.0.0.1", port }], 100)("_25._tcp.mx.example.org", RRTYPE.TLSA), /no answer/);
  });
});
