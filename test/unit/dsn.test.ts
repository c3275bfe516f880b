import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { buildDsn, type DsnInput } from "../../server-bootstrap/maild/outbound/dsn";
import { parseDsn } from "./outbound-fixtures";

const HEADER =
  "Received: from client.example.org\r\n\tby mx.example.org (maild) with ESMTPS; Mon, 6 Jan 2025 12:00:00 +0000\r\n" +
  "From: Alice <alice@example.org>\r\nTo: bob@remote.test, carol@slow.test\r\nSubject: lunch\r\nMessage-ID: <orig-1@example.org>\r\n";
const ARRIVAL = new Date(Date.UTC(2025, 0, 6, 12, 0, 0));
const ATTEMPT = new Date(Date.UTC(2025, 0, 6, 12, 0, 5));
const NOW = new Date(Date.UTC(2025, 0, 6, 16, 0, 0));
const UNTIL = new Date(Date.UTC(2025, 0, 11, 12, 0, 0));
const REPLY =
  "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown in virtual mailbox table of this rather verbose server";

function input(over: Partial<DsnInput> = {}): DsnInput {
  return {
    hostname: "mx.example.org",
    to: "alice@example.org",
    queueId: "1736164800.M0123456789abcdef01234567",
    arrivalDate: ARRIVAL,
    recipients: [
      {
        address: "bob@remote.test",
        action: "failed",
        status: "5.1.1",
        remoteMta: "mx1.remote.test",
        smtpReply: REPLY,
        reason: `host mx1.remote.test said: ${REPLY}`,
        lastAttempt: ATTEMPT,
      },
    ],
    originalHeader: Buffer.from(HEADER),
    date: NOW,
    ...over,
  };
}

