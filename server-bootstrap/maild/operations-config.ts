// maild's `operations` section: what the box watches about itself (blocklists, certificate,
// queue, disk, backup, DNS against the plan, spam filter), the reports it reads and sends, where
// alerts and the daily digest go, and who may open the status page. Read by validateMaildConfig
// (config.ts) into OperationsConfig; every key but `addresses` has a default.
import { isIP } from "node:net";
import { DEFAULT_DOMAIN_BLOCKLISTS, DEFAULT_IP_BLOCKLISTS } from "../../components/shared/dnsbl";
import { DNS_DRIFT_TYPES, type ExpectedRecord } from "../../components/shared/dns-drift";

export interface OperationsThresholds {
  /** an alert when the certificate has fewer days left */
  certificateDays: number;
  /** an alert when more messages wait in the outbound queue */
  queueSize: number;
  /** an alert when the oldest queued message is older */
  queueAgeSeconds: number;
  /** an alert when the data volume is fuller (percent) */
  diskPercent: number;
}

export interface OperationsConfig {
  /** the server's own public addresses (blocklists; DMARC reports: "our" sources) */
  addresses: string[];
  /** RFC 5782 DNSBL zones asked about `addresses` */
  ipBlocklists: string[];
  /** domain lists (DBLs) asked about our domains and the host name */
  domainBlocklists: string[];
  blocklistIntervalSeconds: number;
  /** how often the conditions behind alerts are evaluated */
  checkIntervalSeconds: number;
  /** lowercase addresses our DMARC and TLSRPT records publish (rua): reports to them are read */
  reportAddresses: string[];
  reportRetentionDays: number;
  /** alerts and the digest go here (local mailboxes or outside addresses) */
  alertTo: string[];
  /** and are POSTed as JSON here */
  webhook?: string;
  /** UTC time of the daily digest, HH:MM */
  digestTime: string;
  /** users who may log in to the status page */
  admins: string[];
  /** sender of alerts, the digest and our TLSRPT/DMARC reports; DKIM-signed with its domain's keys */
  reportFrom: string;
  /** send RFC 8460 reports of our outbound TLS to the domains that ask for them */
  sendTlsReports: boolean;
  /** send RFC 7489 aggregate reports to the domains that ask for them */
  sendDmarcReports: boolean;
  thresholds: OperationsThresholds;
  /** the plan's DNS records (DNS drift) */
  expectedRecords: ExpectedRecord[];
  /** GET this URL; a 200 means the spam filter is alive (rspamd: http://127.0.0.1:11333/ping) */
  spamFilterUrl?: string;
}

export type OperationsConfigFile = Partial<Omit<OperationsConfig, "thresholds">> & {
  addresses: string[];
  thresholds?: Partial<OperationsThresholds>;
};

export const DEFAULT_THRESHOLDS: OperationsThresholds = {
  certificateDays: 14,
  queueSize: 200,
  queueAgeSeconds: 6 * 3600,
  diskPercent: 90,
};

const ZONE_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ADDRESS_RE = /^[^\s@]+@[a-z0-9.-]+$/;
const KEYS = [
  "addresses",
  "ipBlocklists",
  "domainBlocklists",
  "blocklistIntervalSeconds",
  "checkIntervalSeconds",
  "reportAddresses",
  "reportRetentionDays",
  "alertTo",
  "webhook",
  "digestTime",
  "admins",
  "reportFrom",
  "sendTlsReports",
  "sendDmarcReports",
  "thresholds",
  "expectedRecords",
  "spamFilterUrl",
];

type Add = (path: string, message: string) => void;
const show = (v: unknown) => (v === undefined ? "missing" : JSON.stringify(v));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function stringList(add: Add, path: string, v: unknown, test: (s: string) => string | undefined): string[] {
  if (!Array.isArray(v)) {
    add(path, `${show(v)} is not a list`);
    return [];
  }
  return v.flatMap((s, i) => {
    if (typeof s !== "string") {
      add(`${path}[${i}]`, `${show(s)} is not a string`);
      return [];
    }
    const problem = test(s);
    if (problem) {
      add(`${path}[${i}]`, `${show(s)} ${problem}`);
      return [];
    }
    return [s];
  });
}

function intIn(add: Add, path: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    add(path, `${show(v)} is not an integer from ${min} to ${max}`);
    return fallback;
  }
  return v;
}

function httpsUrl(s: string): string | undefined {
  try {
    return new URL(s).protocol === "https:" ? undefined : "is not an https URL";
  } catch {
    return "is not a URL";
  }
}

