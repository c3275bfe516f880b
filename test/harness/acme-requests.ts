// Every request acme-client sends, as the CA sees it: method, URL and the JWS payload (RFC 8555
// 6.2; an empty payload is a POST-as-GET, 6.3). acme-client sends everything through its one
// axios instance (`acme.axios`), so a request interceptor there sees all of it.
import * as acme from "acme-client";

export interface AcmeRequest {
  method: string;
  url: string;
  /** the decoded JWS payload; "" for POST-as-GET and for GETs */
  payload: string;
}

export interface AcmeRequestLog {
  readonly requests: AcmeRequest[];
  /** requests to `url` whose payload names the account's contact (RFC 8555 7.3.2 updates) */
  contactUpdates(accountUrl: string): AcmeRequest[];
  /** make requests matching `refuse` fail before they are sent, as a CA refusing them would */
  refuse(match: (r: AcmeRequest) => boolean, message: string): void;
  stop(): void;
}

type Config = { method?: string; url?: string; data?: unknown };

export function recordAcmeRequests(): AcmeRequestLog {
  const requests: AcmeRequest[] = [];
  const refusals: { match: (r: AcmeRequest) => boolean; message: string }[] = [];
  const id = acme.axios.interceptors.request.use((config: Config) => {
    let payload = "";
    const body = typeof config.data === "string" ? safeJson(config.data) : config.data;
    const encoded = (body as { payload?: unknown } | undefined)?.payload;
    if (typeof encoded === "string") payload = Buffer.from(encoded, "base64url").toString("utf8");
    const request = { method: (config.method ?? "get").toUpperCase(), url: config.url ?? "", payload };
    requests.push(request);
    const refusal = refusals.find((r) => r.match(request));
    if (refusal) throw new Error(refusal.message);
    return config as never;
  });
  return {
    requests,
    contactUpdates: (accountUrl) => requests.filter((r) => r.method === "POST" && r.url === accountUrl && r.payload.includes('"contact"')),
    refuse: (match, message) => refusals.push({ match, message }),
    stop: () => acme.axios.interceptors.request.eject(id),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
