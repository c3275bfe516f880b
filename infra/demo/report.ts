// What the demo found, as data (for the end-to-end tests) and as text (for the person running it).
import type { InboundResult, ImapResult, MtaStsResult, OutboundResult, SpamResult, Verdicts } from "./mail-flows";

export interface DemoReport {
  stack: string;
  hostname: string;
  dns: {
    /** the stack's zones, as planned by the program and served by knot */
    zones: string[];
    /** planned records per type, over all of the stack's zones */
    byType: Record<string, number>;
    total: number;
    /** the reverse DNS the program sets, served by knot */
    ptr: { address: string; ptr: string }[];
  };
  certificate: {
    issuer: string;
    names: string[];
    notAfter: string;
    /** the ACME account that ordered it */
    accountUrl: string;
    /** accounturi values in the published CAA records (RFC 8657) */
    caaAccountUris: string[];
    /** SHA-256 of the certificate key's SPKI, and what the DANE TLSA record (3 1 1) pins */
    spkiSha256: string;
    tlsaSha256?: string;
  };
  deploy: {
    /** SHA256 fingerprint of the host key the deployment pinned */
    hostKeyFingerprint: string;
    installSummary: string;
  };
  inbound: InboundResult;
  imap: ImapResult;
  outbound: OutboundResult;
  mtaSts: MtaStsResult[];
  spam: SpamResult;
}

/** The checks that did not pass, each as `name: reason`; empty when everything worked. */
export function reportFailures(report: DemoReport): string[] {
  const failures: string[] = [];
  if (report.inbound.error) failures.push(`inbound: ${report.inbound.error}`);
  if (report.imap.error) failures.push(`imap: ${report.imap.error}`);
  if (report.outbound.error) failures.push(`outbound: ${report.outbound.error}`);
  for (const m of report.mtaSts) if (m.error) failures.push(`mta-sts: ${m.error}`);
  if (report.spam.error) failures.push(`spam: ${report.spam.error}`);
  return failures;
}

function verdicts(v: Verdicts): string {
  const parts = (["spf", "dkim", "dmarc"] as const).map((k) => `${k}=${v[k] ?? "(none)"}`);
  return parts.join(" ");
}

function actionsOf(summary: string): string {
  return /actions=(\S+)/.exec(summary)?.[1] ?? summary;
}

const mark = (ok: boolean) => (ok ? "ok    " : "FAILED");

export function formatReport(r: DemoReport): string {
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`  ${label.padEnd(9)} ${text}`);
  const more = (text: string) => lines.push(`  ${"".padEnd(9)} ${text}`);
  lines.push(`Report: stack ${r.stack}, mail host ${r.hostname}`);

  const types = Object.entries(r.dns.byType)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([t, n]) => `${t} ${n}`)
    .join(", ");
  row("DNS", `${r.dns.total} records published as planned in ${r.dns.zones.join(", ")}: ${types}`);
  more(`PTR ${r.dns.ptr.map((p) => `${p.address} -> ${p.ptr}`).join(", ")}`);

  const c = r.certificate;
  const caaOk = c.caaAccountUris.length > 0 && c.caaAccountUris.every((u) => u === c.accountUrl);
  row("TLS", `certificate from "${c.issuer}" for ${c.names.join(", ")}`);
  more(
    `expires ${c.notAfter}; CAA accounturi ${caaOk ? "is" : "is NOT"} the issuing account (${c.accountUrl}); ` +
      `DANE TLSA 3 1 1 ${c.tlsaSha256 === c.spkiSha256 ? "matches" : "does NOT match"} the certificate key`,
  );

  row(
    "deploy",
    `over SSH with the host key pinned (${r.deploy.hostKeyFingerprint}), install actions: ${actionsOf(r.deploy.installSummary)}`,
  );
  more(
    "maild started from its unit's ExecStart; Dovecot, rspamd, Redis and unbound on the deployed configuration (no systemd in a namespace)",
  );

  const i = r.inbound;
  row("inbound", `${mark(i.ok)} ${i.from} -> ${i.to}` + (i.ok ? `: ${i.tls} (${i.relay})` : `: ${i.error}`));
  const m = r.imap;
  row("IMAP", `${mark(m.ok)} ${m.user} read it over IMAPS (993)` + (m.ok ? `, maild's verdicts: ${verdicts(m.verdicts)}` : `: ${m.error}`));
  const o = r.outbound;
  row(
    "outbound",
    `${mark(o.ok)} ${o.from} -> ${o.to} (submission 587, maild's queue)` +
      (o.ok ? `, the peer's verdicts: ${verdicts(o.peerVerdicts)}` : `: ${o.error}`),
  );

  for (const [n, s] of r.mtaSts.entries()) {
    const label = n === 0 ? "MTA-STS" : "";
    if (s.error) {
      row(label, `${mark(false)} ${s.error}`);
      continue;
    }
    const peer = s.peerPolicy
      ? `the peer's postfix-mta-sts-resolver makes Postfix use "${s.peerPolicy}"`
      : `the peer's postfix-mta-sts-resolver applies no policy (mode ${s.mode} is reported, not enforced)`;
    row(label, `${mark(true)} ${s.domain}: mode ${s.mode}, policy served over HTTPS by maild as planned, id ${s.policyId} = DNS; ${peer}`);
  }

  const sp = r.spam;
  row(
    "spam",
    `${mark(sp.ok)} rspamd` +
      (sp.ok
        ? ` judged the peer's mail "${sp.inbound!.action}" (score ${sp.inbound!.score}: ${sp.inbound!.outcome}); GTUBE was refused: ${sp.gtubeReply}`
        : `: ${sp.error}`),
  );

  const failures = reportFailures(r);
  lines.push(
    failures.length === 0 ? "All checks passed." : `${failures.length} check(s) failed:\n${failures.map((f) => `  - ${f}`).join("\n")}`,
  );
  return lines.join("\n") + "\n";
}
