// maild's side of Dovecot's auth policy protocol (server-bootstrap/maild/auth-policy-server.ts),
// asked the way Dovecot 2.3 asks (dovecot/core 2.3.19.1 src/auth/auth-policy.c: POST, JSON body
// of the configured attributes plus "tls", and "success"/"policy_reject" on report; the key in
// X-API-Key). The real Dovecot asks it in test/integration/maild-abuse.test.ts.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { LoginThrottle } from "../../server-bootstrap/maild/login-throttle";
import { startAuthPolicyServer, type AuthPolicyServer } from "../../server-bootstrap/maild/auth-policy-server";
import { DEFAULT_SUBMISSION } from "../../server-bootstrap/maild/config";
import type { Logger } from "../../server-bootstrap/maild/log";

const KEY = "0123456789abcdef0123456789abcdef";
const quiet: Logger = { log: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe("the auth policy endpoint Dovecot asks", () => {
  let server: AuthPolicyServer;
  const throttle = new LoginThrottle(() => ({ ...DEFAULT_SUBMISSION, maxFailuresPerIp: 2, maxFailuresPerAccount: 100 }));
  const ask = async (command: string, body: Record<string, unknown>, key = KEY) => {
    const res = await fetch(`http://127.0.0.1:${server.address.port}/?command=${command}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    server = await startAuthPolicyServer({ listen: { host: "127.0.0.1", port: 0 }, apiKey: KEY }, throttle, quiet);
  });
  after(() => server.close());

  test("a request without the key, or with another, is refused and changes nothing", async () => {
    assert.equal((await ask("report", { login: "a@example.org", remote: "192.0.2.50", success: false }, "")).status, 401);
    assert.equal((await ask("report", { login: "a@example.org", remote: "192.0.2.50", success: false }, "x".repeat(32))).status, 401);
    assert.deepEqual(throttle.check("a@example.org", "192.0.2.50"), { allow: true, delayMs: 0 });
  });

  test("allow answers status 0 for a client with no history", async () => {
    assert.deepEqual(await ask("allow", { login: "alice@example.org", remote: "192.0.2.1", protocol: "imap", tls: true }), {
      status: 200,
      body: { status: 0, msg: "" },
    });
  });

  test("failed logins reported by Dovecot block the client: allow then answers -1 with a reason", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await ask("report", { login: "alice@example.org", remote: "192.0.2.2", success: false, policy_reject: false, tls: true });
      assert.equal(r.status, 200);
    }
    assert.deepEqual((await ask("allow", { login: "alice@example.org", remote: "192.0.2.2", tls: true })).body, {
      status: -1,
      msg: "Too many failed logins, try again later",
    });
  });

  test("a login the policy refused is not counted again as a failure", async () => {
    for (let i = 0; i < 5; i++)
      await ask("report", { login: "carol@example.org", remote: "192.0.2.3", success: false, policy_reject: true });
    assert.equal((await ask("allow", { login: "carol@example.org", remote: "192.0.2.3" })).body.status, 0);
  });

  test("a successful IMAP login makes the client known: over its budget it is delayed (status > 0), never refused", async () => {
    await ask("report", { login: "dave@example.org", remote: "192.0.2.4", success: true, policy_reject: false });
    for (let i = 0; i < 2; i++)
      await ask("report", { login: "dave@example.org", remote: "192.0.2.4", success: false, policy_reject: false });
    assert.equal((await ask("allow", { login: "dave@example.org", remote: "192.0.2.4" })).body.status, 0);
    assert.equal(
      (await ask("allow", { login: "dave@example.org", remote: "192.0.2.4" })).body.status,
      DEFAULT_SUBMISSION.knownClientDelaySeconds,
    );
    assert.equal(
      (await ask("allow", { login: "mallory@example.org", remote: "192.0.2.4" })).body.status,
      -1,
      "other accounts from that client are blocked",
    );
  });

  test("a malformed body or command is a 400 (Dovecot then fails open or closed, as configured)", async () => {
    assert.equal((await ask("allow", { remote: "192.0.2.5" })).status, 400);
    assert.equal((await ask("delete", { login: "a", remote: "192.0.2.5" })).status, 400);
  });
});
