// What maild does with rspamd's answer (server-bootstrap/maild/spam-verdict.ts), and how it reads
// and sends rspamd's protocol (rspamd-client.ts), from replies shaped as rspamd 3.4 gives them.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spamVerdict, headerField } from "../../server-bootstrap/maild/spam-verdict";
import { envelopeHeaders, parseReply, type RspamdReply } from "../../server-bootstrap/maild/rspamd-client";

function reply(action: string, symbols: Record<string, string[]> = {}, extra: Record<string, unknown> = {}): RspamdReply {
  return parseReply({
    action,
    score: 1.5,
    required_score: 15,
    symbols: Object.fromEntries(Object.entries(symbols).map(([name, options]) => [name, { name, score: 0, options }])),
    ...extra,
  });
}

describe("the verdict of an incoming message", () => {
  const inbound = { authenticated: false };
  const cases: [string, RspamdReply, ReturnType<typeof spamVerdict>["outcome"]][] = [
    ["no action: the inbox", reply("no action"), { kind: "inbox" }],
    ["greylist (the action, not greylisted by the module): the inbox", reply("greylist"), { kind: "inbox" }],
    ["add header: the Junk folder", reply("add header"), { kind: "junk" }],
    ["rewrite subject: the Junk folder", reply("rewrite subject"), { kind: "junk" }],
    [
      "reject: 550 5.7.1 with rspamd's reason",
      reply("reject", { GTUBE: [] }, { messages: { smtp_message: "Gtube pattern" } }),
      { kind: "reject", reason: "spam", code: 550, text: "5.7.1 Message refused as spam: Gtube pattern" },
    ],
    [
      "soft reject by the greylist module: 451 4.7.1 Greylisted",
      reply(
        "soft reject",
        { GREYLIST: ["greylisted", "Sat, 05 Dec 2026 10:00:00 UTC", "new record"] },
        { messages: { smtp_message: "Try again later" } },
      ),
      { kind: "tempfail", reason: "greylist", code: 451, text: "4.7.1 Greylisted: Try again later" },
    ],
    [
      "soft reject by a rate limit: 451 4.7.1 naming the limit",
      reply(
        "soft reject",
        { RATELIMITED: ["user_out(alice@example.org)"] },
        { messages: { smtp_message: 'Ratelimit "user_out" exceeded' } },
      ),
      {
        kind: "tempfail",
        reason: "rate-limit",
        code: 451,
        text: '4.7.1 Too many messages, try again later (Ratelimit "user_out" exceeded)',
      },
    ],
    [
      "any other soft reject: 451 4.7.1 with rspamd's text",
      reply("soft reject", {}, { messages: { smtp_message: "Temporary error" } }),
      { kind: "tempfail", reason: "soft-reject", code: 451, text: "4.7.1 Temporary error" },
    ],
    [
      "DMARC_POLICY_REJECT: 550 5.7.1 naming the policy's domain, whatever the score",
      reply("add header", { DMARC_POLICY_REJECT: ["sender.test : No valid SPF, No valid DKIM", "reject"] }),
      {
        kind: "reject",
        reason: "dmarc",
        code: 550,
        text: "5.7.1 Message refused: DMARC policy of sender.test is reject and the message fails DMARC",
      },
    ],
    [
      "DMARC_POLICY_REJECT sampled out by pct=: kept (the inbox)",
      reply("no action", { DMARC_POLICY_REJECT: ["sender.test : No valid SPF, No valid DKIM", "reject", "sampled_out"] }),
      { kind: "inbox" },
    ],
    [
      "DMARC p=reject wins over greylisting: refused, not deferred",
      reply("soft reject", { DMARC_POLICY_REJECT: ["sender.test : No valid SPF, No valid DKIM", "reject"], GREYLIST: ["greylisted"] }),
      {
        kind: "reject",
        reason: "dmarc",
        code: 550,
        text: "5.7.1 Message refused: DMARC policy of sender.test is reject and the message fails DMARC",
      },
    ],
  ];
  for (const [name, r, outcome] of cases) test(name, () => assert.deepEqual(spamVerdict(r, inbound).outcome, outcome));

  test("rspamd's text in a reply is kept to printable ASCII on one line", () => {
    const v = spamVerdict(reply("reject", {}, { messages: { smtp_message: "bad\r\n250 ok\u00e9" } }), inbound);
    assert.deepEqual(v.outcome, { kind: "reject", reason: "spam", code: 550, text: "5.7.1 Message refused as spam: bad  250 ok" });
  });

  test("the authentication results come from rspamd's symbols, as its own Authentication-Results writer maps them", () => {
    const v = spamVerdict(reply("no action", { R_SPF_ALLOW: [], R_DKIM_REJECT: [], DMARC_POLICY_SOFTFAIL: [], ARC_ALLOW: [] }), inbound);
    assert.deepEqual(v.auth, { spf: "pass", dkim: "fail", dmarc: "fail", arc: "pass" });
    assert.deepEqual(spamVerdict(reply("no action"), inbound).auth, { spf: "none", dkim: "none", dmarc: "none", arc: "none" });
  });

  test("rspamd's header fields are added in its order; other hosts' Authentication-Results are never removed", () => {
    const v = spamVerdict(
      reply(
        "add header",
        {},
        {
          milter: {
            add_headers: {
              "X-Spam-Status": { value: "Yes, score=7.10", order: 2 },
              "Authentication-Results": { value: "mx.example.org;\n\tdkim=none;\n\tspf=fail", order: 1 },
            },
            remove_headers: { "X-Spam-Status": 0, "Authentication-Results": 0, "X-Spamd-Result": 0 },
          },
        },
      ),
      inbound,
    );
    assert.equal(v.headers, "Authentication-Results: mx.example.org;\r\n\tdkim=none;\r\n\tspf=fail\r\nX-Spam-Status: Yes, score=7.10\r\n");
    assert.deepEqual(v.removeHeaders, ["x-spam-status", "x-spamd-result"]);
  });
});

