// rspamd's HTTP protocol (rspamd/rspamd.com doc/developers/protocol.md): the message is the body of
// `POST /checkv2`, the SMTP envelope travels in request headers, and the reply is one JSON object.
//
// The message is sent once DATA is complete, from memory or from the spool file, not streamed while
// it arrives: rspamd 3.4 starts a scan only when the whole request has arrived, buffering the body
// either way (src/libserver/http/http_connection.c, the message-complete callback), so streaming would
// save only the loopback copy at the end (microseconds for the usual few KiB), while holding an rspamd
// connection open for as long as a slow client takes to send DATA.
import { request, Agent, type IncomingMessage } from "node:http";
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";

/** The actions rspamd 3.4 replies with (src/libserver/cfg_utils: rspamd_action_from_str). */
export type RspamdAction = "reject" | "soft reject" | "rewrite subject" | "add header" | "greylist" | "no action";

const ACTIONS: ReadonlySet<string> = new Set(["reject", "soft reject", "rewrite subject", "add header", "greylist", "no action"]);

export interface ScanEnvelope {
  /** the client's address (rspamd checks SPF, RBLs and greylisting against it) */
  ip: string;
  helo: string;
  /** the client's forward-confirmed reverse DNS name; absent: rspamd counts it unknown */
  hostname?: string;
  /** MAIL FROM; "" for the null sender */
  from: string;
  rcpts: string[];
  /** our id of the message, so rspamd's log and ours name it the same */
  queueId: string;
  /** the authenticated user of a submission: rspamd then skips RBLs and greylisting and applies the user's rate limit */
  user?: string;
  /** the authserv-id rspamd writes into Authentication-Results (RFC 8601 2.5): our hostname */
  mtaName: string;
}

export interface RspamdSymbol {
  score: number;
  options: string[];
}

export interface RspamdReply {
  action: RspamdAction;
  score: number;
  requiredScore: number;
  symbols: Record<string, RspamdSymbol>;
  /** rspamd's text for the SMTP reply (`messages.smtp_message`), when it has one */
  smtpMessage?: string;
  /** header fields to add, in rspamd's order (`milter.add_headers`) */
  addHeaders: { name: string; value: string }[];
  /** header fields of the message rspamd asks to remove (`milter.remove_headers`) */
  removeHeaders: string[];
}

/** Why a scan gave no verdict: the caller answers with a temporary failure. */
export class ScanUnavailable extends Error {
  constructor(
    readonly reason: "timeout" | "unavailable" | "bad-reply",
    message: string,
  ) {
    super(message);
    this.name = "ScanUnavailable";
  }
}

export interface RspamdClientOptions {
  /** the normal worker, e.g. http://127.0.0.1:11333 */
  url: string;
  /** the whole scan, from connecting to the parsed reply */
  timeoutMs: number;
}

export class RspamdClient {
  // Connections are kept open between scans: rspamd's normal worker supports keep-alive.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly opts: () => RspamdClientOptions) {}

