import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { HeaderSection, deliveredToAddress } from "../../server-bootstrap/maild/header-section";

/** Feeds `message` to a HeaderSection in pieces of `size` bytes; returns it and what it passed on. */
async function scan(message: string, max: number, size: number): Promise<{ h: HeaderSection; passed: string }> {
  const h = new HeaderSection(max);
  const out: Buffer[] = [];
  h.on("data", (c: Buffer) => out.push(c));
  const buf = Buffer.from(message, "latin1");
  for (let i = 0; i < buf.length; i += size) h.write(buf.subarray(i, i + size));
  h.end();
  await new Promise((resolve) => h.once("end", resolve));
  return { h, passed: Buffer.concat(out).toString("latin1") };
}

const HEADER =
  "Received: from a by b; Sat, 21 Nov 2026 05:00:00 +0000\r\n" +
  "received:\r\n from c by d;\r\n\tSat, 21 Nov 2026 05:00:00 +0000\r\n" +
  "Delivered-To: Alice@Example.org\r\n" +
  "Delivered-To: <bob@example.org> (a comment)\r\n" +
  "X-Received: not a hop\r\n" +
  "Subject: Received: no\r\n" +
  "\r\n";

describe("the header section as DATA streams past", () => {
  test("however DATA is cut into chunks, the header section's size, hops and Delivered-To come out the same", async () => {
    const message = HEADER + "Received: in the body, not a hop\r\n";
    for (let size = 1; size <= message.length; size++) {
      const { h, passed } = await scan(message, 10_000, size);
      assert.equal(passed, message, `chunks of ${size}: everything is passed on`);
      assert.equal(h.complete, true);
      assert.equal(h.bytes, HEADER.length, `chunks of ${size}`);
      assert.equal(h.hops, 2, `chunks of ${size}`);
      assert.deepEqual(h.deliveredTo, ["alice@example.org", "bob@example.org"], `chunks of ${size}`);
    }
  });

  test("From values are kept as written, folded lines joined, two at most; a From in the body is not one", async () => {
    const one = "Subject: x\r\nfrom: Alice\r\n <alice@Peer.test>\r\n\r\nFrom: body@x.test\r\n";
    for (let size = 1; size <= one.length; size++) {
      const { h } = await scan(one, 10_000, size);
      assert.deepEqual(h.from, [" Alice <alice@Peer.test>"], `chunks of ${size}`);
    }
    const { h: three } = await scan("From: a@x.test\r\nFrom: b@x.test\r\nFrom: c@x.test\r\n\r\n", 10_000, 7);
    assert.deepEqual(three.from, [" a@x.test", " b@x.test"]);
  });

  test("a header section over the cap is not passed on past the chunk that crossed it, and is marked exceeded", async () => {
    const big = "X-Pad: " + "p".repeat(100) + "\r\n";
    const message = big.repeat(50) + "\r\n" + "body\r\n".repeat(1000);
    const { h, passed } = await scan(message, 2000, 512);
    assert.equal(h.exceeded, true);
    assert.ok(passed.length <= 2000, `passed on ${passed.length} bytes`);
    assert.ok(!passed.includes("body"));
  });

  test("a header section exactly at the cap passes; one byte more does not", async () => {
    const header = "Subject: " + "s".repeat(89) + "\r\n\r\n";
    assert.equal(header.length, 102);
    assert.equal((await scan(header + "body", 102, 7)).h.exceeded, false);
    assert.equal((await scan(header + "body", 101, 7)).h.exceeded, true);
  });

  test("a single header line longer than the cap (no CRLF at all) is caught", async () => {
    const { h, passed } = await scan("Subject: " + "x".repeat(500_000), 100_000, 65536);
    assert.equal(h.exceeded, true);
    assert.ok(passed.length <= 100_000);
  });

  test("DATA that starts with an empty line has an empty header section", async () => {
    const { h, passed } = await scan("\r\nReceived: body\r\n", 10, 1);
    assert.equal(h.complete, true);
    assert.equal(h.bytes, 2);
    assert.equal(h.hops, 0);
    assert.equal(passed, "\r\nReceived: body\r\n");
  });

  test("a message that is all header (no empty line) counts its last field", async () => {
    const { h } = await scan("Received: a\r\nReceived: b", 1000, 4);
    assert.equal(h.complete, false);
    assert.equal(h.hops, 2);
  });

  test("Delivered-To values are read as addresses; anything else is ignored", () => {
    assert.equal(deliveredToAddress(" Alice@Example.ORG"), "alice@example.org");
    assert.equal(deliveredToAddress(" <a@b.test>"), "a@b.test");
    assert.equal(deliveredToAddress(" (x) a@b.test (y)"), "a@b.test");
    assert.equal(deliveredToAddress(" not an address"), undefined);
    assert.equal(deliveredToAddress(" a@b.test, c@d.test"), undefined);
  });
});
