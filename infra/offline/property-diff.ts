// The engine's structural diff of two property maps (sdk/go/common/resource/properties_diff.go
// PropertyMap.diff / PropertyValue.diff, and plugin/provider.go NewDetailedDiffFromObjectDiff, at
// pulumi/pulumi 1b594988). Stand-ins may use it for their own DetailedDiff.
import type { DiffResult, PropertyMap, PropertyValue } from "./model";
import { formatPropertyPath, type PropertyPath } from "./property-path";
import { deepEquals, hasValue, isObjectValue } from "./property-values";

export type DetailedDiff = DiffResult["detailedDiff"];

export interface InputDiff {
  /** top-level keys that were added, deleted or updated, sorted (ObjectDiff.ChangedKeys) */
  changedKeys: string[];
  /** leaf paths: arrays per index (`triggers[1]`), objects per key (`data.flags`) */
  detailedDiff: DetailedDiff;
}

export function diffInputs(olds: PropertyMap, news: PropertyMap, projectDir: string): InputDiff {
  const detailedDiff: DetailedDiff = {};
  const changed = new Set<string>();
  diffMaps(olds, news, [], detailedDiff, changed, projectDir);
  return { changedKeys: [...changed].sort(), detailedDiff };
}

function diffMaps(
  olds: Record<string, PropertyValue>,
  news: Record<string, PropertyValue>,
  prefix: PropertyPath,
  acc: DetailedDiff,
  changedTop: Set<string> | undefined,
  projectDir: string,
): boolean {
  let any = false;
  const mark = (k: string, kind: "add" | "update" | "delete") => {
    acc[formatPropertyPath([...prefix, k])] = { kind, replace: false };
    changedTop?.add(k);
    any = true;
  };
  for (const [k, old] of Object.entries(olds)) {
    if (k in news) {
      const neu = news[k];
      if (valueDiffers(old, neu, projectDir)) {
        if (!hasValue(old)) mark(k, "add");
        else if (!hasValue(neu)) mark(k, "delete");
        else {
          diffValues(old, neu, [...prefix, k], acc, projectDir);
          changedTop?.add(k);
          any = true;
        }
      }
    } else if (hasValue(old)) mark(k, "delete");
  }
  for (const [k, neu] of Object.entries(news)) {
    if (!(k in olds) && hasValue(neu)) mark(k, "add");
  }
  return any;
}

function valueDiffers(old: PropertyValue, neu: PropertyValue, projectDir: string): boolean {
  if (Array.isArray(old) && Array.isArray(neu)) {
    return old.length !== neu.length || old.some((v, i) => valueDiffers(v, neu[i], projectDir));
  }
  if (isObjectValue(old) && isObjectValue(neu)) {
    const probe: DetailedDiff = {};
    return diffMaps(old, neu, [], probe, undefined, projectDir);
  }
  return !deepEquals(old, neu, projectDir);
}

/** valueDiffToDetailedDiff for a value known to differ. */
function diffValues(old: PropertyValue, neu: PropertyValue, at: PropertyPath, acc: DetailedDiff, projectDir: string): void {
  if (Array.isArray(old) && Array.isArray(neu)) {
    for (let i = 0; i < Math.min(old.length, neu.length); i++) {
      if (valueDiffers(old[i], neu[i], projectDir)) diffValues(old[i], neu[i], [...at, i], acc, projectDir);
    }
    for (let i = old.length; i < neu.length; i++) acc[formatPropertyPath([...at, i])] = { kind: "add", replace: false };
    for (let i = neu.length; i < old.length; i++) acc[formatPropertyPath([...at, i])] = { kind: "delete", replace: false };
    return;
  }
  if (isObjectValue(old) && isObjectValue(neu)) {
    diffMaps(old, neu, at, acc, undefined, projectDir);
    return;
  }
  const oldNull = old === null || old === undefined;
  const newNull = neu === null || neu === undefined;
  acc[formatPropertyPath(at)] = { kind: oldNull && !newNull ? "add" : !oldNull && newNull ? "delete" : "update", replace: false };
}
