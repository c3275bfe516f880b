// The `spam` section: thresholds, greylisting, DNS blocklists and the outbound rate limit of the
// box's rspamd (components/shared/spam-settings.ts holds the type and the defaults).
import { DEFAULT_SPAM_SETTINGS, type Blocklist, type SpamSettings } from "../shared/spam-settings";
import { Problems } from "./config-error";
import { readDomainName } from "./domain";
import { indexPath, isAbsent, keyPath, readBoolean, readEnum, readInteger, readList, readObject, show } from "./shape";

const SPAM_KEYS = ["rejectScore", "junkScore", "greylist", "blocklists", "outbound"] as const;
const GREYLIST_KEYS = ["enabled", "minScore", "delaySeconds"] as const;
const BLOCKLIST_KEYS = ["zone", "checks", "score"] as const;
const OUTBOUND_KEYS = ["burst", "perHour"] as const;

/** A score: a number (decimals allowed, as rspamd's scores have them) within [-1000, 1000]. */
function readScore(value: unknown, path: string, problems: Problems): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || Math.abs(n) > 1000) {
    problems.add(path, `expected a score (a number from -1000 to 1000, e.g. 6 or 6.5), got ${show(value)}`);
    return undefined;
  }
  return n;
}

export function readSpam(value: unknown, path: string, problems: Problems): SpamSettings | undefined {
  const d = DEFAULT_SPAM_SETTINGS;
  if (isAbsent(value)) return structuredClone(d);
  const raw = readObject(value, path, SPAM_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;

  const rejectScore = isAbsent(raw.rejectScore) ? d.rejectScore : readScore(raw.rejectScore, keyPath(path, "rejectScore"), problems);
  const junkScore = isAbsent(raw.junkScore) ? d.junkScore : readScore(raw.junkScore, keyPath(path, "junkScore"), problems);
  if (rejectScore !== undefined && junkScore !== undefined && junkScore >= rejectScore) {
    problems.add(keyPath(path, "junkScore"), `${junkScore} is not below rejectScore (${rejectScore}); no message would go to Junk`);
  }

  let greylist: SpamSettings["greylist"] | undefined = { ...d.greylist };
  if (!isAbsent(raw.greylist)) {
    const gPath = keyPath(path, "greylist");
    const g = readObject(raw.greylist, gPath, GREYLIST_KEYS, problems);
    if (g === undefined) greylist = undefined;
    else {
      const enabled = isAbsent(g.enabled) ? d.greylist.enabled : readBoolean(g.enabled, keyPath(gPath, "enabled"), problems);
      const minScore = isAbsent(g.minScore) ? d.greylist.minScore : readScore(g.minScore, keyPath(gPath, "minScore"), problems);
      const delaySeconds = isAbsent(g.delaySeconds)
        ? d.greylist.delaySeconds
        : readInteger(g.delaySeconds, keyPath(gPath, "delaySeconds"), 1, 86_400, problems, " seconds");
      if (minScore !== undefined && junkScore !== undefined && minScore > junkScore) {
        problems.add(keyPath(gPath, "minScore"), `${minScore} is above junkScore (${junkScore}); set it at most junkScore`);
      }
      greylist =
        enabled !== undefined && minScore !== undefined && delaySeconds !== undefined ? { enabled, minScore, delaySeconds } : undefined;
    }
  }

  let blocklists: Blocklist[] | undefined = d.blocklists.map((b) => ({ ...b }));
  if (!isAbsent(raw.blocklists)) {
    const bPath = keyPath(path, "blocklists");
    const list = readList(raw.blocklists, bPath, problems);
    blocklists = [];
    const zones = new Map<string, number>();
    list?.forEach((entry, i) => {
      const at = indexPath(bPath, i);
      const b = readObject(entry, at, BLOCKLIST_KEYS, problems);
      if (b === undefined) return;
      let zone: string | undefined;
      if (isAbsent(b.zone)) problems.add(keyPath(at, "zone"), "is required: the list's DNS zone, e.g. zen.spamhaus.org");
      else zone = readDomainName(b.zone, keyPath(at, "zone"), problems, "a DNS zone");
      const checks = isAbsent(b.checks) ? "ip" : readEnum(b.checks, keyPath(at, "checks"), ["ip", "domain"] as const, problems);
      let score: number | undefined;
      if (isAbsent(b.score)) problems.add(keyPath(at, "score"), `is required: added to a listed message's score (rejectScore refuses it)`);
      else score = readScore(b.score, keyPath(at, "score"), problems);
      if (zone !== undefined && zones.has(zone)) {
        problems.add(keyPath(at, "zone"), `"${zone}" is listed twice (also ${indexPath(bPath, zones.get(zone)!)})`);
        return;
      }
      if (zone !== undefined) zones.set(zone, i);
      if (zone !== undefined && checks !== undefined && score !== undefined) blocklists!.push({ zone, checks, score });
    });
    if (list === undefined) blocklists = undefined;
  }

  let outbound: SpamSettings["outbound"] | undefined = { ...d.outbound };
  if (!isAbsent(raw.outbound)) {
    const oPath = keyPath(path, "outbound");
    const o = readObject(raw.outbound, oPath, OUTBOUND_KEYS, problems);
    if (o === undefined) outbound = undefined;
    else {
      const burst = isAbsent(o.burst)
        ? d.outbound.burst
        : readInteger(o.burst, keyPath(oPath, "burst"), 1, 1_000_000, problems, " messages");
      const perHour = isAbsent(o.perHour)
        ? d.outbound.perHour
        : readInteger(o.perHour, keyPath(oPath, "perHour"), 1, 1_000_000, problems, " messages");
      outbound = burst !== undefined && perHour !== undefined ? { burst, perHour } : undefined;
    }
  }

  if (problems.count > before) return undefined;
  return { rejectScore: rejectScore!, junkScore: junkScore!, greylist: greylist!, blocklists: blocklists!, outbound: outbound! };
}
