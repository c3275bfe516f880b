// One entry of the `domains` section: a mail domain and the policies published for it.
import type { DkimSpec, DmarcAlignment, DmarcPolicy, DmarcSpec, DomainSpec, MtaStsMode, MtaStsSpec, SpfSpec, SpfInclude } from "../spec";
import { Problems } from "./config-error";
import { isAtOrBelow, normaliseDomain, parseCidr, parseEmail } from "./name-syntax";
import { SPF_LOOKUP_LIMIT, spfLookupCount } from "./spf-lookups";
import {
  indexPath,
  isAbsent,
  isPlainObject,
  keyPath,
  readBoolean,
  readEnum,
  readInteger,
  readList,
  readObject,
  readString,
  readStringList,
  show,
} from "./shape";

const DOMAIN_KEYS = ["name", "zone", "dmarc", "spf", "mtaSts", "tlsrpt", "dkim", "caa"] as const;
const DMARC_KEYS = ["policy", "subdomainPolicy", "rua", "ruf", "adkim", "aspf", "pct"] as const;
const SPF_KEYS = ["ip4", "ip6", "include", "all"] as const;
const SPF_INCLUDE_KEYS = ["domain", "lookups"] as const;
const MTA_STS_KEYS = ["mode", "maxAge"] as const;
const TLSRPT_KEYS = ["rua"] as const;
const DKIM_KEYS = ["generations"] as const;

export const DMARC_POLICIES: readonly DmarcPolicy[] = ["none", "quarantine", "reject"];
export const DMARC_ALIGNMENTS: readonly DmarcAlignment[] = ["r", "s"];
export const MTA_STS_MODES: readonly MtaStsMode[] = ["enforce", "testing", "none"];
/** RFC 8461 3.2: max_age is at most 31557600 seconds (about a year). */
export const MTA_STS_MAX_AGE_LIMIT = 31557600;
/** RFC 8461 3.2 recommends weeks; below a day a policy protects little against a downgrade. */
export const MTA_STS_MAX_AGE_MIN = 86400;
export const MTA_STS_MAX_AGE_DEFAULT = 604800;
export const DKIM_GENERATION = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/** Domain name syntax check that reports at `path` and returns the normalised name. */
export function readDomainName(value: unknown, path: string, problems: Problems, what = "a domain name"): string | undefined {
  const text = readString(value, path, problems, what);
  if (text === undefined) return undefined;
  const name = normaliseDomain(text);
  if (!name.ok) problems.add(path, `${show(text)} is not a valid domain name: it ${name.reason}`);
  return name.ok ? name.value : undefined;
}

