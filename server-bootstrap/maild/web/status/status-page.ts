// https://<mail host>/status: what the digest says, live, with the DMARC and TLSRPT history as
// charts, behind a login with a mailbox account the stack marks as admin. The password is checked
// like a submission login (same argon2id hashes, same throttling per address and account); a
// session is a random token in a cookie that is HttpOnly, Secure and SameSite=Strict, kept in
// memory only (a restart logs everyone out). Actions (send the digest, check now) are POSTs that
// must come from this page (SameSite cookie, and an Origin of this host when the browser sends one).
import { randomBytes } from "node:crypto";
import type { AuthOutcome } from "../../submission-auth";
import type { ActiveAlert } from "../../monitoring/alerts";
import type { Facts } from "../../monitoring/facts";
import type { DmarcSummary, TlsSummary } from "../../reports/report-summary";
import type { WebRequest, WebResponse } from "../routes";
import { statusAssets } from "./status-assets";

export interface StatusOperations {
  status(): Promise<{ facts: Facts; alerts: ActiveAlert[] }>;
  history(days: number): Promise<{ dmarc: DmarcSummary; tlsrpt: TlsSummary }>;
  sendDigest(): Promise<void>;
  checkNow(): Promise<void>;
  /** our TLSRPT (and DMARC) reports of one UTC day, now; today sends what is counted so far */
  sendReports(day: string): Promise<void>;
}

export interface StatusSiteOptions {
  hostname: string;
  /** users who may log in (read at each login: a reload may change them) */
  admins: () => string[];
  authenticate: (user: string, password: string, ip: string) => Promise<AuthOutcome>;
  operations: StatusOperations;
  now?: () => number;
  sessionSeconds?: number;
}

