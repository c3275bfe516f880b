// The box's HTTPS (443) and HTTP (80) listeners. Routing is in routes.ts; this file reads
// requests, writes responses, and swaps certificates without dropping connections.
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import { constants as cryptoConstants } from "node:crypto";
import { isLoopbackAddress } from "./loopback-address";
import { routeHttp, routeHttps, type ChallengeStore, type WebRequest, type WebResponse } from "./routes";

export interface ListenAddress {
  host: string;
  port: number;
}

/** Certificate files (re-read by reloadTls) or a getter returning the current context. */
export type WebTls = { certPath: string; keyPath: string } | { secureContext: () => tls.SecureContext };

export interface WebServersOptions {
  /** the mail host FQDN, named in autoconfig/autodiscover answers */
  hostname: string;
  domains: { name: string; mtaStsPolicy: string }[];
  tls: WebTls;
  listen: { http: ListenAddress[]; https: ListenAddress[] };
  challenges: ChallengeStore;
  metrics: () => string;
  health: () => { ok: boolean; [key: string]: unknown };
  /**
   * Who may read /metrics. Default: loopback only, so the counters are not published to the
   * internet; scrape through an SSH tunnel or a local agent.
   */
  metricsAllowed?: (remoteAddress: string | undefined) => boolean;
  /** largest request body read (autodiscover POSTs are a few hundred bytes); default 64 KiB */
  maxBodyBytes?: number;
  /** called for a handler failure (the client gets 500) */
  onError?: (err: unknown) => void;
  /** answers /status on HTTPS before the fixed routes (web/status/status-page.ts) */
  status?: { handle(req: WebRequest): Promise<WebResponse | undefined> };
}

export interface WebServers {
  /** addresses actually bound (port 0 resolved), in the order given */
  readonly addresses: { http: ListenAddress[]; https: ListenAddress[] };
  /** re-read the certificate files (or call the getter again) for new connections; open ones keep theirs */
  reloadTls(): void;
  /** stop accepting, let in-flight requests finish, close idle keep-alive connections */
  close(): Promise<void>;
}

/**
 * HTTPS on 443 as on the SMTP ports (smtp-listener.ts SMTP_TLS_OPTIONS): TLS 1.2 at least, and no
 * client-initiated renegotiation (Node allows three per ten minutes; nothing here needs one).
 */
const HTTPS_TLS_OPTIONS = { minVersion: "TLSv1.2", secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION } as const;

interface TlsState {
  context: tls.SecureContext;
  /** the files' contents, also the default for clients that send no SNI */
  pems?: { cert: Buffer; key: Buffer };
}

function loadTls(opt: WebTls): TlsState {
  if ("secureContext" in opt) return { context: opt.secureContext() };
  const pems = { cert: fs.readFileSync(opt.certPath), key: fs.readFileSync(opt.keyPath) };
  return { context: tls.createSecureContext({ ...pems, ...HTTPS_TLS_OPTIONS }), pems };
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        resolve(undefined);
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * On every answer: nothing here is meant to be framed, sniffed as another type, run as a page or
 * followed elsewhere with a referrer (what testssl's "security headers" check looks for).
 */
export const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
};

/**
 * On HTTPS answers (RFC 6797): browsers use HTTPS only for this host from then on. Not for the
 * subdomains: other hosts under a mail domain are not ours.
 */
export const HSTS = { "strict-transport-security": "max-age=31536000" };

function send(res: http.ServerResponse, method: string, r: WebResponse, extra: Record<string, string>): void {
  const body = Buffer.from(r.body, "utf8");
  res.writeHead(r.status, { ...SECURITY_HEADERS, ...extra, ...r.headers, "content-length": String(body.length) });
  res.end(method === "HEAD" ? undefined : body);
}

function listen(server: http.Server, at: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      const a = server.address();
      resolve(typeof a === "object" && a ? { host: at.host, port: a.port } : at);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

export async function startWebServers(opts: WebServersOptions): Promise<WebServers> {
  const maxBody = opts.maxBodyBytes ?? 64 * 1024;
  const site = {
    hostname: opts.hostname,
    domains: opts.domains,
    metrics: opts.metrics,
    health: opts.health,
    metricsAllowed: opts.metricsAllowed ?? isLoopbackAddress,
  };
  let current = loadTls(opts.tls);
  const httpsServers: https.Server[] = [];

  const handler =
    (route: (r: WebRequest) => WebResponse | Promise<WebResponse>, extra: Record<string, string> = {}) =>
    async (req: http.IncomingMessage, res: http.ServerResponse) => {
      const method = req.method ?? "GET";
      try {
        let body: string | undefined;
        if (method === "POST") {
          body = await readBody(req, maxBody);
          if (body === undefined)
            return send(
              res,
              method,
              {
                status: 413,
                headers: { "content-type": "text/plain" },
                body: `request body over ${maxBody} bytes\n`,
              },
              extra,
            );
        }
        const request: WebRequest = {
          method,
          host: req.headers.host,
          url: req.url ?? "/",
          remoteAddress: req.socket.remoteAddress,
          body,
          ...(req.headers.cookie !== undefined ? { cookie: req.headers.cookie } : {}),
          ...(req.headers.origin !== undefined ? { origin: req.headers.origin } : {}),
        };
        send(res, method, await route(request), extra);
      } catch (err) {
        opts.onError?.(err);
        if (!res.headersSent)
          send(res, method, { status: 500, headers: { "content-type": "text/plain" }, body: "internal error\n" }, extra);
        else res.destroy();
      }
    };

  const servers: http.Server[] = [];
  const addresses = { http: [] as ListenAddress[], https: [] as ListenAddress[] };
  try {
    for (const at of opts.listen.https) {
      // SNICallback is asked on every handshake, so a reload reaches new connections at once.
      const server = https.createServer(
        { ...current.pems, SNICallback: (_name, cb) => cb(null, current.context), ...HTTPS_TLS_OPTIONS },
        handler(async (r) => (await opts.status?.handle(r)) ?? routeHttps(r, site), HSTS),
      );
      servers.push(server);
      httpsServers.push(server);
      addresses.https.push(await listen(server, at));
    }
    for (const at of opts.listen.http) {
      const server = http.createServer(handler((r) => routeHttp(r, opts.challenges)));
      servers.push(server);
      addresses.http.push(await listen(server, at));
    }
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }

  return {
    addresses,
    reloadTls() {
      const next = loadTls(opts.tls);
      if (next.pems) for (const s of httpsServers) s.setSecureContext({ ...next.pems, ...HTTPS_TLS_OPTIONS });
      current = next;
    },
    async close() {
      await Promise.all(servers.map(closeServer));
    },
  };
}