export function readDomain(value: unknown, path: string, problems: Problems): DomainSpec | undefined {
  const raw = readObject(value, path, DOMAIN_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const namePath = keyPath(path, "name");
  let name: string | undefined;
  if (isAbsent(raw.name)) problems.add(namePath, "is required: the mail domain, e.g. example.org");
  else name = readDomainName(raw.name, namePath, problems);

  let zone = name;
  if (!isAbsent(raw.zone)) {
    const zonePath = keyPath(path, "zone");
    zone = readDomainName(raw.zone, zonePath, problems, "the Cloudflare zone name");
    if (zone !== undefined && name !== undefined && !isAtOrBelow(name, zone)) {
      problems.add(zonePath, `"${zone}" does not contain the domain "${name}"; the zone must be the domain itself or a parent of it`);
    }
  }
  const dmarc = readDmarc(raw.dmarc, keyPath(path, "dmarc"), name ?? "example.org", problems);
  const spf = readSpf(raw.spf, keyPath(path, "spf"), problems);
  const mtaSts = readMtaSts(raw.mtaSts, keyPath(path, "mtaSts"), problems);
  const tlsrpt = readTlsrpt(raw.tlsrpt, keyPath(path, "tlsrpt"), name ?? "example.org", problems);
  const dkim = readDkim(raw.dkim, keyPath(path, "dkim"), problems);
  const caa = isAbsent(raw.caa) ? true : readBoolean(raw.caa, keyPath(path, "caa"), problems);

  if (problems.count > before) return undefined;
  return { name: name!, zone: zone!, dmarc: dmarc!, spf: spf!, mtaSts: mtaSts!, tlsrpt: tlsrpt!, dkim: dkim!, caa: caa! };
}

function mailtoAddress(text: string): string {
  return text.toLowerCase().startsWith("mailto:") ? text.slice("mailto:".length) : text;
}

/** A report address: a plain address (a `mailto:` prefix is accepted and dropped), domain normalised. */
function readReportEmail(text: string, path: string, problems: Problems): string | undefined {
  const email = parseEmail(mailtoAddress(text));
  if (!email.ok) {
    problems.add(path, `${show(text)} is not a valid email address: it ${email.reason}`);
    return undefined;
  }
  return email.value.address;
}

function readDmarc(value: unknown, path: string, domain: string, problems: Problems): DmarcSpec | undefined {
  const raw = isAbsent(value) ? {} : readObject(value, path, DMARC_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const policy = isAbsent(raw.policy) ? "reject" : readEnum(raw.policy, keyPath(path, "policy"), DMARC_POLICIES, problems);
  const subdomainPolicy = isAbsent(raw.subdomainPolicy)
    ? policy
    : readEnum(raw.subdomainPolicy, keyPath(path, "subdomainPolicy"), DMARC_POLICIES, problems);
  const emails = (key: "rua" | "ruf", fallback: string[]) =>
    isAbsent(raw[key])
      ? fallback
      : readStringList(raw[key], keyPath(path, key), problems, (text, itemPath) => readReportEmail(text, itemPath, problems));
  const rua = emails("rua", [`postmaster@${domain}`]);
  const ruf = emails("ruf", []);
  const adkim = isAbsent(raw.adkim) ? "r" : readEnum(raw.adkim, keyPath(path, "adkim"), DMARC_ALIGNMENTS, problems);
  const aspf = isAbsent(raw.aspf) ? "r" : readEnum(raw.aspf, keyPath(path, "aspf"), DMARC_ALIGNMENTS, problems);
  const pct = isAbsent(raw.pct) ? 100 : readInteger(raw.pct, keyPath(path, "pct"), 0, 100, problems, " (percent)");
  if (problems.count > before) return undefined;
  return { policy: policy!, subdomainPolicy: subdomainPolicy!, rua: rua!, ruf: ruf!, adkim: adkim!, aspf: aspf!, pct: pct! };
}

function readSpf(value: unknown, path: string, problems: Problems): SpfSpec | undefined {
  const raw = isAbsent(value) ? {} : readObject(value, path, SPF_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const addresses = (key: "ip4" | "ip6", family: 4 | 6) =>
    isAbsent(raw[key])
      ? []
      : readStringList(raw[key], keyPath(path, key), problems, (text, itemPath) => {
          const cidr = parseCidr(text, { family, bareAddress: true });
          if (!cidr.ok) problems.add(itemPath, `${show(text)} ${cidr.reason}`);
          return cidr.ok ? cidr.value : undefined;
        });
  const ip4 = addresses("ip4", 4);
  const ip6 = addresses("ip6", 6);
  const include = isAbsent(raw.include) ? [] : readSpfIncludes(raw.include, keyPath(path, "include"), problems);

  let all: SpfSpec["all"] | undefined = "-all";
  if (!isAbsent(raw.all)) {
    const allPath = keyPath(path, "all");
    if (raw.all === "+all") {
      problems.add(allPath, `"+all" would let every host on the internet send as this domain; use -all (or ~all while testing)`);
      all = undefined;
    } else if (raw.all === "?all") {
      problems.add(allPath, `"?all" is neutral, so SPF would protect nothing (RFC 7208 8.2); use -all (or ~all while testing)`);
      all = undefined;
    } else {
      all = readEnum(raw.all, allPath, ["-all", "~all"] as const, problems);
    }
  }
  if (include !== undefined) {
    const lookups = spfLookupCount(include);
    if (lookups > SPF_LOOKUP_LIMIT) {
      const terms = include.map((inc) => `${inc.domain} ${inc.lookups}`).join(", ");
      problems.add(
        keyPath(path, "include"),
        `the SPF record would need ${lookups} DNS lookups (${terms}); RFC 7208 4.6.4 allows at most ${SPF_LOOKUP_LIMIT}, beyond which receivers return permerror`,
      );
    }
  }
  if (problems.count > before) return undefined;
  return { ip4: ip4!, ip6: ip6!, include: include!, all: all! };
}

function readSpfIncludes(value: unknown, path: string, problems: Problems): SpfInclude[] | undefined {
  const list = readList(value, path, problems);
  if (list === undefined) return undefined;
  const before = problems.count;
  const out: SpfInclude[] = [];
  list.forEach((entry, i) => {
    const itemPath = indexPath(path, i);
    let domainValue: unknown = entry;
    let domainPath = itemPath;
    let lookups: number | undefined = 1;
    if (isPlainObject(entry)) {
      const raw = readObject(entry, itemPath, SPF_INCLUDE_KEYS, problems)!;
      domainValue = raw.domain;
      domainPath = keyPath(itemPath, "domain");
      if (isAbsent(raw.domain)) {
        problems.add(domainPath, "is required: the domain whose SPF record is included");
        return;
      }
      if (!isAbsent(raw.lookups)) {
        lookups = readInteger(
          raw.lookups,
          keyPath(itemPath, "lookups"),
          1,
          SPF_LOOKUP_LIMIT,
          problems,
          " (DNS lookups the include costs, itself included)",
        );
      }
    }
    const text = readString(domainValue, domainPath, problems, "a domain name or a mapping {domain, lookups}");
    if (text === undefined || lookups === undefined) return;
    // SPF include targets are DNS names, not host names: `_spf.google.com` is common (RFC 7208 5.2).
    const name = normaliseDomain(text, { underscore: true });
    if (!name.ok) {
      problems.add(domainPath, `${show(text)} is not a domain an SPF include can name: it ${name.reason}`);
      return;
    }
    if (out.some((inc) => inc.domain === name.value)) {
      problems.add(domainPath, `"${name.value}" is included twice`);
      return;
    }
    out.push({ domain: name.value, lookups });
  });
  return problems.count > before ? undefined : out;
}

function readMtaSts(value: unknown, path: string, problems: Problems): MtaStsSpec | undefined {
  const raw = isAbsent(value) ? {} : readObject(value, path, MTA_STS_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const mode = isAbsent(raw.mode) ? "enforce" : readEnum(raw.mode, keyPath(path, "mode"), MTA_STS_MODES, problems);
  let maxAge: number | undefined = MTA_STS_MAX_AGE_DEFAULT;
  if (!isAbsent(raw.maxAge)) {
    const agePath = keyPath(path, "maxAge");
    maxAge = readInteger(raw.maxAge, agePath, 0, MTA_STS_MAX_AGE_LIMIT, problems, " seconds (RFC 8461 3.2)");
    if (maxAge !== undefined && maxAge < MTA_STS_MAX_AGE_MIN) {
      problems.add(
        agePath,
        `${maxAge} seconds is under a day; RFC 8461 3.2 recommends weeks (default ${MTA_STS_MAX_AGE_DEFAULT}), so use ${MTA_STS_MAX_AGE_MIN} to ${MTA_STS_MAX_AGE_LIMIT}`,
      );
      maxAge = undefined;
    }
  }
  if (problems.count > before) return undefined;
  return { mode: mode!, maxAge: maxAge! };
}

function readTlsrpt(value: unknown, path: string, domain: string, problems: Problems): { rua: string[] } | undefined {
  const raw = isAbsent(value) ? {} : readObject(value, path, TLSRPT_KEYS, problems);
  if (raw === undefined) return undefined;
  if (isAbsent(raw.rua)) return { rua: [`postmaster@${domain}`] };
  const ruaPath = keyPath(path, "rua");
  const rua = readStringList(raw.rua, ruaPath, problems, (text, itemPath) => readTlsrptTarget(text, itemPath, problems));
  if (rua !== undefined && rua.length === 0) {
    problems.add(ruaPath, "is empty; RFC 8460 3 requires at least one report address (an email address or an https:// URL)");
    return undefined;
  }
  return rua === undefined ? undefined : { rua };
}

/** RFC 8460 3: a mailto: or https: URI; we take plain addresses (or mailto:) and https:// URLs. */
function readTlsrptTarget(text: string, path: string, problems: Problems): string | undefined {
  if (!/^https?:/i.test(text)) return readReportEmail(text, path, problems);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.protocol !== "https:" || url.hostname === "") {
    problems.add(path, `${show(text)} is neither an email address nor an https:// URL (RFC 8460 3)`);
    return undefined;
  }
  // RFC 8460 3: "," separates URIs and ";" ends the field; they must be percent-encoded.
  if (/[,;]/.test(text)) {
    problems.add(path, `${show(text)} contains "," or ";", which end a URI in the TLSRPT record; percent-encode them`);
    return undefined;
  }
  return text;
}

function readDkim(value: unknown, path: string, problems: Problems): DkimSpec | undefined {
  const raw = isAbsent(value) ? {} : readObject(value, path, DKIM_KEYS, problems);
  if (raw === undefined) return undefined;
  if (isAbsent(raw.generations)) return { generations: ["s1"] };
  const genPath = keyPath(path, "generations");
  const before = problems.count;
  const generations = readStringList(raw.generations, genPath, problems, (text, itemPath) => {
    if (!DKIM_GENERATION.test(text)) {
      problems.add(itemPath, `${show(text)} is not a selector generation; use 1 to 40 of a-z 0-9 and "-", not starting or ending with "-"`);
      return undefined;
    }
    return text;
  });
  if (generations === undefined) return undefined;
  if (generations.length === 0) {
    problems.add(genPath, "is empty; at least one key generation is needed to sign mail");
  }
  generations.forEach((gen, i) => {
    if (generations.indexOf(gen) !== i) problems.add(indexPath(genPath, i), `"${gen}" is listed twice`);
  });
  return problems.count > before ? undefined : { generations };
}
