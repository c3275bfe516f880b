// A guard for tests that run the program's providers in-process: any TCP connection or name
// lookup for an address outside loopback fails at once, before a packet is sent, naming what was
// asked for. A test that means to stay on this machine proves it does by running under it.
import dns from "node:dns";
import net from "node:net";

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/** What was refused, in order (a test may assert it stayed empty). */
export const refused: string[] = [];

function refuse(what: string): Error {
  refused.push(what);
  return new Error(`no-outside-traffic: refused ${what} (tests here never leave loopback)`);
}

let installed = false;

export function refuseOutsideTraffic(): void {
  if (installed) return;
  installed = true;
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    // net.connect and http agents pass the normalised [options, callback] array as the first argument
    const first = (Array.isArray(args[0]) ? args[0][0] : args[0]) as { host?: string; port?: number; path?: string } | number | string;
    const options = typeof first === "object" && first !== null ? first : undefined;
    const host = options ? options.host : typeof args[1] === "string" ? args[1] : undefined;
    const path = options?.path ?? (typeof first === "string" && Number.isNaN(Number(first)) ? first : undefined);
    if (path === undefined && host !== undefined && !LOOPBACK.test(host)) throw refuse(`a connection to ${host}:${options?.port ?? first}`);
    return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
  const lookup = dns.lookup;
  (dns as { lookup: unknown }).lookup = function (hostname: string, ...rest: unknown[]) {
    if (!LOOPBACK.test(hostname) && net.isIP(hostname) === 0) throw refuse(`a lookup of ${hostname}`);
    return (lookup as (...a: unknown[]) => unknown)(hostname, ...rest);
  };
  const lookupPromise = dns.promises.lookup;
  (dns.promises as { lookup: unknown }).lookup = async function (hostname: string, ...rest: unknown[]) {
    if (!LOOPBACK.test(hostname) && net.isIP(hostname) === 0) throw refuse(`a lookup of ${hostname}`);
    return (lookupPromise as (...a: unknown[]) => unknown)(hostname, ...rest);
  };
}
