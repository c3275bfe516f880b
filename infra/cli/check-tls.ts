// TLS on the mail host's ports for `mailstack check`: a probe that connects (STARTTLS for SMTP on
// 25 and 587, implicit TLS on 465, 993 and 443) and records what the server presented, and pure
// verdicts on that record: certificate trust, name and lifetime, protocol version, and DANE TLSA.
import { createHash, X509Certificate } from "node:crypto";
import type { TlsaRecord } from "node:dns";
import * as net from "node:net";
import * as tls from "node:tls";
import { combine, fail, pass, type CheckRow, type CheckStatus } from "./check-result";
import { lookupFailure, type DnsAnswer } from "./check-dns";
import { MAIL_PORTS } from "../../components/shared/mail-ports";

/** STARTTLS after EHLO (RFC 3207); TLS from the first byte with an SMTP greeting inside (RFC 8314); TLS only. */
export type TlsMode = "smtp-starttls" | "smtp-implicit" | "implicit";

export interface TlsPort {
  port: number;
  mode: TlsMode;
  /** what runs there, for people */
  service: string;
}

/** The ports a mailstack host serves (RFC 8314: implicit TLS for submission and IMAP). */
export const MAIL_TLS_PORTS: readonly TlsPort[] = [
  { port: MAIL_PORTS.smtp.port, mode: "smtp-starttls", service: "SMTP (STARTTLS)" },
  { port: MAIL_PORTS.submission.port, mode: "smtp-starttls", service: "submission (STARTTLS)" },
  { port: MAIL_PORTS.submissions.port, mode: "smtp-implicit", service: "submissions" },
  { port: MAIL_PORTS.imaps.port, mode: "implicit", service: "IMAPS" },
  { port: MAIL_PORTS.https.port, mode: "implicit", service: "HTTPS" },
];

/** A certificate as a server presented it, and the client's verdict on its chain. */
export interface PresentedCertificate {
  /** DER, the server's certificate first, then the chain it sent */
  chain: Buffer[];
  /** the chain verified against the trust store (node's `authorized`) */
  authorized: boolean;
  authorizationError?: string;
}

export interface TlsProbeResult extends Partial<PresentedCertificate> {
  port: number;
  address: string;
  mode: TlsMode;
  /** set when the probe did not complete a handshake */
  error?: string;
  /** negotiated protocol, e.g. TLSv1.3 */
  protocol?: string;
  cipher?: string;
}

export interface ProbeOptions {
  /** the name to send in SNI and to check the certificate against */
  servername: string;
  /** PEM certificates to trust (system roots plus --ca) */
  ca: string[];
  timeoutMs: number;
}

function describeSocketError(err: NodeJS.ErrnoException, address = ""): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused (nothing listens on the port)";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to the host (${err.code}${net.isIPv6(address) ? "; does the machine running the check have IPv6?" : ""})`;
    case "ECONNRESET":
      return "connection reset by the server";
    default:
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}

