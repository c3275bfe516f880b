// Receiving mail on port 25 (RFC 5321) with smtp-server: STARTTLS, recipient policy at RCPT,
// the spam filter (rspamd: SPF, DKIM, DMARC, ARC, DNSBLs, greylisting, Bayes) after DATA, then
// durable delivery into the inbox or the Junk folder before the 250.
import type { SMTPServerSession, SMTPServerDataStream, SMTPServerAddress } from "smtp-server";
import type { MaildConfig, ListenEndpoint } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { mailboxKey, type Router } from "./router";
import { SmtpService, SHUTTING_DOWN, type BoundEndpoint } from "./smtp-listener";
import { isForgedAuthResults } from "./trace-headers";
import { smtpError } from "./smtp-replies";
import { Recipients, sessionReceived, type MessageAcceptor } from "./accept";
import { JUNK_FOLDER } from "./maildir";
import { SCAN_UNAVAILABLE_REPLY, ScanUnavailable, verifiedHostname, type SpamCheck } from "./spam-check";
import { forwardingReversePath, rspamdSenderAuth, senderVerified } from "./reverse-path";
import type { TlsMaterial } from "./tls";
import type { BoundedCopy, ReportIntake } from "./reports/report-intake";
import { dispositionFromRspamd, evaluationFromRspamd, type DmarcEvaluation, type EvaluationContext } from "./reports/dmarc-evaluation";
import type { SpamOutcome } from "./spam-verdict";
import type { RspamdReply } from "./rspamd-client";
import { clientKey } from "./client-key";

export interface InboundDeps {
  config: () => MaildConfig;
  router: () => Router;
  tls: () => TlsMaterial;
  spam: SpamCheck;
  accept: MessageAcceptor;
  log: Logger;
  /** reads DMARC and TLSRPT reports sent to our report addresses (operations) */
  reports?: ReportIntake;
  /** keeps each message's DMARC evaluation for the aggregate reports we send (operations) */
  dmarcEvaluations?: { record(e: DmarcEvaluation): Promise<unknown> };
}

/** What one MAIL transaction has accepted so far. */
interface Transaction {
  recipients: Recipients;
  /** every RCPT accepted, as the client wrote it (rspamd's envelope) */
  rcpts: string[];
  /** the client's verified host name, looked up while the transaction goes on */
  hostname: Promise<string | undefined>;
  /** a recipient is one of our report addresses: the DATA is copied for the report intake */
  report?: boolean;
}

export class InboundSmtp extends SmtpService<Transaction> {
  /**
   * The client's verified host name per session: its address cannot change within one, so it is
   * looked up once, at the first MAIL, and every later transaction of the session (a sender
   * reusing its connection) takes the same answer, as Postfix's smtpd looks the name up once per
   * connection (smtpd_peer.c). A lookup per message cost about 5 % of maild's main thread when
   * forwarding over reused connections.
   */
  private readonly hostnames = new Map<string, Promise<string | undefined>>();

  constructor(private readonly deps: InboundDeps) {
    super("smtp", deps);
  }

  protected override sessionClosed(session: SMTPServerSession): void {
    this.hostnames.delete(session.id);
  }

  /**
   * Keeps the message's DMARC evaluation, read from rspamd's symbols (rspamd is the one verifier),
   * for our aggregate reports; never delays or fails the reply. A temporary refusal is not kept:
   * the sender tries again, and that try counts.
   */
  private recordDmarc(
    symbols: RspamdReply["symbols"],
    outcome: SpamOutcome,
    ctx: Omit<EvaluationContext, "disposition"> & { headerFrom: string | undefined },
  ): void {
    if (!this.deps.dmarcEvaluations || outcome.kind === "tempfail" || ctx.headerFrom === undefined) return;
    const e = evaluationFromRspamd(
      { symbols },
      { ...ctx, headerFrom: ctx.headerFrom, disposition: dispositionFromRspamd({ symbols }, outcome) },
    );
    if (e)
      void this.deps.dmarcEvaluations
        .record(e)
        .catch((err: Error) => this.deps.log.warn("dmarc.evaluation_write_failed", { error: err.message }));
  }

