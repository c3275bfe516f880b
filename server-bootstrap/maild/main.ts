// maild command line: `maild --config FILE` runs the daemon; `maild --check-config FILE`
// validates the file and exits 0 (valid) or 1 (every problem printed, one per line).
import { ConfigError, loadMaildConfig } from "./config";
import { startDaemon, type Daemon } from "./daemon";
import { createLogger } from "./log";
import { renderMetrics } from "./metrics";
import { renderBackupMetrics } from "./backup-metrics";
import { startWebServers, type WebServers } from "./web/web-servers";
import type { ChallengeStore } from "./web/routes";
import { Http01Challenges } from "../../components/shared/acme/http01";
import { startRenewal, type Renewal } from "./certificate-renewal";
import { StatusPage } from "./web/status/status-page";

const USAGE = "usage: maild --config FILE | maild --check-config FILE";

/** HTTP(S) endpoints beside SMTP: MTA-STS, autoconfig, health, /metrics, ACME HTTP-01. */
export async function startWeb(daemon: Daemon, challenges: ChallengeStore): Promise<WebServers> {
  const cfg = daemon.config();
  const operations = daemon.operations;
  const status = operations
    ? new StatusPage({
        hostname: cfg.hostname,
        admins: () => daemon.config().operations?.admins ?? [],
        authenticate: daemon.authenticate,
        operations,
      })
    : undefined;
  return startWebServers({
    hostname: cfg.hostname,
    // Read once: the policy text changes with a redeploy, which restarts maild.
    domains: cfg.domains.flatMap((d) => (d.mtaStsPolicy !== undefined ? [{ name: d.name, mtaStsPolicy: d.mtaStsPolicy }] : [])),
    tls: { certPath: cfg.tls.certPath, keyPath: cfg.tls.keyPath },
    listen: { http: cfg.listen.http, https: cfg.listen.https },
    challenges,
    metrics: () => renderMetrics() + renderBackupMetrics(cfg.dataDir),
    health: () => ({ ok: true, smtp: daemon.smtp.length }),
    onError: (err) => daemon.log.error("web.error", { error: (err as Error).message }),
    ...(status ? { status } : {}),
  });
}

async function run(argv: string[]): Promise<number> {
  const [flag, file, ...rest] = argv;
  if (!file || rest.length > 0 || (flag !== "--config" && flag !== "--check-config")) {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  if (flag === "--check-config") {
    try {
      const cfg = loadMaildConfig(file);
      process.stdout.write(`${file}: ok (${cfg.domains.length} domains, ${cfg.users.length} users, ${cfg.aliases.length} aliases)\n`);
      return 0;
    } catch (e) {
      process.stderr.write((e instanceof ConfigError ? e.problems : [(e as Error).message]).join("\n") + "\n");
      return 1;
    }
  }

  const log = createLogger();
  let daemon: Daemon;
  try {
    daemon = await startDaemon(file, { log });
  } catch (e) {
    const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
    for (const p of problems) log.error("start.failed", { error: p });
    return 1;
  }
  // The one HTTP-01 store of the process: port 80 answers from it; on-box ACME renewal
  // (components/acme Http01Solver) writes into it.
  const challenges = new Http01Challenges();
  const web = await startWeb(daemon, challenges).catch((e: Error) => {
    log.error("web.start_failed", { error: e.message });
    return undefined;
  });
  if (!web) {
    await daemon.shutdown();
    return 1;
  }
  log.info("start.ready", { smtp: daemon.smtp.map((a) => `${a.host}:${a.port}`), pid: process.pid });

  // The one reload path: the config and certificate into SMTP, then the certificate into HTTPS.
  // SIGHUP (a deploy) and an on-box certificate renewal both take it.
  const reload = async (): Promise<boolean> => {
    if (!(await daemon.reload())) return false;
    try {
      web.reloadTls();
      return true;
    } catch (e) {
      log.error("web.reload_failed", { error: (e as Error).message });
      return false;
    }
  };
  process.on("SIGHUP", () => void reload());

  let renewal: Renewal | undefined;
  const acme = daemon.config().acme;
  if (acme) {
    try {
      renewal = startRenewal({ acme, tls: daemon.config().tls, challenges, reloadTls: reload, log });
    } catch (e) {
      // Mail keeps flowing with the deployed certificate; the next deploy brings a fresh one.
      log.error("acme.start_failed", { error: (e as Error).message });
    }
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("signal", { signal });
      renewal?.stop();
      void Promise.all([daemon.shutdown(), web.close()]).then(() => resolve(0));
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`maild: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
