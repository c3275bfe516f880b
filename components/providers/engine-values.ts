// Values as the engine hands them to a dynamic provider (the Node host,
// @pulumi/pulumi cmd/dynamic-provider/index.js): during a preview an input not known yet
// arrives as the unknown sentinel string, anywhere in the inputs (a whole value, an object's
// field, an array element); secrets arrive unwrapped because the host answers
// acceptSecrets=false, but a wrapped secret is tolerated too.

/** sdk/nodejs/runtime/rpc.ts `unknownValue`: the string the host receives for an unknown. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** sdk/nodejs/runtime/rpc.ts `specialSigKey` / `specialSecretSig` */
const SPECIAL_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export const isUnknown = (v: unknown): boolean => v === UNKNOWN;

/** Whether the value is unknown or holds an unknown anywhere inside. */
export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

/** The value with every wrapped secret opened (the sentinel is kept as it is). */
export function plainValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plainValue);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SPECIAL_SIG_KEY] === SECRET_SIG) return plainValue(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plainValue(x)]));
  }
  return v;
}

/** The engine's properties without the host's own keys (`__provider`), secrets opened. */
export function plainProperties(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(raw)
      .filter(([k]) => !k.startsWith("__"))
      .map(([k, v]) => [k, plainValue(v)]),
  );
}

/** Whether two known values differ (undefined and null are the same: an absent optional input). */
export function differs(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) !== JSON.stringify(b ?? null);
}

/** Whether the new value may differ from the old one: it is unknown (it may be anything) or it differs. */
export function mayDiffer(old: unknown, news: unknown): boolean {
  return containsUnknown(news) || differs(old, news);
}

export interface CheckFailure {
  property: string;
  reason: string;
}

/**
 * Collects check failures; `known(property, value, rule)` runs `rule` only when the value holds
 * no unknown, so a preview with inputs not known yet never fails on them.
 */
export class Checks {
  readonly failures: CheckFailure[] = [];

  fail(property: string, reason: string): void {
    this.failures.push({ property, reason });
  }

  known<T>(property: string, value: T, rule: (v: T) => void): void {
    if (containsUnknown(value)) return;
    try {
      rule(value);
    } catch (err) {
      this.fail(property, (err as Error).message);
    }
  }
}
