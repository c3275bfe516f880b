import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Router, canonicalAddress } from "../../server-bootstrap/maild/router";
import { Srs } from "../../server-bootstrap/maild/srs";

const router = new Router({
  domains: [
    { name: "example.org", dkim: [] },
    { name: "example.net", dkim: [] },
  ],
  users: [
    { address: "alice@example.org", passwordHash: "x" },
    { address: "bob@example.org", passwordHash: "x" },
    { address: "carol@example.net", passwordHash: "x" },
  ],
  aliases: [
    { address: "postmaster@example.org", to: ["alice@example.org"] },
    { address: "team@example.org", to: ["alice@example.org", "bob@example.org", "postmaster@example.org"] },
    { address: "everyone@example.org", to: ["team@example.org", "carol@example.net"] },
    { address: "fwd@example.org", to: ["alice@example.org", "someone@elsewhere.test"] },
    { address: "loop1@example.org", to: ["loop2@example.org"] },
    { address: "loop2@example.org", to: ["loop1@example.org", "bob@example.org"] },
    { address: "@example.net", to: ["carol@example.net"] },
  ],
  recipientDelimiter: "+-",
});

const alice = { local: "alice", domain: "example.org" };
const bob = { local: "bob", domain: "example.org" };
const carol = { local: "carol", domain: "example.net" };

describe("maild recipient policy", () => {
  test("a user's exact address is delivered to that user's mailbox", () => {
    assert.deepEqual(router.route("alice@example.org"), { kind: "accept", mailboxes: [alice], remote: [] });
  });
  test("address matching ignores case in local part and domain", () => {
    assert.deepEqual(router.route("Alice@EXAMPLE.org"), { kind: "accept", mailboxes: [alice], remote: [] });
  });
  test("plus-addressing delivers user+tag to the user", () => {
    assert.deepEqual(router.route("alice+lists@example.org"), { kind: "accept", mailboxes: [alice], remote: [] });
  });
  test("every configured delimiter character works, the first one in the address wins", () => {
    assert.deepEqual(router.route("bob-news+x@example.org"), { kind: "accept", mailboxes: [bob], remote: [] });
  });
  test("an extension on an alias resolves the alias", () => {
    assert.deepEqual(router.route("postmaster+dmarc@example.org"), { kind: "accept", mailboxes: [alice], remote: [] });
  });
  test("an extension on an unknown name is unknown", () => {
    assert.deepEqual(router.route("nobody+tag@example.org"), { kind: "unknown-user" });
  });
  test("an alias fans out to each mailbox once, nested aliases included", () => {
    assert.deepEqual(router.route("team@example.org"), { kind: "accept", mailboxes: [alice, bob], remote: [] });
    assert.deepEqual(router.route("everyone@example.org"), { kind: "accept", mailboxes: [alice, bob, carol], remote: [] });
  });
  test("an alias to an external address routes that target to the remote queue, naming the forwarding domain", () => {
    assert.deepEqual(router.route("fwd@example.org"), {
      kind: "accept",
      mailboxes: [alice],
      remote: ["someone@elsewhere.test"],
      forwardedBy: "example.org",
    });
  });
  test("alias loops terminate and still deliver to the users on the way", () => {
    assert.deepEqual(router.route("loop1@example.org"), { kind: "accept", mailboxes: [bob], remote: [] });
  });
  test("a catch-all takes unknown names in its domain", () => {
    assert.deepEqual(router.route("anything@example.net"), { kind: "accept", mailboxes: [carol], remote: [] });
  });
  test("without a catch-all an unknown name in our domain is an unknown user", () => {
    assert.deepEqual(router.route("nobody@example.org"), { kind: "unknown-user" });
  });
  test("a domain that is not ours is relaying, and is denied to an unauthenticated client", () => {
    assert.deepEqual(router.route("victim@elsewhere.test"), { kind: "relay-denied" });
  });
  test("a subdomain of our domain is not our domain", () => {
    assert.deepEqual(router.route("alice@sub.example.org"), { kind: "relay-denied" });
  });
  test("an authenticated sender's remote recipient goes to the queue (submission seam)", () => {
    assert.deepEqual(router.route("victim@elsewhere.test", { authenticatedUser: "alice@example.org" }), {
      kind: "accept",
      mailboxes: [],
      remote: ["victim@elsewhere.test"],
    });
  });
  test("an address without a domain is malformed", () => {
    assert.deepEqual(router.route("alice"), { kind: "bad-address" });
    assert.deepEqual(router.route("alice@"), { kind: "bad-address" });
  });
  test("a trailing dot on the domain is the same domain", () => {
    assert.deepEqual(router.route("alice@example.org."), { kind: "accept", mailboxes: [alice], remote: [] });
  });
});

