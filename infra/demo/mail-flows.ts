// What the demo does with the running system, each as one function that never throws: a failure
// is a result with a one-line reason, so the demo can still report everything else.
//   inbound   the peer's Postfix sends to our user: MX lookup, STARTTLS (verified under MTA-STS)
//   imap      our user reads that message over IMAPS (Dovecot, port 993)
//   outbound  our user submits on 587 (STARTTLS + AUTH PLAIN), maild delivers to the peer
//   mta-sts   each domain's policy as served over HTTPS by maild, against DNS and the plan
//   spam      rspamd's verdict on the inbound message, and GTUBE refused at the end of DATA
import { randomBytes } from "node:crypto";
import { promises as dnsPromises } from "node:dns";
import * as https from "node:https";
import nodemailer from "nodemailer";
import { ImapFlow } from "imapflow";
import { mtaStsId } from "../../components/records/mta-sts";
import type { MailPeer } from "./peer";
import { MAIL_PORTS } from "../../components/shared/mail-ports";
import * as fs from "node:fs";
import SMTPConnection from "nodemailer/lib/smtp-connection";

export interface Verdicts {
  spf?: string;
  dkim?: string;
  dmarc?: string;
}

export interface InboundResult {
  ok: boolean;
  /** one line: why it failed */
  error?: string;
  from: string;
  to: string;
  messageId: string;
  /** the peer's delivery line, e.g. `relay=mail.example.org[198.51.100.4]:25, ... status=sent (250 ...)` */
  relay?: string;
  /** how the peer's TLS session was established: Verified / Trusted / Untrusted / Anonymous, and the protocol */
  tls?: string;
}

export interface ImapResult {
  ok: boolean;
  error?: string;
  user: string;
  /** maild's Authentication-Results for the message, as read over IMAP */
  verdicts: Verdicts;
}

export interface OutboundResult {
  ok: boolean;
  error?: string;
  from: string;
  to: string;
  messageId: string;
  /** the reply to the submitted message, e.g. `250 2.0.0 queued as ...` */
  submission?: string;
  /** the peer's Authentication-Results (opendkim, opendmarc) in the delivered copy */
  peerVerdicts: Verdicts;
}

export interface MtaStsResult {
  domain: string;
  ok: boolean;
  error?: string;
  /** `mode:` of the policy maild serves */
  mode?: string;
  /** the served policy is byte for byte the one the program planned */
  matchesPlan: boolean;
  /** id in the `_mta-sts` TXT record, and the id of the served policy (RFC 8461 3.1) */
  dnsId?: string;
  policyId?: string;
  /** what the peer's postfix-mta-sts-resolver tells Postfix for this domain ("" = no policy) */
  peerPolicy?: string;
}

const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();
const reason = (err: unknown) => oneLine((err as Error)?.message ?? String(err));

/** The header block with folded lines joined (RFC 5322 2.2.3). */
export function unfoldedHeaders(source: string): string[] {
  const end = source.search(/\r?\n\r?\n/);
  return (end < 0 ? source : source.slice(0, end)).replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/);
}

/**
 * spf/dkim/dmarc results of the Authentication-Results fields (RFC 8601 2.2) written by
 * `authservId`. Several results of one method (a message signed with RSA and Ed25519 has two
 * DKIM signatures) read "pass" only when every one passed, else they are listed.
 */
export function authenticationResults(source: string, authservId: string): Verdicts {
  const found: Record<string, string[]> = {};
  for (const line of unfoldedHeaders(source)) {
    const m = /^Authentication-Results:\s*([^;\s]+)\s*;(.*)$/i.exec(line);
    if (!m || m[1].toLowerCase() !== authservId.toLowerCase()) continue;
    for (const r of m[2].matchAll(/(?:^|;)\s*(spf|dkim|dmarc)=([a-z]+)/gi)) {
      (found[r[1].toLowerCase()] ??= []).push(r[2].toLowerCase());
    }
  }
  const verdicts: Verdicts = {};
  for (const method of ["spf", "dkim", "dmarc"] as const) {
    const results = found[method];
    if (!results) continue;
    verdicts[method] = results.every((r) => r === results[0]) ? results[0] : results.join(",");
  }
  return verdicts;
}

