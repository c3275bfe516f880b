// Reports arriving at the addresses our DMARC and TLSRPT records publish (the stack's rua lists):
// the SMTP listener copies the DATA of a message to such an address (bounded) while it is
// received; after the 250 the copy is read here, checked and stored. The message itself is
// delivered like any other: a report that cannot be read is still in the mailbox for a person.
import { Transform, type TransformCallback } from "node:stream";
import type { Logger } from "../log";
import { counter } from "../metrics";
import { parseDmarcAggregate } from "./dmarc-aggregate";
import type { ReceivedReports } from "./received-reports";
import { extractReport, ReportRefused, REPORT_LIMITS, type ReportLimits } from "./report-payload";
import { parseTlsrpt } from "./tlsrpt-report";

const received = counter("maild_reports_received_total", "DMARC and TLSRPT reports received at a report address, by kind and outcome");

/** Larger messages to a report address are delivered but not read (mox reads at most 15 MB). */
export const MAX_REPORT_MESSAGE_BYTES = 12 * 1024 * 1024;

/** A pass-through that keeps a copy of what flows, up to a limit. */
export class BoundedCopy extends Transform {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflow = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.overflow = true;
      this.chunks.length = 0;
    } else this.chunks.push(chunk);
    cb(null, chunk);
  }

  /** The copy, or undefined when the message was larger than the limit. */
  get copy(): Buffer | undefined {
    return this.overflow ? undefined : Buffer.concat(this.chunks);
  }
}

export interface ReportIntakeDeps {
  /** lowercase report addresses (read at each use: a reload may change them) */
  addresses: () => string[];
  /** our domains: a report about any other is refused */
  domains: () => string[];
  store: ReceivedReports;
  log: Logger;
  limits?: ReportLimits;
}

export type IntakeOutcome = { kind: "dmarc" | "tlsrpt"; result: "stored" | "duplicate" | "day-full" } | { kind: "unknown"; result: string };

export class ReportIntake {
  constructor(private readonly deps: ReportIntakeDeps) {}

  /** Whether mail to this RCPT address is a report to read (before alias resolution: the published address). */
  wants(address: string): boolean {
    return this.deps.addresses().includes(address.toLowerCase());
  }

  copier(): BoundedCopy {
    return new BoundedCopy(MAX_REPORT_MESSAGE_BYTES);
  }

  /** Reads, checks and stores the report in a delivered message. Never throws: the outcome is logged and counted. */
  async ingest(id: string, copy: BoundedCopy): Promise<IntakeOutcome> {
    const fields = { id };
    const message = copy.copy;
    if (!message) {
      received.inc({ kind: "unknown", result: "too-large" });
      this.deps.log.warn("report.refused", { ...fields, reason: "too-large", error: `message over ${MAX_REPORT_MESSAGE_BYTES} bytes` });
      return { kind: "unknown", result: "too-large" };
    }
    let kind: "dmarc" | "tlsrpt" | "unknown" = "unknown";
    try {
      const payload = await extractReport(message, this.deps.limits ?? REPORT_LIMITS);
      kind = payload.format;
      const text = payload.content.toString("utf8");
      const ours = new Set(this.deps.domains());
      let result: "stored" | "duplicate" | "day-full";
      if (payload.format === "dmarc") {
        const report = parseDmarcAggregate(text);
        if (!ours.has(report.domain))
          throw new ReportRefused("not-ours", `DMARC report about ${report.domain}, which is not one of our domains`);
        result = await this.deps.store.store({ kind: "dmarc", report });
        this.deps.log.info("report.received", {
          ...fields,
          kind,
          result,
          reporter: report.orgName,
          reportId: report.reportId,
          domain: report.domain,
          records: report.records.length,
        });
      } else {
        const report = parseTlsrpt(text);
        const policies = report.policies.filter((p) => ours.has(p.policyDomain));
        if (policies.length === 0)
          throw new ReportRefused(
            "not-ours",
            `TLSRPT report about ${report.policies.map((p) => p.policyDomain).join(", ")}, none of them ours`,
          );
        result = await this.deps.store.store({ kind: "tlsrpt", report: { ...report, policies } });
        this.deps.log.info("report.received", {
          ...fields,
          kind,
          result,
          reporter: report.orgName,
          reportId: report.reportId,
          domains: policies.map((p) => p.policyDomain),
        });
      }
      received.inc({ kind, result });
      return { kind, result };
    } catch (e) {
      const reason = e instanceof ReportRefused ? e.reason : "error";
      received.inc({ kind, result: reason });
      this.deps.log.warn("report.refused", { ...fields, kind, reason, error: (e as Error).message });
      return { kind: "unknown", result: reason };
    }
  }
}
