// The Cloudflare API v4 over HTTP, for the subset the npm `cloudflare` SDK calls from the DNS-01
// solver (components/shared/acme/cloudflare-dns01-solver.ts) and what the Terraform provider calls
// for a record (cloudflare.md sec. 11): zones by name, records created, read, replaced, listed and
// deleted, behind a bearer token. Backed by a CloudflareWorld, so the records are the ones the
// DnsRecord stand-in sees. Listens wherever it is told (the lifecycle test serves it inside the
// local internet; unit tests on 127.0.0.1).
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { CloudflareApiError, CloudflareWorld, type CloudflareErrorEntry, type CloudflareZone } from "./cloudflare-world";

/** A token, valid for every zone or for the named zones only (a token with Zone:Read + DNS:Edit on them). */
export type CloudflareToken = string | { token: string; zones: string[] };

export interface CloudflareApiOptions {
  host?: string;
  /** 0 (default): any free port */
  port?: number;
  tokens: CloudflareToken[];
}

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization: string | undefined;
}

export interface CloudflareApiServer {
  /** `http://<host>:<port>/client/v4`, the SDK's `baseURL` */
  baseUrl: string;
  /** every request, in order */
  requests: SeenRequest[];
  close(): Promise<void>;
}

function zoneJson(z: CloudflareZone) {
  // zones.d.ts `Zone`: the fields the SDK's type requires.
  return {
    id: z.id,
    name: z.name,
    status: z.status,
    paused: false,
    type: "full",
    development_mode: 0,
    name_servers: z.nameServers,
    original_name_servers: [],
    original_registrar: null,
    original_dnshost: null,
    account: { id: z.accountId, name: "stand-in account" },
    owner: { id: null, name: null, type: null },
    plan: { id: z.plan, name: z.plan === "free" ? "Free Website" : "Enterprise Website" },
    meta: { cdn_only: false, dns_only: false, foundation_dns: false, page_rule_quota: 3, phishing_detected: false, step: 2 },
    permissions: [],
    activated_on: z.createdOn,
    created_on: z.createdOn,
    modified_on: z.createdOn,
    vanity_name_servers: [],
  };
}

export async function startCloudflareApi(world: CloudflareWorld, options: CloudflareApiOptions): Promise<CloudflareApiServer> {
  const requests: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (raw += d));
    req.on("end", () => {
      void handle(req, raw)
        .then(({ status, body }) => {
          res.statusCode = status;
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify(body));
        })
        .catch((error: unknown) => {
          res.statusCode = 400;
          res.setHeader("content-type", "application/json");
          const errors: CloudflareErrorEntry[] = [{ code: 1000, message: (error as Error).message }];
          res.end(JSON.stringify({ result: null, success: false, errors, messages: [] }));
        });
    });
  });

  const ok = (result: unknown, extra: object = {}) => ({
    status: 200,
    body: { result, success: true, errors: [], messages: [], ...extra },
  });
  const fail = (e: CloudflareApiError) => ({ status: e.status, body: e.body });
  /** One page of a list endpoint (`page`, `per_page` from the query) with its `result_info`. */
  const onePage = <T>(all: T[], query: URLSearchParams, defaultPerPage: number) => {
    const page = Number(query.get("page") ?? 1);
    const perPage = Number(query.get("per_page") ?? defaultPerPage);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    return {
      slice,
      resultInfo: {
        result_info: {
          page,
          per_page: perPage,
          count: slice.length,
          total_count: all.length,
          total_pages: Math.max(1, Math.ceil(all.length / perPage)),
        },
      },
    };
  };

  async function handle(req: http.IncomingMessage, raw: string): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    let body: unknown;
    if (raw !== "") {
      try {
        body = JSON.parse(raw);
      } catch {
        requests.push({
          method: req.method ?? "",
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          body: raw,
          authorization: req.headers.authorization,
        });
        return fail(new CloudflareApiError(400, [{ code: 6007, message: "Malformed JSON in request body (UNCONFIRMED wording)" }]));
      }
    }
    requests.push({
      method: req.method ?? "",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      authorization: req.headers.authorization,
    });

    // cloudflare.md sec. 11: `Authorization: Bearer <token>`; a bad token is 403 / 10000 (sec. 8).
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    const token = options.tokens.find((t) => (typeof t === "string" ? t : t.token) === bearer);
    if (!token) return fail(new CloudflareApiError(403, [{ code: 10000, message: "Authentication error" }]));
    const mayUse = (zone: CloudflareZone) => typeof token === "string" || token.zones.includes(zone.name);

    const path = url.pathname.replace(/^\/client\/v4/, "");
    const method = req.method ?? "GET";
    try {
      if (method === "GET" && path === "/zones") {
        const { slice, resultInfo } = onePage(
          world.listZones(url.searchParams.get("name") ?? undefined).filter(mayUse),
          url.searchParams,
          20,
        );
        return ok(slice.map(zoneJson), resultInfo);
      }
      const zoneMatch = /^\/zones\/([^/]+)(\/dns_records(?:\/([^/]+))?)?$/.exec(path);
      if (zoneMatch) {
        const zone = world.mustZone(zoneMatch[1]);
        if (!mayUse(zone)) return fail(new CloudflareApiError(403, [{ code: 9109, message: "Unauthorized to access requested resource" }]));
        const recordId = zoneMatch[3];
        if (!zoneMatch[2]) {
          if (method === "GET") return ok(zoneJson(zone));
        } else if (recordId === undefined) {
          if (method === "POST") return ok(await world.createRecord(zone.id, (body ?? {}) as object));
          if (method === "GET") {
            const name = url.searchParams.get("name") ?? url.searchParams.get("name.exact");
            const type = url.searchParams.get("type");
            const all = world
              .recordsOf(zone.id)
              .filter((r) => (name === null || r.name === name.toLowerCase()) && (type === null || r.type === type));
            const { slice, resultInfo } = onePage(all, url.searchParams, 100);
            return ok(slice, resultInfo);
          }
        } else {
          if (method === "GET") return ok(world.getRecord(zone.id, recordId));
          if (method === "PUT") return ok(await world.updateRecord(zone.id, recordId, (body ?? {}) as object));
          if (method === "DELETE") return ok(await world.deleteRecord(zone.id, recordId));
        }
      }
      return fail(new CloudflareApiError(404, [{ code: 7003, message: "No route for that URI" }]));
    } catch (error) {
      if (error instanceof CloudflareApiError) return fail(error);
      throw error;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    baseUrl: `http://${host}:${address.port}/client/v4`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