function newMessageId(domain: string): string {
  return `<demo-${randomBytes(6).toString("hex")}@${domain}>`;
}

async function until<T>(timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The peer's Postfix sends to `to` by MX, as any mail server of the internet would. */
export async function sendInbound(peer: MailPeer, to: string, timeoutMs = 30_000): Promise<InboundResult> {
  const from = peer.user;
  const messageId = newMessageId(peer.domain);
  const result: InboundResult = { ok: false, from, to, messageId };
  const logStart = peer.postfix.log().length;
  try {
    await peer.postfix.sendmail(
      from,
      [to],
      [
        `From: Carol <${from}>`,
        `To: <${to}>`,
        `Subject: hello from the rest of the internet`,
        `Message-ID: ${messageId}`,
        `Date: ${new Date().toUTCString()}`,
        "",
        "Sent by Postfix on the peer host, found your MX in DNS, and came in over STARTTLS.",
        "",
      ].join("\n"),
    );
    await peer.postfix.waitForEmptyQueue(timeoutMs);
  } catch (err) {
    result.error = `the peer could not deliver: ${reason(err).slice(0, 400)}`;
    return result;
  }
  const log = peer.postfix.log().slice(logStart);
  const escaped = to.replace(/[.+]/g, "\\$&");
  const sent = new RegExp(`to=<${escaped}>, (relay=[^,]+), .*status=sent (\\(.*\\))`).exec(log);
  const tls = /(Verified|Trusted|Untrusted|Anonymous) TLS connection established to \S+?\[[0-9a-f.:]+\]:\d+: (\S+)/.exec(log);
  if (!sent) {
    const status = new RegExp(`to=<${escaped}>, .*status=(\\w+ \\(.*\\))`).exec(log);
    result.error = `the peer did not deliver: ${status ? status[1] : "no delivery line in its log"}`;
    return result;
  }
  result.relay = `${sent[1]} ${sent[2]}`;
  result.tls = tls ? `${tls[1]} ${tls[2]}` : "none (plain text)";
  result.ok = true;
  return result;
}

export interface ImapLogin {
  host: string;
  servername: string;
  caPem: string;
  user: string;
  password: string;
}

/** Logs in over IMAPS and finds the message by Message-ID in INBOX. */
export async function readOverImap(login: ImapLogin, messageId: string, authservId: string): Promise<ImapResult> {
  const result: ImapResult = { ok: false, user: login.user, verdicts: {} };
  const imap = new ImapFlow({
    host: login.host,
    port: MAIL_PORTS.imaps.port,
    secure: true,
    servername: login.servername,
    tls: { ca: login.caPem } as never,
    auth: { user: login.user, pass: login.password },
    logger: false,
  });
  try {
    await imap.connect();
    const lock = await imap.getMailboxLock("INBOX");
    try {
      const sources: string[] = [];
      for await (const m of imap.fetch("1:*", { source: true, envelope: true })) {
        if (m.envelope?.messageId === messageId && m.source) sources.push(m.source.toString("latin1"));
      }
      if (sources.length !== 1) {
        result.error = `INBOX of ${login.user} holds ${sources.length} copies of ${messageId}, expected 1`;
        return result;
      }
      result.verdicts = authenticationResults(sources[0], authservId);
      result.ok = true;
      return result;
    } finally {
      lock.release();
    }
  } catch (err) {
    result.error = `IMAPS ${login.host}:${MAIL_PORTS.imaps.port} as ${login.user}: ${reason(err)}`;
    return result;
  } finally {
    await imap.logout().catch(() => undefined);
  }
}

export interface Submission {
  host: string;
  servername: string;
  caPem: string;
  user: string;
  password: string;
}

/**
 * Our user sends to the peer: submission on 587 with STARTTLS and AUTH PLAIN (RFC 6409, RFC 4954),
 * then maild's queue delivers to the peer's MX; the copy in the peer's Maildir carries the peer's
 * SPF/DKIM/DMARC verdicts.
 */
export async function sendOutbound(sub: Submission, peer: MailPeer, maildLogPath: string, timeoutMs = 30_000): Promise<OutboundResult> {
  const messageId = newMessageId(sub.user.split("@")[1]);
  const result: OutboundResult = { ok: false, from: sub.user, to: peer.user, messageId, peerVerdicts: {} };
  const transport = nodemailer.createTransport({
    host: sub.host,
    port: MAIL_PORTS.submission.port,
    secure: false,
    requireTLS: true,
    name: "demo-client.internet.test",
    tls: { ca: sub.caPem, servername: sub.servername },
    auth: { user: sub.user, pass: sub.password },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
  });
  try {
    const info = await transport.sendMail({
      from: sub.user,
      to: peer.user,
      subject: "hello from mailstack",
      messageId,
      text: `Submitted on port ${MAIL_PORTS.submission.port} and delivered by maild to the peer's MX.`,
    });
    result.submission = oneLine(info.response);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { response?: string };
    result.error =
      e.code === "ECONNREFUSED"
        ? `submission: nothing listens on ${sub.host}:${MAIL_PORTS.submission.port} (connection refused): this maild does not offer submission (listen.submission) yet`
        : `submission on ${sub.host}:${MAIL_PORTS.submission.port} as ${sub.user} failed: ${oneLine(e.response ?? reason(err))}`;
    return result;
  } finally {
    transport.close();
  }
  const copy = await until(timeoutMs, () =>
    peer.delivered().find((m) => unfoldedHeaders(m.source).some((h) => h.toLowerCase() === `message-id: ${messageId.toLowerCase()}`)),
  );
  if (!copy) {
    const tail = peer.postfix.log().trim().split("\n").slice(-3).map(oneLine).join(" | ");
    result.error =
      `maild accepted the message (${result.submission}) but it did not reach ${peer.user} within ${timeoutMs / 1000} s ` +
      `(maild's log: ${maildLogPath}); the peer's log ends: ${tail || "(empty)"}`;
    return result;
  }
  result.peerVerdicts = authenticationResults(copy.source, peer.host.name);
  result.ok = true;
  return result;
}

function httpsGet(address: string, name: string, urlPath: string, caPem: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: address, servername: name, path: urlPath, headers: { host: name }, ca: caPem, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 5 s")));
    req.on("error", reject);
  });
}

