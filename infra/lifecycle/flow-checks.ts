// What must hold after every user flow of a lifecycle (issue 13), as a list of problems (empty:
// all good), for the lifecycle test and `npm start -- --lifecycle` alike:
//   - the preview before each run and the run itself reported no problem;
//   - the DNS records the run changed are exactly those the preview planned, in the engine's
//     steps and at the Cloudflare API, and the zones' server answers with what the API holds;
//   - unless the flow leaves no server: maild answers on 25/587/465/80/443 and Dovecot on 993,
//     and every message sent so far is readable over IMAPS.
import { asApiChanges, type FlowResult, type Lifecycle } from "./lifecycle";
import { DOVECOT_PORTS, MAILD_PORTS, portsAnswering, readMessage, type SentMessage } from "./lifecycle-mail";
import { unservedRecords } from "./lifecycle-dns";
import type { UserFlow } from "./user-flows";

/** What `got` has beyond `want` and lacks of it, counting repeats (two CAA records of one name are two). */
function difference(want: string[], got: string[]): string {
  const left = [...want];
  const extra: string[] = [];
  for (const g of got) {
    const i = left.indexOf(g);
    if (i >= 0) left.splice(i, 1);
    else extra.push(g);
  }
  return [extra.length ? `not planned: ${extra.join(", ")}` : "", left.length ? `planned, not done: ${left.join(", ")}` : ""]
    .filter(Boolean)
    .join("; ");
}

function engineProblems(r: FlowResult): string[] {
  const problems: string[] = [];
  const where = (d: { urn: string; message: string }) => `${d.urn.split("::").pop()}: ${d.message}`;
  for (const d of r.preview.diagnostics) problems.push(`${r.name}: preview: ${where(d)}`);
  if (r.preview.failed && r.preview.diagnostics.length === 0) problems.push(`${r.name}: preview failed: ${String(r.preview.programError)}`);
  for (const d of r.up.diagnostics) problems.push(`${r.name}: up: ${where(d)}`);
  if (r.up.failed && r.up.diagnostics.length === 0) problems.push(`${r.name}: up failed: ${String(r.up.programError)}`);
  const stepped = difference(r.dnsPlanned, r.dnsStepped);
  if (stepped) problems.push(`${r.name}: the DNS steps of up differ from the preview's plan: ${stepped}`);
  const applied = difference(asApiChanges(r.dnsPlanned), r.dnsApplied);
  if (applied) problems.push(`${r.name}: the Cloudflare API saw other changes than the preview planned: ${applied}`);
  return problems;
}

async function until(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function flowProblems(lc: Lifecycle, flow: UserFlow, runs: FlowResult[], sent: SentMessage[]): Promise<string[]> {
  const problems = runs.flatMap(engineProblems);
  problems.push(...(await unservedRecords([...lc.cloudflare.records.values()], lc.hosts.dns.ipv4)).map((p) => `${flow.name}: DNS: ${p}`));
  if (flow.leavesNoServer) return problems;
  const ports = [...MAILD_PORTS, ...DOVECOT_PORTS];
  let last: Record<number, boolean> = {};
  // A restarted maild takes a moment to listen (Type=simple: systemd reports it started at once).
  const up = await until(async () => Object.values((last = await portsAnswering(lc.hosts.box.ipv4, ports))).every(Boolean), 30_000);
  if (!up) {
    const closed = Object.entries(last)
      .filter(([, open]) => !open)
      .map(([p]) => p);
    problems.push(`${flow.name}: nothing answers on port(s) ${closed.join(", ")} of ${lc.hosts.box.ipv4}`);
  }
  for (const m of sent) {
    const read = await readMessage(lc, m);
    if (!read.ok) problems.push(`${flow.name}: ${m.subject}: ${read.error}`);
  }
  return problems;
}