/** The section, defaulted; `users` and `domains` are the validated ones, for cross-checks. */
export function operationsSection(add: Add, v: unknown, ctx: { users: string[]; domains: string[] }): OperationsConfig | undefined {
  if (!isObject(v)) {
    add("operations", `${show(v)} is not an object {addresses, ...}`);
    return undefined;
  }
  for (const key of Object.keys(v)) if (!KEYS.includes(key)) add(`operations.${key}`, `unknown key; allowed keys are ${KEYS.join(", ")}`);
  const at = (k: string) => `operations.${k}`;
  const addresses = stringList(add, at("addresses"), v.addresses, (s) => (isIP(s) ? undefined : "is not an IPv4 or IPv6 address"));
  const zone = (s: string) => (ZONE_RE.test(s) ? undefined : "is not a lowercase DNS zone name (e.g. zen.spamhaus.org)");
  const address = (s: string) => (ADDRESS_RE.test(s) && s === s.toLowerCase() ? undefined : "is not a lowercase address local@domain");
  const user = (s: string) => (ctx.users.includes(s) ? undefined : "is not one of the users (only a mailbox account can log in)");
  const firstDomain = ctx.domains[0] ?? "localhost";
  const thresholdsRaw = v.thresholds === undefined ? {} : v.thresholds;
  if (!isObject(thresholdsRaw)) add(at("thresholds"), `${show(v.thresholds)} is not an object`);
  const t = isObject(thresholdsRaw) ? thresholdsRaw : {};
  for (const key of Object.keys(t))
    if (!(key in DEFAULT_THRESHOLDS))
      add(`operations.thresholds.${key}`, `unknown key; allowed keys are ${Object.keys(DEFAULT_THRESHOLDS).join(", ")}`);
  const thresholds: OperationsThresholds = {
    certificateDays: intIn(add, "operations.thresholds.certificateDays", t.certificateDays, 1, 365, DEFAULT_THRESHOLDS.certificateDays),
    queueSize: intIn(add, "operations.thresholds.queueSize", t.queueSize, 1, 10_000_000, DEFAULT_THRESHOLDS.queueSize),
    queueAgeSeconds: intIn(
      add,
      "operations.thresholds.queueAgeSeconds",
      t.queueAgeSeconds,
      60,
      30 * 86_400,
      DEFAULT_THRESHOLDS.queueAgeSeconds,
    ),
    diskPercent: intIn(add, "operations.thresholds.diskPercent", t.diskPercent, 1, 100, DEFAULT_THRESHOLDS.diskPercent),
  };
  let digestTime = "06:00";
  if (v.digestTime !== undefined) {
    if (typeof v.digestTime === "string" && /^([01]\d|2[0-3]):[0-5]\d$/.test(v.digestTime)) digestTime = v.digestTime;
    else add(at("digestTime"), `${show(v.digestTime)} is not a UTC time HH:MM (e.g. 06:00)`);
  }
  const bool = (k: string, fallback: boolean): boolean => {
    if (v[k] === undefined) return fallback;
    if (typeof v[k] === "boolean") return v[k] as boolean;
    add(at(k), `${show(v[k])} is not true or false`);
    return fallback;
  };
  const optionalUrl = (k: string): string | undefined => {
    if (v[k] === undefined) return undefined;
    if (typeof v[k] !== "string") {
      add(at(k), `${show(v[k])} is not a URL`);
      return undefined;
    }
    const s = v[k] as string;
    const problem = k === "webhook" ? httpsUrl(s) : /^https?:\/\//.test(s) ? undefined : "is not an http or https URL";
    if (problem) add(at(k), `${show(s)} ${problem}`);
    return problem ? undefined : s;
  };
  const expectedRecords: ExpectedRecord[] = [];
  if (v.expectedRecords !== undefined) {
    if (!Array.isArray(v.expectedRecords)) add(at("expectedRecords"), `${show(v.expectedRecords)} is not a list`);
    else
      v.expectedRecords.forEach((r, i) => {
        const rat = `operations.expectedRecords[${i}]`;
        if (!isObject(r) || typeof r.name !== "string" || typeof r.value !== "string" || !DNS_DRIFT_TYPES.includes(r.type as never)) {
          add(rat, `${show(r)} is not {name, type: ${DNS_DRIFT_TYPES.join("|")}, value}`);
          return;
        }
        expectedRecords.push({ name: r.name, type: r.type as ExpectedRecord["type"], value: r.value });
      });
  }
  const reportFrom = v.reportFrom === undefined ? `postmaster@${firstDomain}` : typeof v.reportFrom === "string" ? v.reportFrom : "";
  if (address(reportFrom) || !ctx.domains.includes(reportFrom.slice(reportFrom.lastIndexOf("@") + 1)))
    add(at("reportFrom"), `${show(v.reportFrom)} is not an address in one of the configured domains (its DKIM keys sign what is sent)`);
  const webhook = optionalUrl("webhook");
  const spamFilterUrl = optionalUrl("spamFilterUrl");
  return {
    addresses,
    ipBlocklists: v.ipBlocklists === undefined ? [...DEFAULT_IP_BLOCKLISTS] : stringList(add, at("ipBlocklists"), v.ipBlocklists, zone),
    domainBlocklists:
      v.domainBlocklists === undefined ? [...DEFAULT_DOMAIN_BLOCKLISTS] : stringList(add, at("domainBlocklists"), v.domainBlocklists, zone),
    blocklistIntervalSeconds: intIn(add, at("blocklistIntervalSeconds"), v.blocklistIntervalSeconds, 1, 7 * 86_400, 3600),
    checkIntervalSeconds: intIn(add, at("checkIntervalSeconds"), v.checkIntervalSeconds, 1, 86_400, 300),
    reportAddresses: v.reportAddresses === undefined ? [] : stringList(add, at("reportAddresses"), v.reportAddresses, address),
    reportRetentionDays: intIn(add, at("reportRetentionDays"), v.reportRetentionDays, 1, 3650, 90),
    alertTo: v.alertTo === undefined ? [`postmaster@${firstDomain}`] : stringList(add, at("alertTo"), v.alertTo, address),
    ...(webhook ? { webhook } : {}),
    digestTime,
    admins: v.admins === undefined ? [] : stringList(add, at("admins"), v.admins, user),
    reportFrom,
    sendTlsReports: bool("sendTlsReports", true),
    sendDmarcReports: bool("sendDmarcReports", true),
    thresholds,
    expectedRecords,
    ...(spamFilterUrl ? { spamFilterUrl } : {}),
  };
}
