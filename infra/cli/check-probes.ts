// Everything `mailstack check` asks the live internet, asked at once and answered by name: DNS
// (PTR with forward confirmation, SPF, DKIM, DMARC, TLSRPT, MTA-STS, CAA, TLSA), the MTA-STS
// policy over HTTPS, and a TLS handshake on every mail port of every address.
import type { DnsAnswer, DnsLookups } from "./check-dns";
import { caaLookup } from "./check-caa";
import { fetchPolicy, policyUrl, type PolicyFetch } from "./check-mtasts";
import type { PtrProbe } from "./check-records";
import { evaluateSpf } from "./check-spf";
import { MAIL_TLS_PORTS, probeTls } from "./check-tls";
import { lookupFailure } from "./check-dns";

export interface ProbeTargets {
  domain: string;
  hostname: string;
  /** the server's addresses to probe (PTR, SPF, TLS) */
  hostV4: string[];
  hostV6: string[];
  /** DKIM selectors to look up */
  dkimSelectors: string[];
  /** whether a plan says the domain publishes MTA-STS (then the policy is fetched even without a record) */
  planned: boolean;
  /** trusted CA certificates (PEM) */
  ca: string[];
  timeoutMs: number;
}

/** Awaits an object of promises, keeping the names. */
async function allNamed<T extends Record<string, Promise<unknown>>>(promises: T): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.all(Object.entries(promises).map(async ([name, p]) => [name, await p] as const));
  return Object.fromEntries(settled) as { [K in keyof T]: Awaited<T[K]> };
}

export type LiveAnswers = Awaited<ReturnType<typeof probeLive>>;

export function probeLive(dns: DnsLookups, t: ProbeTargets) {
  const { domain, hostname } = t;
  const hostAddresses = [...t.hostV4, ...t.hostV6];
  const ptrProbe = async (address: string): Promise<PtrProbe> => {
    const ptr = await dns.ptr(address);
    const forward: Record<string, DnsAnswer<string>> = {};
    if (ptr.ok) await Promise.all(ptr.records.map(async (n) => (forward[n] = await dns.addressesLike(address, n))));
    return { address, ptr, forward };
  };
  const spfVerdicts = (sender: string) => Promise.all(hostAddresses.map((a) => evaluateSpf(dns.resolve, sender, hostname, a, t.timeoutMs)));

  const mtaStsTxt = dns.txt(`_mta-sts.${domain}`);
  const policyFetch = async (): Promise<PolicyFetch | undefined> => {
    const txt = await mtaStsTxt;
    // Without a plan and without an _mta-sts record, senders never fetch a policy: neither do we.
    if (!t.planned && txt.ok && !txt.records.some((r) => r.startsWith("v=STSv1"))) return undefined;
    const policyHost = `mta-sts.${domain}`;
    const v4 = await dns.a(policyHost);
    const v6 = v4.ok && v4.records.length > 0 ? undefined : await dns.aaaa(policyHost);
    const address = v4.ok && v4.records.length > 0 ? v4.records[0] : v6?.ok && v6.records.length > 0 ? v6.records[0] : undefined;
    if (address === undefined) {
      const failed = !v4.ok ? v4 : v6 && !v6.ok ? v6 : undefined;
      return { url: policyUrl(domain), ...(failed ? { error: lookupFailure(policyHost, failed) } : {}) };
    }
    return fetchPolicy(domain, address, t.ca, t.timeoutMs);
  };

  const tlsTargets = hostAddresses.flatMap((address) => MAIL_TLS_PORTS.map((port) => ({ address, port })));
  return allNamed({
    ptrV4: Promise.all(t.hostV4.map(ptrProbe)),
    ptrV6: Promise.all(t.hostV6.map(ptrProbe)),
    spfDomainTxt: dns.txt(domain),
    spfHeloTxt: dns.txt(hostname),
    spfDomain: spfVerdicts(`postmaster@${domain}`),
    spfHelo: spfVerdicts(`postmaster@${hostname}`),
    dkim: Promise.all(t.dkimSelectors.map((selector) => dns.txt(`${selector}._domainkey.${domain}`))),
    dmarc: dns.txt(`_dmarc.${domain}`),
    tlsrpt: dns.txt(`_smtp._tls.${domain}`),
    mtaSts: mtaStsTxt,
    policy: policyFetch(),
    caa: caaLookup(dns, domain),
    tlsa: dns.tlsa(`_25._tcp.${hostname}`),
    tls: Promise.all(tlsTargets.map((x) => probeTls(x.address, x.port, { servername: hostname, ca: t.ca, timeoutMs: t.timeoutMs }))),
  });
}
