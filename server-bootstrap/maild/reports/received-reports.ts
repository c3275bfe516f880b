// Reports received at our rua addresses, kept on the data volume in bounded form and summarised
// for the digest, the alerts and the status page.
//
// Files: <dataDir>/reports/received/<kind>-<YYYY-MM-DD>.jsonl, one parsed report per line, by UTC
// day of arrival (the message itself stays in the postmaster's mailbox). Bounds: a report seen
// before (same reporter and report id: receivers resend) is not stored again; a day file stops
// growing at `maxDayBytes`; files older than `retentionDays` are deleted.
import { appendFile, mkdir, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { DmarcAggregateReport } from "./dmarc-aggregate";
import type { TlsrptReport } from "./tlsrpt-report";

export type ReceivedReport = { kind: "dmarc"; report: DmarcAggregateReport } | { kind: "tlsrpt"; report: TlsrptReport };

interface StoredLine {
  /** ms since the epoch */
  receivedAt: number;
  kind: "dmarc" | "tlsrpt";
  report: DmarcAggregateReport | TlsrptReport;
}

export interface ReceivedReportsOptions {
  dataDir: string;
  retentionDays: number;
  maxDayBytes: number;
  now?: () => number;
}

const DAY_MS = 86_400_000;
const FILE_RE = /^(dmarc|tlsrpt)-(\d{4}-\d{2}-\d{2})\.jsonl$/;

export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export type StoreOutcome = "stored" | "duplicate" | "day-full";

export class ReceivedReports {
  private readonly dir: string;
  private readonly now: () => number;
  private readonly cache = new Map<string, { size: number; mtimeMs: number; lines: StoredLine[] }>();
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ReceivedReportsOptions) {
    this.dir = join(opts.dataDir, "reports", "received");
    this.now = opts.now ?? Date.now;
  }

  /** Appends a report unless it is a resend or its day is full. Writes are serialised. */
  store(r: ReceivedReport): Promise<StoreOutcome> {
    const run = this.writing.then(() => this.storeNow(r));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async storeNow(r: ReceivedReport): Promise<StoreOutcome> {
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    const at = this.now();
    const id = identity(r.kind, r.report);
    const recent = await this.lines(at - this.opts.retentionDays * DAY_MS, at);
    if (recent.some((l) => l.kind === r.kind && identity(l.kind, l.report) === id)) return "duplicate";
    const file = join(this.dir, `${r.kind}-${utcDay(at)}.jsonl`);
    const line = JSON.stringify({ receivedAt: at, kind: r.kind, report: r.report } satisfies StoredLine) + "\n";
    const size = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if (size + Buffer.byteLength(line) > this.opts.maxDayBytes) return "day-full";
    await appendFile(file, line, { mode: 0o640 });
    await this.expire(at);
    return "stored";
  }

  /** Deletes day files older than the retention. */
  async expire(at = this.now()): Promise<void> {
    const oldest = utcDay(at - this.opts.retentionDays * DAY_MS);
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = FILE_RE.exec(name);
      if (m && m[2] < oldest) {
        await unlink(join(this.dir, name)).catch(() => undefined);
        this.cache.delete(name);
      }
    }
  }

  /** Every stored report received in [from, to] (ms), oldest day first. */
  async lines(from: number, to: number): Promise<StoredLine[]> {
    const first = utcDay(from);
    const last = utcDay(to);
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => {
      const m = FILE_RE.exec(n);
      return m !== null && m[2] >= first && m[2] <= last;
    });
    names.sort((a, b) => a.slice(a.indexOf("-")).localeCompare(b.slice(b.indexOf("-"))));
    const out: StoredLine[] = [];
    for (const name of names) {
      for (const l of await this.read(name)) if (l.receivedAt >= from && l.receivedAt <= to) out.push(l);
    }
    return out;
  }

  async dmarc(from: number, to: number): Promise<{ receivedAt: number; report: DmarcAggregateReport }[]> {
    return (await this.lines(from, to)).filter((l) => l.kind === "dmarc") as { receivedAt: number; report: DmarcAggregateReport }[];
  }

  async tlsrpt(from: number, to: number): Promise<{ receivedAt: number; report: TlsrptReport }[]> {
    return (await this.lines(from, to)).filter((l) => l.kind === "tlsrpt") as { receivedAt: number; report: TlsrptReport }[];
  }

  private async read(name: string): Promise<StoredLine[]> {
    const file = join(this.dir, name);
    const s = await stat(file).catch(() => undefined);
    if (!s) return [];
    const cached = this.cache.get(name);
    if (cached && cached.size === s.size && cached.mtimeMs === s.mtimeMs) return cached.lines;
    const lines = (await readFile(file, "utf8"))
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as StoredLine];
        } catch {
          // a line cut short by a crash mid-append: the rest of the file is still good
          return [];
        }
      });
    this.cache.set(name, { size: s.size, mtimeMs: s.mtimeMs, lines });
    return lines;
  }
}

function identity(kind: "dmarc" | "tlsrpt", report: DmarcAggregateReport | TlsrptReport): string {
  const org = kind === "dmarc" ? (report as DmarcAggregateReport).orgName : (report as TlsrptReport).orgName;
  const domain = kind === "dmarc" ? (report as DmarcAggregateReport).domain : "";
  return `${org}\n${domain}\n${report.reportId}`;
}
