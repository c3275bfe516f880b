// Receiving mail on port 25 (RFC 5321) with smtp-server: STARTTLS, recipient policy at RCPT,
// message checks after DATA, then durable delivery before the 250.
import type { SMTPServerSession, SMTPServerDataStream, SMTPServerAddress } from "smtp-server";
import type { DNSResolver } from "mailauth";
import type { MaildConfig, ListenEndpoint } from "./config";
import type { Logger } from "./log";
import { metrics } from "./metrics";
import { mailboxKey, type Router } from "./router";
import { SmtpService, SHUTTING_DOWN, type BoundEndpoint } from "./smtp-listener";
import { authenticateStream, prefetchSpf, transactionResolver } from "./message-auth";
import { isForgedAuthResults } from "./trace-headers";
import { smtpError } from "./smtp-replies";
import { Recipients, sessionReceived, type MessageAcceptor } from "./accept";
import { forwardingReversePath, senderVerified } from "./reverse-path";
import type { TlsMaterial } from "./tls";

export interface InboundDeps {
  config: () => MaildConfig;
  router: () => Router;
  tls: () => TlsMaterial;
  resolver: () => DNSResolver;
  accept: MessageAcceptor;
  log: Logger;
}

/** What one MAIL transaction has accepted so far. */
interface Transaction {
  recipients: Recipients;
  /** this transaction's DNS answers, shared by the early SPF check and the checks after DATA */
  resolver: DNSResolver;
}

export class InboundSmtp extends SmtpService<Transaction> {
  constructor(private readonly deps: InboundDeps) {
    super("smtp", deps);
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
    if (!this.rate.take(session.remoteAddress)) {
      this.deps.log.warn("smtp.rate_limited", { session: session.id, ip: session.remoteAddress });
      return cb(this.refuse("rate-limit", 450, "4.7.1 Too many messages from your address, try again later"));
    }
    void this.deps.accept.storageBeforeData(session).then((full) => {
      if (full) return cb(this.refuse(full.reason, full.code, full.text));
      this.txns.set(session.id, { recipients: new Recipients(), resolver: transactionResolver(this.deps.resolver()) });
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
          // The first recipient we accept starts SPF, so its DNS lookups overlap the DATA transfer;
          // a transaction with no valid recipient causes none.
          if (txn.recipients.count === 0) {
            prefetchSpf({
              clientIp: session.remoteAddress,
              helo: session.hostNameAppearsAs || "",
              sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
              hostname: this.deps.config().hostname,
              resolver: txn.resolver,
            });
          }
          txn.recipients.add(route);
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
    // SPF, DKIM, DMARC and ARC run on the DATA as it arrives (what passes the size limit), so
    // the message is never read back; a message refused below just leaves its verdict unused.
    const auth = authenticateStream({
      clientIp: session.remoteAddress,
      helo,
      sender,
      hostname: cfg.hostname,
      resolver: txn?.resolver ?? this.deps.resolver(),
    });
    try {
      const received = await accept.receive(id, stream, txn?.recipients, {
        service: "smtp",
        maxBytes: cfg.limits.maxMessageBytes,
        taps: [auth.tap],
        fields,
        refuse,
      });
      let verdict;
      const t0 = performance.now();
      try {
        verdict = await auth.verdict;
      } catch (e) {
        this.deps.log.error("smtp.auth_error", { ...fields, error: (e as Error).message });
        throw refuse("auth-error", 451, "4.3.0 Temporary error checking the message, try again later");
      }
      const authMs = Math.round(performance.now() - t0);
      const verdictFields = { spf: verdict.spf, dkim: verdict.dkim, dmarc: verdict.dmarc, arc: verdict.arc };
      if (verdict.reject) {
        this.deps.log.info("smtp.dmarc_reject", { ...fields, ...verdictFields });
        throw refuse("dmarc", verdict.reject.code, verdict.reject.message);
      }
      const trace = sessionReceived(session, cfg.hostname, id, session.secure ? "ESMTPS" : "ESMTP");
      const mailboxes = [...received.recipients.mailboxes.values()];
      const remote = [...received.recipients.remote];
      const t1 = performance.now();
      const { size } = await accept.accept({
        id,
        held: received.held,
        prepend: verdict.headers + trace,
        dropHeader: (f) => isForgedAuthResults(f, cfg.hostname),
        mailboxes,
        remote,
        sender: forwardingReversePath(sender, received.recipients.forwardedBy, this.deps.router()),
        notifySender: senderVerified(sender, verdict),
      });
      const storeMs = Math.round(performance.now() - t1);
      metrics.accepted.inc({ service: "smtp" });
      this.deps.log.info("smtp.accepted", {
        ...fields,
        size,
        from: sender,
        mailboxes: mailboxes.map(mailboxKey),
        remote: remote.length,
        ...verdictFields,
        authMs,
        storeMs,
      });
      return `Ok: queued as ${id}`;
    } catch (e) {
      throw await accept.refused(id, e, "smtp", fields, refuse);
    }
  }
}
