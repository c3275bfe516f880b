// Message submission: 587 with STARTTLS (RFC 6409) and 465 with implicit TLS (RFC 8314).
// Only authenticated users, and only after TLS; a user sends only as addresses whose mail reaches
// their own mailbox (envelope and From:); every message is DKIM-signed with all of its domain's keys
// (RSA and Ed25519) before it is stored for local recipients or queued for remote ones.
import { readFile } from "node:fs/promises";
import type { SMTPServerSession, SMTPServerDataStream, SMTPServerAddress, SMTPServerAuthentication } from "smtp-server";
import type { MaildConfig, ListenEndpoint } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { mailboxKey, type Router } from "./router";
import { filterFields } from "./delivery";
import { rfc5322Date } from "./trace-headers";
import { smtpError } from "./smtp-replies";
import { SmtpService, SHUTTING_DOWN, type BoundEndpoint } from "./smtp-listener";
import { dkimSignatures, headerFields, splitMessage, type DkimSigningKey } from "./dkim-sign";
import { Recipients, sessionReceived, type MessageAcceptor } from "./accept";
import type { SubmissionAuthenticator } from "./submission-auth";
import { SCAN_UNAVAILABLE_REPLY, ScanUnavailable, type SpamCheck } from "./spam-check";
import type { TlsMaterial } from "./tls";
import { parseMailboxField } from "./mailbox-field";

export interface SubmissionDeps {
  config: () => MaildConfig;
  router: () => Router;
  tls: () => TlsMaterial;
  accept: MessageAcceptor;
  auth: SubmissionAuthenticator;
  spam: SpamCheck;
  /** the signing keys of each of our domains (DkimKeyring) */
  dkimKeys: (domain: string) => DkimSigningKey[] | Error;
  log: Logger;
}

/** A submission in progress: its recipients, and every RCPT as the client wrote it (rspamd's envelope). */
interface Submission {
  recipients: Recipients;
  rcpts: string[];
}

export class SubmissionSmtp extends SmtpService<Submission> {
  // The message rate limit counts per user, not per address: a stolen password must not turn the
  // box into a spam cannon.
  constructor(private readonly deps: SubmissionDeps) {
    super("submission", deps);
  }

  /** `starttls` endpoints (587) start in plain text; `implicit` ones (465) speak TLS at once. */
  async listen(starttls: ListenEndpoint[], implicit: ListenEndpoint[]): Promise<BoundEndpoint[]> {
    const a = await this.listeners.listen(starttls, () => this.createSubmissionServer(false));
    const b = await this.listeners.listen(implicit, () => this.createSubmissionServer(true));
    return [...a, ...b];
  }

