// Alerts fire once per condition and clear once when it is gone. The active set is kept in
// <dataDir>/monitoring/state.json (written atomically), so a restart neither repeats an alert nor
// forgets one that is still open. The same file remembers the last digest's day, so a restart
// around digest time sends it once.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../outbound/atomic-file";
import type { Condition } from "./conditions";

export interface ActiveAlert extends Condition {
  /** ms since the epoch */
  since: number;
}

export interface MonitoringState {
  version: 1;
  active: ActiveAlert[];
  /** UTC day (YYYY-MM-DD) of the last digest sent */
  lastDigest?: string;
  /** UTC days whose TLSRPT reports have been sent */
  tlsReportsSent?: string[];
  /** UTC days whose DMARC reports have been sent */
  dmarcReportsSent?: string[];
}

export const statePath = (dataDir: string) => join(dataDir, "monitoring", "state.json");

export function readState(dataDir: string): MonitoringState {
  try {
    const s = JSON.parse(readFileSync(statePath(dataDir), "utf8")) as MonitoringState;
    if (s.version === 1 && Array.isArray(s.active)) return s;
  } catch {
    // none yet, or unreadable: start with nothing open (at worst an alert repeats once)
  }
  return { version: 1, active: [] };
}

export async function writeState(dataDir: string, state: MonitoringState): Promise<void> {
  await writeFileAtomic(statePath(dataDir), JSON.stringify(state, null, 1) + "\n");
}

export interface AlertChanges {
  fired: ActiveAlert[];
  cleared: ActiveAlert[];
  active: ActiveAlert[];
}

/** Compares what is wrong now with what was open: new ids fire, vanished ids clear. Pure. */
export function alertChanges(previous: ActiveAlert[], now: Condition[], at: number): AlertChanges {
  const before = new Map(previous.map((a) => [a.id, a]));
  const current = new Map(now.map((c) => [c.id, c]));
  const fired: ActiveAlert[] = [];
  const active: ActiveAlert[] = [];
  for (const c of current.values()) {
    const open = before.get(c.id);
    // An open alert keeps its start and takes the latest wording.
    const a = { ...c, since: open?.since ?? at };
    if (!open) fired.push(a);
    active.push(a);
  }
  const cleared = previous.filter((a) => !current.has(a.id));
  return { fired, cleared, active };
}
