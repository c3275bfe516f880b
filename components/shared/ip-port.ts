// "IP[:port]": how a DNS server (or any IP endpoint) is written in maild's configuration, the stack
// file and `mailstack check --resolver`. The forms are the ones dns.Resolver#setServers accepts
// (nodejs.org/api/dns.html#dnssetserversservers): 192.0.2.1, 192.0.2.1:5353, 2001:db8::1,
// [2001:db8::1] and [2001:db8::1]:5353.
import { isIP } from "node:net";

export interface IpPort {
  ip: string;
  /** absent: the service's default port */
  port?: number;
}

/** The address and port of `text`, or undefined when it is none of the forms above. */
export function parseIpPort(text: string): IpPort | undefined {
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed) return isIP(bracketed[1]) === 6 ? withPort(bracketed[1], bracketed[2]) : undefined;
  if (isIP(text) !== 0) return { ip: text };
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  if (v4port && isIP(v4port[1]) === 4) return withPort(v4port[1], v4port[2]);
  return undefined;
}

function withPort(ip: string, port: string | undefined): IpPort | undefined {
  if (port === undefined) return { ip };
  const n = Number(port);
  return n >= 1 && n <= 65535 ? { ip, port: n } : undefined;
}

/** The canonical form: the bare address without a port, brackets around IPv6 with one. */
export function formatIpPort({ ip, port }: IpPort): string {
  if (port === undefined) return ip;
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}
