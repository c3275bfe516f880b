// The box watching itself: blocklist checks on their own schedule, the conditions behind alerts
// every checkIntervalSeconds (alerts fire once and clear once, by mail to alertTo and to the
// webhook), the digest at digestTime (UTC), and our TLSRPT reports for each finished day.
import { promises as dns } from "node:dns";
import { readFileSync } from "node:fs";
import * as https from "node:https";
import type { MaildConfig } from "../config";
import type { Logger } from "../log";
import { counter, gauge } from "../metrics";
import type { OperationsConfig } from "../operations-config";
import type { QueueSnapshotEntry } from "../outbound/queue";
import type { TlsReport } from "../outbound/tls-report";
import type { ReceivedReports } from "../reports/received-reports";
import { summariseDmarc, summariseTlsrpt } from "../reports/report-summary";
import { parseTlsrptRecord, reportedDomains, tlsReportDocument, tlsReportMail } from "../reports/tlsrpt-send";
import type { DmarcEvaluations } from "../reports/dmarc-evaluation";
import {
  dmarcReportMail,
  dmarcReportXml,
  evaluationsByDomain,
  externalVerificationName,
  parseDmarcRecord,
  reportRows,
} from "../reports/dmarc-send";
import { blocklistDnsFrom, blocklistZone, checkBlocklists, type BlocklistResult } from "../../../components/shared/dnsbl";
import { dnsDrift, type DriftResolver } from "../../../components/shared/dns-drift";
import { alertChanges, readState, writeState, type ActiveAlert, type MonitoringState } from "./alerts";
import { conditions } from "./conditions";
import { digestText } from "./digest";
import { backupFact, certificateFact, diskFact, queueFact, spamFilterFact, type Facts } from "./facts";
import { composeMessage, type Attachment } from "./mail-message";

const listed = gauge("maild_blocklist_listed", "1 when the target is listed on the zone, 0 when clear, -1 when the list gave no verdict");
const blocklistChecks = counter("maild_blocklist_checks_total", "Blocklist check rounds, by outcome");
const alertsActive = gauge("maild_alerts_active", "Open alerts, by severity");
const alertsSent = counter("maild_alerts_total", "Alert notices, by event (fired, cleared) and channel (mail, webhook)");
const digests = counter("maild_digests_total", "Daily digests, by result");
const dmarcReportsSent = counter("maild_dmarc_reports_sent_total", "Our RFC 7489 aggregate reports, by result");
const tlsReportsSent = counter("maild_tlsrpt_reports_sent_total", "Our RFC 8460 reports, by delivery (mailto, https) and result");
const certificateDays = gauge("maild_certificate_days_left", "Days until the TLS certificate expires");
const queueOldest = gauge("maild_queue_oldest_seconds", "Age of the oldest message in the outbound queue");
const diskUsed = gauge("maild_disk_used_percent", "Fullness of the data volume");
const dnsDriftGauge = gauge("maild_dns_drift_records", "Planned DNS records that DNS does not answer as planned");
const spamUp = gauge("maild_spam_filter_up", "1 when the spam filter answers its health check");
const dmarcFailures = gauge("maild_dmarc_report_failures", "Messages reported failing DMARC over the last day, by source (ours or others)");
const tlsFailures = gauge("maild_tlsrpt_report_failures", "Sessions to us reported failing TLS over the last day");

const DAY_MS = 86_400_000;

export interface OperationsDeps {
  config: () => MaildConfig;
  log: Logger;
  queue: () => QueueSnapshotEntry[];
  tlsReport: TlsReport;
  reports: ReceivedReports;
  /** the DMARC evaluations of received mail; absent: no aggregate reports are sent */
  dmarcEvaluations?: DmarcEvaluations;
  /** takes a message the server wrote (DKIM-signed by the sender's domain) for local mailboxes or the queue */
  send: (sender: string, recipients: string[], message: Buffer) => Promise<void>;
  now?: () => number;
}

export class Operations {
  private blocklists: { checkedAt?: number; results: BlocklistResult[] } = { results: [] };
  private state: MonitoringState;
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private lastFacts?: Facts;

  constructor(private readonly deps: OperationsDeps) {
    this.now = deps.now ?? Date.now;
    this.state = readState(deps.config().dataDir);
  }

  private get ops(): OperationsConfig {
    return this.deps.config().operations!;
  }

