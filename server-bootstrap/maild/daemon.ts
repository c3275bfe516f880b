// maild's process-level wiring: config, TLS, recovery, the SMTP listener, reload and shutdown.
// main.ts is only the command line around this, so tests can run a daemon in-process too.
import { loadMaildConfig, type MaildConfig } from "./config";
import { createLogger, type Logger } from "./log";
import { metrics } from "./metrics";
import { Router } from "./router";
import { loadTls, type TlsMaterial } from "./tls";
import { createResolver } from "./resolver";
import { LocalStore, recoverSpool } from "./delivery";
import { InboundSmtp } from "./inbound";
import { NoRemoteQueue, type RemoteQueue } from "./queue";
import { DkimKeyring, SubmissionSmtp } from "./submission";
import { SubmissionAuthenticator } from "./submission-auth";
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

export async function startDaemon(configPath: string, opts: { log?: Logger; queue?: RemoteQueue } = {}): Promise<Daemon> {
  const log = opts.log ?? createLogger();
  let config = loadMaildConfig(configPath);
  let tls = loadTls(config.tls);
  let router = new Router(config);
  let resolver = createResolver(config.dnsServers) as DNSResolver;
  const queue = opts.queue ?? new NoRemoteQueue();

  const report = await recoverSpool(config.dataDir, config.hostname, config.users.map((u) => {
    const at = u.address.lastIndexOf("@");
    return { local: u.address.slice(0, at), domain: u.address.slice(at + 1) };
  }), (id) => queue.discard(id));
  log.info("spool.recovered", { rolledBack: report.rolledBack, discardedRaw: report.discardedRaw });

  const store = new LocalStore(config.dataDir, () => config.hostname);
  await store.init();
  const smtp = new InboundSmtp({
    config: () => config, router: () => router, tls: () => tls, resolver: () => resolver, store, queue, log,
  });
  const bound = await smtp.listen(config.listen.smtp);

  const dkim = new DkimKeyring();
  await dkim.load(config);
  const auth = new SubmissionAuthenticator(() => config.users, () => config.submission);
  const sweep = setInterval(() => auth.sweep(), 60_000).unref();
  const submission = new SubmissionSmtp({
    config: () => config, router: () => router, tls: () => tls, store, queue, auth, log,
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
    log.info("shutdown.done", {});
  };

  return { config: () => config, tls: () => tls, log, smtp: bound, submission: submissionBound, reload, shutdown };
}
