// maild's process-level wiring: config, TLS, recovery, the SMTP listener, reload and shutdown.
// main.ts is only the command line around this, so tests can run a daemon in-process too.
import { loadMaildConfig, type MaildConfig } from "./config";
import { createLogger, type Logger } from "./log";
import { metrics } from "./metrics";
import { Router } from "./router";
import { loadTls, type TlsMaterial } from "./tls";
import { LocalStore, recoverSpool } from "./delivery";
import { MessageAcceptor } from "./accept";
import { InboundSmtp } from "./inbound";
import { StoragePolicy } from "./storage-policy";
import { OutboundQueue, UndeliverableNotice } from "./outbound/queue";
import { SmtpTransport } from "./outbound/transport";
import { TlsReport } from "./outbound/tls-report";
import { rfc5322Date } from "./trace-headers";
import { SubmissionSmtp } from "./submission";
import { DkimKeyring } from "./dkim-keyring";
import { SubmissionAuthenticator } from "./submission-auth";
import { dkimSignatures } from "./dkim-sign";
import { ReceivedReports } from "./reports/received-reports";
import { ReportIntake } from "./reports/report-intake";
import { Operations } from "./monitoring/operations";
import { DmarcEvaluations } from "./reports/dmarc-evaluation";
import { SpamCheck } from "./spam-check";
import { LoginStateFile, LoginThrottle } from "./login-throttle";
import { startAuthPolicyServer, type AuthPolicyServer } from "./auth-policy-server";
import { join } from "node:path";

export interface DaemonState {
  config: () => MaildConfig;
  tls: () => TlsMaterial;
  log: Logger;
}

export interface Daemon extends DaemonState {
  /** where the SMTP listeners are bound (ports resolved when the config asked for 0) */
  smtp: { host: string; port: number }[];
  /** submission listeners: the STARTTLS ones (587) first, then the implicit-TLS ones (465) */
  submission: { host: string; port: number }[];
  /** re-reads the config file and the certificate; keeps the old ones if either is bad */
  reload(): Promise<boolean>;
  /** stops accepting, lets sessions finish up to the config's shutdownTimeoutMs */
  shutdown(): Promise<void>;
  /** monitoring, alerts, digest, reports and the status page's facts; absent without `operations` in the config */
  operations?: Operations;
  /** checks a mailbox password as submission does (throttled per address and account) */
  authenticate: SubmissionAuthenticator["authenticate"];
}

