// On-box certificate renewal: the CertificateKeeper (components/shared/acme/keeper.ts) run inside maild,
// so the certificate never expires because nobody ran `pulumi up`. It answers HTTP-01 from the
// same challenge store maild's port 80 serves, renews the chain in the directory maild reads its
// certificate from (same key: DANE TLSA stays valid) and then reloads TLS everywhere through the
// daemon's one reload path, the one SIGHUP takes.
//
// Logs carry names, dates, serials and reasons; never the account key or the certificate key.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { AcmeConfig, MaildConfig } from "./config";
import type { Logger } from "./log";
import type { Http01Challenges } from "../../components/shared/acme/http01";
import { CertificateKeeper, type InstalledCertificate, type KeeperOptions, type KeeperResult } from "../../components/shared/acme/keeper";

export interface RenewalOptions {
  acme: AcmeConfig;
  /** maild's `tls` section: the keeper works in the directory of certPath (validated by config.ts) */
  tls: MaildConfig["tls"];
  /** the store maild's port-80 server answers `/.well-known/acme-challenge/` from */
  challenges: Http01Challenges;
  /** re-reads the certificate into SMTP and HTTPS; resolves false when it kept the old one */
  reloadTls: () => Promise<boolean>;
  log: Logger;
}

export interface Renewal {
  stop(): void;
}

function readSecretFile(key: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    // The message names the path and the errno, never the content.
    throw new Error(`acme.${key}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The keeper, with every check's outcome in the log (its own timer calls checkNow). */
class ReportingKeeper extends CertificateKeeper {
  constructor(
    private readonly logger: Logger,
    opts: KeeperOptions,
  ) {
    super(opts);
  }

  override checkNow(now?: Date): Promise<KeeperResult> {
    return super.checkNow(now).then((r) => {
      const fields = { action: r.action, reason: r.reason, notAfter: r.notAfter?.toISOString() };
      if (r.action === "failed") this.logger.error("acme.check", fields);
      else this.logger.info("acme.check", fields);
      return r;
    });
  }
}

/**
 * Starts the keeper: it checks at once, then every `checkIntervalSeconds`; a failed renewal is
 * retried after at most an hour. Throws only when the account key (or extra CA) is unreadable.
 */
export function startRenewal(opts: RenewalOptions): Renewal {
  const { acme, log } = opts;
  const accountKeyPem = readSecretFile("accountKeyPath", acme.accountKeyPath);
  const extraCaPem = acme.extraCaPath !== undefined ? readSecretFile("extraCaPath", acme.extraCaPath) : undefined;
  const dir = dirname(opts.tls.certPath);

  const onInstalled = (cert: InstalledCertificate): void => {
    log.info("acme.installed", {
      serial: cert.serialHex,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      names: cert.names,
    });
    void opts.reloadTls().then(
      (ok) => (ok ? log.info("acme.reloaded", { serial: cert.serialHex }) : log.error("acme.reload_failed", { serial: cert.serialHex })),
      (e: Error) => log.error("acme.reload_failed", { serial: cert.serialHex, error: e.message }),
    );
  };

  const keeper = new ReportingKeeper(log, {
    dir,
    names: acme.names,
    directoryUrl: acme.directoryUrl,
    accountKeyPem,
    ...(acme.email !== undefined ? { email: acme.email } : {}),
    challenges: opts.challenges,
    ...(extraCaPem !== undefined ? { extraCaPem } : {}),
    ...(acme.renewBeforeFraction !== undefined ? { renewBeforeFraction: acme.renewBeforeFraction } : {}),
    checkIntervalMs: acme.checkIntervalSeconds * 1000,
    // A failed renewal is retried sooner than the next regular check, but not more often.
    retryIntervalMs: Math.min(3_600_000, acme.checkIntervalSeconds * 1000),
    log: (message) => log.info("acme.progress", { message }),
    onInstalled,
  });
  log.info("acme.started", { directoryUrl: acme.directoryUrl, names: acme.names, checkIntervalSeconds: acme.checkIntervalSeconds, dir });
  keeper.start();
  return { stop: () => keeper.stop() };
}