describe("submission sender policy: a user sends as the addresses whose mail they receive", () => {
  const cases: [string, string, boolean][] = [
    ["alice@example.org", "alice@example.org", true],
    ["alice@example.org", "ALICE@Example.org", true],
    ["alice@example.org", "alice+lists@example.org", true],
    ["alice@example.org", "postmaster@example.org", true], // alias to alice
    ["alice@example.org", "team@example.org", true], // shared alias
    ["bob@example.org", "team@example.org", true],
    ["alice@example.org", "everyone@example.org", true], // alias of an alias
    ["alice@example.org", "bob@example.org", false], // another user
    ["bob@example.org", "postmaster@example.org", false],
    ["alice@example.org", "nobody@example.org", false], // no catch-all in example.org
    ["carol@example.net", "anything@example.net", true], // catch-all to carol
    ["alice@example.org", "anything@example.net", false],
    ["alice@example.org", "alice@elsewhere.test", false], // not our domain
    ["alice@example.org", "someone@elsewhere.test", false], // a forward target is not a local mailbox
    ["alice@example.org", "not-an-address", false],
  ];
  for (const [user, sender, allowed] of cases) {
    test(`${user} as ${sender}: ${allowed ? "allowed" : "refused"}`, () => {
      assert.equal(router.mayUseSender(user, sender), allowed);
    });
  }
});

describe("RFC 5321 4.5.1 postmaster and RFC 5322 3.2.4 quoted local parts", () => {
  const withHost = new Router({
    hostname: "mx.example.net",
    domains: [
      { name: "example.org", dkim: [] },
      { name: "example.net", dkim: [] },
    ],
    users: [
      { address: "alice@example.org", passwordHash: "x" },
      { address: "carol@example.net", passwordHash: "x" },
    ],
    aliases: [
      { address: "postmaster@example.org", to: ["alice@example.org"] },
      { address: "postmaster@example.net", to: ["carol@example.net"] },
    ],
    recipientDelimiter: "+",
  });

  test("a bare postmaster, in any case, reaches the postmaster of the domain the host name is in", () => {
    for (const rcpt of ["postmaster", "Postmaster", "POSTMASTER"]) {
      assert.deepEqual(withHost.route(rcpt), { kind: "accept", mailboxes: [carol], remote: [] }, rcpt);
    }
  });
  test("postmaster at the host name itself is the same mailbox", () => {
    assert.deepEqual(withHost.route("PostMaster@MX.example.net"), { kind: "accept", mailboxes: [carol], remote: [] });
  });
  test("without a host name in a configured domain, a bare postmaster goes to the first domain's", () => {
    assert.deepEqual(router.route("postmaster"), { kind: "accept", mailboxes: [alice], remote: [] });
  });
  test("other bare names are still bad addresses", () => {
    assert.deepEqual(router.route("alice"), { kind: "bad-address" });
  });
  test("a quoted local part that needs no quotes is the unquoted address", () => {
    assert.deepEqual(router.route('"alice"@example.org'), { kind: "accept", mailboxes: [alice], remote: [] });
    assert.deepEqual(router.route('"alice+news"@example.org'), { kind: "accept", mailboxes: [alice], remote: [] });
    assert.deepEqual(router.route('"\\a\\lice"@example.org'), { kind: "accept", mailboxes: [alice], remote: [] }, "quoted-pairs too");
  });
  test("a quoted local part that needs its quotes matches no mailbox, and is relayed as written in canonical form", () => {
    assert.deepEqual(router.route('"alice smith"@example.org'), { kind: "unknown-user" });
    assert.deepEqual(router.route('"bob"@elsewhere.test', { authenticatedUser: "alice@example.org" }), {
      kind: "accept",
      mailboxes: [],
      remote: ["bob@elsewhere.test"],
    });
  });
  test("canonicalAddress only touches quoted local parts", () => {
    assert.equal(canonicalAddress('"john.smith"@example.org'), "john.smith@example.org");
    assert.equal(canonicalAddress('"john smith"@example.org'), '"john smith"@example.org');
    assert.equal(canonicalAddress("John@Example.org"), "John@Example.org");
  });
});

