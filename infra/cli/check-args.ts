// The arguments of `mailstack check`, parsed and validated: every bad one is a UsageError naming it.
import * as fs from "node:fs";
import { isIP } from "node:net";
import * as tls from "node:tls";
import { parseArgs } from "node:util";
import { normaliseDomain } from "../../components/config/name-syntax";
import { canonicalIpv4 } from "../../components/records/address";
import type { DkimPublicKey } from "../../components/records/types";
import { UsageError } from "./command";
import { parseResolverAddress } from "./check-dns";
import { normaliseV6Network } from "./ipv6-network";

export const DEFAULT_TIMEOUT_MS = 5000;

export interface CheckOptions {
  domain: string;
  stack?: string;
  json: boolean;
  resolvers: string[];
  timeoutMs: number;
  caFiles: string[];
  hostname?: string;
  selectors: string[];
  dkimKeysFile?: string;
  ipv4?: string;
  /** the /64 network, normalised (`2001:db8:1::`) */
  ipv6Network?: string;
  acmeAccount?: string;
  project?: string;
  /** RFC 5782 lists to ask about the server's addresses (--dnsbl) and about the domain and host (--dbl) */
  dnsbl: string[];
  dbl: string[];
}

/** Parses and validates the arguments after `check`; throws UsageError naming the bad one. */
export function parseCheckArgs(argv: string[]): CheckOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        stack: { type: "string" },
        json: { type: "boolean", default: false },
        resolver: { type: "string", multiple: true, default: [] },
        timeout: { type: "string" },
        ca: { type: "string", multiple: true, default: [] },
        hostname: { type: "string" },
        selector: { type: "string", multiple: true, default: [] },
        "dkim-keys": { type: "string" },
        ipv4: { type: "string" },
        ipv6: { type: "string" },
        "acme-account": { type: "string" },
        project: { type: "string" },
        dnsbl: { type: "string", multiple: true, default: [] },
        dbl: { type: "string", multiple: true, default: [] },
        verbose: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError("DOMAIN: missing, e.g. mailstack check example.org");
  if (positionals.length > 1) throw new UsageError(`DOMAIN: one domain per run, got ${positionals.map((p) => `"${p}"`).join(" ")}`);
  const domain = normaliseDomain(positionals[0]);
  if (!domain.ok) throw new UsageError(`DOMAIN: "${positionals[0]}" ${domain.reason}`);

  const options: CheckOptions = {
    domain: domain.value,
    json: values.json!,
    resolvers: [],
    timeoutMs: DEFAULT_TIMEOUT_MS,
    caFiles: values.ca!,
    selectors: [],
    dnsbl: [],
    dbl: [],
  };
  if (values.stack !== undefined) {
    if (!/^[A-Za-z0-9_.-]+$/.test(values.stack))
      throw new UsageError(`--stack: "${values.stack}" is not a stack name (letters, digits, _ . -)`);
    options.stack = values.stack;
  }
  for (const r of values.resolver!.flatMap((v) => v.split(","))) {
    const server = parseResolverAddress(r.trim());
    if (server === undefined)
      throw new UsageError(
        `--resolver: "${r}" is not an IP address with an optional port (198.51.100.53, 198.51.100.53:5353, [2001:db8::53]:53)`,
      );
    options.resolvers.push(server);
  }
  if (values.timeout !== undefined) {
    const ms = Number(values.timeout);
    if (!/^\d+$/.test(values.timeout) || ms < 100 || ms > 600_000) {
      throw new UsageError(`--timeout: "${values.timeout}" is not a whole number of milliseconds 100..600000`);
    }
    options.timeoutMs = ms;
  }
  if (values.hostname !== undefined) {
    const host = normaliseDomain(values.hostname);
    if (!host.ok) throw new UsageError(`--hostname: "${values.hostname}" ${host.reason}`);
    options.hostname = host.value;
  }
  for (const s of values.selector!.flatMap((v) => v.split(","))) {
    // RFC 6376 3.1: a selector is one or more dot-separated labels.
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(s.trim())) {
      throw new UsageError(`--selector: "${s}" is not a DKIM selector (labels of letters, digits and hyphens)`);
    }
    options.selectors.push(s.trim().toLowerCase());
  }
  if (values["dkim-keys"] !== undefined) options.dkimKeysFile = values["dkim-keys"];
  if (values.ipv4 !== undefined) {
    if (isIP(values.ipv4) !== 4) throw new UsageError(`--ipv4: "${values.ipv4}" is not an IPv4 address`);
    options.ipv4 = canonicalIpv4(values.ipv4);
  }
  if (values.ipv6 !== undefined) {
    try {
      options.ipv6Network = normaliseV6Network(values.ipv6);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (values["acme-account"] !== undefined) {
    if (!/^https:\/\/[^\s";]+$/.test(values["acme-account"])) {
      throw new UsageError(`--acme-account: "${values["acme-account"]}" is not an https:// account URL`);
    }
    options.acmeAccount = values["acme-account"];
  }
  if (values.project !== undefined) options.project = values.project;
  for (const [flag, list] of [
    ["dnsbl", options.dnsbl],
    ["dbl", options.dbl],
  ] as const) {
    for (const z of values[flag]!.flatMap((v) => v.split(","))) {
      const zone = normaliseDomain(z.trim());
      if (!zone.ok) throw new UsageError(`--${flag}: "${z}" ${zone.reason}`);
      list.push(zone.value);
    }
  }
  return options;
}

/** The CA certificates to trust: Node's default store (bundled roots, NODE_EXTRA_CA_CERTS) and --ca. */
export function trustStore(caFiles: string[]): string[] {
  const extra = caFiles.map((file) => {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`--ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--ca: ${file} holds no PEM certificate`);
    return text;
  });
  return [...tls.getCACertificates("default"), ...extra];
}

/**
 * The deployed DKIM public keys of `domain` from `pulumi stack output dkimPublicKeys --json`
 * (`{"<domain>": [{selector, algorithm, publicKeyB64}]}`) or a plain array of such keys.
 */
export function readDkimKeys(file: string, domain: string): DkimPublicKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(`--dkim-keys: cannot read ${file} as JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : doc && typeof doc === "object" ? (doc as Record<string, unknown>)[domain] : undefined;
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new UsageError(`--dkim-keys: ${file}: "${domain}" is not a list of keys`);
  return list.map((k: unknown, i) => {
    const key = k as Partial<DkimPublicKey>;
    if (
      typeof key?.selector !== "string" ||
      (key.algorithm !== "rsa" && key.algorithm !== "ed25519") ||
      typeof key.publicKeyB64 !== "string"
    ) {
      throw new UsageError(`--dkim-keys: ${file}: ${domain}[${i}] is not {selector, algorithm: rsa|ed25519, publicKeyB64}`);
    }
    return { selector: key.selector, algorithm: key.algorithm, publicKeyB64: key.publicKeyB64 };
  });
}