export async function startDaemon(configPath: string, opts: { log?: Logger } = {}): Promise<Daemon> {
  const log = opts.log ?? createLogger();
  let config = loadMaildConfig(configPath);
  let tls = loadTls(config.tls);
  let router = new Router(config);
  const spam = new SpamCheck(() => config.spam, log);

  const store = new LocalStore(config.dataDir, () => config.hostname);
  const tlsReport = new TlsReport({
    dataDir: () => config.dataDir,
    onWriteError: (e) => log.warn("tlsrpt.write_failed", { error: e.message }),
  });
  const queue: OutboundQueue = new OutboundQueue({
    dataDir: config.dataDir,
    config: () => config,
    log,
    transport: new SmtpTransport({ config: () => config, log, tlsReport }),
    // A DSN (or delay notice) goes to the original sender like any other message the server
    // itself writes: into a local mailbox, or back into the queue with the null sender.
    bounce: ({ recipient, message }) => deliverInternal(recipient, message),
  });

  const accept = new MessageAcceptor(store, queue, log, () => config.limits, new StoragePolicy(() => config, log));
  const ops = config.operations;
  const receivedReports = ops
    ? new ReceivedReports({ dataDir: config.dataDir, retentionDays: ops.reportRetentionDays, maxDayBytes: 64 * 1024 * 1024 })
    : undefined;
  const dmarcEvaluations = ops?.sendDmarcReports ? new DmarcEvaluations(config.dataDir) : undefined;
  const reportIntake = receivedReports
    ? new ReportIntake({
        addresses: () => config.operations?.reportAddresses ?? [],
        domains: () => config.domains.map((d) => d.name),
        store: receivedReports,
        log,
      })
    : undefined;

  /**
   * Stores a message the daemon made itself (null sender) for one recipient; resolves once durable.
   * A recipient no route leads to (a local name nobody has, a stale SRS address) never will be
   * reachable: UndeliverableNotice, and the queue drops the notice.
   */
  const deliverInternal = async (recipient: string, message: Buffer): Promise<void> => {
    const route = router.route(recipient, { authenticatedUser: `MAILER-DAEMON@${config.hostname}` });
    if (route.kind !== "accept") {
      throw new UndeliverableNotice(`no route to ${recipient}: ${route.kind === "bad-srs" ? `SRS address ${route.reason}` : route.kind}`);
    }
    const id = accept.newId();
    await accept.accept({
      id,
      held: [message],
      prepend: `Received: by ${config.hostname} (maild) id ${id};\r\n\t${rfc5322Date(new Date())}\r\n`,
      mailboxes: route.mailboxes,
      remote: route.remote,
      sender: "",
    });
  };

  /**
   * Takes a message the server wrote as `sender` (alerts, digest, reports): DKIM-signed with the
   * sender domain's keys like submitted mail, stored for local recipients, queued for the others.
   */
  const sendInternal = async (sender: string, recipients: string[], message: Buffer): Promise<void> => {
    const keys = dkim.get(sender.slice(sender.lastIndexOf("@") + 1));
    if (keys instanceof Error) throw keys;
    const mailboxes = new Map<string, import("./router").Mailbox>();
    const remote = new Set<string>();
    for (const rcpt of recipients) {
      const route = router.route(rcpt, { authenticatedUser: sender });
      if (route.kind !== "accept") throw new Error(`cannot send to ${rcpt}: ${route.kind}`);
      for (const mb of route.mailboxes) mailboxes.set(`${mb.local}@${mb.domain}`, mb);
      for (const r of route.remote) remote.add(r);
    }
    const id = accept.newId();
    await accept.accept({
      id,
      held: [message],
      prepend:
        `Received: by ${config.hostname} (maild) id ${id};\r\n\t${rfc5322Date(new Date())}\r\n` +
        (keys.length > 0 ? dkimSignatures(message, keys) : ""),
      mailboxes: [...mailboxes.values()],
      remote: [...remote],
      sender,
    });
  };

  const report = await recoverSpool(
    config.dataDir,
    config.hostname,
    config.users.map((u) => {
      const at = u.address.lastIndexOf("@");
      return { local: u.address.slice(0, at), domain: u.address.slice(at + 1) };
    }),
    (id) => queue.discard(id),
  );
  log.info("spool.recovered", { rolledBack: report.rolledBack, discardedRaw: report.discardedRaw });

  await store.init();
  // After recovery: what is left in the queue was committed, and is sent from now on.
  await queue.start();
  const smtp = new InboundSmtp({
    config: () => config,
    router: () => router,
    tls: () => tls,
    spam,
    accept,
    log,
    ...(reportIntake ? { reports: reportIntake } : {}),
    ...(dmarcEvaluations ? { dmarcEvaluations } : {}),
  });
  const bound = await smtp.listen(config.listen.smtp);

  const dkim = new DkimKeyring();
  await dkim.load(config);
  // One login throttle for SMTP AUTH and (through Dovecot's auth policy requests) IMAP, kept on
  // disk so a restart forgets neither the owner's known clients nor an attacker's block.
  const loginState = new LoginStateFile(
    join(config.dataDir, "state", "logins.json"),
    () => throttle,
    (e) => log.warn("logins.state_error", { error: e.message }),
  );
  const throttle = new LoginThrottle(
    () => config.submission,
    Date.now,
    () => loginState.changed(),
  );
  loginState.load(throttle);
  const auth = new SubmissionAuthenticator(() => config.users, throttle);
  const sweep = setInterval(() => auth.sweep(), 60_000).unref();
  let authPolicy: AuthPolicyServer | undefined;
  if (config.authPolicy) authPolicy = await startAuthPolicyServer(config.authPolicy, throttle, log);
  const submission = new SubmissionSmtp({
    config: () => config,
    router: () => router,
    tls: () => tls,
    accept,
    auth,
    spam,
    log,
    dkimKeys: (domain) => dkim.get(domain),
  });
  const submissionBound = await submission.listen(config.listen.submission, config.listen.submissions);
  metrics.queueSize.set(queue.size());

  const operations =
    ops && receivedReports
      ? new Operations({
          config: () => config,
          log,
          queue: () => queue.snapshot(),
          tlsReport,
          reports: receivedReports,
          ...(dmarcEvaluations ? { dmarcEvaluations } : {}),
          send: sendInternal,
        })
      : undefined;
  operations?.start();

  const reload = async (): Promise<boolean> => {
    try {
      const next = loadMaildConfig(configPath);
      const nextTls = loadTls(next.tls);
      if (next.dataDir !== config.dataDir || JSON.stringify(next.listen) !== JSON.stringify(config.listen)) {
        log.warn("config.restart_needed", { reason: "dataDir and listen addresses change only on restart" });
      }
      config = { ...next, dataDir: config.dataDir, listen: config.listen };
      tls = nextTls;
      await dkim.load(config);
      router = new Router(config);
      smtp.reloadTls();
      submission.reloadTls();
      metrics.reloads.inc({ result: "ok" });
      log.info("config.reloaded", { domains: config.domains.length, users: config.users.length, aliases: config.aliases.length });
      return true;
    } catch (e) {
      metrics.reloads.inc({ result: "error" });
      log.error("config.reload_failed", { error: (e as Error).message });
      return false;
    }
  };

  const shutdown = async (): Promise<void> => {
    log.info("shutdown.begin", { timeoutMs: config.shutdownTimeoutMs });
    clearInterval(sweep);
    await operations?.stop();
    await Promise.all([smtp.close(config.shutdownTimeoutMs), submission.close(config.shutdownTimeoutMs)]);
    await queue.stop(config.shutdownTimeoutMs);
    await authPolicy?.close();
    await auth.close();
    await loginState.flush();
    await tlsReport.flush().catch((e: Error) => log.warn("tlsrpt.write_failed", { error: e.message }));
    spam.close();
    log.info("shutdown.done", {});
  };

  return {
    config: () => config,
    tls: () => tls,
    log,
    smtp: bound,
    submission: submissionBound,
    reload,
    shutdown,
    authenticate: (user, password, ip) => auth.authenticate(user, password, ip),
    ...(operations ? { operations } : {}),
  };
}
