// Which facts are trouble: one condition per thing that is wrong, with a stable id, so an alert
// fires when a condition appears and clears when it is gone (alerts.ts). Pure.
import type { OperationsThresholds } from "../operations-config";
import type { Facts } from "./facts";

export interface Condition {
  /** stable across checks while the same thing is wrong, e.g. `blocklist:zen.spamhaus.org:203.0.113.25` */
  id: string;
  severity: "critical" | "warning";
  /** one line for a subject or a chat message */
  summary: string;
  /** what was found and what to do */
  detail: string;
}

const hours = (s: number) => (s >= 7200 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 60)} min`);

export function conditions(f: Facts, t: OperationsThresholds): Condition[] {
  const out: Condition[] = [];
  const cert = f.certificate;
  if (cert.error) out.push({ id: "certificate", severity: "critical", summary: "TLS certificate unreadable", detail: cert.error });
  else if (cert.daysLeft < t.certificateDays)
    out.push({
      id: "certificate",
      severity: cert.daysLeft < 3 ? "critical" : "warning",
      summary: `TLS certificate expires in ${cert.daysLeft} days`,
      detail: `${cert.subject} is valid until ${cert.notAfter}; on-box renewal or \`pulumi up\` should have replaced it by now`,
    });
  if (f.queue.size > t.queueSize)
    out.push({
      id: "queue-size",
      severity: "warning",
      summary: `${f.queue.size} messages wait in the outbound queue`,
      detail: `more than ${t.queueSize}; destinations: ${f.queue.deferredByDomain
        .slice(0, 5)
        .map((d) => `${d.domain} (${d.recipients})`)
        .join(", ")}`,
    });
  if (f.queue.oldestArrival !== undefined) {
    const age = Math.floor((f.at - f.queue.oldestArrival) / 1000);
    if (age > t.queueAgeSeconds)
      out.push({
        id: "queue-age",
        severity: "warning",
        summary: `the oldest queued message has waited ${hours(age)}`,
        detail: f.queue.deferredByDomain
          .slice(0, 5)
          .map((d) => `${d.domain}: ${d.recipients} recipient(s)${d.lastError ? `, last error: ${d.lastError}` : ""}`)
          .join("; "),
      });
  }
  if (f.disk && f.disk.usedPercent >= t.diskPercent)
    out.push({
      id: "disk",
      severity: f.disk.usedPercent >= 98 ? "critical" : "warning",
      summary: `data volume ${f.disk.usedPercent}% full`,
      detail: `${f.disk.path}: ${Math.round(f.disk.freeBytes / 1048576)} MiB free; grow the volume (server.volumeSizeGb) or remove mail`,
    });
  const b = f.backup;
  if (b.configured && (b.ageSeconds === undefined || (b.overdueAfterSeconds !== undefined && b.ageSeconds > b.overdueAfterSeconds)))
    out.push({
      id: "backup",
      severity: "critical",
      summary: b.lastSuccess ? `last good backup is ${hours(b.ageSeconds!)} old` : "no good backup yet",
      detail: `${b.lastSuccess ? `last success ${b.lastSuccess}` : "never succeeded"}${b.lastError ? `; last error: ${b.lastError}` : ""}; see \`mailstack backup status\``,
    });
  if (f.spamFilter.configured && !f.spamFilter.ok)
    out.push({ id: "spam-filter", severity: "critical", summary: "spam filter not answering", detail: f.spamFilter.detail });
  for (const d of f.dnsDrift.findings)
    out.push({
      id: `dns:${d.type}:${d.name}:${d.expected}`,
      severity: "warning",
      summary: `DNS ${d.type} ${d.name} differs from the plan`,
      detail: d.error
        ? `lookup failed (${d.error})`
        : `expected ${d.expected}; DNS has ${d.found.length > 0 ? d.found.join(" | ") : "nothing"}; run \`pulumi up\` or \`mailstack check\``,
    });
  for (const r of f.blocklists.results) {
    if (r.status !== "listed") continue;
    out.push({
      id: `blocklist:${r.zone}:${r.target}`,
      severity: "critical",
      summary: `${r.target} is listed on ${r.zone}`,
      detail: `${r.reason ?? "listed"} (${r.codes.join(", ")})${r.delistUrl ? `; look up and request removal: ${r.delistUrl}` : ""}`,
    });
  }
  // Our own server failing DMARC at a receiver is a broken key or record; others failing is spoofing (digest only).
  for (const s of f.dmarc.sources) {
    if (!s.ours || s.dmarcFail === 0) continue;
    out.push({
      id: `dmarc:${s.domain}:${s.sourceIp}`,
      severity: "critical",
      summary: `${s.reporter} saw ${s.dmarcFail} message(s) from our ${s.sourceIp} fail DMARC for ${s.domain}`,
      detail: `aligned SPF passed ${s.spfAlignedPass}, aligned DKIM passed ${s.dkimAlignedPass} of ${s.messages}; check the DKIM keys and SPF with \`mailstack check ${s.domain}\``,
    });
  }
  for (const p of f.tlsrpt.policies) {
    if (p.failed === 0) continue;
    out.push({
      id: `tls:${p.policyDomain}`,
      severity: "warning",
      summary: `${p.reporter} failed ${p.failed} TLS session(s) to ${p.policyDomain}`,
      detail: Object.entries(p.failures)
        .map(([type, n]) => `${type}: ${n}`)
        .join(", "),
    });
  }
  return out;
}
