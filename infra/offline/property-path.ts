// Property paths as the engine parses, prints and matches them (sdk/go/common/resource/properties_path.go,
// pulumi/pulumi 1b594988): `triggers[0]`, `data.flags`, `tags["a.b"]`, `triggers[*]`.
import { Secret, type PropertyMap, type PropertyValue } from "./model";
import { deepCopy, isObjectValue } from "./property-values";

export type PropertyPath = (string | number)[];

/** parsePropertyPath (non-strict): bare names run to the next `.` or `[`; `[*]` is the wildcard "*". */
export function parsePropertyPath(text: string): PropertyPath {
  const elements: PropertyPath = [];
  let rest = text;
  if (rest.startsWith(".")) throw new Error(`property path "${text}": expected a name or index first`);
  while (rest.length > 0) {
    if (rest[0] === ".") {
      rest = rest.slice(1);
      if (rest.length === 0) throw new Error(`property path "${text}": expected a name or index at the end`);
      continue;
    }
    if (rest[0] === "[") {
      if (rest[1] === '"') {
        let key = "";
        let i = 2;
        for (;;) {
          if (i >= rest.length) throw new Error(`property path "${text}": missing closing quote`);
          if (rest[i] === '"') {
            i++;
            break;
          }
          if (rest[i] === "\\" && rest[i + 1] === '"') {
            key += '"';
            i += 2;
          } else key += rest[i++];
        }
        if (rest[i] !== "]") throw new Error(`property path "${text}": missing closing bracket`);
        elements.push(key);
        rest = rest.slice(i + 1);
      } else {
        const close = rest.indexOf("]");
        if (close === -1) throw new Error(`property path "${text}": missing closing bracket`);
        const segment = rest.slice(1, close);
        if (segment === "*") elements.push("*");
        else if (/^-?\d+$/.test(segment)) elements.push(Number(segment));
        else throw new Error(`property path "${text}": invalid array index "${segment}"`);
        rest = rest.slice(close + 1);
      }
      continue;
    }
    let i = 0;
    while (i < rest.length && rest[i] !== "." && rest[i] !== "[") i++;
    elements.push(rest.slice(0, i));
    rest = rest.slice(i);
  }
  return elements;
}

/** PropertyPath.String: `a.b[0]`, quoting keys with characters other than [A-Za-z0-9_]. */
export function formatPropertyPath(p: PropertyPath): string {
  return p
    .map((k, i) => {
      if (typeof k === "number") return `[${k}]`;
      if (/^[A-Za-z0-9_]+$/.test(k)) return i === 0 ? k : `.${k}`;
      return `["${k.replace(/"/g, '\\"')}"]`;
    })
    .join("");
}

/**
 * PropertyPath.Contains (properties_path.go L314-343): `other` is at or below `p`. A shorter path
 * never matches, and "*" matches any one key or index: `triggers[*]` contains `triggers[0]`, not `triggers`.
 */
export function pathContains(p: PropertyPath, other: PropertyPath): boolean {
  if (other.length < p.length) return false;
  return p.every((element, i) => element === "*" || element === other[i]);
}

function unwrap(value: PropertyValue): { value: PropertyValue; secret: boolean } {
  let secret = false;
  while (value instanceof Secret) {
    value = value.value;
    secret = true;
  }
  return { value, secret };
}

/**
 * PropertyPath.Reset (properties_path.go reset, L354-576): sets the value at `p` in `news` to the
 * value at the same place in `olds`, deleting it from `news` when `olds` lacks it; never creates or
 * removes array elements. Returns false on a path error (the change is then not ignored). Mutates
 * `news` (callers pass a copy); holders are objects or arrays, never wrapped in Secret at the root.
 */
export function resetPath(p: PropertyPath, olds: PropertyMap, news: PropertyMap): boolean {
  return reset(p, olds, news, false, false);
}

function reset(p: PropertyPath, oldRaw: PropertyValue, newRaw: PropertyValue, oldSecretIn: boolean, newSecretIn: boolean): boolean {
  if (p.length === 0) return false;
  const o = unwrap(oldRaw);
  const n = unwrap(newRaw);
  const old = o.value;
  const neu = n.value;
  const oldIsSecret = oldSecretIn || o.secret;
  const newIsSecret = newSecretIn || n.secret;
  const resetValue = (v: PropertyValue) => (oldIsSecret && !newIsSecret ? new Secret(deepCopy(v)) : deepCopy(v));
  const key = p[0];
  if (typeof key === "number") {
    if (key < 0) return false;
    if (p.length === 1) {
      if (!Array.isArray(old) && !Array.isArray(neu)) return true;
      if (!Array.isArray(old) || !Array.isArray(neu)) return false;
      if (key >= old.length && key >= neu.length) return true;
      if (key >= old.length || key >= neu.length) return false;
      neu[key] = resetValue(old[key]);
      return true;
    }
    if (!Array.isArray(old) || !Array.isArray(neu)) return !Array.isArray(old) && !Array.isArray(neu);
    if (key >= old.length || key >= neu.length) return false;
    return reset(p.slice(1), old[key], neu[key], oldIsSecret, newIsSecret);
  }
  if (key === "*") {
    if (p.length === 1) {
      if (isObjectValue(neu)) {
        if (isObjectValue(old)) {
          for (const k of Object.keys(old)) neu[k] = resetValue(old[k]);
          for (const k of Object.keys(neu)) if (!(k in old)) delete neu[k];
        }
        return true;
      }
      if (Array.isArray(neu)) {
        if (Array.isArray(old)) {
          for (let i = 0; i < old.length && i < neu.length; i++) neu[i] = resetValue(old[i]);
          if (old.length !== neu.length) return false;
        }
        return true;
      }
      return false;
    }
    if (isObjectValue(old) && isObjectValue(neu)) {
      for (const k of Object.keys(old)) {
        if (!(k in neu)) return false;
        if (!reset(p.slice(1), old[k], neu[k], oldIsSecret, newIsSecret)) return false;
      }
      return true;
    }
    if (Array.isArray(old) && Array.isArray(neu)) {
      for (let i = 0; i < old.length && i < neu.length; i++) {
        if (!reset(p.slice(1), old[i], neu[i], oldIsSecret, newIsSecret)) return false;
      }
      return old.length === neu.length;
    }
    return false;
  }
  if (p.length === 1) {
    const has = isObjectValue(old) && key in old;
    if (has) {
      if (!isObjectValue(neu)) return false;
      neu[key] = resetValue((old as Record<string, PropertyValue>)[key]);
    } else if (isObjectValue(neu)) {
      delete neu[key];
    }
    return true;
  }
  if (!isObjectValue(old) || !isObjectValue(neu)) return !isObjectValue(old) && !isObjectValue(neu);
  const hasNew = key in neu;
  const hasOld = key in old;
  if (hasOld && !hasNew) return false;
  if (!hasOld && !hasNew) return true;
  return reset(p.slice(1), old[key] ?? null, neu[key], oldIsSecret, newIsSecret);
}