  private resolver(): dns.Resolver {
    const r = new dns.Resolver({ timeout: 3000, tries: 2 });
    const servers = this.deps.config().dnsServers;
    if (servers && servers.length > 0) r.setServers(servers);
    return r;
  }

  start(): void {
    const every = (seconds: number, f: () => Promise<unknown>) => {
      const t = setInterval(() => void this.serial(f), seconds * 1000);
      t.unref();
      this.timers.push(t);
    };
    every(this.ops.blocklistIntervalSeconds, () => this.checkBlocklists());
    every(this.ops.checkIntervalSeconds, () => this.evaluate());
    // the daily jobs look at the clock once a minute: a restart at any time picks them up
    every(60, () => this.daily());
    void this.serial(async () => {
      await this.checkBlocklists();
      await this.evaluate();
      await this.daily();
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.running;
  }

  /** One job at a time: a slow DNS round never overlaps the next evaluation. */
  serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.running.then(f);
    this.running = run.catch((e: Error) => this.deps.log.error("operations.error", { error: e.message }));
    return run;
  }

  async checkBlocklists(): Promise<BlocklistResult[]> {
    const cfg = this.deps.config();
    const zones = [
      ...this.ops.ipBlocklists.map((z) => blocklistZone(z, "ip")),
      ...this.ops.domainBlocklists.map((z) => blocklistZone(z, "domain")),
    ];
    const targets = { ips: this.ops.addresses, domains: [...cfg.domains.map((d) => d.name), cfg.hostname] };
    const results = await checkBlocklists(targets, zones, blocklistDnsFrom(this.resolver()));
    this.blocklists = { checkedAt: this.now(), results };
    for (const r of results) listed.set(r.status === "listed" ? 1 : r.status === "clear" ? 0 : -1, { zone: r.zone, target: r.target });
    blocklistChecks.inc({
      result: results.some((r) => r.status === "listed") ? "listed" : results.some((r) => r.status === "error") ? "error" : "clear",
    });
    for (const r of results.filter((x) => x.status !== "clear"))
      this.deps.log[r.status === "listed" ? "warn" : "info"]("blocklist.result", {
        zone: r.zone,
        target: r.target,
        status: r.status,
        reason: r.reason,
      });
    return results;
  }

  async facts(): Promise<Facts> {
    const cfg = this.deps.config();
    const at = this.now();
    const [dmarc, tls, disk, spam, drift, outboundTls] = await Promise.all([
      this.deps.reports.dmarc(at - DAY_MS, at),
      this.deps.reports.tlsrpt(at - DAY_MS, at),
      diskFact(cfg.dataDir),
      spamFilterFact(this.ops.spamFilterUrl ?? rspamdPing(cfg)),
      this.ops.expectedRecords.length > 0
        ? dnsDrift(this.ops.expectedRecords, this.resolver() as unknown as DriftResolver)
        : Promise.resolve([]),
      this.deps.tlsReport.readDay(new Date(at).toISOString().slice(0, 10)).catch(() => undefined),
    ]);
    const f: Facts = {
      at,
      hostname: cfg.hostname,
      certificate: certificateFact(cfg.tls.certPath, at),
      queue: queueFact(this.deps.queue()),
      ...(disk ? { disk } : {}),
      backup: backupFact(cfg.dataDir, at),
      spamFilter: spam,
      dnsDrift: { checked: this.ops.expectedRecords.length, findings: drift },
      blocklists: this.blocklists,
      dmarc: summariseDmarc(
        dmarc.map((d) => d.report),
        this.ops.addresses,
      ),
      tlsrpt: summariseTlsrpt(tls.map((t) => t.report)),
      ...(outboundTls ? { outboundTls } : {}),
    };
    certificateDays.set(f.certificate.daysLeft);
    queueOldest.set(f.queue.oldestArrival !== undefined ? Math.floor((at - f.queue.oldestArrival) / 1000) : 0);
    if (f.disk) diskUsed.set(f.disk.usedPercent);
    dnsDriftGauge.set(drift.length);
    spamUp.set(spam.configured ? Number(spam.ok) : 1);
    dmarcFailures.set(
      f.dmarc.sources.filter((s) => s.ours).reduce((n, s) => n + s.dmarcFail, 0),
      { source: "ours" },
    );
    dmarcFailures.set(
      f.dmarc.sources.filter((s) => !s.ours).reduce((n, s) => n + s.dmarcFail, 0),
      { source: "others" },
    );
    tlsFailures.set(f.tlsrpt.failed);
    this.lastFacts = f;
    return f;
  }

  /** Gathers the facts, fires what is new, clears what is gone, remembers the rest. */
  async evaluate(): Promise<{ fired: ActiveAlert[]; cleared: ActiveAlert[] }> {
    const f = await this.facts();
    const changes = alertChanges(this.state.active, conditions(f, this.ops.thresholds), f.at);
    this.state.active = changes.active;
    alertsActive.set(changes.active.filter((a) => a.severity === "critical").length, { severity: "critical" });
    alertsActive.set(changes.active.filter((a) => a.severity === "warning").length, { severity: "warning" });
    // Written before anyone is told: a crash in between loses a notice rather than repeating it forever.
    if (changes.fired.length > 0 || changes.cleared.length > 0) await writeState(this.deps.config().dataDir, this.state);
    for (const a of changes.fired) await this.notify("fired", a);
    for (const a of changes.cleared) await this.notify("cleared", a);
    return changes;
  }

  private async notify(event: "fired" | "cleared", a: ActiveAlert): Promise<void> {
    const cfg = this.deps.config();
    this.deps.log[event === "fired" ? "warn" : "info"](`alert.${event}`, { id: a.id, severity: a.severity, summary: a.summary });
    const subject = event === "fired" ? `[${cfg.hostname}] ALERT: ${a.summary}` : `[${cfg.hostname}] cleared: ${a.summary}`;
    const text =
      event === "fired"
        ? `${a.summary}\n\n${a.detail}\n\nFirst seen ${new Date(a.since).toISOString()}. You will get one more message when this clears.\n`
        : `Cleared: ${a.summary}\n\nOpen since ${new Date(a.since).toISOString()}, gone at ${new Date(this.now()).toISOString()}.\n`;
    await this.mail(subject, text, "alert", event);
    await this.webhook({ event: `alert.${event}`, host: cfg.hostname, alert: a }, event);
  }

  private async mail(subject: string, text: string, what: string, event: string): Promise<boolean> {
    const cfg = this.deps.config();
    if (this.ops.alertTo.length === 0) return true;
    const { message } = composeMessage({ from: this.ops.reportFrom, to: this.ops.alertTo, subject, text, hostname: cfg.hostname });
    try {
      await this.deps.send(this.ops.reportFrom, this.ops.alertTo, message);
      alertsSent.inc({ event, channel: "mail" });
      return true;
    } catch (e) {
      this.deps.log.error(`${what}.mail_failed`, { error: (e as Error).message });
      return false;
    }
  }

  private async webhook(body: unknown, event: string): Promise<void> {
    const url = this.ops.webhook;
    if (!url) return;
    const cfg = this.deps.config();
    const ca = cfg.outbound.extraCaPath ? [readFileSync(cfg.outbound.extraCaPath, "utf8"), ...tlsRootCertificates()] : undefined;
    try {
      const status = await postJson(url, body, ca);
      if (status < 200 || status > 299) throw new Error(`answered ${status}`);
      alertsSent.inc({ event, channel: "webhook" });
    } catch (e) {
      this.deps.log.error("alert.webhook_failed", { url, error: (e as Error).message });
    }
  }

  /** The digest, now: to alertTo and the webhook. */
  sendDigest(): Promise<void> {
    return this.serial(() => this.digestNow());
  }

  private async digestNow(): Promise<void> {
    const f = await this.facts();
    const { subject, text } = digestText(f, this.state.active);
    const ok = await this.mail(subject, text, "digest", "digest");
    await this.webhook({ event: "digest", host: f.hostname, subject, text }, "digest");
    digests.inc({ result: ok ? "sent" : "failed" });
    this.state.lastDigest = new Date(f.at).toISOString().slice(0, 10);
    await writeState(this.deps.config().dataDir, this.state);
    this.deps.log.info("digest.sent", { subject, to: this.ops.alertTo });
  }

  private async daily(): Promise<void> {
    const now = new Date(this.now());
    const today = now.toISOString().slice(0, 10);
    const hhmm = now.toISOString().slice(11, 16);
    if (hhmm >= this.ops.digestTime && this.state.lastDigest !== today) await this.digestNow();
    const yesterday = new Date(this.now() - DAY_MS).toISOString().slice(0, 10);
    if (this.ops.sendTlsReports && !(this.state.tlsReportsSent ?? []).includes(yesterday)) await this.sendTlsReports(yesterday);
    if (this.deps.dmarcEvaluations && !(this.state.dmarcReportsSent ?? []).includes(yesterday)) await this.sendDmarcReports(yesterday);
  }

  /** RFC 8460 reports of one finished UTC day to every domain that asks for them. */
  async sendTlsReports(date: string): Promise<{ domain: string; rua: string; result: string }[]> {
    const cfg = this.deps.config();
    const outcomes: { domain: string; rua: string; result: string }[] = [];
    const day = await this.deps.tlsReport.readDay(date);
    for (const domain of day ? reportedDomains(day) : []) {
      const txt = await this.resolver()
        .resolveTxt(`_smtp._tls.${domain}`)
        .then((rs) => rs.map((c) => c.join("")))
        .catch(() => [] as string[]);
      const record = parseTlsrptRecord(txt);
      if (!record) continue;
      const doc = tlsReportDocument(day!, domain, { organization: cfg.hostname, contact: this.ops.reportFrom });
      const mail = tlsReportMail(doc, domain, cfg.hostname);
      for (const rua of record.rua) {
        let result: string;
        try {
          if (rua.toLowerCase().startsWith("mailto:")) {
            const to = decodeURIComponent(rua.slice("mailto:".length));
            const attachment: Attachment = { contentType: "application/tlsrpt+gzip", filename: mail.filename, data: mail.gzipped };
            const { message } = composeMessage({
              from: this.ops.reportFrom,
              to: [to],
              subject: mail.subject,
              text: mail.text,
              hostname: cfg.hostname,
              headers: mail.headers,
              attachments: [attachment],
              reportType: "tlsrpt",
            });
            await this.deps.send(this.ops.reportFrom, [to], message);
            result = "queued";
          } else {
            // RFC 8460 5.4: POST the gzipped report with media type application/tlsrpt+gzip
            const status = await postBody(rua, mail.gzipped, "application/tlsrpt+gzip", undefined);
            result = status >= 200 && status <= 299 ? "posted" : `http-${status}`;
          }
        } catch (e) {
          result = "failed";
          this.deps.log.error("tlsrpt.send_failed", { domain, rua, error: (e as Error).message });
        }
        tlsReportsSent.inc({ delivery: rua.startsWith("https") ? "https" : "mailto", result });
        outcomes.push({ domain, rua, result });
        this.deps.log.info("tlsrpt.report_sent", { domain, rua, result, reportId: doc["report-id"] });
      }
    }
    this.state.tlsReportsSent = [
      ...(this.state.tlsReportsSent ?? []).filter((d) => d >= new Date(Date.parse(date) - 7 * DAY_MS).toISOString().slice(0, 10)),
      date,
    ];
    await writeState(cfg.dataDir, this.state);
    return outcomes;
  }

  /** Our reports of one UTC day, now (the status page's action; the daily job sends each finished day once). */
  async sendReports(day: string): Promise<void> {
    await this.serial(async () => {
      if (this.ops.sendTlsReports) await this.sendTlsReports(day);
      if (this.deps.dmarcEvaluations) await this.sendDmarcReports(day);
    });
  }

  /** RFC 7489 aggregate reports of one UTC day, one per policy domain that asks for them. */
  async sendDmarcReports(date: string): Promise<{ domain: string; rua: string; result: string }[]> {
    const cfg = this.deps.config();
    const evaluations = this.deps.dmarcEvaluations!;
    const outcomes: { domain: string; rua: string; result: string }[] = [];
    const resolver = this.resolver();
    const txt = (name: string) =>
      resolver
        .resolveTxt(name)
        .then((rs) => rs.map((c) => c.join("")))
        .catch(() => [] as string[]);
    const begin = Math.floor(Date.parse(`${date}T00:00:00Z`) / 1000);
    const all = await evaluations.day(date);
    const byDomain = evaluationsByDomain(
      all,
      cfg.domains.map((d) => d.name),
    );
    this.deps.log.info("dmarc.reports_due", { date, evaluations: all.length, domains: [...byDomain.keys()] });
    for (const [domain, evals] of byDomain) {
      // the policy and rua as published now (mox re-reads them when it sends, too)
      const policy = parseDmarcRecord(await txt(`_dmarc.${domain}`));
      if (!policy || policy.rua.length === 0) continue;
      const meta = {
        orgName: cfg.hostname,
        email: this.ops.reportFrom,
        reportId: `${date}.${domain}@${cfg.hostname}`,
        begin,
        end: begin + 86_399,
      };
      const mail = dmarcReportMail(meta, domain, dmarcReportXml(meta, domain, policy, reportRows(evals)));
      for (const rua of policy.rua) {
        let result: string;
        const ruaDomain = rua.address.slice(rua.address.lastIndexOf("@") + 1);
        const verify = externalVerificationName(domain, ruaDomain);
        if (verify && !(await txt(verify)).some((t) => /^v\s*=\s*DMARC1/i.test(t))) result = "not-authorised";
        else {
          const { message } = composeMessage({
            from: this.ops.reportFrom,
            to: [rua.address],
            subject: mail.subject,
            text: mail.text,
            hostname: cfg.hostname,
            attachments: [{ contentType: "application/gzip", filename: mail.filename, data: mail.gzipped }],
          });
          // RFC 7489 6.2: the size limit counts the whole message as sent (mox compares it so)
          if (rua.maxBytes !== undefined && message.length > rua.maxBytes) result = "too-large";
          else {
            try {
              await this.deps.send(this.ops.reportFrom, [rua.address], message);
              result = "queued";
            } catch (e) {
              result = "failed";
              this.deps.log.error("dmarc.report_failed", { domain, rua: rua.address, error: (e as Error).message });
            }
          }
        }
        dmarcReportsSent.inc({ result });
        outcomes.push({ domain, rua: rua.address, result });
        this.deps.log.info("dmarc.report_sent", { domain, rua: rua.address, result, reportId: meta.reportId, messages: evals.length });
      }
    }
    this.state.dmarcReportsSent = [
      ...(this.state.dmarcReportsSent ?? []).filter((d) => d >= new Date(Date.parse(date) - 7 * DAY_MS).toISOString().slice(0, 10)),
      date,
    ];
    await writeState(cfg.dataDir, this.state);
    await evaluations.expire(this.now());
    return outcomes;
  }

  /** Blocklists and conditions now (the status page's "Check now"). */
  checkNow(): Promise<void> {
    return this.serial(async () => {
      await this.checkBlocklists();
      await this.evaluate();
    });
  }

  /** What the status page shows: the latest facts (gathered again when older than a minute) and the open alerts. */
  async status(): Promise<{ facts: Facts; alerts: ActiveAlert[] }> {
    const fresh = this.lastFacts && this.now() - this.lastFacts.at < 60_000 ? this.lastFacts : await this.facts();
    return { facts: fresh, alerts: this.state.active };
  }

  /** Per-day history of received reports over `days`, for the charts. */
  async history(days: number) {
    const at = this.now();
    const [dmarc, tls] = await Promise.all([
      this.deps.reports.dmarc(at - days * DAY_MS, at),
      this.deps.reports.tlsrpt(at - days * DAY_MS, at),
    ]);
    return {
      dmarc: summariseDmarc(
        dmarc.map((d) => d.report),
        this.ops.addresses,
      ),
      tlsrpt: summariseTlsrpt(tls.map((t) => t.report)),
    };
  }
}

/**
 * rspamd's normal worker answers GET /ping with "pong" (rspamd 3.4 src/libserver/protocol.c,
 * CMD_PING); maild scans every message through it (`spam.rspamdUrl`), so the spam filter's health
 * needs no setting of its own.
 */
function rspamdPing(cfg: MaildConfig): string {
  return `${cfg.spam.rspamdUrl.replace(/\/$/, "")}/ping`;
}

function tlsRootCertificates(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return [...(require("node:tls") as typeof import("node:tls")).rootCertificates];
}

function postJson(url: string, body: unknown, ca: string[] | undefined): Promise<number> {
  return postBody(url, Buffer.from(JSON.stringify(body)), "application/json", ca);
}

function postBody(url: string, body: Buffer, contentType: string, ca: string[] | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: "POST", headers: { "content-type": contentType, "content-length": body.length }, timeout: 10_000, ...(ca ? { ca } : {}) },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end(body);
  });
}
