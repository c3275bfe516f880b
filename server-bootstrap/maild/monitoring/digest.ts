// The daily digest: everything the monitor knows, as plain text a person reads in a minute (the
// status page shows the same facts). Pure.
import type { ActiveAlert } from "./alerts";
import type { Facts } from "./facts";

const ago = (ms: number) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s >= 172_800 ? `${Math.floor(s / 86_400)} days` : s >= 7200 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 60)} min`;
};

export function digestText(f: Facts, alerts: ActiveAlert[]): { subject: string; text: string } {
  const lines: string[] = [];
  const section = (title: string) => lines.push("", title, "-".repeat(title.length));
  lines.push(`Daily status of ${f.hostname}, ${new Date(f.at).toISOString().replace(/\.\d+Z$/, "Z")}`);

  section(alerts.length === 0 ? "Alerts: none open" : `Alerts: ${alerts.length} open`);
  for (const a of alerts) lines.push(`[${a.severity}] ${a.summary} (since ${new Date(a.since).toISOString()})`, `    ${a.detail}`);

  section("Blocklists");
  const bl = f.blocklists.results;
  if (bl.length === 0) lines.push("not checked yet");
  for (const r of bl)
    lines.push(
      `${r.status === "listed" ? "LISTED" : r.status === "clear" ? "clear " : "error "} ${r.target} on ${r.zone}` +
        (r.status === "listed"
          ? `: ${r.reason ?? ""}${r.delistUrl ? ` -> ${r.delistUrl}` : ""}`
          : r.status === "error"
            ? `: ${r.reason}`
            : ""),
    );

  section("Certificate");
  lines.push(
    f.certificate.error ?? `${f.certificate.subject}: valid until ${f.certificate.notAfter} (${f.certificate.daysLeft} days left)`,
  );

  section("Outbound queue");
  lines.push(
    `${f.queue.size} message(s) waiting${f.queue.oldestArrival !== undefined ? `, oldest ${ago(f.at - f.queue.oldestArrival)}` : ""}`,
  );
  for (const d of f.queue.deferredByDomain.slice(0, 10))
    lines.push(`  ${d.domain}: ${d.recipients} deferred${d.lastError ? ` (${d.lastError})` : ""}`);

  section("DMARC reports received (last 24 h)");
  lines.push(
    `${f.dmarc.reports} report(s), ${f.dmarc.messages} message(s): ${f.dmarc.dmarcPass} passed, ${f.dmarc.dmarcFail} failed DMARC`,
  );
  for (const s of f.dmarc.sources.slice(0, 15))
    lines.push(
      `  ${s.sourceIp}${s.ours ? " (this server)" : ""} for ${s.domain}, reported by ${s.reporter}: ${s.messages} message(s), ` +
        `${s.dmarcFail} failed; aligned SPF ${s.spfAlignedPass}, aligned DKIM ${s.dkimAlignedPass}`,
    );

  section("TLS reports received (last 24 h)");
  lines.push(`${f.tlsrpt.reports} report(s): ${f.tlsrpt.successful} session(s) with TLS, ${f.tlsrpt.failed} failed`);
  for (const p of f.tlsrpt.policies)
    lines.push(
      `  ${p.policyDomain} (${p.policyType}), reported by ${p.reporter}: ${p.successful} ok, ${p.failed} failed` +
        (p.failed > 0
          ? ` (${Object.entries(p.failures)
              .map(([t, n]) => `${t} ${n}`)
              .join(", ")})`
          : ""),
    );

  section("Our outbound TLS (today)");
  const out = f.outboundTls?.policies ?? [];
  if (out.length === 0) lines.push("no sessions recorded");
  for (const p of out.slice(0, 15))
    lines.push(
      `  ${p.policy["policy-domain"]} (${p.policy["policy-type"]}): ${p.summary["total-successful-session-count"]} ok, ${p.summary["total-failure-session-count"]} failed`,
    );

  section("DNS against the plan");
  lines.push(
    f.dnsDrift.checked === 0
      ? "no planned records to compare"
      : f.dnsDrift.findings.length === 0
        ? `all ${f.dnsDrift.checked} planned records as planned`
        : `${f.dnsDrift.findings.length} of ${f.dnsDrift.checked} differ`,
  );
  for (const d of f.dnsDrift.findings)
    lines.push(`  ${d.type} ${d.name}: expected ${d.expected}; found ${d.error ?? (d.found.join(" | ") || "nothing")}`);

  section("Disk, backup, spam filter");
  lines.push(
    f.disk ? `data volume ${f.disk.usedPercent}% used, ${Math.round(f.disk.freeBytes / 1048576)} MiB free` : "data volume: unknown",
  );
  const b = f.backup;
  lines.push(
    !b.configured
      ? "backup: none configured (no status file)"
      : b.lastSuccess
        ? `backup: last good ${b.lastSuccess} (${ago((b.ageSeconds ?? 0) * 1000)} ago)${b.lastAttemptOk === false ? `; last run failed: ${b.lastError ?? ""}` : ""}`
        : "backup: no good backup yet",
  );
  lines.push(`spam filter: ${f.spamFilter.configured ? (f.spamFilter.ok ? "ok" : "NOT ANSWERING") : "none"} (${f.spamFilter.detail})`);

  const critical = alerts.filter((a) => a.severity === "critical").length;
  const subject = `[${f.hostname}] daily status: ${alerts.length === 0 ? "all well" : `${alerts.length} alert(s)${critical > 0 ? `, ${critical} critical` : ""}`}`;
  return { subject, text: lines.join("\n") + "\n" };
}
