// Property paths and the structural diff as the engine has them (properties_path.go,
// properties_diff.go): what replaceOnChanges matches and what ignoreChanges can reset.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatPropertyPath, parsePropertyPath, pathContains, resetPath } from "../../infra/offline/property-path";
import { diffInputs } from "../../infra/offline/property-diff";
import { Secret, Unknown } from "../../infra/offline/model";

describe("property paths", () => {
  test("parse and print round trip, with indexes, quoted keys and the wildcard", () => {
    const cases: [string, (string | number)[]][] = [
      ["triggers[0]", ["triggers", 0]],
      ["data.flags", ["data", "flags"]],
      ['tags["a.b"]', ["tags", "a.b"]],
      ["triggers[*]", ["triggers", "*"]],
      ["a[1].b[2]", ["a", 1, "b", 2]],
    ];
    for (const [text, path] of cases) {
      assert.deepEqual(parsePropertyPath(text), path, text);
      if (!text.includes("*")) assert.equal(formatPropertyPath(path), text);
    }
  });

  test("Contains: triggers[*] matches triggers[0] and below, not the bare triggers; a shorter path never matches", () => {
    const roc = parsePropertyPath("triggers[*]");
    assert.equal(pathContains(roc, parsePropertyPath("triggers[0]")), true);
    assert.equal(pathContains(roc, parsePropertyPath("triggers[3].x")), true);
    assert.equal(pathContains(roc, parsePropertyPath("triggers")), false);
    assert.equal(pathContains(roc, parsePropertyPath("other[0]")), false);
    assert.equal(pathContains(parsePropertyPath("triggers"), parsePropertyPath("triggers[0]")), true);
    assert.equal(pathContains(parsePropertyPath("*"), parsePropertyPath("anything.at[1]")), true);
  });

  test("Reset copies the old value, deletes a key the old inputs lack, and refuses to add or remove array elements", () => {
    const news = { size: 2, tags: { a: "new" }, list: [1, 2, 3], extra: "x" };
    assert.equal(resetPath(["size"], { size: 1 }, news), true);
    assert.equal(resetPath(["tags", "a"], { tags: { a: "old" } }, news), true);
    assert.equal(resetPath(["extra"], {}, news), true);
    assert.deepEqual(news, { size: 1, tags: { a: "old" }, list: [1, 2, 3] });
    assert.equal(resetPath(["list", 2], { list: [1, 2] }, news), false);
    assert.equal(resetPath(["list", "*"], { list: [1, 2] }, news), false);
  });

  test("Reset keeps a value secret when it was secret in the old inputs", () => {
    const news: Record<string, unknown> = { token: "new" };
    resetPath(["token"], { token: new Secret("old") }, news);
    assert.ok(news.token instanceof Secret);
    assert.equal((news.token as Secret).value, "old");
  });
});

describe("the structural diff", () => {
  test("arrays diff per index, objects per key; an unknown against a known value is an update", () => {
    const d = diffInputs(
      { triggers: ["a", "b", "c"], data: { flags: 0, tag: "issue" }, same: 1, gone: true },
      { triggers: ["a", Unknown], data: { flags: 128, tag: "issue" }, same: 1, added: "x" },
      process.cwd(),
    );
    assert.deepEqual(d.changedKeys, ["added", "data", "gone", "triggers"]);
    assert.deepEqual(d.detailedDiff, {
      "triggers[1]": { kind: "update", replace: false },
      "triggers[2]": { kind: "delete", replace: false },
      "data.flags": { kind: "update", replace: false },
      gone: { kind: "delete", replace: false },
      added: { kind: "add", replace: false },
    });
  });

  test("null equals absent; secrets compare by their values", () => {
    assert.deepEqual(diffInputs({ a: null, s: new Secret("x") }, { s: new Secret("x") }, process.cwd()).changedKeys, []);
    assert.deepEqual(diffInputs({ s: new Secret("x") }, { s: new Secret("y") }, process.cwd()).changedKeys, ["s"]);
  });
});
