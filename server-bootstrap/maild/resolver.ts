// The DNS resolver mailauth uses for SPF, DKIM, DMARC and ARC lookups. Explicit servers come from
// the config; otherwise Node's resolver reads /etc/resolv.conf (inside a network namespace
// `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf there).
import { promises as dns } from "node:dns";

export type ResolveFn = (name: string, rrtype: string) => Promise<unknown>;

export function createResolver(servers?: string[]): ResolveFn {
  const r = new dns.Resolver({ timeout: 5000, tries: 2 });
  if (servers && servers.length > 0) r.setServers(servers);
  return (name, rrtype) => r.resolve(name, rrtype as "TXT");
}
