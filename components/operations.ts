// maild's operations section from the stack: the addresses to watch, the report addresses our
// records publish (so reports arriving there are read), the plan's records (DNS drift) and the
// stack's choices of lists, recipients and admins.
import type { StackSpec } from "./spec";
import type { PlannedRecord } from "./records/types";
import type { OperationsConfigFile } from "../server-bootstrap/maild/operations-config";
import { expectedFromPlanned, type ExpectedRecord } from "./shared/dns-drift";

/** The rua addresses in our own domains (RFC 7489 6.3, RFC 8460 3): where receivers send us reports. */
export function reportAddresses(spec: Pick<StackSpec, "domains">): string[] {
  const ours = new Set(spec.domains.map((d) => d.name));
  const all = spec.domains.flatMap((d) => [...d.dmarc.rua, ...d.tlsrpt.rua]);
  return [
    ...new Set(
      all
        .map((a) => a.replace(/^mailto:/i, "").toLowerCase())
        .filter((a) => !a.startsWith("https:") && ours.has(a.slice(a.lastIndexOf("@") + 1))),
    ),
  ].sort();
}

export function maildOperations(spec: StackSpec, addresses: string[], records: Record<string, PlannedRecord[]>): OperationsConfigFile {
  const o = spec.operations;
  const expectedRecords = Object.values(records)
    .flat()
    .map(expectedFromPlanned)
    .filter((r): r is ExpectedRecord => r !== undefined);
  return {
    addresses: addresses.filter((a) => a !== ""),
    ipBlocklists: o.ipBlocklists,
    domainBlocklists: o.domainBlocklists,
    reportAddresses: reportAddresses(spec),
    alertTo: o.alertTo,
    ...(o.webhook !== undefined ? { webhook: o.webhook } : {}),
    digestTime: o.digestTime,
    admins: o.admins,
    sendTlsReports: o.sendReports,
    sendDmarcReports: o.sendReports,
    expectedRecords,
  };
}
