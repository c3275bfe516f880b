// `mailstack plan`: the real Pulumi program, run offline under the mock engine, reported as the
// resources it would create and the DNS records it would publish, per zone.
import * as path from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { SecretValue } from "../../components/config/secret";
import type { PlannedRecord } from "../../components/records/types";
import { runOffline, Secret, Unknown, type OfflineRun, type RecordedResource } from "../offline/engine";
import { UNKNOWN_ACME_ACCOUNT, UNKNOWN_IPV4, UNKNOWN_IPV6_NETWORK } from "../offline/mock-provider";
import { RsaKeyPool, StandInRsaKeys, type KeyPairSource } from "../offline/key-pool";
import { parseTxtContent, txtContent } from "../../components/records/txt";
import { DKIM_RSA_BITS, rsaKeysAhead } from "./plan-ahead";
import { CONFIG_NAMESPACE } from "../stack-config";
import { normaliseV6Network } from "./ipv6-network";

export { normaliseV6Network } from "./ipv6-network";

export interface PlanOptions {
  stack: string;
  /** directory holding Pulumi.yaml (stack files are in its stacks/) */
  projectDir: string;
  ipv4?: string;
  /** the IPv6 /64 network Hetzner assigns, e.g. `2001:db8:1::` */
  ipv6?: string;
  /** the ACME account URL, if already registered (CAA accounturi) */
  acmeAccount?: string;
  /** where the stand-in RSA key comes from (plan-ahead.ts makes it ahead); default: planStack starts making it itself */
  keyPairs?: KeyPairSource;
}

export interface StackPlan {
  stack: string;
  hostname: string;
  ipv4: string | null;
  ipv6: string | null;
  resources: RecordedResource[];
  /** zone name -> records */
  zones: Record<string, PlannedRecord[]>;
  ptr: { address: string; ptr: string }[];
}

/** Turns parsed stack-file values into the string map Pulumi hands a program. */
export function configFromStackValues(values: Record<string, unknown>): { config: Record<string, string>; secretKeys: string[] } {
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const full = `${CONFIG_NAMESPACE}:${key}`;
    let holdsSecret = false;
    const json = JSON.stringify(value, (_k, v: unknown) => {
      if (v instanceof SecretValue) {
        holdsSecret = true;
        return { secure: v.ciphertext };
      }
      return v;
    });
    config[full] = typeof value === "string" ? value : json;
    if (holdsSecret || value instanceof SecretValue) secretKeys.push(full);
  }
  return { config, secretKeys };
}

export function stackFilePath(projectDir: string, stack: string): string {
  return path.join(projectDir, "stacks", `Pulumi.${stack}.yaml`);
}

export async function planStack(options: PlanOptions): Promise<StackPlan> {
  if (!/^[A-Za-z0-9_.-]+$/.test(options.stack)) {
    throw new Error(`--stack: "${options.stack}" is not a stack name (letters, digits, _ . -)`);
  }
  const ipv6Network = options.ipv6 === undefined ? undefined : normaliseV6Network(options.ipv6);
  if (options.ipv4 !== undefined && !isIpv4(options.ipv4)) {
    throw new Error(`--ipv4: "${options.ipv4}" is not an IPv4 address`);
  }
  if (options.acmeAccount !== undefined && !/^https:\/\/[^\s";]+$/.test(options.acmeAccount)) {
    throw new Error(`--acme-account: "${options.acmeAccount}" is not an https:// account URL`);
  }
  const values = readStackFile(stackFilePath(options.projectDir, options.stack));
  const { config, secretKeys } = configFromStackValues(values);

  // Started before the program is loaded: a worker makes the stand-in RSA key meanwhile.
  const ownKeyPairs = options.keyPairs ? undefined : new RsaKeyPool(DKIM_RSA_BITS, rsaKeysAhead(values));
  // Every RSA key (the DKIM keys) is one stand-in: `pulumi up` makes its own, and what is derived
  // from them is printed as made at `pulumi up` (see StandInRsaKeys).
  const keyPairs = new StandInRsaKeys(options.keyPairs ?? ownKeyPairs);
  let run: OfflineRun;
  try {
    run = await runOffline(
      () => {
        // Loaded here, after the mocks are in place, as the Pulumi CLI would load the program.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const program = require("../program") as typeof import("../program");
        const { stack: _stack, ...outputs } = program.defineMailStack();
        return outputs;
      },
      { stack: options.stack, config, secretKeys, ipv4: options.ipv4, ipv6Network, acmeAccountUrl: options.acmeAccount, keyPairs },
    );
  } finally {
    await ownKeyPairs?.close();
  }

  const standIns = keyPairs.publicKeysB64();
  const zones = withStandInsMarked((run.outputs.records ?? {}) as Record<string, PlannedRecord[]>, standIns);
  const resources = run.resources.map((r) => ({ ...r, inputs: withStandInsMarked(r.inputs, standIns) }));
  const ptr = run.resources
    .filter((r) => r.type === "hcloud:index/rdns:Rdns")
    .map((r) => ({ address: String(r.inputs.ipAddress), ptr: String(r.inputs.dnsPtr) }));
  return {
    stack: options.stack,
    hostname: String(run.outputs.hostname),
    ipv4: options.ipv4 ?? null,
    ipv6: ipv6Network ? `${ipv6Network}1` : null,
    resources,
    zones,
    ptr,
  };
}

function isIpv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && String(Number(p)) === p);
}

