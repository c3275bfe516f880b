// `mailstack check <domain>`: the live domain from outside, like Mail-in-a-Box's status checks.
// DNS (MX, addresses, FCrDNS, SPF, DKIM, DMARC, TLSRPT, MTA-STS, CAA, TLSA) and TLS on every mail
// port, compared with the plan of the stack that manages the domain when there is one, else
// checked for syntax and internal consistency only.
import * as fs from "node:fs";
import * as path from "node:path";
import { isIP } from "node:net";
import * as tls from "node:tls";
import { parseArgs } from "node:util";
import { readStackFile } from "../../components/config/stack-file";
import { ConfigError, validateStackConfig } from "../../components/config/validate";
import { normaliseDomain } from "../../components/config/name-syntax";
import { canonicalIpv4, canonicalIpv6 } from "../../components/records/address";
import type { DkimPublicKey } from "../../components/records/types";
import type { DomainSpec, StackSpec } from "../../components/spec";
import { configFromStackValues, normaliseV6Network, planStack, stackFilePath } from "./plan";
import { expectationsFromPlan, type AddressSource, type Expectations, type ExpectedDkim } from "./check-expect";
import { DnsLookups, lookupFailure, parseResolverAddress, type DnsAnswer } from "./check-dns";
import { checkAddresses, checkCaa, checkDmarc, checkMx, checkPtr, checkTlsrpt, type CaaLookup, type PtrProbe } from "./check-records";
import { checkSpf, evaluateSpf } from "./check-spf";
import { checkDkim } from "./check-dkim";
import { checkMtaStsMx, checkMtaStsPolicy, checkMtaStsRecord, fetchPolicy, policyUrl, type PolicyFetch } from "./check-mtasts";
import { checkTlsa, checkTlsProbe, MAIL_TLS_PORTS, probeTls, type TlsProbeResult } from "./check-tls";
import { exitCodeFor, fail, warn, type CheckRow } from "./check-result";
import { formatCheckJson, formatCheckTable, type CheckReport } from "./check-format";
import { CONFIG_NAMESPACE } from "../stack-config";

export const CHECK_USAGE = `usage: mailstack check DOMAIN [--stack NAME] [--json] [--resolver IP[:PORT]] [--timeout MS]
                       [--ca FILE] [--hostname NAME] [--selector NAME] [--dkim-keys FILE]
                       [--ipv4 ADDR] [--ipv6 PREFIX] [--acme-account URL] [--project DIR] [--verbose]

  check  look at DOMAIN from outside as senders do: MX, the mail host's A/AAAA and reverse DNS,
         SPF, DKIM, DMARC, TLSRPT, MTA-STS (record and policy), CAA, TLSA, and TLS on ports 25
         and 587 (STARTTLS), 465, 993 and 443. Compares with the plan of --stack (default: the
         stack in stacks/ whose domains include DOMAIN); without one, checks syntax and
         consistency only. Exit status 0: no check failed; 1: a check failed; 2: bad arguments.
         --resolver  send every DNS query there (default: the system resolver)
         --timeout   per DNS query, connection and fetch, in ms (default 5000)
         --ca        also trust this CA (PEM) for TLS and the MTA-STS policy; repeatable
         --hostname  the mail host to check (default: the plan's, else the domain's MX)
         --selector  a DKIM selector to check (default: the plan's); repeatable
         --dkim-keys the deployed DKIM keys to compare with: \`pulumi stack output dkimPublicKeys --json\`
         --ipv4/--ipv6  the server's address and /64 (as for plan); default: taken from DNS
         --acme-account the ACME account URL, to compare CAA accounturi
         --json      print a JSON document instead of the table`;

/** A bad argument: exit status 2 with a message naming it. */
export class UsageError extends Error {}

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

export interface StackChoice {
  stack: string;
  projectDir: string;
  spec: StackSpec;
  domain: DomainSpec;
}