  /** Scans a message held in memory (`held`) or in the file `path`. Rejects only with ScanUnavailable. */
  scan(envelope: ScanEnvelope, message: { held?: Buffer[]; path: string }): Promise<RspamdReply> {
    const { url, timeoutMs } = this.opts();
    const target = new URL("/checkv2", url);
    // DATA held in memory goes out as one buffer with its length, in the same write as the
    // request head; only a spilled message is streamed (chunked) from its file.
    const held = message.held ? (message.held.length === 1 ? message.held[0] : Buffer.concat(message.held)) : undefined;
    const body: Readable | undefined = held ? undefined : createReadStream(message.path);
    return new Promise<RspamdReply>((resolve, reject) => {
      let settled = false;
      const finish = (err: ScanUnavailable | undefined, reply?: RspamdReply) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          body?.destroy();
          reject(err);
        } else resolve(reply!);
      };
      const timer = setTimeout(() => finish(new ScanUnavailable("timeout", `rspamd gave no answer within ${timeoutMs} ms`)), timeoutMs);
      const req = request(
        {
          host: target.hostname.replace(/^\[|\]$/g, ""),
          port: target.port || 80,
          path: target.pathname,
          method: "POST",
          agent: this.agent,
          headers: { ...envelopeHeaders(envelope), ...(held ? { "Content-Length": String(held.length) } : {}) },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (e) => finish(new ScanUnavailable("unavailable", `rspamd: ${e.message}`)));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            if (res.statusCode !== 200) {
              return finish(new ScanUnavailable("bad-reply", `rspamd answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
            }
            try {
              finish(undefined, parseReply(JSON.parse(text)));
            } catch (e) {
              finish(new ScanUnavailable("bad-reply", `rspamd's reply is not a scan result: ${(e as Error).message}`));
            }
          });
        },
      );
      req.on("error", (e) => finish(new ScanUnavailable("unavailable", `rspamd at ${url}: ${e.message}`)));
      if (held) return void req.end(held);
      pipeline(body!, req).catch((e: Error) => finish(new ScanUnavailable("unavailable", `sending the message to rspamd: ${e.message}`)));
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Header values must stay on one line: a client-chosen HELO must not add request headers. */
function oneLine(v: string): string {
  return v.replace(/[\r\n\0]/g, " ");
}

export function envelopeHeaders(e: ScanEnvelope): Record<string, string | string[]> {
  const h: Record<string, string | string[]> = {
    IP: e.ip,
    Helo: oneLine(e.helo),
    From: oneLine(e.from),
    Rcpt: e.rcpts.map(oneLine),
    "Queue-Id": e.queueId,
    "MTA-Name": e.mtaName,
  };
  if (e.hostname !== undefined) h.Hostname = oneLine(e.hostname);
  if (e.user !== undefined) h.User = oneLine(e.user);
  return h;
}

/** The fields of a /checkv2 reply maild uses, checked (protocol.md "Output format"). */
export function parseReply(raw: unknown): RspamdReply {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not a JSON object");
  const r = raw as Record<string, unknown>;
  if (typeof r.action !== "string" || !ACTIONS.has(r.action)) throw new Error(`unknown action ${JSON.stringify(r.action)}`);
  const symbols: Record<string, RspamdSymbol> = {};
  if (typeof r.symbols === "object" && r.symbols !== null) {
    for (const [name, s] of Object.entries(r.symbols as Record<string, { score?: unknown; options?: unknown }>)) {
      symbols[name] = {
        score: typeof s?.score === "number" ? s.score : 0,
        options: Array.isArray(s?.options) ? s.options.filter((o): o is string => typeof o === "string") : [],
      };
    }
  }
  const messages = (typeof r.messages === "object" && r.messages !== null ? r.messages : {}) as Record<string, unknown>;
  const milter = (typeof r.milter === "object" && r.milter !== null ? r.milter : {}) as Record<string, unknown>;
  const addHeaders: { name: string; value: string; order: number }[] = [];
  if (typeof milter.add_headers === "object" && milter.add_headers !== null) {
    for (const [name, v] of Object.entries(milter.add_headers as Record<string, unknown>)) {
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) continue;
      // one value {value, order}, or a list of them when a field is added more than once
      for (const one of Array.isArray(v) ? v : [v]) {
        const o = one as { value?: unknown; order?: unknown };
        if (typeof o?.value === "string") addHeaders.push({ name, value: o.value, order: typeof o.order === "number" ? o.order : 0 });
      }
    }
  }
  addHeaders.sort((a, b) => a.order - b.order);
  const removeHeaders =
    typeof milter.remove_headers === "object" && milter.remove_headers !== null ? Object.keys(milter.remove_headers as object) : [];
  return {
    action: r.action as RspamdAction,
    score: typeof r.score === "number" ? r.score : 0,
    requiredScore: typeof r.required_score === "number" ? r.required_score : 0,
    symbols,
    ...(typeof messages.smtp_message === "string" ? { smtpMessage: messages.smtp_message } : {}),
    addHeaders: addHeaders.map(({ name, value }) => ({ name, value })),
    removeHeaders,
  };
}