/**
 * Written in place of a stand-in RSA key's public key (plan records and inputs): markUnknown shows
 * it as made at `pulumi up`, and zone output keeps the records holding it as comments.
 */
export const UNKNOWN_RSA_KEY = "rsa-key-made-at-pulumi-up";

/**
 * `value` with every stand-in public key (base64 SPKI) replaced by UNKNOWN_RSA_KEY, also where a
 * TXT record's content splits it into several strings. Secrets stay as they are (they print as
 * [secret]).
 */
export function withStandInsMarked<T>(value: T, publicKeysB64: string[]): T {
  if (publicKeysB64.length === 0) return value;
  const mark = (v: unknown): unknown => {
    // A key split over TXT strings keeps its first 64 characters in one piece (the first string of
    // an RSA DKIM record holds 237 of them).
    if (typeof v === "string" && publicKeysB64.some((key) => v.includes(key.slice(0, 64)))) {
      let text = v;
      for (const key of publicKeysB64) text = text.split(key).join(UNKNOWN_RSA_KEY);
      // RFC 7208 3.3 / RFC 6376 3.6.2.2: a long value is several character-strings in one record.
      if (text.startsWith('"') && publicKeysB64.some((key) => text.includes(key.slice(0, 64)))) {
        const joined = parsedTxt(text);
        if (joined !== undefined && publicKeysB64.some((key) => joined.includes(key))) text = txtContent(mark(joined) as string);
      }
      return text;
    }
    if (Array.isArray(v)) return v.map(mark);
    if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, mark(inner)]));
    }
    return v;
  };
  return mark(value) as T;
}

function parsedTxt(text: string): string | undefined {
  try {
    return parseTxtContent(text);
  } catch {
    return undefined; // not TXT record content
  }
}

/** Replaces the stand-in addresses and keys with a visible marker. */
export function markUnknown(text: string): string {
  return text
    .split(UNKNOWN_RSA_KEY)
    .join("<rsa key made at pulumi up>")
    .split(`${UNKNOWN_IPV6_NETWORK}1`)
    .join("<ipv6 unknown>")
    .split(UNKNOWN_IPV6_NETWORK)
    .join("<ipv6 unknown>")
    .split(UNKNOWN_IPV4)
    .join("<ipv4 unknown>")
    .split(UNKNOWN_ACME_ACCOUNT)
    .join("<acme account unknown>");
}

export function containsUnknown(text: string): boolean {
  return markUnknown(text) !== text;
}

/** Inputs rendered for people: secrets as [secret], unknowns as (unknown). */
export function displayValue(value: unknown): string {
  if (value instanceof Secret) return "[secret]";
  if (value === Unknown) return "(unknown)";
  if (typeof value === "string") return markUnknown(value);
  return markUnknown(JSON.stringify(value, (_k, v: unknown) => (v === Unknown ? "(unknown)" : v instanceof Secret ? "[secret]" : v)));
}

export function shortType(type: string): string {
  // hcloud:index/primaryIp:PrimaryIp -> hcloud:PrimaryIp
  const [pkg, , cls] = type.split(":");
  return cls ? `${pkg}:${cls}` : type;
}