describe("DSN (RFC 3464 in RFC 6522 multipart/report)", () => {
  test("a failure report has the MAILER-DAEMON headers, three parts and every RFC 3464 field", async () => {
    const { message, messageId } = buildDsn(input());
    const d = await parseDsn(message);
    assert.equal(d.from, `"Mail Delivery System" <MAILER-DAEMON@mx.example.org>`);
    assert.equal(d.to, "alice@example.org");
    assert.equal(d.subject, "Undelivered Mail Returned to Sender");
    assert.equal(d.date.getTime(), NOW.getTime());
    assert.equal(d.messageId, messageId);
    assert.match(messageId, /^<[0-9a-z]+\.[0-9a-f]{16}@mx\.example\.org>$/);
    assert.equal(d.headers.get("auto-submitted"), "auto-replied");
    assert.equal(d.headers.get("mime-version"), "1.0");
    assert.equal(d.contentType.value, "multipart/report");
    assert.equal(d.contentType.params["report-type"], "delivery-status");
    assert.deepEqual(d.partTypes, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);

    assert.deepEqual(
      [...d.perMessage],
      [
        ["reporting-mta", "dns; mx.example.org"],
        ["arrival-date", "Mon, 6 Jan 2025 12:00:00 +0000"],
      ],
    );
    assert.equal(d.perRecipient.length, 1);
    assert.deepEqual(
      [...d.perRecipient[0]],
      [
        ["final-recipient", "rfc822; bob@remote.test"],
        ["action", "failed"],
        ["status", "5.1.1"],
        ["remote-mta", "dns; mx1.remote.test"],
        ["diagnostic-code", `smtp; ${REPLY}`],
        ["last-attempt-date", "Mon, 6 Jan 2025 12:00:05 +0000"],
      ],
    );
    assert.equal(d.returnedHeader, HEADER, "the original header section, and nothing of the body");
    assert.match(d.text, /This is the mail system at host mx\.example\.org\./);
    assert.match(d.text, /could not be delivered/);
    assert.ok(d.text.includes(`<bob@remote.test>: host mx1.remote.test said: ${REPLY}`));
    assert.ok(d.text.includes("queue id 1736164800.M0123456789abcdef01234567"));
    for (const line of d.raw.split("\r\n")) assert.ok(line.length <= 998, "RFC 5322 2.1.1 line limit");
  });

  test("a delay report says delayed with a 4.x.x status and Will-Retry-Until, and no remote fields it does not have", async () => {
    const d = await parseDsn(
      buildDsn(
        input({
          recipients: [
            {
              address: "carol@slow.test",
              action: "delayed",
              status: "4.4.1",
              reason: "connection refused by every MX of slow.test",
              lastAttempt: ATTEMPT,
              willRetryUntil: UNTIL,
            },
          ],
        }),
      ).message,
    );
    assert.equal(d.subject, "Delayed Mail (still being retried)");
    assert.deepEqual(
      [...d.perRecipient[0]],
      [
        ["final-recipient", "rfc822; carol@slow.test"],
        ["action", "delayed"],
        ["status", "4.4.1"],
        ["last-attempt-date", "Mon, 6 Jan 2025 12:00:05 +0000"],
        ["will-retry-until", "Sat, 11 Jan 2025 12:00:00 +0000"],
      ],
    );
    assert.match(d.text, /not been delivered yet/);
    assert.match(d.text, /until Sat, 11 Jan 2025 12:00:00 \+0000/);
    assert.ok(d.text.includes("<carol@slow.test>: connection refused by every MX of slow.test"));
    assert.doesNotMatch(d.text, /could not be delivered/);
  });

  test("failed and delayed recipients share one report, one group each, in order", async () => {
    const d = await parseDsn(
      buildDsn(
        input({
          recipients: [
            input().recipients[0],
            { address: "carol@slow.test", action: "delayed", status: "4.4.1", reason: "timeout", willRetryUntil: UNTIL },
          ],
        }),
      ).message,
    );
    assert.equal(d.subject, "Undelivered Mail Returned to Sender");
    assert.deepEqual(
      d.perRecipient.map((g) => [g.get("final-recipient"), g.get("action"), g.get("will-retry-until")]),
      [
        ["rfc822; bob@remote.test", "failed", undefined],
        ["rfc822; carol@slow.test", "delayed", "Sat, 11 Jan 2025 12:00:00 +0000"],
      ],
    );
  });

  test("Original-Envelope-Id comes first in the per-message group when the client gave an ENVID", async () => {
    const d = await parseDsn(buildDsn(input({ envelopeId: "QQ314159+2Bx" })).message);
    assert.deepEqual([...d.perMessage.keys()], ["original-envelope-id", "reporting-mta", "arrival-date"]);
    assert.equal(d.perMessage.get("original-envelope-id"), "QQ314159+2Bx");
  });

  test("a multi-line remote reply stays inside its Diagnostic-Code field and cannot add fields or groups", async () => {
    const d = await parseDsn(
      buildDsn(
        input({
          recipients: [
            { ...input().recipients[0], smtpReply: "550-5.7.1 first line\r\n550 5.7.1 second line\r\n\r\nFinal-Recipient: rfc822; evil@x" },
          ],
        }),
      ).message,
    );
    assert.equal(d.perRecipient.length, 1);
    assert.equal(d.perRecipient[0].get("final-recipient"), "rfc822; bob@remote.test");
    assert.equal(
      d.perRecipient[0].get("diagnostic-code"),
      "smtp; 550-5.7.1 first line 550 5.7.1 second line Final-Recipient: rfc822; evil@x",
    );
  });

  test("every DSN gets its own Message-ID", () => {
    const ids = new Set(Array.from({ length: 20 }, () => buildDsn(input()).messageId));
    assert.equal(ids.size, 20);
  });

  test("8-bit original headers are returned as they are, declared 8bit", async () => {
    const header = "From: Jürgen <j@example.org>\r\nSubject: Grüße\r\n";
    const { message } = buildDsn(input({ originalHeader: Buffer.from(header) }));
    const d = await parseDsn(message);
    assert.equal(d.returnedHeader, header);
    assert.match(d.raw, /Content-Type: text\/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n/);
    assert.match(d.raw, /report-type=delivery-status;\r\n\tboundary="[^"]+"\r\nContent-Transfer-Encoding: 8bit\r\n/);
    assert.match(buildDsn(input()).message.toString(), /Content-Type: text\/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n/);
  });

  test("the null sender never gets a DSN, and a DSN needs a recipient to report", () => {
    assert.throws(() => buildDsn(input({ to: "" })), /null sender/);
    assert.throws(() => buildDsn(input({ recipients: [] })), /no recipients/);
  });
});
