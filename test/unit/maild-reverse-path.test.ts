import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { forwardingReversePath, rspamdSenderAuth, senderVerified } from "../../server-bootstrap/maild/reverse-path";
import { Router } from "../../server-bootstrap/maild/router";
import { Srs } from "../../server-bootstrap/maild/srs";

const SECRET = "sixteen characters or more";
const config = {
  domains: [
    { name: "example.org", dkim: [] },
    { name: "example.net", dkim: [] },
  ],
  users: [{ address: "alice@example.org", passwordHash: "x" }],
  aliases: [{ address: "fwd@example.net", to: ["out@elsewhere.test"] }],
  recipientDelimiter: "+",
};
const router = new Router({ ...config, srs: { secrets: [SECRET], maxAgeDays: 21 } });

describe("the reverse-path of forwarded mail", () => {
  test("a foreign sender forwarded by an alias in example.net leaves as an SRS0 address in example.net", () => {
    const rp = forwardingReversePath("bob@sender.test", "example.net", router);
    assert.equal(rp, new Srs({ secrets: [SECRET] }).forward("bob@sender.test", "example.net"));
    assert.match(rp, /@example\.net$/);
  });
  test("a sender in one of our domains is not rewritten", () => {
    assert.equal(forwardingReversePath("alice@EXAMPLE.org", "example.net", router), "alice@EXAMPLE.org");
  });
  test("the null sender stays null", () => {
    assert.equal(forwardingReversePath("", "example.net", router), "");
  });
  test("mail nobody forwards keeps its sender", () => {
    assert.equal(forwardingReversePath("bob@sender.test", undefined, router), "bob@sender.test");
  });
  test("without SRS configured the sender is kept", () => {
    assert.equal(forwardingReversePath("bob@sender.test", "example.net", new Router(config)), "bob@sender.test");
  });
});

describe("whose sender gets DSNs (received on port 25)", () => {
  const none = { spf: "none", dkimPassDomains: [] as string[] };
  const cases: [string, string, { spf: string; spfDomain?: string; dkimPassDomains: string[] }, boolean][] = [
    ["SPF pass for the MAIL FROM domain", "bob@sender.test", { spf: "pass", spfDomain: "sender.test", dkimPassDomains: [] }, true],
    ["SPF pass, domain compared without case", "bob@Sender.TEST", { spf: "pass", spfDomain: "sender.test", dkimPassDomains: [] }, true],
    [
      "SPF pass for another domain (the HELO name)",
      "bob@sender.test",
      { spf: "pass", spfDomain: "mx.other.test", dkimPassDomains: [] },
      false,
    ],
    ["SPF softfail", "bob@sender.test", { spf: "softfail", spfDomain: "sender.test", dkimPassDomains: [] }, false],
    ["SPF neutral", "bob@sender.test", { spf: "neutral", spfDomain: "sender.test", dkimPassDomains: [] }, false],
    ["DKIM pass with d= the MAIL FROM domain", "bob@sender.test", { ...none, dkimPassDomains: ["sender.test"] }, true],
    ["DKIM pass with d= a parent of the MAIL FROM domain", "bounces@mail.sender.test", { ...none, dkimPassDomains: ["sender.test"] }, true],
    ["DKIM pass with d= a subdomain of the MAIL FROM domain", "bob@sender.test", { ...none, dkimPassDomains: ["mail.sender.test"] }, false],
    ["DKIM pass for an unrelated domain", "bob@sender.test", { ...none, dkimPassDomains: ["spammer.test"] }, false],
    ["DKIM pass with d= a bare top-level domain", "bob@sender.test", { ...none, dkimPassDomains: ["test"] }, false],
    ["DKIM pass with d= a look-alike suffix", "bob@evilsender.test", { ...none, dkimPassDomains: ["sender.test"] }, false],
    ["nothing passed", "bob@sender.test", none, false],
    ["the null sender, whatever passed", "", { spf: "pass", spfDomain: "helo.test", dkimPassDomains: ["helo.test"] }, false],
  ];
  for (const [name, sender, verdict, verified] of cases) {
    test(`${name}: ${verified ? "told" : "not told"}`, () => {
      assert.equal(senderVerified(sender, verdict), verified);
    });
  }
});

describe("what rspamd found about the sender", () => {
  const verdict = (spf: string, trace: string[]) => ({
    auth: { spf, dkim: "none", dmarc: "none", arc: "none" },
    symbols: { DKIM_TRACE: { score: 0, options: trace } },
  });
  test("its SPF result is about the MAIL FROM domain; DKIM_TRACE's passing signatures are the d= that count", () => {
    assert.deepEqual(rspamdSenderAuth("Bob@Sender.TEST", verdict("pass", ["Sender.test:+", "other.test:-", "third.test:?"])), {
      spf: "pass",
      spfDomain: "sender.test",
      dkimPassDomains: ["sender.test"],
    });
  });
  test("for the null sender rspamd checked the HELO name: no SPF domain that a sender could match", () => {
    assert.deepEqual(rspamdSenderAuth("", verdict("pass", [])), { spf: "pass", dkimPassDomains: [] });
  });
  test("a sender with a passing signature of its parent domain is told; one with only a failing signature is not", () => {
    assert.equal(senderVerified("b@mail.sender.test", rspamdSenderAuth("b@mail.sender.test", verdict("none", ["sender.test:+"]))), true);
    assert.equal(senderVerified("b@sender.test", rspamdSenderAuth("b@sender.test", verdict("fail", ["sender.test:-"]))), false);
  });
});
