/**
 * CertificateKeeper: keeps the mail host's certificate fresh from the box itself, so it never
 * expires because nobody ran `pulumi up`.
 *
 * Files in `dir` (the daemon reads them; the deploy step writes them with installCertificate):
 *   cert.pem  the chain, leaf first          (CERT_FILE)
 *   key.pem   the certificate's private key  (KEY_FILE; stable: renewals reuse it)
 *
 * Usage in the daemon:
 *   const challenges = new Http01Challenges();      // consulted by the port-80 server: challenges.answer(req.url)
 *   const keeper = new CertificateKeeper({ dir, names, directoryUrl, accountKeyPem, challenges,
 *                                          onInstalled: () => reloadTlsContexts() });
 *   keeper.start();                                  // checks now, then every checkIntervalMs
 *   ...
 *   keeper.stop();
 * `checkNow()` runs one check and returns what it did (for logs, tests and `maild --renew-now`).
 *
 * Rules: renew when renewalDecision() says so (a third of the lifetime left by default, or the
 * CA's ARI window, or the names changed); answer HTTP-01 through the shared Http01Challenges store;
 * write atomically (temp file, fsync, rename, fsync dir); never install a certificate whose
 * notAfter is not later than the installed one (isNewerCertificate), whoever installs it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { X509Certificate } from "node:crypto";
import { Http01Challenges, Http01Solver } from "./http01";
import type * as Issue from "./issue";
import type { Backoff } from "./issue";
import { readCertificateInfo, spkiSha256OfKey, type CertificateInfo } from "./certificate-info";
import { renewalDecision, isNewerCertificate } from "./renewal-decision";
import { fetchRenewalInfo } from "./ari";

export const CERT_FILE = "cert.pem";
export const KEY_FILE = "key.pem";

export interface InstalledCertificate extends CertificateInfo {
  certificatePem: string;
}

/** The certificate in `dir`, or undefined when there is none (or it does not parse). */
export function readInstalledCertificate(dir: string): InstalledCertificate | undefined {
  let pem: string;
  try {
    pem = fs.readFileSync(path.join(dir, CERT_FILE), "utf8");
  } catch {
    return undefined;
  }
  try {
    return { ...readCertificateInfo(pem), certificatePem: pem };
  } catch {
    return undefined;
  }
}

/** Whether `candidatePem` may replace `installedPem`: only a certificate that expires later. */
export function shouldInstall(candidatePem: string, installedPem: string | undefined): boolean {
  const candidate = { notAfter: new Date(new X509Certificate(candidatePem).validTo) };
  if (installedPem === undefined) return true;
  let installed: { notAfter: Date };
  try {
    installed = { notAfter: new Date(new X509Certificate(installedPem).validTo) };
  } catch {
    return true; // an unreadable file protects nothing
  }
  return isNewerCertificate(candidate, installed);
}

function writeAtomic(file: string, content: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, "w", mode);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export type InstallResult = "installed" | "kept-newer";

/**
 * Install chain + key into `dir` unless the installed certificate expires at the same time or
 * later. The key is written first (when it differs), then the chain; each atomically.
 */
