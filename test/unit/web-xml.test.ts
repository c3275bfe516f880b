import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { xmlEscape } from "../../server-bootstrap/maild/web/xml-escape";
import { autoconfigXml } from "../../server-bootstrap/maild/web/autoconfig";
import { autodiscoverRequestEmail, autodiscoverXml, AutodiscoverRequestError } from "../../server-bootstrap/maild/web/autodiscover";

const parse = (xml: string) => new XMLParser({ ignoreAttributes: false, parseTagValue: false }).parse(xml);

describe("xmlEscape", () => {
  const cases: [string, string][] = [
    ["plain", "plain"],
    ["a&b", "a&amp;b"],
    ["<x>", "&lt;x&gt;"],
    [`"q" 'a'`, "&quot;q&quot; &apos;a&apos;"],
    ["&amp;", "&amp;amp;"],
  ];
  for (const [input, expected] of cases) {
    test(`escapes ${JSON.stringify(input)} as ${JSON.stringify(expected)}`, () => {
      assert.equal(xmlEscape(input), expected);
    });
  }
});

describe("autoconfigXml", () => {
  const xml = autoconfigXml({ domain: "example.com", hostname: "mail.example.com" });
  const provider = parse(xml).clientConfig.emailProvider;

  test("is well-formed XML with clientConfig version 1.1", () => {
    assert.equal(XMLValidator.validate(xml), true);
    assert.equal(parse(xml).clientConfig["@_version"], "1.1");
  });

  test("names the domain as provider id and domain", () => {
    assert.equal(provider["@_id"], "example.com");
    assert.equal(provider.domain, "example.com");
  });

  test("offers IMAP on the mail host, port 993, implicit TLS, full address as username", () => {
    assert.deepEqual(
      {
        type: provider.incomingServer["@_type"],
        hostname: provider.incomingServer.hostname,
        port: provider.incomingServer.port,
        socketType: provider.incomingServer.socketType,
        username: provider.incomingServer.username,
      },
      { type: "imap", hostname: "mail.example.com", port: "993", socketType: "SSL", username: "%EMAILADDRESS%" },
    );
  });

  test("offers SMTP submission on 465 SSL first, then 587 STARTTLS", () => {
    const out = provider.outgoingServer.map((s: Record<string, string>) => [s["@_type"], s.hostname, s.port, s.socketType, s.username]);
    assert.deepEqual(out, [
      ["smtp", "mail.example.com", "465", "SSL", "%EMAILADDRESS%"],
      ["smtp", "mail.example.com", "587", "STARTTLS", "%EMAILADDRESS%"],
    ]);
  });
});

describe("autodiscoverRequestEmail", () => {
  const request = (email: string) =>
    `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>${email}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`;

  test("returns the EMailAddress of an Outlook request", () => {
    assert.equal(autodiscoverRequestEmail(request("alice@example.com")), "alice@example.com");
  });

  test("decodes entities in the address", () => {
    assert.equal(autodiscoverRequestEmail(request("o&apos;brien&amp;co@example.com")), "o'brien&co@example.com");
  });

  test("accepts a namespace prefix on the elements", () => {
    const body = `<a:Autodiscover xmlns:a="urn:x"><a:Request><a:EMailAddress>bob@example.com</a:EMailAddress></a:Request></a:Autodiscover>`;
    assert.equal(autodiscoverRequestEmail(body), "bob@example.com");
  });

  const bad: [string, string, RegExp][] = [
    ["unclosed element", "<Autodiscover><Request><EMailAddress>a@b</EMailAddress></Request>", /not well-formed XML/],
    ["not XML at all", "email=a@b", /not well-formed XML/],
    ["empty body", "", /not well-formed XML/],
    ["no EMailAddress", "<Autodiscover><Request></Request></Autodiscover>", /EMailAddress is missing/],
    ["empty EMailAddress", "<Autodiscover><Request><EMailAddress></EMailAddress></Request></Autodiscover>", /EMailAddress is missing/],
    [
      "a DOCTYPE with entities",
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "a@b">]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>`,
      /DOCTYPE is not allowed/,
    ],
  ];
  for (const [name, body, message] of bad) {
    test(`refuses ${name} with AutodiscoverRequestError`, () => {
      assert.throws(
        () => autodiscoverRequestEmail(body),
        (err: unknown) => err instanceof AutodiscoverRequestError && message.test(err.message),
      );
    });
  }
});

describe("autodiscoverXml", () => {
  const xml = autodiscoverXml({ email: "o'brien&co@example.com", hostname: "mail.example.com" });
  const account = parse(xml).Autodiscover.Response.Account;

  test("is well-formed XML in the Outlook 2006a response schema", () => {
    assert.equal(XMLValidator.validate(xml), true);
    assert.equal(
      parse(xml).Autodiscover.Response["@_xmlns"],
      "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
    );
  });

  test("escapes the requested address and echoes it as login name", () => {
    assert.match(xml, /<LoginName>o&apos;brien&amp;co@example\.com<\/LoginName>/);
    assert.deepEqual(
      account.Protocol.map((p: Record<string, string>) => p.LoginName),
      ["o'brien&co@example.com", "o'brien&co@example.com"],
    );
  });

  test("offers IMAP 993 and SMTP 465 with implicit TLS on the mail host", () => {
    assert.deepEqual(
      account.Protocol.map((p: Record<string, string>) => [p.Type, p.Server, p.Port, p.SSL, p.Encryption]),
      [
        ["IMAP", "mail.example.com", "993", "on", "SSL"],
        ["SMTP", "mail.example.com", "465", "on", "SSL"],
      ],
    );
    assert.equal(account.AccountType, "email");
    assert.equal(account.Action, "settings");
  });
});
