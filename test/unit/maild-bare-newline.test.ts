import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { BareNewlineDetector } from "../../server-bootstrap/maild/bare-newline";

function scan(...chunks: string[]): string | undefined {
  const d = new BareNewlineDetector();
  for (const c of chunks) d.push(Buffer.from(c, "latin1"));
  d.end();
  return d.found;
}

describe("maild bare newline detector (SMTP smuggling)", () => {
  test("a message with only CRLF line endings passes", () => {
    assert.equal(scan("Subject: hi\r\n\r\nbody\r\n.. dot-stuffed\r\n"), undefined);
  });
  test("<LF>.<LF> inside the body is a bare LF", () => {
    assert.equal(scan("Subject: hi\r\n\r\nbody\n.\nMAIL FROM:<x@y>\r\n"), "bare-lf");
  });
  test("<LF>.<CR><LF> inside the body is a bare LF", () => {
    assert.equal(scan("Subject: hi\r\n\r\nbody\n.\r\nMAIL FROM:<x@y>\r\n"), "bare-lf");
  });
  test("<CR>.<CR> inside the body is a bare CR", () => {
    assert.equal(scan("Subject: hi\r\n\r\nbody\r.\rMAIL FROM:<x@y>\r\n"), "bare-cr");
  });
  test("a bare CR inside a header line is found", () => {
    assert.equal(scan("Subject: a\rb\r\n\r\nbody\r\n"), "bare-cr");
  });
  test("a CRLF split across two chunks is not bare", () => {
    assert.equal(scan("Subject: hi\r", "\n\r\nbody\r\n"), undefined);
  });
  test("a CR at the end of one chunk followed by text in the next is bare", () => {
    assert.equal(scan("Subject: hi\r", "X\r\n"), "bare-cr");
  });
  test("an LF at the start of a chunk without a CR before it is bare", () => {
    assert.equal(scan("Subject: hi", "\nbody\r\n"), "bare-lf");
  });
  test("a CR as the very last byte of the message is bare", () => {
    assert.equal(scan("body\r\nend\r"), "bare-cr");
  });
  test("an LF as the very first byte is bare", () => {
    assert.equal(scan("\nbody\r\n"), "bare-lf");
  });
});
