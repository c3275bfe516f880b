// The machine's journal: what services write to stdout/stderr and what the service manager says
// about them, kept the way journald keeps it (journald.conf(5) Storage=auto: persistent under
// /var/log/journal when that directory exists, else volatile under /run/log/journal, lost at
// reboot). One JSON record per line; `journalctl` (journalctl.ts) renders them.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface JournalRecord {
  /** ms since the epoch */
  ts: number;
  /** the unit the line belongs to (`_SYSTEMD_UNIT`, or the unit systemd speaks about) */
  unit?: string;
  /** SYSLOG_IDENTIFIER: the program name, or `systemd` for the manager's own messages */
  ident: string;
  pid?: number;
  message: string;
  /** the machine's boot id, so `journalctl -b` can tell boots apart */
  boot: string;
}

export function journalFile(root = "/"): string {
  const persistent = path.join(root, "var/log/journal");
  return fs.existsSync(persistent)
    ? path.join(persistent, "mailstack-machine.jsonl")
    : path.join(root, "run/log/journal/mailstack-machine.jsonl");
}

export class Journal {
  private readonly file: string;

  constructor(
    readonly bootId: string,
    root = "/",
  ) {
    this.file = journalFile(root);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
  }

  write(rec: Omit<JournalRecord, "ts" | "boot">): void {
    fs.appendFileSync(this.file, JSON.stringify({ ts: Date.now(), boot: this.bootId, ...rec }) + "\n");
  }

  /** A line reader for a child's stdout or stderr: each line becomes one record. */
  lineSink(unit: string, ident: string, pid: number | undefined): (chunk: Buffer) => void {
    let pending = "";
    return (chunk) => {
      pending += chunk.toString("utf8");
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        this.write({ unit, ident, pid, message: pending.slice(0, nl) });
        pending = pending.slice(nl + 1);
      }
    };
  }
}

export function readJournal(root = "/"): JournalRecord[] {
  const file = journalFile(root);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalRecord);
}

/** journalctl's default `short` output: `Mon DD HH:MM:SS host ident[pid]: message` (journalctl(1) --output). */
export function shortLine(rec: JournalRecord, host = os.hostname()): string {
  const d = new Date(rec.ts);
  const month = d.toLocaleString("en-US", { month: "short" });
  const time = d.toTimeString().slice(0, 8);
  return `${month} ${String(d.getDate()).padStart(2, "0")} ${time} ${host} ${rec.ident}${rec.pid !== undefined ? `[${rec.pid}]` : ""}: ${rec.message}`;
}