describe("recipient policy: SRS addresses in our domains", () => {
  const config = {
    domains: [
      { name: "example.org", dkim: [] },
      { name: "example.net", dkim: [] },
    ],
    users: [
      { address: "alice@example.org", passwordHash: "x" },
      { address: "carol@example.net", passwordHash: "x" },
    ],
    aliases: [{ address: "@example.net", to: ["carol@example.net"] }],
    recipientDelimiter: "+",
    srs: { secrets: ["a secret of sixteen+"], maxAgeDays: 21 },
  };
  const srsRouter = new Router(config);
  const ours = new Srs({ secrets: config.srs.secrets });

  test("our SRS0 address leads to the original sender, as a remote recipient marked srs", () => {
    const address = ours.forward("Bounce.Me@Elsewhere.test", "example.org");
    assert.deepEqual(srsRouter.route(address), { kind: "accept", mailboxes: [], remote: ["Bounce.Me@Elsewhere.test"], srs: true });
  });
  test("the SRS address is recognised whatever the case of the tag and hash", () => {
    const address = ours.forward("someone@elsewhere.test", "example.org");
    assert.deepEqual(srsRouter.route(address.toLowerCase()), {
      kind: "accept",
      mailboxes: [],
      remote: ["someone@elsewhere.test"],
      srs: true,
    });
  });
  test("an SRS address with a forged hash is refused, not taken by a catch-all", () => {
    const forged = ours.forward("victim@elsewhere.test", "example.net").replace(/^SRS0=..../, "SRS0=AAAA");
    assert.deepEqual(srsRouter.route(forged), { kind: "bad-srs", reason: "bad-hash" });
  });
  test("an SRS address made by another secret is refused", () => {
    const other = new Srs({ secrets: ["somebody else's key"] }).forward("victim@elsewhere.test", "example.org");
    assert.deepEqual(srsRouter.route(other), { kind: "bad-srs", reason: "bad-hash" });
  });
  test("an SRS address older than maxAgeDays is refused", () => {
    const old = new Srs({ secrets: config.srs.secrets, now: () => Date.now() - 30 * 86_400_000 }).forward(
      "a@elsewhere.test",
      "example.org",
    );
    assert.deepEqual(srsRouter.route(old), { kind: "bad-srs", reason: "expired" });
  });
  test("SRS1 leads to the first forwarder's SRS0 address", () => {
    const first = new Srs({ secrets: ["the first forwarder"] }).forward("orig@origin.test", "hop.test");
    const address = ours.forward(first, "example.org");
    assert.deepEqual(srsRouter.route(address), { kind: "accept", mailboxes: [], remote: [first], srs: true });
  });
  test("an SRS address that decodes into our own domain is delivered there", () => {
    const address = ours.forward("alice@example.org", "example.org");
    assert.deepEqual(srsRouter.route(address), {
      kind: "accept",
      mailboxes: [{ local: "alice", domain: "example.org" }],
      remote: [],
      srs: true,
    });
  });
  test("without SRS configured, an SRS-looking name is an ordinary local part", () => {
    const { srs: _unused, ...plain } = config;
    const address = ours.forward("someone@elsewhere.test", "example.net");
    assert.deepEqual(new Router(plain).route(address), {
      kind: "accept",
      mailboxes: [{ local: "carol", domain: "example.net" }],
      remote: [],
    });
  });
});
