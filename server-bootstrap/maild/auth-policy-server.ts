// Dovecot's auth policy server protocol, served by maild on loopback, so IMAP logins go through
// the same login throttle as SMTP AUTH (login-throttle.ts). Dovecot 2.3 (dovecot/core 2.3.19.1
// src/auth/auth-policy.c) POSTs JSON to `<auth_policy_server_url>?command=allow` before it checks
// a password and `?command=report` after; `auth_policy_server_api_header` sends our key.
// - allow: the answer is `{"status": N, "msg": "..."}` (auth_policy_parse_response): N < 0 fails
//   the login with msg as the reason, 0 lets the password check go on, N > 0 delays it by N
//   seconds first. A non-2xx answer counts as 0 unless auth_policy_reject_on_fail (then -1).
// - report: `success` says whether the login succeeded, `policy_reject` whether we refused it
//   (a refusal checked no password and counts as nothing); the answer is not read.
// The request's attributes are what `auth_policy_request_attributes` names; dovecot-conf.ts asks
// for `login` (the name the client gave) and `remote` (its address).
import * as http from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { AuthPolicyConfig } from "./config";
import type { Logger } from "./log";
import { counter } from "./metrics";
import type { LoginThrottle } from "./login-throttle";

const policyRequests = counter("maild_auth_policy_requests_total", "Dovecot auth policy requests, by command and answer");

/** A request body this large is not Dovecot's (a few attributes and two booleans). */
const MAX_BODY_BYTES = 16 * 1024;

export interface AuthPolicyServer {
  /** where it listens (the port resolved when the config asked for 0) */
  address: { host: string; port: number };
  close(): Promise<void>;
}

interface PolicyRequest {
  login: string;
  remote: string;
  success?: boolean;
  policy_reject?: boolean;
}

export async function startAuthPolicyServer(config: AuthPolicyConfig, throttle: LoginThrottle, log: Logger): Promise<AuthPolicyServer> {
  const key = Buffer.from(config.apiKey);
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const given = Buffer.from(String(req.headers["x-api-key"] ?? "").trim());
    if (given.length !== key.length || !timingSafeEqual(given, key)) {
      policyRequests.inc({ command: "unknown", answer: "unauthorized" });
      log.warn("auth_policy.unauthorized", { from: req.socket.remoteAddress });
      return reply(401, { error: "X-API-Key missing or wrong" });
    }
    const command = new URL(req.url ?? "/", "http://localhost").searchParams.get("command");
    if (req.method !== "POST" || (command !== "allow" && command !== "report")) {
      return reply(400, { error: "POST ?command=allow or ?command=report" });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on("end", () => {
      let body: PolicyRequest;
      try {
        body = parseRequest(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (e) {
        policyRequests.inc({ command, answer: "bad-request" });
        return reply(400, { error: (e as Error).message });
      }
      const fields = { login: body.login.toLowerCase(), ip: body.remote };
      if (command === "allow") {
        const decision = throttle.check(body.login, body.remote);
        if (!decision.allow) {
          policyRequests.inc({ command, answer: "reject" });
          log.warn("imap.auth_blocked", { ...fields, retryAfterSeconds: decision.retryAfterSeconds });
          return reply(200, { status: -1, msg: "Too many failed logins, try again later" });
        }
        const delay = Math.ceil(decision.delayMs / 1000);
        policyRequests.inc({ command, answer: delay > 0 ? "delay" : "allow" });
        return reply(200, { status: delay, msg: "" });
      }
      if (body.policy_reject !== true) {
        if (body.success === true) throttle.recordSuccess(body.login, body.remote);
        else throttle.recordFailure(body.login, body.remote);
        log[body.success === true ? "info" : "warn"](body.success === true ? "imap.auth_ok" : "imap.auth_failed", fields);
      }
      policyRequests.inc({ command, answer: "ok" });
      return reply(200, {});
    });
  });
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (e: Error) => log.error("auth_policy.server_error", { error: e.message }));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.listen.port;
  log.info("auth_policy.listening", { host: config.listen.host, port });
  return {
    address: { host: config.listen.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseRequest(v: unknown): PolicyRequest {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("the body is not a JSON object");
  const o = v as Record<string, unknown>;
  // An empty login (a mechanism without one) is throttled by its client alone.
  if (typeof o.login !== "string") throw new Error("login is missing");
  if (typeof o.remote !== "string" || o.remote === "") throw new Error("remote is missing");
  return {
    login: o.login,
    remote: o.remote,
    ...(typeof o.success === "boolean" ? { success: o.success } : {}),
    ...(typeof o.policy_reject === "boolean" ? { policy_reject: o.policy_reject } : {}),
  };
}