const COOKIE = "maild_status";
// default-src 'none' and nothing inline: the page runs only the two scripts it is served from here
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function page(status: number, title: string, body: string, extraHeaders: Record<string, string> = {}): WebResponse {
  const a = statusAssets();
  return {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      ...extraHeaders,
    },
    body: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="stylesheet" href="${a.uplotCss.path}"><link rel="stylesheet" href="${a.pageCss.path}">
</head><body>
${body}
</body></html>
`,
  };
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const redirect = (location: string, headers: Record<string, string> = {}): WebResponse => ({
  status: 303,
  headers: { location, "cache-control": "no-store", "content-type": "text/plain; charset=utf-8", ...headers },
  body: "",
});

export class StatusPage {
  private readonly sessions = new Map<string, { user: string; expires: number }>();
  private readonly now: () => number;
  private readonly sessionMs: number;

  constructor(private readonly o: StatusSiteOptions) {
    this.now = o.now ?? Date.now;
    this.sessionMs = (o.sessionSeconds ?? 12 * 3600) * 1000;
  }

  /** The answer for a /status request, or undefined for any other path. */
  async handle(req: WebRequest): Promise<WebResponse | undefined> {
    const path = req.url.split("?")[0];
    if (path !== "/status" && !path.startsWith("/status/")) return undefined;
    const a = statusAssets();
    const served = [a.uplotJs, a.uplotCss, a.pageJs, a.pageCss].find((x) => x.path === path);
    if (served)
      return {
        status: 200,
        headers: {
          "content-type": served.contentType,
          "cache-control": "public, max-age=31536000, immutable",
          "x-content-type-options": "nosniff",
        },
        body: served.body,
      };
    if (path === "/status/login" && req.method === "POST") return this.login(req);
    const user = this.session(req);
    if (path === "/status" || path === "/status/") {
      if (!user) return this.loginForm(200);
      return this.dashboard(user);
    }
    if (!user)
      return {
        status: 401,
        headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
        body: "log in at /status\n",
      };
    if (path === "/status/data.json" && req.method === "GET") {
      const [{ facts, alerts }, history] = await Promise.all([this.o.operations.status(), this.o.operations.history(30)]);
      return {
        status: 200,
        headers: { "content-type": "application/json", "cache-control": "no-store" },
        body: JSON.stringify({ facts, alerts, history }),
      };
    }
    if (req.method === "POST" && !this.sameOrigin(req))
      return { status: 403, headers: { "content-type": "text/plain" }, body: "cross-site request refused\n" };
    if (path === "/status/logout" && req.method === "POST") {
      this.sessions.delete(cookieValue(req.cookie, COOKIE) ?? "");
      return redirect("/status", { "set-cookie": `${COOKIE}=; Path=/status; Max-Age=0; HttpOnly; Secure; SameSite=Strict` });
    }
    if (path === "/status/actions/digest" && req.method === "POST") {
      await this.o.operations.sendDigest();
      return redirect("/status?done=digest");
    }
    if (path === "/status/actions/reports" && req.method === "POST") {
      const day =
        new URLSearchParams(req.url.split("?")[1] ?? "").get("day") ?? new Date(this.now() - 86_400_000).toISOString().slice(0, 10);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || day > new Date(this.now()).toISOString().slice(0, 10))
        return { status: 400, headers: { "content-type": "text/plain" }, body: "day: a UTC date YYYY-MM-DD, today or earlier\n" };
      await this.o.operations.sendReports(day);
      return redirect("/status?done=reports");
    }
    if (path === "/status/actions/check" && req.method === "POST") {
      await this.o.operations.checkNow();
      return redirect("/status?done=check");
    }
    return { status: 404, headers: { "content-type": "text/plain" }, body: "not found\n" };
  }

  private sameOrigin(req: WebRequest): boolean {
    return req.origin === undefined || req.origin === `https://${(req.host ?? "").toLowerCase()}`;
  }

  private session(req: WebRequest): string | undefined {
    const token = cookieValue(req.cookie, COOKIE);
    if (!token) return undefined;
    const s = this.sessions.get(token);
    if (!s || s.expires < this.now() || !this.o.admins().includes(s.user)) {
      this.sessions.delete(token);
      return undefined;
    }
    return s.user;
  }

  private async login(req: WebRequest): Promise<WebResponse> {
    const form = new URLSearchParams(req.body ?? "");
    const address = (form.get("address") ?? "").trim().toLowerCase();
    const outcome = await this.o.authenticate(address, form.get("password") ?? "", req.remoteAddress ?? "");
    if (!outcome.ok)
      return this.loginForm(
        outcome.reason === "blocked" ? 429 : 401,
        outcome.reason === "blocked" ? "Too many failed logins; try again later." : "Wrong address or password.",
      );
    if (!this.o.admins().includes(outcome.user)) return this.loginForm(403, `${outcome.user} is not an administrator of this server.`);
    for (const [t, s] of this.sessions) if (s.expires < this.now()) this.sessions.delete(t);
    const token = randomBytes(32).toString("base64url");
    this.sessions.set(token, { user: outcome.user, expires: this.now() + this.sessionMs });
    return redirect("/status", {
      "set-cookie": `${COOKIE}=${token}; Path=/status; Max-Age=${this.sessionMs / 1000}; HttpOnly; Secure; SameSite=Strict`,
    });
  }

  private loginForm(status: number, message?: string): WebResponse {
    return page(
      status,
      `${this.o.hostname}: log in`,
      `<main class="login"><h1>${esc(this.o.hostname)}</h1>
<p>Log in with an administrator's mailbox address and password.</p>
${message ? `<p class="fail" role="alert">${esc(message)}</p>` : ""}
<form method="post" action="/status/login">
<label>Address <input name="address" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form></main>`,
    );
  }

  private async dashboard(user: string): Promise<WebResponse> {
    const { facts: f, alerts } = await this.o.operations.status();
    const a = statusAssets();
    const rows = (cells: string[][]) => cells.map((c) => `<tr>${c.map((x) => `<td>${x}</td>`).join("")}</tr>`).join("\n");
    const table = (head: string[], body: string[][], empty: string) =>
      body.length === 0
        ? `<p>${esc(empty)}</p>`
        : `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows(body)}</tbody></table>`;
    const ageOf = (ms: number) => `${Math.round((f.at - ms) / 60000)} min`;
    const body = `<header><h1>${esc(f.hostname)}: status</h1>
<p class="note">Logged in as ${esc(user)}. Facts from ${esc(new Date(f.at).toISOString())}.
<form class="inline" method="post" action="/status/actions/check"><button type="submit">Check now</button></form>
<form class="inline" method="post" action="/status/actions/digest"><button type="submit">Send the digest now</button></form>
<form class="inline" method="post" action="/status/logout"><button type="submit">Log out</button></form></p></header>
<section aria-labelledby="alerts"><h2 id="alerts">Alerts</h2>
${table(
  ["severity", "what", "since", "detail"],
  alerts.map((x) => [
    `<span class="${x.severity}">${esc(x.severity)}</span>`,
    esc(x.summary),
    esc(new Date(x.since).toISOString()),
    esc(x.detail),
  ]),
  "No open alerts.",
)}</section>
<section aria-labelledby="blocklists"><h2 id="blocklists">Blocklists</h2>
${table(
  ["target", "list", "status", "reason", "delisting"],
  f.blocklists.results.map((r) => [
    esc(r.target),
    esc(r.zone),
    `<span class="${r.status}">${esc(r.status)}</span>`,
    esc(r.reason ?? ""),
    r.delistUrl ? `<a href="${esc(r.delistUrl)}" rel="noreferrer noopener">look up / request removal</a>` : "",
  ]),
  "Not checked yet.",
)}</section>
<section aria-labelledby="history"><h2 id="history">Reports received (30 days)</h2>
<p id="chart-error" class="fail" role="alert"></p>
<div class="charts"><div id="dmarc-chart" role="img" aria-label="DMARC results per day"></div><div id="tls-chart" role="img" aria-label="TLS sessions per day"></div></div>
</section>
<section aria-labelledby="dmarc"><h2 id="dmarc">DMARC by source (last 24 h)</h2>
${table(
  ["source", "domain", "reporter", "messages", "DMARC fail", "aligned SPF pass", "aligned DKIM pass"],
  f.dmarc.sources.map((s) => [
    `${esc(s.sourceIp)}${s.ours ? " (this server)" : ""}`,
    esc(s.domain),
    esc(s.reporter),
    String(s.messages),
    `<span class="${s.dmarcFail > 0 ? "fail" : "ok"}">${s.dmarcFail}</span>`,
    String(s.spfAlignedPass),
    String(s.dkimAlignedPass),
  ]),
  "No DMARC reports in the last 24 hours.",
)}</section>
<section aria-labelledby="tls"><h2 id="tls">TLS reports (last 24 h)</h2>
${table(
  ["domain", "reporter", "policy", "successful", "failed", "failures"],
  f.tlsrpt.policies.map((p) => [
    esc(p.policyDomain),
    esc(p.reporter),
    esc(p.policyType),
    String(p.successful),
    `<span class="${p.failed > 0 ? "fail" : "ok"}">${p.failed}</span>`,
    esc(
      Object.entries(p.failures)
        .map(([t, n]) => `${t}: ${n}`)
        .join(", "),
    ),
  ]),
  "No TLS reports in the last 24 hours.",
)}</section>
<section aria-labelledby="server"><h2 id="server">Server</h2>
${table(
  ["what", "state"],
  [
    ["certificate", esc(f.certificate.error ?? `valid until ${f.certificate.notAfter} (${f.certificate.daysLeft} days)`)],
    [
      "outbound queue",
      esc(`${f.queue.size} message(s)${f.queue.oldestArrival !== undefined ? `, oldest ${ageOf(f.queue.oldestArrival)}` : ""}`),
    ],
    ...f.queue.deferredByDomain
      .slice(0, 10)
      .map((d) => [esc(`deferred to ${d.domain}`), esc(`${d.recipients}${d.lastError ? `: ${d.lastError}` : ""}`)]),
    ["disk", esc(f.disk ? `${f.disk.usedPercent}% used` : "unknown")],
    [
      "backup",
      esc(f.backup.configured ? (f.backup.lastSuccess ? `last good ${f.backup.lastSuccess}` : "no good backup yet") : "not configured"),
    ],
    [
      "spam filter",
      esc(f.spamFilter.configured ? (f.spamFilter.ok ? "answering" : `not answering: ${f.spamFilter.detail}`) : "not configured"),
    ],
    [
      "DNS against the plan",
      esc(f.dnsDrift.checked === 0 ? "nothing to compare" : `${f.dnsDrift.findings.length} of ${f.dnsDrift.checked} records differ`),
    ],
  ],
  "",
)}</section>
<script src="${a.uplotJs.path}"></script><script src="${a.pageJs.path}"></script>`;
    return page(200, `${f.hostname}: status`, body);
  }
}