/** Reads and validates a stack file as the offline plan does (secrets stay markers). */
function loadSpec(file: string): StackSpec {
  const values = readStackFile(file);
  const prefix = `${CONFIG_NAMESPACE}:`;
  const secretKeys = new Set(configFromStackValues(values).secretKeys.map((k) => k.slice(prefix.length)));
  try {
    return validateStackConfig(values, { secretKeys });
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`${file}: invalid stack configuration:\n${err.message}`);
    throw err;
  }
}

function stackDomains(file: string): string[] {
  try {
    const domains = readStackFile(file).domains;
    if (!Array.isArray(domains)) return [];
    return domains.map((d) =>
      (d && typeof d === "object" ? String((d as { name?: unknown }).name ?? "") : "").toLowerCase().replace(/\.$/, ""),
    );
  } catch {
    // An unreadable stack file manages no domain we could find; naming it with --stack shows why.
    return [];
  }
}

/**
 * The stack to compare with: --stack, else the one stack in stacks/ listing the domain. Null
 * when none does (or there is no project here); a usage error when the choice is ambiguous.
 */
export function chooseStack(options: CheckOptions, findProjectDir: (start: string) => string): StackChoice | null {
  let projectDir: string | undefined;
  if (options.project !== undefined) projectDir = path.resolve(options.project);
  else {
    try {
      projectDir = findProjectDir(process.cwd());
    } catch {
      projectDir = undefined;
    }
  }
  if (options.stack !== undefined) {
    if (projectDir === undefined) throw new UsageError("--stack: no Pulumi.yaml with a stacks/ folder here or above; pass --project DIR");
    const file = stackFilePath(projectDir, options.stack);
    if (!fs.existsSync(file)) throw new UsageError(`--stack: ${file} does not exist`);
    const spec = loadSpec(file);
    const domain = spec.domains.find((d) => d.name === options.domain);
    if (!domain) {
      throw new UsageError(
        `--stack ${options.stack}: ${options.domain} is not one of its domains (${spec.domains.map((d) => d.name).join(", ")})`,
      );
    }
    return { stack: options.stack, projectDir, spec, domain };
  }
  if (projectDir === undefined || !fs.existsSync(path.join(projectDir, "stacks"))) return null;
  const matches = fs
    .readdirSync(path.join(projectDir, "stacks"))
    .map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .filter((s) => stackDomains(stackFilePath(projectDir, s)).includes(options.domain))
    .sort();
  if (matches.length === 0) return null;
  if (matches.length > 1) throw new UsageError(`--stack: ${options.domain} is a domain of stacks ${matches.join(", ")}; pick one`);
  return chooseStack({ ...options, stack: matches[0], project: projectDir }, findProjectDir);
}

/** The /64 network of an IPv6 address, as --ipv6 takes it (Hetzner assigns a /64; the host is ::1). */
export function ipv6Network64(address: string): string {
  const full = canonicalIpv6(address)
    .split("::")
    .map((half) => (half === "" ? [] : half.split(":")));
  const groups =
    full.length === 1 ? full[0] : [...full[0], ...new Array<string>(8 - full[0].length - full[1].length).fill("0"), ...full[1]];
  return canonicalIpv6([...groups.slice(0, 4), "0", "0", "0", "0"].join(":"));
}

export interface CheckContext {
  options: CheckOptions;
  dns: DnsLookups;
  /** trusted CA certificates (PEM) */
  ca: string[];
  choice: StackChoice | null;
  dkimKeys?: DkimPublicKey[];
  now: Date;
  /** progress for people, one line each */
  progress?: (line: string) => void;
}

const sortMx = (a: DnsAnswer<{ exchange: string; priority: number }>): string[] =>
  a.ok
    ? [...a.records]
        .sort((x, y) => x.priority - y.priority)
        .map((r) => r.exchange.toLowerCase().replace(/\.$/, ""))
        .filter(Boolean)
    : [];

