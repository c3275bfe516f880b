// MTA-STS (RFC 8461) for `mailstack check`: the `_mta-sts` TXT record, the policy file fetched
// over HTTPS as a sender would fetch it (no redirects, a certificate valid for the policy host),
// and whether the policy's mx patterns cover the domain's MX hosts.
import { mtaStsId } from "../../components/records/mta-sts";
import { combine, fail, pass, warn, type CheckRow, type CheckStatus } from "./check-result";
import { lookupFailure, type DnsAnswer } from "./check-dns";
import { parseTagList, recordsStartingWith } from "./check-records";
import { certificateFindings, type PresentedCertificate } from "./check-tls";
import { fetchMtaStsPolicy, fixedAddress } from "../../components/shared/mta-sts-fetch";

export { policyUrl } from "../../components/shared/mta-sts-fetch";
import type { Expectations } from "./check-expect";

// The package has no exports map; lib/mta-sts.d.ts types these.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const mailauthMtaSts = require("mailauth/lib/mta-sts") as typeof import("mailauth/lib/mta-sts");

/** RFC 8461 3.2 asks for max_age of weeks or more; a day is the least that makes sense. */
const SHORT_MAX_AGE = 86_400;

/** RFC 8461 3.1: `v=STSv1; id=<1-32 alphanumerics>` plus extension fields. */
export function parseMtaStsTxt(text: string): { id?: string; problems: string[] } {
  const list = parseTagList(text);
  const problems = [...list.problems];
  if (list.names[0] !== "v" || list.tags.get("v") !== "STSv1") problems.push("does not start with v=STSv1");
  const id = list.tags.get("id");
  if (id === undefined) problems.push("no id= field");
  else if (!/^[A-Za-z0-9]{1,32}$/.test(id)) problems.push(`id=${id} is not 1-32 letters and digits`);
  return { id, problems };
}

/**
 * The `mta-sts.record` row. With a plan, the id must be the planned one: the planner derives it
 * from the policy text, so any other id is stale (senders that cached an older policy keep it).
 */
export function checkMtaStsRecord(domain: string, answer: DnsAnswer<string>, expected?: Expectations["mtaSts"]): CheckRow {
  const check = "mta-sts.record";
  const name = `_mta-sts.${domain}`;
  if (!answer.ok) return fail(check, lookupFailure(`TXT ${name}`, answer), name);
  // RFC 8461 3.1: records not starting with "v=STSv1;" are discarded; anything but one is no policy.
  const records = recordsStartingWith(answer.records, /^v=STSv1;/);
  if (records.length === 0) {
    if (expected) return fail(check, `no v=STSv1 record at ${name}; the plan publishes id=${expected.id}`, name);
    return warn(check, `no v=STSv1 record at ${name}: senders do not require TLS for ${domain}`, name);
  }
  if (records.length > 1) return fail(check, `${records.length} v=STSv1 records at ${name}: senders use none (RFC 8461 3.1)`, name);
  const parsed = parseMtaStsTxt(records[0]);
  if (parsed.problems.length > 0) return fail(check, `"${records[0]}": ${parsed.problems.join("; ")}`, name);
  if (expected && parsed.id !== expected.id) {
    return fail(check, `id=${parsed.id} is stale: the planned policy has id=${expected.id}, so senders keep a cached older policy`, name);
  }
  return pass(check, `id=${parsed.id}${expected ? " (as planned)" : ""}`, name);
}

export interface PolicyFetch {
  url: string;
  /** the policy host's address used; absent when it has none */
  address?: string;
  /** why no response was read, or why the policy host has no address */
  error?: string;
  status?: number;
  contentType?: string;
  body?: string;
  certificate?: PresentedCertificate;
}

/**
 * GET the policy from `address` (a resolved address of mta-sts.<domain>) as a sender would
 * (components/shared/mta-sts-fetch.ts), but read it whatever the certificate, to report on both.
 * `port` is 443 for senders; other values only serve tests.
 */
export async function fetchPolicy(domain: string, address: string, ca: string[], timeoutMs: number, port = 443): Promise<PolicyFetch> {
  const { error, ...r } = await fetchMtaStsPolicy(domain, { ca, timeoutMs, port, lookup: fixedAddress(address), verify: false });
  return { ...r, address, ...(error ? { error: error.message } : {}) };
}

export interface ParsedPolicy {
  mode: "enforce" | "testing" | "none";
  maxAge?: number;
  mx: string[];
}