/** Reads complete SMTP replies (RFC 5321 4.2: continuation lines have "-" after the code). */
class ReplyReader {
  private buffer = "";
  private closed = false;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.buffer += chunk.toString("latin1");
    this.wake?.();
  };

  constructor(private readonly socket: net.Socket) {
    socket.on("data", this.onData);
    socket.once("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }

  async reply(): Promise<{ code: number; text: string }> {
    for (;;) {
      const m = /^((?:\d{3}-[^\n]*\n)*)(\d{3})(?:[ \t][^\n]*)?\r?\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        return { code: Number(m[2]), text: m[0].trim() };
      }
      if (this.closed) throw new Error("the server closed the connection");
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** Stop reading: the bytes that follow belong to a TLS handshake. */
  detach(): void {
    this.socket.removeListener("data", this.onData);
  }
}

/** How long a finished probe waits for the server's answer to QUIT before it closes anyway. */
const QUIT_GRACE_MS = 1000;

/**
 * Connects to address:port, speaks SMTP up to STARTTLS where the mode says so (RFC 3207 4),
 * completes a TLS handshake without rejecting any certificate, and reports what it saw. On SMTP
 * ports it then reads the greeting (implicit TLS) and says QUIT, so a server sees an orderly
 * session rather than a dropped one. Ends after `timeoutMs` whatever the server does.
 */
export function probeTls(address: string, target: TlsPort, options: ProbeOptions): Promise<TlsProbeResult> {
  const base = { port: target.port, address, mode: target.mode };
  return new Promise((resolve) => {
    let stage = "connect";
    let settled = false;
    /** what the probe learnt, once the handshake (and on 465 the greeting) succeeded */
    let outcome: Omit<TlsProbeResult, "port" | "address" | "mode"> | undefined;
    const sockets: net.Socket[] = [];
    const finish = (result: Omit<TlsProbeResult, "port" | "address" | "mode">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The TLS socket first: destroying the TCP socket under a live TLS socket crashes Node 24 (SIGSEGV).
      for (const s of [...sockets].reverse()) s.destroy();
      resolve({ ...base, ...result });
    };
    const timer = setTimeout(() => finish(outcome ?? { error: `timed out after ${options.timeoutMs} ms (${stage})` }), options.timeoutMs);
    const failWith = (err: Error) => finish(outcome ?? { error: `${stage}: ${err.message}` });

    const raw = net.connect({ host: address, port: target.port });
    sockets.push(raw);
    raw.on("error", (err) => finish(outcome ?? { error: `${stage}: ${describeSocketError(err, address)}` }));

    const handshake = () => {
      stage = "TLS handshake";
      const secure = tls.connect({
        socket: raw,
        servername: net.isIP(options.servername) ? undefined : options.servername,
        ca: options.ca,
        // The verdict is ours (checkTlsProbe), so the handshake completes whatever is presented.
        rejectUnauthorized: false,
      });
      sockets.push(secure);
      secure.on("error", (err) => finish(outcome ?? { error: `${stage}: ${describeSocketError(err)}` }));
      secure.once("secureConnect", () => {
        const chain: Buffer[] = [];
        let cert: tls.DetailedPeerCertificate | undefined = secure.getPeerCertificate(true);
        while (cert && cert.raw && !chain.some((c) => c.equals(cert!.raw))) {
          chain.push(cert.raw);
          cert = cert.issuerCertificate;
        }
        const seen = {
          protocol: secure.getProtocol() ?? undefined,
          cipher: secure.getCipher()?.standardName,
          chain,
          authorized: secure.authorized,
          authorizationError: secure.authorizationError ? String(secure.authorizationError) : undefined,
        };
        if (target.mode === "implicit") {
          secure.end();
          finish(seen);
          return;
        }
        const reader = new ReplyReader(secure);
        void (async () => {
          if (target.mode === "smtp-implicit") {
            stage = "SMTP greeting over TLS";
            const greeting = await reader.reply();
            if (greeting.code !== 220) throw new Error(`greeting is "${greeting.text}", not 220`);
          }
          outcome = seen;
          secure.write("QUIT\r\n");
          await Promise.race([reader.reply(), new Promise((r) => setTimeout(r, QUIT_GRACE_MS).unref())]);
          finish(seen);
        })().catch(failWith);
      });
    };

    raw.once("connect", () => {
      if (target.mode !== "smtp-starttls") {
        handshake();
        return;
      }
      const reader = new ReplyReader(raw);
      void (async () => {
        stage = "SMTP greeting";
        const greeting = await reader.reply();
        if (greeting.code !== 220) throw new Error(`greeting is "${greeting.text}", not 220`);
        stage = "EHLO";
        // RFC 5321 4.1.3: an address literal names a client without a host name of its own.
        const local = raw.localAddress ?? "127.0.0.1";
        raw.write(`EHLO ${net.isIPv6(local) ? `[IPv6:${local}]` : `[${local}]`}\r\n`);
        const ehlo = await reader.reply();
        if (ehlo.code !== 250) throw new Error(`EHLO answered "${ehlo.text}"`);
        if (!/^250[- ]STARTTLS\b/im.test(ehlo.text)) throw new Error("the server does not offer STARTTLS");
        stage = "STARTTLS";
        raw.write("STARTTLS\r\n");
        const ready = await reader.reply();
        if (ready.code !== 220) throw new Error(`STARTTLS answered "${ready.text}"`);
        reader.detach();
        handshake();
      })().catch(failWith);
    });
  });
}

/** TLS 1.2 and later; RFC 8996 deprecates TLS 1.0 and 1.1. */
const GOOD_PROTOCOLS = new Set(["TLSv1.2", "TLSv1.3"]);
/** Certificates closer to expiry than this are a warning (renewal should have happened). */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

function commonName(dn: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? dn.replace(/\n/g, ", ");
}

/**
 * The verdict on a presented certificate for `name` at time `now`: trusted chain, name, validity
 * period. Expired is a failure, less than EXPIRY_WARNING_DAYS left a warning.
 */
export function certificateFindings(cert: PresentedCertificate, name: string, now: Date): { status: CheckStatus; detail: string }[] {
  if (cert.chain.length === 0) return [{ status: "fail", detail: "the server sent no certificate" }];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert.chain[0]);
  } catch (err) {
    return [{ status: "fail", detail: `the server's certificate does not parse: ${(err as Error).message}` }];
  }
  const findings: { status: CheckStatus; detail: string }[] = [];
  const notAfter = new Date(leaf.validTo);
  const notBefore = new Date(leaf.validFrom);
  const day = (d: Date) => d.toISOString().slice(0, 10);
  if (now.getTime() > notAfter.getTime()) {
    findings.push({ status: "fail", detail: `certificate expired on ${day(notAfter)}` });
  } else if (now.getTime() < notBefore.getTime()) {
    findings.push({ status: "fail", detail: `certificate is not valid before ${day(notBefore)}` });
  }
  if (leaf.checkHost(name) === undefined) {
    findings.push({ status: "fail", detail: `certificate is for ${leaf.subjectAltName ?? commonName(leaf.subject)}, not ${name}` });
  }
  // Expiry and name are reported above in words; any other chain error means "not trusted".
  const ownWords = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERR_TLS_CERT_ALTNAME_INVALID"]);
  if (!cert.authorized && cert.authorizationError && !ownWords.has(cert.authorizationError)) {
    findings.push({
      status: "fail",
      detail: `certificate is not trusted: ${cert.authorizationError} (issuer ${commonName(leaf.issuer)}; a private CA needs --ca FILE)`,
    });
  }
  if (findings.length > 0) return findings;
  const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
  if (daysLeft < EXPIRY_WARNING_DAYS) {
    return [{ status: "warn", detail: `certificate expires in ${daysLeft} days (${day(notAfter)}): renewal is overdue` }];
  }
  return [{ status: "pass", detail: `certificate valid until ${day(notAfter)} (${daysLeft} days), issuer ${commonName(leaf.issuer)}` }];
}

