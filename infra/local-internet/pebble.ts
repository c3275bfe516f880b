/**
 * A test ACME CA for the local internet: Debian's pebble 2.4 inside a namespace host.
 *
 * Pebble's own HTTPS listener gets a certificate from a throwaway CA made here with openssl
 * (`listenerCaPem`: trust it to talk to the ACME API). The CA that pebble issues from is generated
 * by pebble at every start: fetch it with `issuingRootPem()`.
 *
 * Pebble validates HTTP-01 on port 80 and TLS-ALPN-01 on 443 of the name's address, and resolves
 * names (A/AAAA, and the `_acme-challenge` TXT) with `dnsServer` (e.g. a knot from ./knot).
 * Defaults for tests: no validation sleep, no nonce rejection, no reuse of valid authorizations
 * (so every order really solves its challenges); pass `env` to change any of these.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, type NetHost } from "./netns";
import { makeTestTls } from "./test-tls";
import { startKnot, type KnotServer } from "./knot";

export interface PebbleCa {
  host: NetHost;
  /** https://<ip>:14000/dir */
  directoryUrl: string;
  /** PEM of the CA that signed pebble's own HTTPS listener (trust it to talk to the ACME API) */
  listenerCaPem: string;
  /** fetch the current issuing root (changes every start) */
  issuingRootPem(): Promise<string>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** ip:port of the DNS server pebble resolves names with */
  dnsServer: string;
  /** port pebble's VA connects to for HTTP-01 (default 80) */
  httpPort?: number;
  /** port pebble's VA connects to for TLS-ALPN-01 (default 443) */
  tlsPort?: number;
  /** extra environment for pebble, e.g. { PEBBLE_AUTHZREUSE: "100" } */
  env?: Record<string, string>;
  /** names (and their subdomains) pebble refuses with rejectedIdentifier */
  domainBlocklist?: string[];
  /** lifetime of issued certificates in seconds (pebble's default: about 5 years) */
  certificateValidityPeriodSeconds?: number;
}

/** GET a URL over HTTPS trusting only `caPem`; rejects on a non-2xx answer. */
export function httpsGetText(url: string, caPem: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: caPem, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve(body);
        else reject(new Error(`GET ${url}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

export async function startPebble(net: LocalInternet, host: NetHost, opts: PebbleOptions): Promise<PebbleCa> {
  if (!fs.existsSync("/usr/bin/pebble")) throw new Error('startPebble: /usr/bin/pebble not found; install the Debian package "pebble"');
  const dir = fs.mkdtempSync(path.join(net.workDir, "pebble-"));
  const { caPem, certPath: certFile, keyPath: keyFile } = await makeTestTls(dir, ["pebble", host.ipv4, host.ipv6], "listener");
  const config = {
    pebble: {
      listenAddress: `${host.ipv4}:14000`,
      managementListenAddress: `${host.ipv4}:15000`,
      certificate: certFile,
      privateKey: keyFile,
      httpPort: opts.httpPort ?? 80,
      tlsPort: opts.tlsPort ?? 443,
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
      ...(opts.domainBlocklist ? { domainBlocklist: opts.domainBlocklist } : {}),
      ...(opts.certificateValidityPeriodSeconds ? { certificateValidityPeriod: opts.certificateValidityPeriodSeconds } : {}),
    },
  };
  fs.writeFileSync(path.join(dir, "pebble-config.json"), JSON.stringify(config, null, 2));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    PEBBLE_VA_NOSLEEP: "1",
    PEBBLE_WFE_NONCEREJECT: "0",
    PEBBLE_AUTHZREUSE: "0",
    ...opts.env,
  };
  const child: ChildProcess = host.spawn(
    ["/usr/bin/pebble", "-config", path.join(dir, "pebble-config.json"), "-dnsserver", opts.dnsServer],
    { env, cwd: dir, logFile: path.join(dir, "pebble.log") },
  );
  const directoryUrl = `https://${host.ipv4}:14000/dir`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`startPebble: pebble exited with code ${child.exitCode}:\n${fs.readFileSync(path.join(dir, "pebble.log"), "utf8")}`);
    }
    try {
      await httpsGetText(directoryUrl, caPem, 1000);
      await httpsGetText(`https://${host.ipv4}:15000/roots/0`, caPem, 1000);
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`startPebble: ${directoryUrl} not answering after 15 s: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    host,
    directoryUrl,
    listenerCaPem: caPem,
    issuingRootPem: () => httpsGetText(`https://${host.ipv4}:15000/roots/0`, caPem),
    stop: () => LocalInternet.stopProcess(child),
  };
}

export interface AcmeTestbed {
  dns: NetHost;
  ca: NetHost;
  knot: KnotServer;
  pebble: PebbleCa;
}

/**
 * knot (authoritative for `zones`) on host "dns", pebble resolving through it on host "ca", and
 * every host's resolver pointed at knot: the usual start of an ACME test.
 */
export async function startAcmeTestbed(
  net: LocalInternet,
  zones: { origin: string; lines: string[] }[],
  pebbleOpts: Omit<PebbleOptions, "dnsServer"> = {},
): Promise<AcmeTestbed> {
  const dns = await net.addHost("dns");
  const ca = await net.addHost("ca");
  const knot = await startKnot(net, dns, zones);
  await net.setResolver(dns.ipv4);
  const pebble = await startPebble(net, ca, { ...pebbleOpts, dnsServer: `${dns.ipv4}:53` });
  return { dns, ca, knot, pebble };
}
