// The `limits` section: what one SMTP client may cost the mail daemon (connections, messages,
// header and message size, deadlines). The rules and defaults are maild's own
// (components/shared/smtp-limits.ts), so the box accepts whatever this accepts.
import { DEFAULT_SMTP_LIMITS, SMTP_LIMIT_KEYS, SMTP_LIMITS, type SmtpLimits } from "../shared/smtp-limits";
import { Problems } from "./config-error";
import { isAbsent, keyPath, readInteger, readObject } from "./shape";

export function readLimits(value: unknown, path: string, problems: Problems): SmtpLimits | undefined {
  if (isAbsent(value)) return { ...DEFAULT_SMTP_LIMITS };
  const raw = readObject(value, path, SMTP_LIMIT_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const limits: SmtpLimits = { ...DEFAULT_SMTP_LIMITS };
  for (const key of SMTP_LIMIT_KEYS) {
    if (isAbsent(raw[key])) continue;
    const rule = SMTP_LIMITS[key];
    const n = readInteger(raw[key], keyPath(path, key), rule.min, rule.max, problems, ` (${rule.meaning})`);
    if (n !== undefined) limits[key] = n;
  }
  return problems.count > before ? undefined : limits;
}