/** The row for one port on one address. */
export function checkTlsProbe(check: string, probe: TlsProbeResult, hostname: string, now: Date): CheckRow {
  const target = probe.address.includes(":") ? `[${probe.address}]:${probe.port}` : `${probe.address}:${probe.port}`;
  if (probe.error !== undefined) return fail(check, probe.error, target);
  const findings: { status: CheckStatus; detail: string }[] = [];
  const protocol = probe.protocol ?? "unknown protocol";
  findings.push(
    GOOD_PROTOCOLS.has(protocol)
      ? { status: "pass", detail: protocol }
      : { status: "fail", detail: `negotiated ${protocol}: use TLS 1.2 or later (RFC 8996)` },
  );
  findings.push(
    ...certificateFindings(
      { chain: probe.chain ?? [], authorized: probe.authorized ?? false, authorizationError: probe.authorizationError },
      hostname,
      now,
    ),
  );
  return combine(check, findings, target);
}

// ---------------------------------------------------------------------------------------------
// DANE TLSA (RFC 6698 2.1, RFC 7671, SMTP: RFC 7672)

export interface TlsaAssociation {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export function tlsaFromDns(r: TlsaRecord): TlsaAssociation {
  return { usage: r.certUsage, selector: r.selector, matchingType: r.match, data: Buffer.from(r.data) };
}

/**
 * RFC 7672 3.1.3: SMTP clients use only DANE-TA(2) and DANE-EE(3); selector 0 (full
 * certificate) or 1 (SubjectPublicKeyInfo); matching 0 (exact), 1 (SHA-256), 2 (SHA-512).
 */
export function tlsaUsable(a: TlsaAssociation): boolean {
  return (a.usage === 2 || a.usage === 3) && (a.selector === 0 || a.selector === 1) && [0, 1, 2].includes(a.matchingType);
}

/** The bytes a record's selector picks from a certificate, hashed by its matching type. */
export function tlsaDigest(certDer: Buffer, selector: number, matchingType: number): Buffer {
  const selected = selector === 0 ? certDer : new X509Certificate(certDer).publicKey.export({ type: "spki", format: "der" });
  if (matchingType === 1) return createHash("sha256").update(selected).digest();
  if (matchingType === 2) return createHash("sha512").update(selected).digest();
  return selected;
}

/**
 * Does the association match the chain? DANE-EE (3) matches the server's own certificate and
 * ignores names and dates (RFC 7671 5.1); DANE-TA (2) matches a CA certificate the server sends
 * in its chain (RFC 7671 5.2.2).
 */
export function tlsaMatches(a: TlsaAssociation, chain: Buffer[]): boolean {
  if (!tlsaUsable(a) || chain.length === 0) return false;
  const candidates = a.usage === 3 ? [chain[0]] : chain.slice(1);
  return candidates.some((c) => tlsaDigest(c, a.selector, a.matchingType).equals(a.data));
}

function presentation(a: TlsaAssociation): string {
  return `${a.usage} ${a.selector} ${a.matchingType} ${a.data.toString("hex").slice(0, 16)}...`;
}

/**
 * The `tlsa` row: records at _25._tcp.<host> must match what every address serves on port 25.
 * @param planned the plan publishes TLSA; undefined without a plan
 */
export function checkTlsa(hostname: string, answer: DnsAnswer<TlsaRecord>, port25: TlsProbeResult[], planned?: boolean): CheckRow {
  const check = "tlsa";
  const name = `_25._tcp.${hostname}`;
  if (!answer.ok) return fail(check, lookupFailure(`TLSA ${name}`, answer), name);
  const records = answer.records.map(tlsaFromDns);
  if (records.length === 0) {
    if (planned) return fail(check, `no TLSA record at ${name}; the plan publishes DANE-EE 3 1 1 for the host's key`, name);
    return pass(check, `no TLSA record at ${name} (DANE is optional and needs DNSSEC)`, name);
  }
  const usable = records.filter(tlsaUsable);
  if (usable.length === 0) {
    return fail(
      check,
      `no usable TLSA record (${records.map(presentation).join(", ")}): SMTP uses only usages 2 and 3 (RFC 7672 3.1.3)`,
      name,
    );
  }
  if (port25.length === 0) return fail(check, `cannot compare: the host has no address to connect to`, name);
  const findings = port25.map((p): { status: CheckStatus; detail: string } => {
    const at = p.address.includes(":") ? `[${p.address}]:25` : `${p.address}:25`;
    if (p.error !== undefined || !p.chain) return { status: "fail", detail: `cannot compare with ${at}: ${p.error ?? "no certificate"}` };
    const match = usable.find((a) => tlsaMatches(a, p.chain!));
    if (!match) {
      return { status: "fail", detail: `no TLSA record matches the certificate served on ${at}: DANE senders will not deliver` };
    }
    return { status: "pass", detail: `${presentation(match)} matches ${at}` };
  });
  return combine(check, findings, name);
}
