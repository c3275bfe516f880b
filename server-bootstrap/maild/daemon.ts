// maild's process-level wiring: config, TLS, recovery, the SMTP listener, reload and shutdown.
// main.ts is only the command line around this, so tests can run a daemon in-process too.
import { loadMaildConfig, type MaildConfig } from "./config";
import { createLogger, type Logger } from "./log";
import { metrics } from "./metrics";
import { Router } from "./router";
import { loadTls, type TlsMaterial } from "./tls";
import { createResolver } from "./resolver";
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
import { LoginStateFile, LoginThrottle } from "./login-throttle";
import { startAuthPolicyServer, type AuthPolicyServer } from "./auth-policy-server";
import { join } from "node:path";
import type { DNSResolver } from "mailauth";

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
}

export async function startDaemon(configPath: string, opts: { log?: Logger } = {}): Promise<Daemon> {
  const log = opts.log ?? createLogger();
  let config = loadMaildConfig(configPath);
  let tls = loadTls(config.tls);
  let router = new Router(config);
  let resolver = createResolver(config.dnsServers) as DNSResolver;

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

  const accept = new MessageAcceptor(store, queue, log, new StoragePolicy(() => config, log));

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
    resolver: () => resolver,
    accept,
    log,
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
    log,
    dkimKeys: (domain) => dkim.get(domain),
  });
  const submissionBound = await submission.listen(config.listen.submission, config.listen.submissions);
  metrics.queueSize.set(queue.size());

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
      resolver = createResolver(config.dnsServers) as DNSResolver;
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
    await Promise.all([smtp.close(config.shutdownTimeoutMs), submission.close(config.shutdownTimeoutMs)]);
    await queue.stop(config.shutdownTimeoutMs);
    await authPolicy?.close();
    await auth.close();
    await loginState.flush();
    await tlsReport.flush().catch((e: Error) => log.warn("tlsrpt.write_failed", { error: e.message }));
    log.info("shutdown.done", {});
  };

  return { config: () => config, tls: () => tls, log, smtp: bound, submission: submissionBound, reload, shutdown };
}