/** Runs every probe and turns the answers into rows. Never throws for what it finds. */
export async function checkDomain(ctx: CheckContext): Promise<CheckReport> {
  const { options, dns, choice } = ctx;
  const domain = options.domain;
  const notes: string[] = [];
  const mx = await dns.mx(domain);

  const firstMx = sortMx(mx)[0];
  const hostname = options.hostname ?? choice?.spec.hostname ?? firstMx ?? domain;
  if (!options.hostname && !choice) {
    notes.push(
      `mail host ${hostname}: ${firstMx ? "the domain's first MX" : "the domain itself, it has no MX"} (pass --hostname to check another)`,
    );
  }
  const [liveA, liveAaaa] = await Promise.all([dns.a(hostname), dns.aaaa(hostname)]);

  // The plan's addresses: as given, else the ones DNS has (so SPF and PTR compare like with like).
  const source = (given: unknown, live: DnsAnswer<string>): AddressSource =>
    given !== undefined ? "options" : live.ok && live.records.length > 0 ? "dns" : "unknown";
  const addressSource = { ipv4: source(options.ipv4, liveA), ipv6: source(options.ipv6Network, liveAaaa) };
  const planIpv4 = options.ipv4 ?? (liveA.ok ? liveA.records[0] : undefined);
  const planIpv6 = options.ipv6Network ?? (liveAaaa.ok && liveAaaa.records[0] ? ipv6Network64(liveAaaa.records[0]) : undefined);

  let expect: Expectations | undefined;
  if (choice) {
    ctx.progress?.(`planning stack ${choice.stack} offline ...`);
    const plan = await planStack({
      stack: choice.stack,
      projectDir: choice.projectDir,
      ipv4: planIpv4,
      ipv6: planIpv6,
      acmeAccount: options.acmeAccount,
    });
    expect = expectationsFromPlan(plan, choice.domain, { addressSource, dkimKeys: ctx.dkimKeys });
    const from = (s: AddressSource) => (s === "options" ? "as given" : s === "dns" ? "taken from DNS" : "unknown");
    notes.push(`plan of stack ${choice.stack}: addresses ${from(addressSource.ipv4)} (IPv4), ${from(addressSource.ipv6)} (IPv6)`);
  } else {
    notes.push(`no stack in stacks/ lists ${domain} (or no project here): checking syntax and consistency only`);
  }
  notes.push(
    ctx.dkimKeys !== undefined
      ? `DKIM keys compared with ${options.dkimKeysFile}`
      : "DKIM keys not compared: pass --dkim-keys FILE (pulumi stack output dkimPublicKeys --json)",
  );
  notes.push(options.resolvers.length > 0 ? `DNS queries to ${options.resolvers.join(", ")}` : "DNS queries to the system resolver");

  // The addresses the server has: as given, else what DNS says.
  const hostV4 = options.ipv4 !== undefined ? [options.ipv4] : liveA.ok ? liveA.records.map(canonicalIpv4) : [];
  const hostV6 = options.ipv6Network !== undefined ? [`${options.ipv6Network}1`] : liveAaaa.ok ? liveAaaa.records.map(canonicalIpv6) : [];
  const hostAddresses = [...hostV4, ...hostV6];

  ctx.progress?.(`checking ${domain} and ${hostname} (${hostAddresses.join(", ") || "no address"}) ...`);
  const ptrProbe = async (address: string): Promise<PtrProbe> => {
    const ptr = await dns.ptr(address);
    const forward: Record<string, DnsAnswer<string>> = {};
    if (ptr.ok) await Promise.all(ptr.records.map(async (n) => (forward[n] = await dns.addressesLike(address, n))));
    return { address, ptr, forward };
  };
  const spfVerdicts = (sender: string) =>
    Promise.all(hostAddresses.map((a) => evaluateSpf(dns.resolve, sender, hostname, a, options.timeoutMs)));

  const dkimExpected = dkimSelectors(options, expect, ctx.dkimKeys);
  const mtaStsTxt = dns.txt(`_mta-sts.${domain}`);
  const policyFetch = (async (): Promise<PolicyFetch | undefined> => {
    const txt = await mtaStsTxt;
    // Without a plan and without an _mta-sts record, senders never fetch a policy: neither do we.
    if (!expect && txt.ok && !txt.records.some((r) => r.startsWith("v=STSv1"))) return undefined;
    const policyHost = `mta-sts.${domain}`;
    const v4 = await dns.a(policyHost);
    const v6 = v4.ok && v4.records.length > 0 ? undefined : await dns.aaaa(policyHost);
    const address = v4.ok && v4.records.length > 0 ? v4.records[0] : v6?.ok && v6.records.length > 0 ? v6.records[0] : undefined;
    if (address === undefined) {
      const failed = !v4.ok ? v4 : v6 && !v6.ok ? v6 : undefined;
      return { url: policyUrl(domain), ...(failed ? { error: lookupFailure(policyHost, failed) } : {}) };
    }
    return fetchPolicy(domain, address, ctx.ca, options.timeoutMs);
  })();

  const tlsTargets = hostAddresses.flatMap((address) => MAIL_TLS_PORTS.map((port) => ({ address, port })));
  const [ptrV4, ptrV6, spfDomainTxt, spfHeloTxt, spfDomain, spfHelo, dkimAnswers, dmarc, tlsrpt, mtaSts, policy, caa, tlsa, probes] =
    await Promise.all([
      Promise.all(hostV4.map(ptrProbe)),
      Promise.all(hostV6.map(ptrProbe)),
      dns.txt(domain),
      dns.txt(hostname),
      spfVerdicts(`postmaster@${domain}`),
      spfVerdicts(`postmaster@${hostname}`),
      Promise.all(dkimExpected.map((d) => dns.txt(`${d.selector}._domainkey.${domain}`))),
      dns.txt(`_dmarc.${domain}`),
      dns.txt(`_smtp._tls.${domain}`),
      mtaStsTxt,
      policyFetch,
      caaLookup(dns, domain),
      dns.tlsa(`_25._tcp.${hostname}`),
      Promise.all(tlsTargets.map((t) => probeTls(t.address, t.port, { servername: hostname, ca: ctx.ca, timeoutMs: options.timeoutMs }))),
    ]);

  const rows: CheckRow[] = [];
  rows.push(checkMx(domain, mx, expect?.mx));
  const addressExpectation = (family: 4 | 6) => {
    const given = family === 4 ? options.ipv4 : options.ipv6Network !== undefined ? `${options.ipv6Network}1` : undefined;
    if (expect)
      return { planned: true, address: family === 4 ? expect.ipv4 : expect.ipv6, source: addressSource[family === 4 ? "ipv4" : "ipv6"] };
    return given !== undefined ? { planned: false, address: given, source: "options" as const } : undefined;
  };
  rows.push(checkAddresses(4, hostname, liveA, addressExpectation(4)));
  rows.push(checkAddresses(6, hostname, liveAaaa, addressExpectation(6)));
  if (hostV4.length > 0) rows.push(checkPtr(4, hostname, ptrV4));
  if (hostV6.length > 0) rows.push(checkPtr(6, hostname, ptrV6));
  rows.push(checkSpf("spf.domain", domain, spfDomainTxt, spfDomain, expect?.spfDomain));
  rows.push(checkSpf("spf.helo", hostname, spfHeloTxt, spfHelo, expect?.spfHelo));
  if (dkimExpected.length === 0) {
    rows.push(warn("dkim", "no selector to check: DNS cannot list DKIM selectors; pass --selector NAME", `_domainkey.${domain}`));
  }
  dkimExpected.forEach((d, i) => rows.push(checkDkim(domain, d, dkimAnswers[i])));
  rows.push(checkDmarc(domain, dmarc, expect?.dmarc));
  rows.push(checkTlsrpt(domain, tlsrpt, expect ? expect.tlsrpt : undefined));
  rows.push(checkMtaStsRecord(domain, mtaSts, expect?.mtaSts));
  if (policy) {
    rows.push(checkMtaStsPolicy(domain, policy, ctx.now, expect?.mtaSts));
    rows.push(checkMtaStsMx(domain, policy, mx));
  }
  rows.push(checkCaa(domain, caa, expect?.caa));
  rows.push(...tlsRows(probes, hostV4, hostV6, hostname, ctx.now));
  rows.push(
    checkTlsa(
      hostname,
      tlsa,
      probes.filter((p) => p.port === 25),
      expect?.tlsa,
    ),
  );
  return { domain, hostname, stack: choice?.stack ?? null, notes, rows };
}

