// The probes' failure paths against loopback servers that misbehave: every probe ends with a
// reason, never an exception and never a hang. (Successful probes: test/integration/check.test.ts.)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as dgram from "node:dgram";
import * as net from "node:net";
import { DnsLookups } from "../../infra/cli/check-dns";
import { probeTls } from "../../infra/cli/check-tls";
import { fetchPolicy } from "../../infra/cli/check-mtasts";

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("DnsLookups", () => {
  let silent: dgram.Socket;
  let port: number;
  before(async () => {
    silent = dgram.createSocket("udp4");
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    port = silent.address().port;
  });
  after(() => silent.close());

  test("a server that never answers: every lookup ends as ETIMEOUT", async () => {
    const dns = new DnsLookups([`127.0.0.1:${port}`], 300);
    assert.deepEqual(await dns.a("mail.example.org"), { ok: false, error: "ETIMEOUT" });
    assert.deepEqual(await dns.txt("example.org"), { ok: false, error: "ETIMEOUT" });
    await assert.rejects(dns.resolve("example.org", "TXT"), (e: NodeJS.ErrnoException) => e.code === "ETIMEOUT");
  });
});

describe("probeTls failure paths", () => {
  const servers: net.Server[] = [];
  after(() => servers.forEach((s) => s.close()));
  const serve = async (onConnection: (s: net.Socket) => void): Promise<number> => {
    const server = net.createServer((s) => {
      s.on("error", () => undefined);
      onConnection(s);
    });
    servers.push(server);
    return listen(server);
  };
  const options = { servername: "mail.example.org", ca: [], timeoutMs: 500 };

  test("a closed port: connection refused", async () => {
    const r = await probeTls("127.0.0.1", { port: await closedPort(), mode: "implicit", service: "IMAPS" }, options);
    assert.equal(r.error, "connect: connection refused (nothing listens on the port)");
  });

  test("a server that never greets: timed out, naming the stage", async () => {
    const port = await serve(() => undefined);
    const r = await probeTls("127.0.0.1", { port, mode: "smtp-starttls", service: "SMTP" }, options);
    assert.equal(r.error, "timed out after 500 ms (SMTP greeting)");
  });

  test("an SMTP server without STARTTLS: said so", async () => {
    const port = await serve((s) => {
      s.write("220 mail.example.org ESMTP\r\n");
      s.on("data", () => s.write("250-mail.example.org\r\n250 8BITMIME\r\n"));
    });
    const r = await probeTls("127.0.0.1", { port, mode: "smtp-starttls", service: "SMTP" }, options);
    assert.equal(r.error, "EHLO: the server does not offer STARTTLS");
  });

  test("a server that refuses with 554 in its greeting", async () => {
    const port = await serve((s) => s.end("554 5.7.1 go away\r\n"));
    const r = await probeTls("127.0.0.1", { port, mode: "smtp-starttls", service: "SMTP" }, options);
    assert.equal(r.error, 'SMTP greeting: greeting is "554 5.7.1 go away", not 220');
  });

  test("plain text where TLS is expected: the handshake fails", async () => {
    const port = await serve((s) => s.end("* OK not TLS\r\n"));
    const r = await probeTls("127.0.0.1", { port, mode: "implicit", service: "IMAPS" }, options);
    assert.match(r.error ?? "", /^TLS handshake: /);
  });

  test("the MTA-STS policy fetch: a closed port and a silent server end with a reason", async () => {
    const refused = await fetchPolicy("example.org", "127.0.0.1", [], 500, await closedPort());
    assert.match(refused.error ?? "", /^connection refused \(nothing listens on \d+\)$/);
    const silent = await fetchPolicy("example.org", "127.0.0.1", [], 500, await serve(() => undefined));
    assert.equal(silent.error, "no response within 500 ms");
    assert.equal(silent.url, "https://mta-sts.example.org/.well-known/mta-sts.txt");
  });
});
