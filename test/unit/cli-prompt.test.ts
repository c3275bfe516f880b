// The terminal prompts of mailstack init and user: lines with echo, secrets without (raw mode),
// and the password rules.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { Prompter, PromptInterrupted, readAll } from "../../infra/cli/prompt";
import { askNewPassword, MIN_PASSWORD_LENGTH, passwordProblem } from "../../infra/cli/password";

/** A stream that says it is a terminal and records its raw-mode switches. */
function fakeTerminal() {
  const input = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: (raw: boolean) => void; modes: boolean[] };
  input.isTTY = true;
  input.modes = [];
  input.setRawMode = (raw: boolean) => void input.modes.push(raw);
  return input;
}

describe("Prompter", () => {
  test("lines end at LF, CRLF or CR; the prompt is written first; end of input is undefined", async () => {
    const input = new PassThrough();
    let shown = "";
    const p = new Prompter(input, (t) => (shown += t));
    input.write("one\r\ntwo\rthree\nlast");
    input.end();
    assert.deepEqual(
      [await p.line("a: "), await p.line("b: "), await p.line("c: "), await p.line("d: "), await p.line("e: ")],
      ["one", "two", "three", "last", undefined],
    );
    assert.equal(shown, "a: b: c: d: e: ");
    p.close();
  });

  test("a line typed later is waited for", async () => {
    const input = new PassThrough();
    const p = new Prompter(input, () => undefined);
    const answer = p.line("? ");
    setTimeout(() => input.write("late\n"), 20);
    assert.equal(await answer, "late");
    p.close();
  });

  test("a secret at a terminal is read in raw mode, which is switched off again, with backspace and Ctrl-U applied", async () => {
    const input = fakeTerminal();
    let shown = "";
    const p = new Prompter(input, (t) => (shown += t));
    input.write("wrong\x15pass\x7f\x7fssword\r");
    assert.equal(await p.secret("Password: "), "password");
    assert.deepEqual(input.modes, [true, false]);
    assert.equal(shown, "Password: \n");
    p.close();
  });

  test("Ctrl-C at a secret prompt interrupts, and raw mode is switched off", async () => {
    const input = fakeTerminal();
    const p = new Prompter(input, () => undefined);
    input.write("abc\x03");
    await assert.rejects(p.secret("Password: "), PromptInterrupted);
    assert.deepEqual(input.modes, [true, false]);
    p.close();
  });

  test("Ctrl-D on an empty secret is the end of input", async () => {
    const input = fakeTerminal();
    const p = new Prompter(input, () => undefined);
    input.write("\x04");
    assert.equal(await p.secret("Password: "), undefined);
    p.close();
  });

  test("readAll drops exactly one trailing newline, as pulumi config set does with stdin", async () => {
    for (const [given, expected] of [
      ["secret\n", "secret"],
      ["secret\n\n", "secret\n"],
      ["secret", "secret"],
    ]) {
      const input = new PassThrough();
      input.end(given);
      assert.equal(await readAll(input), expected);
    }
  });
});

describe("new passwords", () => {
  const cases: [string, RegExp | undefined][] = [
    ["", /the password is empty/],
    ["short", new RegExp(`has 5 characters; use at least ${MIN_PASSWORD_LENGTH}`)],
    ["tab\tin a long password", /control character/],
    ["a".repeat(MIN_PASSWORD_LENGTH), undefined],
    ["ünïcödé pässwörd", undefined],
  ];
  for (const [password, problem] of cases) {
    test(`${JSON.stringify(password)} -> ${problem ?? "accepted"}`, () => {
      const said = passwordProblem(password);
      if (problem === undefined) assert.equal(said, undefined);
      else assert.match(said ?? "", problem);
    });
  }

  test("asked twice: a short one and a mismatch are explained and asked again", async () => {
    const input = new PassThrough();
    let said = "";
    const p = new Prompter(input, () => undefined);
    input.write("short\nlong enough password\nother long password\nlong enough password\nlong enough password\n");
    assert.equal(await askNewPassword(p, "alice@example.org", (t) => (said += t)), "long enough password");
    assert.equal(
      said,
      `  the password has 5 characters; use at least ${MIN_PASSWORD_LENGTH}; try again\n  the two entries differ; try again\n`,
    );
    p.close();
  });
});