export function installCertificate(dir: string, certificatePem: string, keyPem: string): InstallResult {
  const leafSpki = readCertificateInfo(certificatePem).spkiSha256;
  if (leafSpki !== spkiSha256OfKey(keyPem)) {
    throw new Error("installCertificate: the certificate does not match the key (different public keys)");
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  const installed = readInstalledCertificate(dir);
  if (!shouldInstall(certificatePem, installed?.certificatePem)) return "kept-newer";
  const keyFile = path.join(dir, KEY_FILE);
  let currentKey: string | undefined;
  try {
    currentKey = fs.readFileSync(keyFile, "utf8");
  } catch {
    currentKey = undefined;
  }
  if (currentKey !== keyPem) writeAtomic(keyFile, keyPem, 0o600);
  writeAtomic(path.join(dir, CERT_FILE), certificatePem, 0o644);
  fsyncDir(dir);
  return "installed";
}

export interface KeeperOptions {
  /** directory with cert.pem and key.pem */
  dir: string;
  /** names the certificate must carry (mail host, mta-sts.<domain>, autoconfig.<domain>) */
  names: string[];
  directoryUrl: string;
  accountKeyPem: string;
  email?: string;
  /** the store the port-80 server answers from */
  challenges: Http01Challenges;
  extraCaPem?: string;
  /** default 1/3 */
  renewBeforeFraction?: number;
  /** default 12 h */
  checkIntervalMs?: number;
  /** after a failed renewal; default 1 h */
  retryIntervalMs?: number;
  backoff?: Backoff;
  log?: (message: string) => void;
  /** called after a new certificate was installed (reload TLS contexts) */
  onInstalled?: (cert: InstalledCertificate) => void;
}

export interface KeeperResult {
  action: "renewed" | "not-due" | "kept-newer" | "failed";
  reason: string;
  notAfter?: Date;
}

export class CertificateKeeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<KeeperResult> | undefined;
  private stopped = true;

  constructor(private readonly opts: KeeperOptions) {}

  /** Check now and then on a timer (the timer does not keep the process alive). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async loop(): Promise<void> {
    const result = await this.checkNow();
    if (this.stopped) return;
    const delay = result.action === "failed" ? (this.opts.retryIntervalMs ?? 3_600_000) : (this.opts.checkIntervalMs ?? 43_200_000);
    this.timer = setTimeout(() => void this.loop(), delay);
    this.timer.unref();
  }

  /** One check; concurrent calls share the same run. Never throws: failures are in the result. */
  checkNow(now: Date = new Date()): Promise<KeeperResult> {
    this.running ??= this.check(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async check(now: Date): Promise<KeeperResult> {
    const log = this.opts.log ?? (() => undefined);
    try {
      let keyPem: string;
      try {
        keyPem = fs.readFileSync(path.join(this.opts.dir, KEY_FILE), "utf8");
      } catch {
        throw new Error(`no ${KEY_FILE} in ${this.opts.dir}: the deploy step installs the stable certificate key there first`);
      }
      const installed = readInstalledCertificate(this.opts.dir);
      let reason: string;
      if (!installed) {
        reason = "no certificate installed";
      } else {
        const ari = await fetchRenewalInfo(this.opts.directoryUrl, installed.certificatePem, {
          extraCaPem: this.opts.extraCaPem,
          onProblem: log,
        });
        const d = renewalDecision({
          now,
          notBefore: installed.notBefore,
          notAfter: installed.notAfter,
          currentNames: installed.names,
          wantedNames: this.opts.names,
          currentSpkiSha256: installed.spkiSha256,
          wantedSpkiSha256: spkiSha256OfKey(keyPem),
          renewBeforeFraction: this.opts.renewBeforeFraction,
          ariWindow: ari?.window,
          ariSeed: ari?.certId,
        });
        if (!d.renew) return { action: "not-due", reason: d.reason, notAfter: installed.notAfter };
        reason = d.reason;
      }
      log(`certificate renewal: ${reason}`);
      // acme-client (with axios, node-forge) and @peculiar/x509 are loaded to issue, not before: a
      // check that finds nothing due leaves them out of maild (about 6 MiB of its heap).
      // (require, not import(): the same in the bundle, in dist/ and under tsx's CommonJS hook)
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { issueCertificate } = require("./issue") as typeof Issue;
      const cert = await issueCertificate({
        directoryUrl: this.opts.directoryUrl,
        accountKeyPem: this.opts.accountKeyPem,
        email: this.opts.email,
        extraCaPem: this.opts.extraCaPem,
        names: this.opts.names,
        certificateKeyPem: keyPem,
        solver: new Http01Solver(this.opts.challenges),
        replaces: installed?.ariCertId,
        backoff: this.opts.backoff,
        log,
      });
      const result = installCertificate(this.opts.dir, cert.certificatePem, keyPem);
      if (result === "kept-newer") {
        return {
          action: "kept-newer",
          reason: `issued a certificate, but the installed one expires later; kept it (${reason})`,
          notAfter: installed?.notAfter,
        };
      }
      this.opts.onInstalled?.(readInstalledCertificate(this.opts.dir)!);
      return { action: "renewed", reason, notAfter: cert.notAfter };
    } catch (err) {
      const message = (err as Error).message;
      log(`certificate renewal failed: ${message}`);
      return { action: "failed", reason: message };
    }
  }
}