/** Selectors to check: --selector, else the plan's, else those of --dkim-keys. */
function dkimSelectors(options: CheckOptions, expect: Expectations | undefined, keys: DkimPublicKey[] | undefined): ExpectedDkim[] {
  const keyOf = (selector: string) => keys?.find((k) => k.selector === selector)?.publicKeyB64 ?? null;
  if (options.selectors.length > 0) {
    return options.selectors.map((selector) => {
      const planned = expect?.dkim.find((d) => d.selector === selector);
      const given = keys?.find((k) => k.selector === selector);
      return { selector, algorithm: planned?.algorithm ?? given?.algorithm ?? null, publicKeyB64: keyOf(selector) };
    });
  }
  if (expect) return expect.dkim;
  return (keys ?? []).map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKeyB64: k.publicKeyB64 }));
}

/** RFC 8659 3: the CAA set of the domain, else of its closest ancestor that has one. */
async function caaLookup(dns: DnsLookups, domain: string): Promise<CaaLookup> {
  const labels = domain.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const name = labels.slice(i).join(".");
    const answer = await dns.caa(name);
    if (!answer.ok || answer.records.length > 0) return { name, answer };
  }
  return { name: domain, answer: { ok: true, records: [] } };
}

function tlsRows(probes: TlsProbeResult[], v4: string[], v6: string[], hostname: string, now: Date): CheckRow[] {
  if (probes.length === 0) return [fail("tls", `${hostname} has no address to connect to`, hostname)];
  const label = (address: string): string => {
    const family = v4.includes(address) ? v4 : v6;
    const name = family === v4 ? "ipv4" : "ipv6";
    return family.length === 1 ? name : address;
  };
  const order = MAIL_TLS_PORTS.map((p) => p.port);
  return [...probes]
    .sort((a, b) => order.indexOf(a.port) - order.indexOf(b.port) || Number(v6.includes(a.address)) - Number(v6.includes(b.address)))
    .map((p) => checkTlsProbe(`tls.${p.port}.${label(p.address)}`, p, hostname, now));
}

