// Extra trusted CA for a test ACME server (pebble, a private CA) without touching process-wide
// trust (NODE_EXTRA_CA_CERTS, tls defaults). acme-client sends every request through one shared
// axios instance (`acme.axios`); a request interceptor gives requests to the registered origin an
// https.Agent that trusts the public roots plus the extra CA. Requests elsewhere are untouched.
import * as https from "node:https";
import * as tls from "node:tls";
import { X509Certificate } from "node:crypto";
import type * as acme from "acme-client";

/** acme-client's axios instance (typed through acme-client, which owns the axios dependency) */
type AxiosInstance = typeof acme.axios;
type RequestConfig = Parameters<AxiosInstance["interceptors"]["request"]["use"]>[0] extends ((c: infer C) => unknown) | null | undefined
  ? C
  : never;

const agents = new Map<string, https.Agent>();
const installedOn = new WeakSet<object>();

/** Check that `pem` holds at least one certificate; errors name the input. */
export function checkCaPem(pem: string, where = "extraCaPem"): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new Error(`${where}: no PEM certificate found (expected "-----BEGIN CERTIFICATE-----")`);
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new Error(`${where}: a certificate does not parse: ${(err as Error).message}`);
    }
  }
}

/** The agent to use for `url`, if an extra CA was registered for its origin. */
export function agentFor(url: string): https.Agent | undefined {
  try {
    return agents.get(new URL(url).origin);
  } catch {
    return undefined;
  }
}

/** Trust `caPem` (in addition to the public roots) for requests to `url`'s origin that ask agentFor. */
export function registerExtraCa(url: string, caPem: string): void {
  checkCaPem(caPem);
  const origin = new URL(url).origin;
  agents.set(origin, new https.Agent({ ca: [...tls.rootCertificates, caPem], keepAlive: false }));
}

/** Trust `caPem` (in addition to the public roots) for requests to `url`'s origin made through `axios`. */
export function trustExtraCa(axios: AxiosInstance, url: string, caPem: string): void {
  registerExtraCa(url, caPem);
  if (!installedOn.has(axios)) {
    installedOn.add(axios);
    axios.interceptors.request.use((config: RequestConfig) => {
      const agent = config.url ? agentFor(config.url) : undefined;
      if (agent) config.httpsAgent = agent;
      return config;
    });
  }
}