  listen(endpoints: ListenEndpoint[]): Promise<BoundEndpoint[]> {
    return this.listeners.listen(endpoints, () =>
      this.createServer({
        banner: "ESMTP maild",
        // Port 25 is for mail to us; authenticated sending is submission's (587/465).
        disabledCommands: ["AUTH"],
        authOptional: true,
      }),
    );
  }

  protected onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    if (this.listeners.closing) return cb(this.refuse("shutting-down", 421, SHUTTING_DOWN));
    if (!this.rate.take(clientKey(session.remoteAddress))) {
      this.deps.log.warn("smtp.rate_limited", { session: session.id, ip: session.remoteAddress });
      return cb(this.refuse("rate-limit", 450, "4.7.1 Too many messages from your address, try again later"));
    }
    // set while the session is surely open, so that its close removes it
    let hostname = this.hostnames.get(session.id);
    if (!hostname) {
      hostname = verifiedHostname(session.remoteAddress, this.deps.config().dnsServers);
      this.hostnames.set(session.id, hostname);
    }
    void this.deps.accept.storageBeforeData(session).then((full) => {
      if (full) return cb(this.refuse(full.reason, full.code, full.text));
      this.txns.set(session.id, { recipients: new Recipients(), rcpts: [], hostname });
      cb();
    });
  }

  protected onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const txn = this.txns.get(session.id);
    if (!txn) return cb(smtpError(503, "5.5.1 MAIL first"));
    if (txn.recipients.count >= this.deps.config().limits.maxRecipients) {
      // RFC 5321 4.5.3.1.10: 452 for too many recipients; the client sends the rest later.
      return cb(this.refuse("too-many-recipients", 452, "4.5.3 Too many recipients"));
    }
    const route = this.deps.router().route(address.address);
    const fields = { session: session.id, ip: session.remoteAddress, rcpt: address.address };
    switch (route.kind) {
      case "bad-address":
        return cb(this.refuse("bad-address", 501, "5.1.3 Bad recipient address syntax"));
      case "relay-denied":
        this.deps.log.info("smtp.relay_denied", fields);
        return cb(this.refuse("relay-denied", 554, "5.7.1 Relay access denied"));
      case "unknown-user":
        this.deps.log.info("smtp.unknown_user", fields);
        return cb(this.refuse("unknown-user", 550, "5.1.1 Recipient address rejected: user unknown"));
      case "bad-srs":
        this.deps.log.info("smtp.bad_srs", { ...fields, reason: route.reason });
        return cb(this.refuse("bad-srs", 550, "5.1.1 Recipient address rejected: invalid or expired SRS address"));
      case "accept":
        // What comes back to an SRS address is a bounce (RFC 5321 4.5.5) or an automatic reply
        // (RFC 3834 3.3), both with the null reverse-path; anything else would use the address
        // as a relay to whoever it names.
        if (route.srs && session.envelope.mailFrom && session.envelope.mailFrom.address !== "") {
          this.deps.log.info("smtp.srs_not_bounce", { ...fields, from: session.envelope.mailFrom.address });
          return cb(
            this.refuse("srs-not-bounce", 550, "5.7.1 Recipient address rejected: an SRS address takes only bounces (MAIL FROM:<>)"),
          );
        }
        if (route.remote.length > 0 && !this.deps.accept.acceptsRemote) {
          this.deps.log.warn("smtp.forward_unavailable", fields);
          return cb(this.refuse("forward-unavailable", 451, "4.3.2 Forwarding to external addresses is not available, try again later"));
        }
        return void this.deps.accept.storageBeforeData(session, route.mailboxes).then((full) => {
          if (full) return cb(this.refuse(full.reason, full.code, full.text));
          txn.recipients.add(route);
          txn.rcpts.push(address.address);
          if (this.deps.reports?.wants(address.address)) txn.report = true;
          cb();
        });
    }
  }

  protected async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const cfg = this.deps.config();
    const txn = this.txns.get(session.id);
    this.txns.delete(session.id);
    const accept = this.deps.accept;
    const id = accept.newId();
    const fields = { session: session.id, ip: session.remoteAddress, id };
    const refuse = (reason: string, code: number, text: string) => this.refuse(reason, code, text);
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    const helo = session.hostNameAppearsAs || "";
    const reportCopy: BoundedCopy | undefined = txn?.report ? this.deps.reports?.copier() : undefined;
    let endTurn: (() => void) | undefined;
    try {
      const received = await accept.receive(id, stream, txn?.recipients, {
        service: "smtp",
        limits: cfg.limits,
        ...(reportCopy ? { taps: [reportCopy] } : {}),
        fields,
        refuse,
      });
      endTurn = await accept.turn(received, fields, refuse);
      // RFC 9228 4: a message that already carries our Delivered-To for one of its mailboxes has
      // been delivered there before and came back (an outside forward pointing at us): a loop.
      const looping = [...received.recipients.mailboxes.values()].map(mailboxKey).find((m) => received.deliveredTo.includes(m));
      if (looping !== undefined) {
        this.deps.log.warn("smtp.delivered_to_loop", { ...fields, mailbox: looping });
        throw refuse("loop", 554, `5.4.6 Mail forwarding loop for ${looping}`);
      }
      const hostname = await txn!.hostname;
      let verdict;
      try {
        verdict = await this.deps.spam.check(
          "smtp",
          {
            ip: session.remoteAddress,
            helo,
            ...(hostname ? { hostname } : {}),
            from: sender,
            rcpts: txn!.rcpts,
            queueId: id,
            mtaName: cfg.hostname,
          },
          { ...(received.held ? { held: received.held } : {}), path: received.rawPath },
          { ...fields, from: sender },
        );
      } catch (e) {
        if (e instanceof ScanUnavailable) throw refuse("spam-unavailable", 451, SCAN_UNAVAILABLE_REPLY);
        throw e;
      }
      const outcome = verdict.outcome;
      this.recordDmarc(verdict.symbols, outcome, {
        at: Date.now(),
        sourceIp: session.remoteAddress,
        sender,
        helo,
        headerFrom: received.authorDomain,
        optional: txn?.report === true,
      });
      if (outcome.kind === "reject" || outcome.kind === "tempfail") throw refuse(outcome.reason, outcome.code, outcome.text);
      const trace = sessionReceived(session, cfg.hostname, id, session.secure ? "ESMTPS" : "ESMTP");
      const mailboxes = [...received.recipients.mailboxes.values()];
      const remote = [...received.recipients.remote];
      const removed = new Set(verdict.removeHeaders);
      const t1 = performance.now();
      const { size } = await accept.accept({
        id,
        held: received.held,
        prepend: verdict.headers + trace,
        dropHeader: (f) => isForgedAuthResults(f, cfg.hostname) || removed.has(fieldName(f)),
        mailboxes,
        ...(outcome.kind === "junk" ? { folder: JUNK_FOLDER } : {}),
        remote,
        sender: forwardingReversePath(sender, received.recipients.forwardedBy, this.deps.router()),
        notifySender: senderVerified(sender, rspamdSenderAuth(sender, verdict)),
      });
      const storeMs = Math.round(performance.now() - t1);
      metrics.accepted.inc({ service: "smtp" });
      this.deps.log.info("smtp.accepted", {
        ...fields,
        size,
        from: sender,
        mailboxes: mailboxes.map(mailboxKey),
        folder: outcome.kind === "junk" ? JUNK_FOLDER : "INBOX",
        remote: remote.length,
        ...verdict.auth,
        scanMs: verdict.scanMs,
        storeMs,
      });
      // Read after the 250 (not awaited): a report that cannot be read is still delivered.
      if (reportCopy) void this.deps.reports?.ingest(id, reportCopy);
      return `Ok: queued as ${id}`;
    } catch (e) {
      throw await accept.refused(id, e, "smtp", fields, refuse);
    } finally {
      endTurn?.();
    }
  }
}

/** A header field's name, lowercase. */
function fieldName(field: string): string {
  return field.slice(0, field.indexOf(":")).trim().toLowerCase();
}
