// Verdicts on DNS records for `mailstack check`: MX, the mail host's addresses, forward-confirmed
// reverse DNS, DMARC, TLSRPT and CAA. Pure functions from lookup answers (and the plan's
// expectations, when there is a plan) to check rows.
import type { CaaRecord, MxRecord } from "node:dns";
import { canonicalIpv4, canonicalIpv6 } from "../../components/records/address";
import { combine, fail, pass, warn, type CheckRow, type CheckStatus } from "./check-result";
import { lookupFailure, type DnsAnswer } from "./check-dns";
import type { AddressSource, Expectations, ExpectedCaa } from "./check-expect";

// ---------------------------------------------------------------------------------------------
// Tag lists (DKIM RFC 6376 3.2; DMARC RFC 7489 6.4, TLSRPT RFC 8460 3 and MTA-STS RFC 8461 3.1
// use the same `name=value; ...` shape).

export interface TagList {
  /** tag names in the order written */
  names: string[];
  tags: Map<string, string>;
  problems: string[];
}

/**
 * RFC 6376 3.2: `tag=value` pairs separated by `;`, whitespace around both allowed, a trailing
 * `;` allowed; a tag named twice makes the whole list invalid. Names are case-sensitive.
 */
export function parseTagList(text: string): TagList {
  const out: TagList = { names: [], tags: new Map(), problems: [] };
  const parts = text.split(";");
  parts.forEach((raw, i) => {
    const part = raw.trim();
    if (part === "") {
      if (i !== parts.length - 1) out.problems.push('empty tag between two ";"');
      return;
    }
    const m = /^([A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$/s.exec(part);
    if (!m) {
      out.problems.push(`"${part}" is not tag=value`);
      return;
    }
    const [, name, value] = m;
    if (out.tags.has(name)) out.problems.push(`tag ${name} appears twice (RFC 6376 3.2)`);
    out.names.push(name);
    out.tags.set(name, value.trim());
  });
  return out;
}

/** Records whose text starts with `prefix` (the version tag), as receivers select them. */
export function recordsStartingWith(records: string[], prefix: RegExp): string[] {
  return records.filter((r) => prefix.test(r));
}

function names(list: string[]): string {
  return list.join(", ");
}

function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

export function canonicalAddress(address: string): string {
  return address.includes(":") ? canonicalIpv6(address) : canonicalIpv4(address);
}

// ---------------------------------------------------------------------------------------------
// MX (RFC 5321 5.1, null MX RFC 7505)

export function checkMx(domain: string, answer: DnsAnswer<MxRecord>, expected?: Expectations["mx"]): CheckRow {
  const check = "mx";
  if (!answer.ok) return fail(check, lookupFailure(`MX ${domain}`, answer), domain);
  const live = answer.records.map((r) => ({ host: normalName(r.exchange), priority: r.priority })).sort((a, b) => a.priority - b.priority);
  const shown = live.map((r) => `${r.priority} ${r.host || "."}`).join(", ");
  if (live.length === 0) {
    return fail(check, `no MX record: senders fall back to the A/AAAA of ${domain} (RFC 5321 5.1)`, domain);
  }
  if (live.some((r) => r.host === "")) {
    // RFC 7505 3: a null MX (a single record with target ".") says the domain accepts no mail.
    return fail(check, `null MX (RFC 7505): ${domain} announces that it accepts no mail`, domain);
  }
  if (!expected) return pass(check, shown, domain);
  const findings: { status: CheckStatus; detail: string }[] = [];
  for (const e of expected) {
    const found = live.find((r) => r.host === e.host);
    if (!found) findings.push({ status: "fail", detail: `${e.host} is missing (planned: ${e.priority} ${e.host}; live: ${shown})` });
    else if (found.priority !== e.priority)
      findings.push({ status: "warn", detail: `${e.host} has preference ${found.priority}, the plan ${e.priority}` });
  }
  const extra = live.filter((r) => !expected.some((e) => e.host === r.host));
  if (extra.length > 0) {
    findings.push({
      status: "fail",
      detail: `MX ${names(extra.map((r) => r.host))} not in the plan: mail sent there does not reach the mail host`,
    });
  }
  if (findings.length === 0) return pass(check, `${shown} (as planned)`, domain);
  return combine(check, findings, domain);
}

// ---------------------------------------------------------------------------------------------
// A/AAAA of the mail host

export interface AddressExpectation {
  /** the plan publishes this record type */
  planned: boolean;
  /** the planned address, when known */
  address: string | null;
  source: AddressSource;
}

export function checkAddresses(family: 4 | 6, hostname: string, answer: DnsAnswer<string>, expected?: AddressExpectation): CheckRow {
  const check = family === 4 ? "address.ipv4" : "address.ipv6";
  const type = family === 4 ? "A" : "AAAA";
  if (!answer.ok) return fail(check, lookupFailure(`${type} ${hostname}`, answer), hostname);
  const live = answer.records.map(canonicalAddress);
  if (live.length === 0) {
    if (family === 4 || expected?.planned) return fail(check, `no ${type} record for ${hostname}`, hostname);
    return warn(check, `no AAAA record for ${hostname}: senders on IPv6 only cannot reach it`, hostname);
  }
  if (!expected || expected.address === null) return pass(check, live.join(", "), hostname);
  const planned = canonicalAddress(expected.address);
  if (live.length !== 1 || live[0] !== planned) {
    return fail(check, `${type} is ${live.join(", ")}; the plan publishes ${planned}`, hostname);
  }
  if (expected.source === "dns") {
    const flag = family === 4 ? "--ipv4 ADDR" : "--ipv6 PREFIX";
    return pass(check, `${planned} (the plan took it from DNS; pass ${flag} to compare with the server)`, hostname);
  }
  return pass(check, `${planned} (as planned)`, hostname);
}

// ---------------------------------------------------------------------------------------------
// Forward-confirmed reverse DNS (RFC 1912 2.1; RFC 8601 / receivers' "iprev")

export interface PtrProbe {
  address: string;
  ptr: DnsAnswer<string>;
  /** A or AAAA (by the address's family) of each name the PTR lookup returned */
  forward: Record<string, DnsAnswer<string>>;
}

export function checkPtr(family: 4 | 6, hostname: string, probes: PtrProbe[]): CheckRow {
  const check = family === 4 ? "ptr.ipv4" : "ptr.ipv6";
  const host = normalName(hostname);
  if (probes.length === 0) return fail(check, `no IPv${family} address of ${host} to look up`, host);
  const findings = probes.map((p): { status: CheckStatus; detail: string } => {
    if (!p.ptr.ok) return { status: "fail", detail: lookupFailure(`PTR ${p.address}`, p.ptr) };
    if (p.ptr.records.length === 0) return { status: "fail", detail: `${p.address} has no PTR record; it must name ${host}` };
    if (!p.ptr.records.includes(host)) {
      return { status: "fail", detail: `PTR of ${p.address} is ${names(p.ptr.records)}, not the mail host ${host}` };
    }
    const back = p.forward[host];
    if (!back || !back.ok)
      return {
        status: "fail",
        detail: `${host} (PTR of ${p.address}): ${back && !back.ok ? `lookup failed (${back.error})` : "not looked up"}`,
      };
    const addresses = back.records.map(canonicalAddress);
    if (!addresses.includes(canonicalAddress(p.address))) {
      return {
        status: "fail",
        detail: `PTR of ${p.address} is ${host}, but ${host} resolves to ${addresses.length ? names(addresses) : "nothing"}, not back to ${p.address}`,
      };
    }
    if (p.ptr.records.length > 1) {
      // Receivers may check any one of several PTR names; only one should exist.
      return {
        status: "warn",
        detail: `${p.address} has ${p.ptr.records.length} PTR records (${names(p.ptr.records)}); keep only ${host}`,
      };
    }
    return { status: "pass", detail: `${p.address} -> ${host} -> ${p.address}` };
  });
  return combine(check, findings, host);
}

// ---------------------------------------------------------------------------------------------
// DMARC (RFC 7489)

const DMARC_POLICIES = ["none", "quarantine", "reject"];

export interface DmarcRecord {
  policy?: string;
  subdomainPolicy?: string;
  rua: string[];
  problems: string[];
}

/** RFC 7489 6.3/6.4: `v=DMARC1` first, then the policy tags. Unknown tags are ignored (6.3). */
export function parseDmarc(text: string): DmarcRecord {
  const list = parseTagList(text);
  const problems = [...list.problems];
  if (list.names[0] !== "v" || list.tags.get("v") !== "DMARC1") problems.push("does not start with v=DMARC1 (RFC 7489 6.4)");
  const p = list.tags.get("p");
  if (p === undefined) problems.push("no p= policy (RFC 7489 6.3: required)");
  else if (!DMARC_POLICIES.includes(p)) problems.push(`p=${p} is not one of none|quarantine|reject`);
  const sp = list.tags.get("sp");
  if (sp !== undefined && !DMARC_POLICIES.includes(sp)) problems.push(`sp=${sp} is not one of none|quarantine|reject`);
  for (const tag of ["adkim", "aspf"]) {
    const v = list.tags.get(tag);
    if (v !== undefined && v !== "r" && v !== "s") problems.push(`${tag}=${v} is not r or s`);
  }
  const pct = list.tags.get("pct");
  if (pct !== undefined && !(/^\d{1,3}$/.test(pct) && Number(pct) <= 100)) problems.push(`pct=${pct} is not an integer 0..100`);
  const uris = (tag: string): string[] => {
    const v = list.tags.get(tag);
    if (v === undefined) return [];
    const list2 = v.split(",").map((u) => u.trim());
    for (const u of list2) {
      // RFC 7489 6.2: mailto: is the one report URI scheme receivers must support.
      if (!/^(mailto:[^\s@,!]+@[^\s@,!]+|https:\/\/\S+)(!\d+[kmgt]?)?$/i.test(u))
        problems.push(`${tag}: "${u}" is not a mailto: or https: URI`);
    }
    return list2;
  };
  const rua = uris("rua");
  uris("ruf");
  return { policy: p, subdomainPolicy: sp, rua, problems };
}

export function checkDmarc(domain: string, answer: DnsAnswer<string>, expected?: string): CheckRow {
  const check = "dmarc";
  const name = `_dmarc.${domain}`;
  if (!answer.ok) return fail(check, lookupFailure(`TXT ${name}`, answer), name);
  // RFC 7489 6.6.3: records not starting with v=DMARC1 are discarded; more than one left is no policy.
  const records = recordsStartingWith(answer.records, /^v=DMARC1(\s*;|\s*$)/);
  if (records.length === 0) return fail(check, `no v=DMARC1 record at ${name}`, name);
  if (records.length > 1) return fail(check, `${records.length} v=DMARC1 records at ${name}: receivers apply none (RFC 7489 6.6.3)`, name);
  const text = records[0];
  const parsed = parseDmarc(text);
  if (parsed.problems.length > 0) return fail(check, `"${text}": ${parsed.problems.join("; ")}`, name);
  if (expected !== undefined && text !== expected) return fail(check, `"${text}" differs from the plan: "${expected}"`, name);
  const summary = `p=${parsed.policy}${parsed.subdomainPolicy ? ` sp=${parsed.subdomainPolicy}` : ""}${parsed.rua.length ? ` rua=${parsed.rua.join(",")}` : " (no rua: no aggregate reports)"}`;
  if (parsed.policy === "none") return warn(check, `${summary}: p=none only monitors, spoofed mail is still delivered`, name);
  return pass(check, `${summary}${expected !== undefined ? " (as planned)" : ""}`, name);
}

// ---------------------------------------------------------------------------------------------
// SMTP TLS Reporting (RFC 8460 3)

export function parseTlsrpt(text: string): { rua: string[]; problems: string[] } {
  const list = parseTagList(text);
  const problems = [...list.problems];
  if (list.names[0] !== "v" || list.tags.get("v") !== "TLSRPTv1") problems.push("does not start with v=TLSRPTv1");
  const value = list.tags.get("rua");
  const rua = value === undefined ? [] : value.split(",").map((u) => u.trim());
  if (value === undefined) problems.push("no rua= (RFC 8460 3: required)");
  for (const u of rua)
    if (!/^(mailto:[^\s@,!]+@[^\s@,!]+|https:\/\/\S+)$/i.test(u)) problems.push(`rua: "${u}" is not a mailto: or https: URI`);
  return { rua, problems };
}

/** @param expected the planned value, null when the plan publishes none, undefined without a plan */
export function checkTlsrpt(domain: string, answer: DnsAnswer<string>, expected?: string | null): CheckRow {
  const check = "tlsrpt";
  const name = `_smtp._tls.${domain}`;
  if (!answer.ok) return fail(check, lookupFailure(`TXT ${name}`, answer), name);
  // RFC 8460 3: records not starting with v=TLSRPTv1 are ignored; anything but one is no policy.
  const records = recordsStartingWith(answer.records, /^v=TLSRPTv1(\s*;|\s*$)/);
  if (records.length === 0) {
    if (expected) return fail(check, `no v=TLSRPTv1 record at ${name}; the plan publishes "${expected}"`, name);
    return warn(check, `no TLSRPT record at ${name}: senders cannot report TLS failures to you`, name);
  }
  if (records.length > 1) return fail(check, `${records.length} v=TLSRPTv1 records at ${name}: senders use none (RFC 8460 3)`, name);
  const parsed = parseTlsrpt(records[0]);
  if (parsed.problems.length > 0) return fail(check, `"${records[0]}": ${parsed.problems.join("; ")}`, name);
  if (expected === null) return fail(check, `"${records[0]}" is published, the plan has no TLSRPT record`, name);
  if (expected !== undefined && records[0] !== expected) return fail(check, `"${records[0]}" differs from the plan: "${expected}"`, name);
  return pass(check, `rua=${parsed.rua.join(",")}${expected !== undefined ? " (as planned)" : ""}`, name);
}

// ---------------------------------------------------------------------------------------------
// CAA (RFC 8659, accounturi RFC 8657)

export interface CaaLookup {
  /** the name whose CAA set applies: the domain or the closest ancestor with one (RFC 8659 3) */
  name: string;
  answer: DnsAnswer<CaaRecord>;
}

interface CaaProperty {
  tag: string;
  value: string;
  critical: boolean;
}

function caaProperties(records: CaaRecord[]): CaaProperty[] {
  return records.flatMap((r) => {
    const critical = (r.critical & 128) !== 0;
    // node:dns adds `type: "CAA"` to some answers; every other key is the property's tag.
    const entries = Object.entries(r).filter(([k]) => k !== "critical" && k !== "type");
    return entries.map(([tag, value]) => ({ tag: tag.toLowerCase(), value: String(value), critical }));
  });
}

/** RFC 8659 4.2: `issuer-domain-name *(";" parameter)`; parameters `tag=value`. */
export function parseCaaIssueValue(value: string): { issuer: string; params: Map<string, string> } {
  const [issuer, ...rest] = value.split(";");
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf("=");
    if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
  }
  return { issuer: issuer.trim().toLowerCase(), params };
}

function caaValueMatches(live: string, expected: ExpectedCaa): boolean {
  const l = parseCaaIssueValue(live);
  const e = parseCaaIssueValue(expected.value);
  if (l.issuer !== e.issuer || l.params.size !== e.params.size) return false;
  for (const [k, v] of e.params) {
    if (!l.params.has(k)) return false;
    if (k === "accounturi" && expected.accountUriUnknown) continue;
    if (l.params.get(k) !== v) return false;
  }
  return true;
}

/** @param expected the planned properties (empty: the plan publishes no CAA); undefined without a plan */
export function checkCaa(domain: string, lookup: CaaLookup, expected?: ExpectedCaa[]): CheckRow {
  const check = "caa";
  if (!lookup.answer.ok) return fail(check, lookupFailure(`CAA ${lookup.name}`, lookup.answer), lookup.name);
  const props = caaProperties(lookup.answer.records);
  if (props.length === 0) {
    if (expected && expected.length > 0)
      return fail(
        check,
        `no CAA record at ${domain}; the plan publishes ${expected.map((e) => `${e.tag} "${e.value}"`).join(", ")}`,
        domain,
      );
    return warn(check, `no CAA record for ${domain} or its parents: any CA may issue certificates for it`, domain);
  }
  const inherited = lookup.name !== domain ? ` (inherited from ${lookup.name})` : "";
  const unknownCritical = props.filter((p) => p.critical && !["issue", "issuewild", "iodef"].includes(p.tag));
  if (unknownCritical.length > 0) {
    // RFC 8659 4.1: a CA must not issue when it sees a critical property it does not understand.
    return fail(
      check,
      `critical CAA tag ${unknownCritical.map((p) => p.tag).join(", ")} that CAs do not know: no CA will issue${inherited}`,
      lookup.name,
    );
  }
  const issue = props.filter((p) => p.tag === "issue");
  const issuers = [...new Set(issue.map((p) => parseCaaIssueValue(p.value).issuer || "(none)"))];
  const summary = `issue: ${issuers.join(", ") || "-"}${
    props.some((p) => p.tag === "issuewild")
      ? `; issuewild: ${props
          .filter((p) => p.tag === "issuewild")
          .map((p) => `"${p.value}"`)
          .join(", ")}`
      : ""
  }${inherited}`;
  if (!expected) return pass(check, summary, lookup.name);
  const findings: { status: CheckStatus; detail: string }[] = [];
  for (const e of expected) {
    if (!props.some((p) => p.tag === e.tag && caaValueMatches(p.value, e))) {
      const shown = e.accountUriUnknown ? e.value.replace(/accounturi=[^;]*/, "accounturi=<your ACME account>") : e.value;
      findings.push({
        status: "fail",
        detail: `${e.tag} "${shown}" is missing (live: ${
          props
            .filter((p) => p.tag === e.tag)
            .map((p) => `"${p.value}"`)
            .join(", ") || "none"
        })`,
      });
    }
  }
  const extra = props.filter(
    (p) => (p.tag === "issue" || p.tag === "issuewild") && !expected.some((e) => e.tag === p.tag && caaValueMatches(p.value, e)),
  );
  if (extra.length > 0)
    findings.push({ status: "fail", detail: `${extra.map((p) => `${p.tag} "${p.value}"`).join(", ")} not in the plan` });
  if (findings.length > 0) return combine(check, findings, lookup.name);
  const pinned = expected.some((e) => e.accountUriUnknown)
    ? " (accounturi present; pass --acme-account URL to compare it)"
    : " (as planned)";
  return pass(check, `${summary}${pinned}`, lookup.name);
}
