import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { receivedHeader, isForgedAuthResults, splitHeader, rfc5322Date, authservId } from "../../server-bootstrap/maild/trace-headers";
import { filterFields } from "../../server-bootstrap/maild/delivery";

describe("maild trace headers", () => {
  test("Received names the client's HELO, address, our host, protocol, TLS and id (RFC 5321 4.4)", () => {
    const h = receivedHeader({
      helo: "mail.sender.test",
      clientIp: "198.51.100.7",
      hostname: "mx.example.org",
      protocol: "ESMTPS",
      tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
      id: "1.Mabc",
      date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    });
    assert.equal(
      h,
      "Received: from mail.sender.test ([198.51.100.7])\r\n\tby mx.example.org (maild) with ESMTPS (TLSv1.3 cipher TLS_AES_256_GCM_SHA384)\r\n\tid 1.Mabc; Fri, 2 Jan 2026 03:04:05 +0000\r\n",
    );
  });
  test("a hostile HELO cannot break out of the Received field", () => {
    const h = receivedHeader({
      helo: "x\r\nBcc: a@b (",
      clientIp: "2001:db8:1::7",
      hostname: "mx.example.org",
      protocol: "ESMTP",
      id: "i",
      date: new Date(0),
    });
    assert.equal(h.split("\r\n").length, 4);
    assert.ok(h.startsWith("Received: from x??Bcc:?a@b?? ([IPv6:2001:db8:1::7])\r\n"), h);
  });
  test("dates are RFC 5322 3.3 in UTC", () => {
    assert.equal(rfc5322Date(new Date(Date.UTC(2025, 11, 31, 23, 59, 9))), "Wed, 31 Dec 2025 23:59:09 +0000");
  });
  test("an Authentication-Results field with our authserv-id is forged (RFC 8601 5)", () => {
    assert.equal(isForgedAuthResults("Authentication-Results: mx.example.org; dkim=pass\r\n", "mx.example.org"), true);
    assert.equal(isForgedAuthResults("authentication-results:\r\n MX.Example.ORG;\r\n spf=pass\r\n", "mx.example.org"), true);
    assert.equal(isForgedAuthResults("Authentication-Results: mx.google.com; dkim=pass\r\n", "mx.example.org"), false);
    assert.equal(isForgedAuthResults("Subject: Authentication-Results: mx.example.org\r\n", "mx.example.org"), false);
  });
  test("the authserv-id is read after comments and folding (RFC 8601 2.2 allows CFWS before it)", () => {
    const ours = (field: string) => isForgedAuthResults(field, "mx.example.org");
    assert.equal(ours("Authentication-Results: (a comment) mx.example.org; dkim=pass\r\n"), true);
    assert.equal(ours("Authentication-Results: (nested (comment) with \\) escape)\r\n\t mx.example.org; dkim=pass\r\n"), true);
    assert.equal(ours('Authentication-Results: "mx.example.org"; dkim=pass\r\n'), true, "a quoted-string value");
    assert.equal(ours("Authentication-Results : mx.example.org;\r\n"), true, "whitespace before the colon");
    assert.equal(ours("Authentication-Results: (mx.example.org) mx.other.test; dkim=pass\r\n"), false, "our name only in a comment");
    assert.equal(ours("Authentication-Results: mx.example.org.evil.test; dkim=pass\r\n"), false);
  });
  test("an Authentication-Results field whose authserv-id cannot be read is removed too", () => {
    const ours = (field: string) => isForgedAuthResults(field, "mx.example.org");
    assert.equal(ours("Authentication-Results: (never closed mx.example.org; dkim=pass\r\n"), true);
    assert.equal(ours("Authentication-Results: ; dkim=pass\r\n"), true);
    assert.equal(ours('Authentication-Results: "mx.example.org; dkim=pass\r\n'), true);
  });
  test("authservId returns the id itself", () => {
    assert.equal(authservId(" (c) Mx.Example.ORG; spf=pass"), "Mx.Example.ORG");
    assert.equal(authservId(' "quoted id" 1; none'), "quoted id");
    assert.equal(authservId(" (unclosed"), undefined);
  });
  test("filtering drops whole folded fields and keeps the rest byte for byte", () => {
    const header = "From: a@b\r\nAuthentication-Results: mx.example.org;\r\n dkim=pass\r\nSubject: x\r\n y\r\n\r\n";
    assert.equal(
      filterFields(header, (f) => isForgedAuthResults(f, "mx.example.org")),
      "From: a@b\r\nSubject: x\r\n y\r\n\r\n",
    );
  });
  test("the header section ends after the first empty line", () => {
    assert.equal(splitHeader(Buffer.from("A: b\r\n\r\nbody")), 8);
    assert.equal(splitHeader(Buffer.from("\r\nbody")), 2);
    assert.equal(splitHeader(Buffer.from("A: b\r\nC: d\r\n")), undefined);
  });
});