/** The policy parsed as RFC 8461 3.2 writes it (mailauth's strict parser), or why it is not one. */
export function parsePolicy(body: string): { policy?: ParsedPolicy; problem?: string } {
  try {
    const p = mailauthMtaSts.parsePolicy(body, { strict: true });
    return { policy: { mode: p.mode, maxAge: p.maxAge, mx: p.mx ?? [] } };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/**
 * The `mta-sts.policy` row: fetched with a valid certificate, 200 text/plain, parses, mode, and
 * with a plan, exactly the planned text (the planned id belongs to that text).
 */
export function checkMtaStsPolicy(domain: string, fetch: PolicyFetch, now: Date, expected?: Expectations["mtaSts"]): CheckRow {
  const check = "mta-sts.policy";
  const url = fetch.url;
  if (fetch.address === undefined)
    return fail(check, fetch.error ?? `mta-sts.${domain} has no A or AAAA record: senders cannot fetch the policy`, url);
  const findings: { status: CheckStatus; detail: string }[] = [];
  if (fetch.certificate) {
    const cert = certificateFindings(fetch.certificate, `mta-sts.${domain}`, now).filter((f) => f.status !== "pass");
    // RFC 8461 3.3: a policy fetched without a valid certificate is not used at all.
    findings.push(...cert.map((f) => ({ status: f.status, detail: `${f.detail} (senders ignore the policy)` })));
  }
  if (fetch.error !== undefined) return combine(check, [...findings, { status: "fail", detail: `${url}: ${fetch.error}` }], url);
  if (fetch.status !== 200) {
    const why =
      fetch.status !== undefined && fetch.status >= 300 && fetch.status < 400 ? " (senders do not follow redirects, RFC 8461 3.3)" : "";
    findings.push({ status: "fail", detail: `${url} answered HTTP ${fetch.status}${why}` });
    return combine(check, findings, url);
  }
  if (!/^text\/plain\s*(;|$)/i.test(fetch.contentType ?? "")) {
    findings.push({ status: "fail", detail: `served as ${fetch.contentType ?? "no Content-Type"}, not text/plain (RFC 8461 3.2)` });
  }
  const { policy, problem } = parsePolicy(fetch.body ?? "");
  if (!policy) {
    findings.push({ status: "fail", detail: `not a valid policy: ${problem}` });
    return combine(check, findings, url);
  }
  if (expected && fetch.body !== expected.policy) {
    findings.push({
      status: "fail",
      detail: `the served policy is not the planned one (served id ${mtaStsId(fetch.body ?? "")}, planned id ${expected.id}): redeploy the server`,
    });
  }
  if (policy.mode === "testing")
    findings.push({ status: "warn", detail: "mode testing: senders report TLS problems but still deliver without TLS" });
  if (policy.mode === "none") findings.push({ status: "warn", detail: "mode none: the policy is withdrawn" });
  if (policy.maxAge !== undefined && policy.maxAge < SHORT_MAX_AGE) {
    findings.push({
      status: "warn",
      detail: `max_age ${policy.maxAge} is under a day: senders refetch constantly and a DNS spoofer waits less`,
    });
  }
  if (findings.length === 0) {
    findings.push({
      status: "pass",
      detail: `mode ${policy.mode}, max_age ${policy.maxAge}, mx ${policy.mx.join(", ")}${expected ? " (as planned)" : ""}`,
    });
  }
  return combine(check, findings, url);
}

/** The `mta-sts.mx` row: every MX host of the domain must match an mx pattern (RFC 8461 4.1). */
export function checkMtaStsMx(domain: string, fetch: PolicyFetch, mx: DnsAnswer<{ exchange: string }>): CheckRow {
  const check = "mta-sts.mx";
  const { policy } = fetch.body !== undefined && fetch.status === 200 ? parsePolicy(fetch.body) : { policy: undefined };
  if (!policy) return fail(check, "no valid policy to match the MX hosts against", domain);
  if (policy.mode === "none") return pass(check, "mode none: no MX host is required to match", domain);
  if (!mx.ok) return fail(check, lookupFailure(`MX ${domain}`, mx), domain);
  const hosts = mx.records.map((r) => r.exchange.toLowerCase().replace(/\.$/, "")).filter((h) => h !== "");
  if (hosts.length === 0) return fail(check, `${domain} has no MX host to match`, domain);
  const asPolicy = { mode: policy.mode, mx: policy.mx } as Parameters<typeof mailauthMtaSts.validateMx>[1];
  const unmatched = hosts.filter((h) => !mailauthMtaSts.validateMx(h, asPolicy).valid);
  if (unmatched.length > 0) {
    return fail(
      check,
      `MX ${unmatched.join(", ")} matches no mx pattern of the policy (${policy.mx.join(", ")}): senders ${policy.mode === "enforce" ? "refuse to deliver there" : "report failures"}`,
      domain,
    );
  }
  return pass(check, `MX ${hosts.join(", ")} covered by ${policy.mx.join(", ")}`, domain);
}
