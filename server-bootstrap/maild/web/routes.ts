// What the box answers on 443 and 80, as pure functions from request to response; the
// servers in web-servers.ts only move bytes.
import { autoconfigXml } from "./autoconfig";
import { autodiscoverRequestEmail, autodiscoverXml, AutodiscoverRequestError } from "./autodiscover";
import { requestHost } from "./request-host";

export interface WebRequest {
  method: string;
  /** raw Host header */
  host: string | undefined;
  /** request target: path plus optional query */
  url: string;
  remoteAddress: string | undefined;
  /** the request body, read only for POST */
  body?: string;
  /** raw Cookie and Origin headers (the status page's session and its cross-site check) */
  cookie?: string;
  origin?: string;
}

export interface WebResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface WebSite {
  /** the mail host FQDN (IMAP / submission server name in client configuration) */
  hostname: string;
  domains: { name: string; mtaStsPolicy: string }[];
  metrics: () => string;
  health: () => { ok: boolean; [key: string]: unknown };
  /** whether this remote address may read /metrics */
  metricsAllowed: (remoteAddress: string | undefined) => boolean;
}

export interface ChallengeStore {
  get(token: string): string | undefined;
}

const text = (status: number, body: string, type = "text/plain; charset=utf-8"): WebResponse => ({
  status,
  headers: { "content-type": type, "cache-control": "no-store" },
  body,
});
const notFound = () => text(404, "not found\n");

const mtaStsPath = "/.well-known/mta-sts.txt";
const autoconfigPaths = ["/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"];
const autodiscoverPath = "/autodiscover/autodiscover.xml";

function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf("?");
  return q === -1 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

/** The configured domain a service host like `mta-sts.example.com` belongs to, given its label. */
function domainUnder(host: string | undefined, label: string, site: WebSite) {
  if (!host?.startsWith(`${label}.`)) return undefined;
  const name = host.slice(label.length + 1);
  return site.domains.find((d) => d.name === name);
}

function addressDomain(address: string): string | undefined {
  const at = address.lastIndexOf("@");
  return at > 0 && at < address.length - 1 ? address.slice(at + 1).toLowerCase() : undefined;
}

export function routeHttps(req: WebRequest, site: WebSite): WebResponse {
  const host = requestHost(req.host);
  const { path, query } = splitUrl(req.url);
  const read = req.method === "GET" || req.method === "HEAD";

  if (path === "/healthz" && read) {
    const health = site.health();
    return text(health.ok ? 200 : 503, JSON.stringify(health) + "\n", "application/json");
  }
  if (path === "/metrics" && read) {
    if (!site.metricsAllowed(req.remoteAddress)) return text(403, "metrics are served to loopback only\n");
    return text(200, site.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  }

  // RFC 8461 3.3: the policy lives only at mta-sts.<domain>, as text/plain with status 200.
  if (path === mtaStsPath && read) {
    const domain = domainUnder(host, "mta-sts", site);
    return domain ? text(200, domain.mtaStsPolicy) : notFound();
  }

  if (autoconfigPaths.includes(path) && read) {
    // Thunderbird asks autoconfig.<domain>, or <domain> itself for the .well-known form,
    // and passes ?emailaddress=; any of these naming a configured domain is enough.
    const fromQuery = addressDomain(query.get("emailaddress") ?? "");
    const domain =
      domainUnder(host, "autoconfig", site) ?? site.domains.find((d) => d.name === host) ?? site.domains.find((d) => d.name === fromQuery);
    return domain
      ? text(200, autoconfigXml({ domain: domain.name, hostname: site.hostname }), "application/xml; charset=utf-8")
      : notFound();
  }

  // Outlook sends this path with varying case (/Autodiscover/Autodiscover.xml).
  if (path.toLowerCase() === autodiscoverPath) {
    if (req.method !== "POST") {
      const refused = text(405, "autodiscover takes POST\n");
      return { ...refused, headers: { ...refused.headers, allow: "POST" } };
    }
    let email: string;
    try {
      email = autodiscoverRequestEmail(req.body ?? "");
    } catch (err) {
      if (err instanceof AutodiscoverRequestError) return text(400, err.message + "\n");
      throw err;
    }
    const domain = addressDomain(email);
    if (!site.domains.some((d) => d.name === domain)) return notFound();
    return text(200, autodiscoverXml({ email, hostname: site.hostname }), "application/xml; charset=utf-8");
  }

  return notFound();
}

// RFC 8555 8.3: the token is base64url.
const acmePrefix = "/.well-known/acme-challenge/";
const tokenPattern = /^[A-Za-z0-9_-]+$/;

export function routeHttp(req: WebRequest, challenges: ChallengeStore): WebResponse {
  const { path } = splitUrl(req.url);
  if (path.startsWith(acmePrefix)) {
    const token = path.slice(acmePrefix.length);
    const keyAuthorization = tokenPattern.test(token) ? challenges.get(token) : undefined;
    return keyAuthorization === undefined ? notFound() : text(200, keyAuthorization, "text/plain");
  }
  const host = requestHost(req.host);
  if (!host) return text(400, "a Host header naming a DNS name is required\n");
  const target = req.url.startsWith("/") ? req.url : "/";
  return { status: 301, headers: { location: `https://${host}${target}`, "content-type": "text/plain; charset=utf-8" }, body: "" };
}
