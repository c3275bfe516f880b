import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { parseMailboxField, canonicalLocalPart } from "../../server-bootstrap/maild/mailbox-field";

describe("a From: or Sender: value holds exactly one mailbox (RFC 5322 3.4), read strictly", () => {
  const accepted: [string, string][] = [
    [" alice@example.org", "alice@example.org"],
    [" <alice@example.org>", "alice@example.org"],
    [" Alice Liddell <alice@example.org>", "alice@example.org"],
    [' "Liddell, Alice" <alice@example.org>', "alice@example.org"],
    [" Alice (the author) <alice@example.org> (home)", "alice@example.org"],
    [" Dr. A. Liddell <alice@example.org>", "alice@example.org"],
    [" =?utf-8?q?Al=C3=AFce?= <alice@example.org>", "alice@example.org"],
    [" Al\u00c3\u00afce <alice@example.org>", "alice@example.org"],
    [" Alice\r\n <alice@example.org>", "alice@example.org"],
    [' <"alice"@example.org>', "alice@example.org"],
    [' "alice smith"@example.org', '"alice smith"@example.org'],
    [" alice.smith+tag@example.org", "alice.smith+tag@example.org"],
    [" alice@[192.0.2.1]", "alice@[192.0.2.1]"],
  ];
  for (const [value, address] of accepted) {
    test(`accepted: ${JSON.stringify(value)} is ${address}`, () => {
      const r = parseMailboxField(value);
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.ok && r.address, address);
    });
  }

  const refused: [string, RegExp][] = [
    [" <alice@example.org> <ceo@bank.example>", /unexpected "<ceo@bank\.example>" after the address/],
    [" alice@example.org <ceo@bank.example>", /unexpected "<ceo@bank\.example>" after the address/],
    [" alice@example.org, ceo@bank.example", /unexpected ", ceo@bank\.example" after the address/],
    [" Alice <alice@example.org>, Bob <bob@example.org>", /unexpected ", Bob/],
    [" undisclosed-recipients:;", /unexpected ":;"/],
    [" team: alice@example.org;", /unexpected/],
    [" Alice", /there is no address/],
    ["", /there is no address/],
    [" <alice@example.org", /not closed by >/],
    [" <@relay.example:alice@example.org>", /in <...> is not an address/],
    [" alice.@example.org", /unexpected/],
    [" alice..smith@example.org", /unexpected/],
    [" alice@", /no domain/],
    [" (unclosed alice@example.org", /comment is not closed/],
    [' "unclosed <alice@example.org>', /quoted string is not closed/],
    [" alice @ example.org", /unexpected "@ example\.org"/],
  ];
  for (const [value, reason] of refused) {
    test(`refused: ${JSON.stringify(value)}`, () => {
      const r = parseMailboxField(value);
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.match(!r.ok ? r.reason : "", reason);
    });
  }

  test("a quoted local part keeps its quotes only when it needs them", () => {
    assert.equal(canonicalLocalPart("john"), "john");
    assert.equal(canonicalLocalPart("john.smith"), "john.smith");
    assert.equal(canonicalLocalPart("john doe"), '"john doe"');
    assert.equal(canonicalLocalPart("john..doe"), '"john..doe"');
    assert.equal(canonicalLocalPart('a"b'), '"a\\"b"');
    assert.equal(canonicalLocalPart(""), '""');
  });
});
