// The `operations` section: what the box watches and tells whom (maild's monitoring, alerts,
// daily digest and status page; server-bootstrap/maild/operations-config.ts is the box's side).
import type { OperationsSpec } from "../spec";
import { DEFAULT_DOMAIN_BLOCKLISTS, DEFAULT_IP_BLOCKLISTS } from "../shared/dnsbl";
import { Problems } from "./config-error";
import { normaliseDomain, parseEmail } from "./name-syntax";
import { isAbsent, keyPath, readBoolean, readObject, readString, readStringList, show } from "./shape";

const OPERATIONS_KEYS = ["alertTo", "webhook", "digestTime", "admins", "ipBlocklists", "domainBlocklists", "sendReports"] as const;

/** Defaults: the postmaster of the first domain hears everything; nobody is an admin until named. */
export function defaultOperations(firstDomain: string): OperationsSpec {
  return {
    alertTo: [`postmaster@${firstDomain}`],
    digestTime: "06:00",
    admins: [],
    ipBlocklists: [...DEFAULT_IP_BLOCKLISTS],
    domainBlocklists: [...DEFAULT_DOMAIN_BLOCKLISTS],
    sendReports: true,
  };
}

/** `users`: the validated user addresses (admins must be among them). */
export function readOperations(
  value: unknown,
  path: string,
  firstDomain: string,
  users: string[],
  problems: Problems,
): OperationsSpec | undefined {
  const spec = defaultOperations(firstDomain);
  if (isAbsent(value)) return spec;
  const raw = readObject(value, path, OPERATIONS_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const email = (text: string, at: string) => {
    const parsed = parseEmail(text);
    if (!parsed.ok) problems.add(at, `${show(text)} is not a valid email address: it ${parsed.reason}`);
    return parsed.ok ? `${parsed.value.local.toLowerCase()}@${parsed.value.domain}` : undefined;
  };
  const zone = (text: string, at: string) => {
    const z = normaliseDomain(text);
    if (!z.ok) problems.add(at, `${show(text)} is not a DNS zone name: it ${z.reason}`);
    return z.ok ? z.value : undefined;
  };
  if (!isAbsent(raw.alertTo)) spec.alertTo = readStringList(raw.alertTo, keyPath(path, "alertTo"), problems, email) ?? [];
  if (!isAbsent(raw.webhook)) {
    const at = keyPath(path, "webhook");
    const text = readString(raw.webhook, at, problems, "an https:// URL");
    let ok = false;
    try {
      ok = text !== undefined && new URL(text).protocol === "https:";
    } catch {
      ok = false;
    }
    if (text !== undefined && !ok) problems.add(at, `${show(text)} is not an https:// URL (alerts are POSTed there as JSON)`);
    else if (text !== undefined) spec.webhook = text;
  }
  if (!isAbsent(raw.digestTime)) {
    const at = keyPath(path, "digestTime");
    const text = readString(raw.digestTime, at, problems, "a UTC time HH:MM");
    if (text !== undefined && !/^([01]\d|2[0-3]):[0-5]\d$/.test(text))
      problems.add(at, `${show(text)} is not a UTC time HH:MM, e.g. "06:00"`);
    else if (text !== undefined) spec.digestTime = text;
  }
  if (!isAbsent(raw.admins))
    spec.admins =
      readStringList(raw.admins, keyPath(path, "admins"), problems, (text, at) => {
        const address = email(text, at);
        if (address !== undefined && !users.includes(address)) {
          problems.add(at, `"${address}" is not one of users[].address: only a mailbox account can log in to the status page`);
          return undefined;
        }
        return address;
      }) ?? [];
  if (!isAbsent(raw.ipBlocklists))
    spec.ipBlocklists = readStringList(raw.ipBlocklists, keyPath(path, "ipBlocklists"), problems, zone) ?? [];
  if (!isAbsent(raw.domainBlocklists))
    spec.domainBlocklists = readStringList(raw.domainBlocklists, keyPath(path, "domainBlocklists"), problems, zone) ?? [];
  if (!isAbsent(raw.sendReports)) spec.sendReports = readBoolean(raw.sendReports, keyPath(path, "sendReports"), problems) ?? true;
  if (spec.alertTo.length === 0 && spec.webhook === undefined)
    problems.add(keyPath(path, "alertTo"), "is empty and there is no webhook: alerts would reach nobody");
  return problems.count > before ? undefined : spec;
}