/**
 * RFC 8461 3: the `_mta-sts` TXT record and the policy at https://mta-sts.<domain>/.well-known/
 * mta-sts.txt (looked up in the local internet's DNS, TLS verified against the ACME CA's root).
 */
export async function checkMtaSts(
  domain: string,
  plannedPolicy: string | undefined,
  dnsServer: string,
  caPem: string,
  peer: MailPeer,
): Promise<MtaStsResult> {
  const result: MtaStsResult = { domain, ok: false, matchesPlan: false };
  const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([dnsServer]);
  const policyHost = `mta-sts.${domain}`;
  try {
    const txt = (await resolver.resolveTxt(`_mta-sts.${domain}`)).map((chunks) => chunks.join("")).filter((t) => t.startsWith("v=STSv1"));
    result.dnsId = txt.length === 1 ? /(?:^|;)\s*id=([A-Za-z0-9]+)/.exec(txt[0])?.[1] : undefined;
    const [address] = await resolver.resolve4(policyHost);
    const res = await httpsGet(address, policyHost, "/.well-known/mta-sts.txt", caPem);
    if (res.status !== 200) throw new Error(`https://${policyHost}/.well-known/mta-sts.txt answered HTTP ${res.status}`);
    result.mode = /^mode:\s*(\S+)/m.exec(res.body)?.[1];
    result.matchesPlan = res.body === plannedPolicy;
    result.policyId = mtaStsId(res.body);
    result.peerPolicy = await peer.mtaStsPolicy(domain);
  } catch (err) {
    result.error = `${domain}: ${reason(err)}`;
    return result;
  }
  if (result.dnsId === undefined) result.error = `${domain}: no single v=STSv1 record with an id at _mta-sts.${domain}`;
  else if (result.dnsId !== result.policyId)
    result.error = `${domain}: DNS says id=${result.dnsId}, the served policy has id ${result.policyId}`;
  else if (!result.matchesPlan) result.error = `${domain}: the served policy differs from the planned one`;
  else if (result.mode === "enforce" && !/^secure\b/.test(result.peerPolicy ?? "")) {
    result.error = `${domain}: mode enforce, but the peer's MTA-STS resolver returns ${JSON.stringify(result.peerPolicy)} instead of a secure policy`;
  }
  result.ok = result.error === undefined;
  return result;
}