describe("the verdict of a submission (an authenticated user)", () => {
  const submitted = { authenticated: true };
  test("add header is sent on as written: not Junk, no spam fields added, nothing removed", () => {
    const v = spamVerdict(
      reply(
        "add header",
        {},
        { milter: { add_headers: { "X-Spam-Status": { value: "Yes", order: 0 } }, remove_headers: { "X-Spam": 0 } } },
      ),
      submitted,
    );
    assert.deepEqual([v.outcome, v.headers, v.removeHeaders], [{ kind: "inbox" }, "", []]);
  });
  test("reject and the rate limit refuse it", () => {
    assert.equal(spamVerdict(reply("reject"), submitted).outcome.kind, "reject");
    assert.equal(spamVerdict(reply("soft reject", { RATELIMITED: ["user_out(alice)"] }), submitted).outcome.kind, "tempfail");
  });
  test("the DMARC policy of a domain is not applied to our own users' mail", () => {
    assert.deepEqual(spamVerdict(reply("no action", { DMARC_POLICY_REJECT: ["example.org : x", "reject"] }), submitted).outcome, {
      kind: "inbox",
    });
  });
});

describe("header fields from rspamd", () => {
  test("a value's bare line breaks become folding: it can never start a field of its own (RFC 5322 2.2.3)", () => {
    assert.equal(headerField("X-Test", "a\nBcc: victim@example.org\n\tc\r\n"), "X-Test: a\r\n\tBcc: victim@example.org\r\n\tc\r\n");
  });
});

describe("reading rspamd's reply", () => {
  test("an unknown action is not a scan result", () => {
    assert.throws(() => parseReply({ action: "accept", score: 0 }), /unknown action "accept"/);
    assert.throws(() => parseReply([]), /not a JSON object/);
  });
  test("a header field added twice comes as a list, and each copy is kept", () => {
    const r = parseReply({
      action: "no action",
      milter: {
        add_headers: {
          "X-A": [
            { value: "1", order: 0 },
            { value: "2", order: 0 },
          ],
        },
      },
    });
    assert.deepEqual(r.addHeaders, [
      { name: "X-A", value: "1" },
      { name: "X-A", value: "2" },
    ]);
  });
  test("a field name that is not one (RFC 5322 2.2: printable ASCII but colon) is dropped", () => {
    const r = parseReply({
      action: "no action",
      milter: { add_headers: { "X-Bad Name": { value: "1" }, "X:y": { value: "2" }, "X-Ok": { value: "3" } } },
    });
    assert.deepEqual(r.addHeaders, [{ name: "X-Ok", value: "3" }]);
  });
});

describe("the envelope rspamd gets", () => {
  test("one Rcpt header per recipient, the authserv-id as MTA-Name, User only for submissions", () => {
    assert.deepEqual(
      envelopeHeaders({
        ip: "198.51.100.7",
        helo: "mail.sender.test",
        from: "a@sender.test",
        rcpts: ["x@example.org", "y@example.org"],
        queueId: "Q1",
        mtaName: "mx.example.org",
      }),
      {
        IP: "198.51.100.7",
        Helo: "mail.sender.test",
        From: "a@sender.test",
        Rcpt: ["x@example.org", "y@example.org"],
        "Queue-Id": "Q1",
        "MTA-Name": "mx.example.org",
      },
    );
  });
  test("a client-chosen HELO with line breaks cannot add request headers", () => {
    const h = envelopeHeaders({
      ip: "198.51.100.7",
      helo: "x\r\nUser: alice@example.org",
      from: "",
      rcpts: [],
      queueId: "Q",
      mtaName: "m",
    });
    assert.equal(h.Helo, "x  User: alice@example.org");
    assert.equal(h.User, undefined);
  });
});