  private createSubmissionServer(secure: boolean) {
    return this.createServer({
      banner: "ESMTP maild submission",
      secure,
      // RFC 4954 4 / RFC 8314: credentials only inside TLS (Postfix smtpd_tls_auth_only). Before
      // STARTTLS, AUTH is neither advertised (a client that sees it may send its password in the
      // AUTH line itself, before any reply) nor accepted; smtp-server's per-session
      // disabledCommands does both, and TLS (onSecure) turns it back on.
      onConnect: (session, cb) => {
        if (!session.secure) session.disabledCommands = ["AUTH"];
        this.listeners.onConnect(session, cb);
      },
      onSecure: (_socket, session, cb) => {
        session.disabledCommands = [];
        cb();
      },
      allowInsecureAuth: false,
      authOptional: false,
      authRequiredMessage: "5.7.0 Authentication required",
      authMethods: ["PLAIN", "LOGIN"],
      onAuth: (auth, session, cb) =>
        void this.onAuth(auth, session).then(
          (user) => cb(null, { user }),
          (err: Error) => cb(err),
        ),
    });
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<string> {
    const ip = session.remoteAddress;
    const outcome = await this.deps.auth.authenticate(auth.username ?? "", auth.password ?? "", ip);
    const fields = { session: session.id, ip, user: (auth.username ?? "").toLowerCase() };
    if (outcome.ok) {
      this.deps.log.info("submission.auth_ok", fields);
      return outcome.user;
    }
    if (outcome.reason === "blocked") {
      this.deps.log.warn("submission.auth_blocked", { ...fields, retryAfterSeconds: outcome.retryAfterSeconds });
      throw this.refuse("auth-blocked", 454, "4.7.0 Too many failed logins, try again later");
    }
    if (outcome.reason === "busy") {
      // RFC 4954 6: a temporary failure of the server, not of the credentials
      this.deps.log.warn("submission.auth_busy", fields);
      throw this.refuse("auth-busy", 454, "4.7.0 Temporary authentication failure, try again later");
    }
    this.deps.log.warn("submission.auth_failed", fields);
    throw this.refuse("auth-failed", 535, "5.7.8 Authentication credentials invalid");
  }

  protected onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.listeners.closing) return cb(this.refuse("shutting-down", 421, SHUTTING_DOWN));
    // smtp-server's own 530 for MAIL without AUTH applies only while AUTH is enabled; before
    // STARTTLS it is not (see createSubmissionServer), so the gate is here.
    if (!session.secure) return cb(this.refuse("tls-required", 530, "5.7.0 Must issue a STARTTLS command first"));
    if (!session.user) return cb(this.refuse("auth-required", 530, "5.7.0 Authentication required"));
    const user = session.user as string;
    if (!address.address) {
      // The null sender is for bounces and auto-replies, which the server makes itself.
      return cb(this.refuse("null-sender", 550, "5.7.1 Submission with a null sender is not allowed"));
    }
    if (!this.deps.router().mayUseSender(user, address.address)) {
      this.deps.log.warn("submission.sender_refused", { session: session.id, user, sender: address.address });
      return cb(this.refuse("sender-not-owned", 553, `5.7.1 Sender address rejected: not owned by ${user}`));
    }
    if (!this.rate.take(user)) {
      this.deps.log.warn("submission.rate_limited", { session: session.id, user });
      return cb(this.refuse("rate-limit", 450, "4.7.1 Too many messages, try again later"));
    }
    void this.deps.accept.storageBeforeData(session).then((full) => {
      if (full) return cb(this.refuse(full.reason, full.code, full.text));
      this.txns.set(session.id, { recipients: new Recipients(), rcpts: [] });
      cb();
    });
  }

  protected onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const txn = this.txns.get(session.id);
    if (!txn) return cb(smtpError(503, "5.5.1 MAIL first"));
    if (txn.recipients.count >= this.deps.config().limits.maxRecipients)
      return cb(this.refuse("too-many-recipients", 452, "4.5.3 Too many recipients"));
    const route = this.deps.router().route(address.address, { authenticatedUser: session.user as string });
    switch (route.kind) {
      case "bad-address":
        return cb(this.refuse("bad-address", 501, "5.1.3 Bad recipient address syntax"));
      case "relay-denied": // not reached for an authenticated user
      case "unknown-user":
        return cb(this.refuse("unknown-user", 550, "5.1.1 Recipient address rejected: user unknown"));
      case "bad-srs":
        return cb(this.refuse("bad-srs", 550, "5.1.1 Recipient address rejected: invalid or expired SRS address"));
      case "accept":
        if (route.remote.length > 0 && !this.deps.accept.acceptsRemote) {
          return cb(this.refuse("queue-unavailable", 451, "4.3.2 Outbound queue not available, try again later"));
        }
        return void this.deps.accept.storageBeforeData(session, route.mailboxes).then((full) => {
          if (full) return cb(this.refuse(full.reason, full.code, full.text));
          txn.recipients.add(route);
          txn.rcpts.push(address.address);
          cb();
        });
    }
  }

  protected async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const cfg = this.deps.config();
    const user = session.user as string;
    const txn = this.txns.get(session.id);
    this.txns.delete(session.id);
    const accept = this.deps.accept;
    const id = accept.newId();
    const fields = { session: session.id, user, id };
    const refuse = (reason: string, code: number, text: string) => this.refuse(reason, code, text);
    let endTurn: (() => void) | undefined;
    try {
      const received = await accept.receive(id, stream, txn?.recipients, {
        service: "submission",
        limits: cfg.limits,
        fields,
        refuse,
      });
      endTurn = await accept.turn(received, fields, refuse);
      const original = received.held ? Buffer.concat(received.held) : await readFile(received.rawPath);
      const { header, body } = splitMessage(original);
      const fromDomain = this.checkAuthorFields(header, user);

      // RFC 6409 8.2/8.3/8.1: the MSA may add Date and Message-ID, and removes Bcc.
      const present = new Set(headerFields(header).map((f) => f.name));
      const added =
        (present.has("date") ? "" : `Date: ${rfc5322Date(new Date())}\r\n`) +
        (present.has("message-id") ? "" : `Message-ID: <${id}@${cfg.hostname}>\r\n`);
      const message = Buffer.concat([Buffer.from(added + filterFields(header, (f) => /^bcc[ \t]*:/i.test(f)) + "\r\n", "latin1"), body]);

      // Scanned as submitted (before signing): rspamd applies the user's rate limit (ratelimit.conf
      // user_out) and refuses what scores as spam, so a stolen password cannot send spam through us.
      const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
      let verdict;
      try {
        verdict = await this.deps.spam.check(
          "submission",
          {
            ip: session.remoteAddress,
            helo: session.hostNameAppearsAs || "",
            from: sender,
            rcpts: txn!.rcpts,
            queueId: id,
            user,
            mtaName: cfg.hostname,
          },
          { held: [message], path: received.rawPath },
          { ...fields, from: sender },
        );
      } catch (e) {
        if (e instanceof ScanUnavailable) throw refuse("spam-unavailable", 451, SCAN_UNAVAILABLE_REPLY);
        throw e;
      }
      const outcome = verdict.outcome;
      if (outcome.kind === "reject" || outcome.kind === "tempfail") {
        this.deps.log.warn("submission.spam_refused", { ...fields, reason: outcome.reason });
        throw refuse(outcome.reason, outcome.code, outcome.text);
      }

      const keys = this.deps.dkimKeys(fromDomain);
      if (keys instanceof Error) {
        this.deps.log.error("submission.dkim_unavailable", { ...fields, error: keys.message });
        throw refuse("dkim-unavailable", 451, "4.3.0 Signing key unavailable, try again later");
      }
      const signatures = keys.length > 0 ? dkimSignatures(message, keys) : "";
      const mailboxes = [...received.recipients.mailboxes.values()];
      const remote = [...received.recipients.remote];
      const { size } = await accept.accept({
        id,
        held: [message],
        prepend: sessionReceived(session, cfg.hostname, id, "ESMTPSA") + signatures,
        mailboxes,
        remote,
        sender,
      });
      metrics.accepted.inc({ service: "submission" });
      this.deps.log.info("submission.accepted", {
        ...fields,
        size,
        from: sender,
        mailboxes: mailboxes.map(mailboxKey),
        remote: remote.length,
        signatures: keys.map((k) => k.selector),
      });
      return `Ok: queued as ${id}`;
    } catch (e) {
      throw await accept.refused(id, e, "submission", fields, refuse);
    } finally {
      endTurn?.();
    }
  }

  /**
   * RFC 5322 3.6.2: exactly one From: holding exactly one mailbox, and at most one Sender: holding
   * one, each parsed strictly (mailbox-field.ts) and owned by the user. Returns the domain whose
   * keys sign: the From: domain, which DMARC aligns with.
   */
  private checkAuthorFields(header: string, user: string): string {
    const fields = headerFields(header);
    const from = fields.filter((f) => f.name === "from");
    if (from.length !== 1)
      throw this.refuse("bad-from", 550, `5.6.0 Message must have exactly one From: header field (found ${from.length})`);
    const sender = fields.filter((f) => f.name === "sender");
    if (sender.length > 1)
      throw this.refuse("bad-from", 550, `5.6.0 Message must have at most one Sender: header field (found ${sender.length})`);
    const mailbox = (field: { raw: string }, name: string): string => {
      const parsed = parseMailboxField(field.raw.slice(field.raw.indexOf(":") + 1).replace(/\r\n$/, ""));
      if (!parsed.ok) throw this.refuse("bad-from", 550, `5.6.0 ${name}: header field must hold exactly one address: ${parsed.reason}`);
      return `${parsed.local}@${parsed.domain.toLowerCase()}`;
    };
    const author = mailbox(from[0], "From");
    const addresses = [author, ...sender.map((f) => mailbox(f, "Sender"))];
    const router = this.deps.router();
    const foreign = addresses.find((a) => !router.mayUseSender(user, a));
    if (foreign !== undefined) {
      this.deps.log.warn("submission.from_refused", { user, from: foreign });
      throw this.refuse("from-not-owned", 550, `5.7.1 From: address ${foreign} is not owned by ${user}`);
    }
    return author.slice(author.lastIndexOf("@") + 1);
  }
}