export interface SpamResult {
  ok: boolean;
  error?: string;
  /** rspamd's verdict on the inbound message, from maild's log: action, score, where it went */
  inbound?: { action: string; score: number; outcome: string };
  /** the reply to a message carrying the GTUBE test string (rspamd: reject) */
  gtubeReply?: string;
}

/** The GTUBE test string: rspamd refuses any message carrying it (src/libmime/message.c, gtube_pattern_reject). */
export const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/**
 * rspamd's verdict on the inbound message (maild logs one `smtp.spam_verdict` per scan), then a
 * GTUBE message to the box's port 25, which must be refused with 550 5.7.1 at the end of DATA.
 */
export async function checkSpamFilter(
  box: { host: string; servername: string; caPem: string; to: string },
  maildLogPath: string,
  inboundFrom: string,
): Promise<SpamResult> {
  const result: SpamResult = { ok: false };
  const verdict = fs
    .readFileSync(maildLogPath, "utf8")
    .split("\n")
    .filter((l) => l.includes('"event":"smtp.spam_verdict"'))
    .map((l) => JSON.parse(l) as { from?: string; action: string; score: number; outcome: string })
    .filter((v) => v.from === inboundFrom)
    .pop();
  if (verdict) result.inbound = { action: verdict.action, score: verdict.score, outcome: verdict.outcome };
  const conn = new SMTPConnection({
    host: box.host,
    port: MAIL_PORTS.smtp.port,
    requireTLS: true,
    name: "gtube.internet.test",
    servername: box.servername,
    tls: { ca: box.caPem },
    connectionTimeout: 10_000,
    socketTimeout: 30_000,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      conn.once("error", reject);
      conn.connect(() => resolve());
    });
    const message = `From: <spammer@internet.test>\r\nTo: <${box.to}>\r\nSubject: GTUBE\r\nMessage-ID: ${newMessageId("internet.test")}\r\n\r\n${GTUBE}\r\n`;
    await new Promise<void>((resolve, reject) =>
      conn.send({ from: "spammer@internet.test", to: [box.to] }, message, (err) => (err ? reject(err) : resolve())),
    );
    result.error = "a GTUBE message was accepted";
  } catch (err) {
    const e = err as Error & { response?: string; responseCode?: number };
    result.gtubeReply = oneLine(e.response ?? reason(err));
    if (e.responseCode !== 550) result.error = `GTUBE: expected 550 at the end of DATA, got ${result.gtubeReply}`;
  } finally {
    conn.close();
  }
  if (!result.error && !verdict) result.error = `maild logged no spam verdict for the message from ${inboundFrom} (${maildLogPath})`;
  result.ok = result.error === undefined;
  return result;
}
