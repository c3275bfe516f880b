// The CAA set that governs issuance for a domain (RFC 8659 3): the domain's own, else that of the
// closest ancestor that has one.
import type { DnsLookups } from "./check-dns";
import type { CaaLookup } from "./check-records";

export async function caaLookup(dns: DnsLookups, domain: string): Promise<CaaLookup> {
  const labels = domain.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const name = labels.slice(i).join(".");
    const answer = await dns.caa(name);
    if (!answer.ok || answer.records.length > 0) return { name, answer };
  }
  return { name: domain, answer: { ok: true, records: [] } };
}
