// Readers for the generic shape of stack config (objects, lists, strings, numbers, booleans).
// Each reader reports what it expected at the exact path and returns undefined on failure, so
// callers keep going and collect every problem in one run.
import { Problems } from "./config-error";
import { SecretValue } from "./secret";

export function keyPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** YAML leaves an empty value as null; both it and a missing key mean "use the default". */
export function isAbsent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

/** A short description of a value for messages: the value itself when it is small. */
export function show(value: unknown): string {
  if (value instanceof SecretValue) return "an encrypted value";
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "a mapping";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}

function expected(problems: Problems, path: string, what: string, value: unknown): undefined {
  if (value instanceof SecretValue) {
    problems.add(path, `is an encrypted value; only users[].passwordHash may be a secret here, write ${what} in plain text`);
  } else {
    problems.add(path, `expected ${what}, got ${show(value)}`);
  }
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof SecretValue);
}

/**
 * A mapping whose keys must all be in `allowed`; unknown keys (usually typos) are reported with
 * the allowed ones. Returns the mapping even when it has unknown keys so its known keys still get checked.
 */
export function readObject(
  value: unknown,
  path: string,
  allowed: readonly string[],
  problems: Problems,
): Record<string, unknown> | undefined {
  if (!isPlainObject(value)) return expected(problems, path, `a mapping with keys ${allowed.join(", ")}`, value);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      problems.add(keyPath(path, key), `unknown key; allowed keys here are ${allowed.join(", ")}`);
    }
  }
  return value;
}

export function readList(value: unknown, path: string, problems: Problems): unknown[] | undefined {
  if (!Array.isArray(value)) return expected(problems, path, "a list", value);
  return value;
}

export function readString(value: unknown, path: string, problems: Problems, what = "a string"): string | undefined {
  if (typeof value !== "string") return expected(problems, path, what, value);
  const trimmed = value.trim();
  if (trimmed === "") {
    problems.add(path, `is empty; expected ${what}`);
    return undefined;
  }
  return trimmed;
}

export function readEnum<T extends string>(value: unknown, path: string, allowed: readonly T[], problems: Problems): T | undefined {
  if (typeof value !== "string") return expected(problems, path, `one of ${allowed.join("|")}`, value);
  if (!(allowed as readonly string[]).includes(value)) {
    problems.add(path, `${show(value)} is not one of ${allowed.join("|")}`);
    return undefined;
  }
  return value as T;
}

/**
 * An integer within [min, max]. A string of digits is accepted too: `pulumi config set` without
 * `--type int` stores numbers as strings.
 */
export function readInteger(value: unknown, path: string, min: number, max: number, problems: Problems, unit = ""): number | undefined {
  let n: number | undefined;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && /^-?\d+$/.test(value.trim())) n = Number(value.trim());
  const range = `an integer from ${min} to ${max}${unit}`;
  if (n === undefined || !Number.isInteger(n)) return expected(problems, path, range, value);
  if (n < min || n > max) {
    problems.add(path, `${n} is out of range; expected ${range}`);
    return undefined;
  }
  return n;
}

/** A boolean; the strings "true"/"false" are accepted as `pulumi config set` stores them so. */
export function readBoolean(value: unknown, path: string, problems: Problems): boolean | undefined {
  if (typeof value === "boolean") return value;
  if (value === "true") return true;
  if (value === "false") return false;
  return expected(problems, path, "true or false", value);
}

/** Reads a list of strings with `item`, reporting each entry at its index; undefined if any failed. */
export function readStringList<T>(
  value: unknown,
  path: string,
  problems: Problems,
  item: (text: string, itemPath: string) => T | undefined,
): T[] | undefined {
  const list = readList(value, path, problems);
  if (list === undefined) return undefined;
  const out: T[] = [];
  let ok = true;
  list.forEach((entry, i) => {
    const itemPath = indexPath(path, i);
    const text = readString(entry, itemPath, problems);
    const parsed = text === undefined ? undefined : item(text, itemPath);
    if (parsed === undefined) ok = false;
    else out.push(parsed);
  });
  return ok ? out : undefined;
}