export interface RunCheckEnvironment {
  findProjectDir: (start: string) => string;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  now?: () => Date;
}

/** The whole command: arguments in, report out, exit status back (0 ok, 1 a check failed, 2 usage). */
export async function runCheck(argv: string[], env: RunCheckEnvironment): Promise<number> {
  const stdout = env.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = env.stderr ?? ((t: string) => void process.stderr.write(t));
  let ctx: CheckContext;
  try {
    const options = parseCheckArgs(argv);
    const dkimKeys = options.dkimKeysFile !== undefined ? readDkimKeys(options.dkimKeysFile, options.domain) : undefined;
    ctx = {
      options,
      dns: new DnsLookups(options.resolvers, options.timeoutMs),
      ca: trustStore(options.caFiles),
      choice: chooseStack(options, env.findProjectDir),
      dkimKeys,
      now: env.now?.() ?? new Date(),
      progress: !options.json && process.stderr.isTTY ? (line) => stderr(`${line}\n`) : undefined,
    };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stderr(`mailstack check: ${err.message}\n${CHECK_USAGE}\n`);
    return 2;
  }
  const report = await checkDomain(ctx);
  stdout(ctx.options.json ? formatCheckJson(report) : formatCheckTable(report));
  return exitCodeFor(report.rows);
}
