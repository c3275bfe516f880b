// Exec command lines (ExecStart=, ExecReload=, ...) as systemd 252 parses and expands them:
// systemd.service(5) "COMMAND LINES" and the prefix table under ExecStart=, quoting per
// systemd.syntax(7) "QUOTING", specifiers per systemd.unit(5) "SPECIFIERS".
import * as fs from "node:fs";
import * as path from "node:path";

export interface ExecCommand {
  /** the executable as written (after `@` handling the argv[0] is argv[0] here) */
  path: string;
  argv: string[];
  /** `-`: a failure is recorded but counts as success */
  ignoreFailure: boolean;
  /** `:`: no environment variable substitution */
  noEnvExpansion: boolean;
  /** `+` (full privileges) or `!` / `!!` (no User=/Group= change) */
  privileged: "" | "+" | "!" | "!!";
}

const ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  '"': '"',
  "'": "'",
  s: " ",
};

/**
 * Splits a setting value into words: whitespace separates, a quote wraps a whole item (opening at
 * a word start, closing before whitespace or the end), C-style escapes anywhere (systemd.syntax(7)).
 * `keepEscapedSemicolon` keeps `\;` as the two characters so the caller can tell it from `;`.
 */
export function splitWords(text: string, what: string, keepEscapedSemicolon = false): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (i >= text.length) break;
    let word = "";
    const quote = text[i] === '"' || text[i] === "'" ? text[i] : undefined;
    if (quote) i++;
    for (;;) {
      if (i >= text.length) {
        if (quote) throw new Error(`${what}: unterminated ${quote} quote in: ${text}`);
        break;
      }
      const c = text[i];
      if (quote && c === quote) {
        i++;
        if (i < text.length && !/\s/.test(text[i])) throw new Error(`${what}: a closing quote must be followed by whitespace in: ${text}`);
        break;
      }
      if (!quote && /\s/.test(c)) break;
      if (c === "\\") {
        const n = text[i + 1];
        if (n === undefined) throw new Error(`${what}: trailing backslash in: ${text}`);
        if (n === ";" && keepEscapedSemicolon) {
          word += "\\;";
          i += 2;
          continue;
        }
        if (n === ";") {
          word += ";";
          i += 2;
          continue;
        }
        if (n in ESCAPES) {
          word += ESCAPES[n];
          i += 2;
          continue;
        }
        const hex = /^x([0-9a-fA-F]{2})/.exec(text.slice(i + 1));
        if (hex) {
          word += String.fromCharCode(parseInt(hex[1], 16));
          i += 4;
          continue;
        }
        const oct = /^([0-7]{3})/.exec(text.slice(i + 1));
        if (oct) {
          word += String.fromCharCode(parseInt(oct[1], 8));
          i += 4;
          continue;
        }
        throw new Error(`${what}: unknown escape "\\${n}" in: ${text}`);
      }
      word += c;
      i++;
    }
    words.push(word);
  }
  return words;
}

export interface SpecifierContext {
  unitName: string;
}

/** `%` specifiers (systemd.unit(5) "SPECIFIERS"), the ones a system service can use without templates. */
export function expandSpecifiers(text: string, ctx: SpecifierContext, what: string): string {
  const prefix = ctx.unitName.slice(0, ctx.unitName.lastIndexOf("."));
  const table: Record<string, string> = {
    "%": "%",
    n: ctx.unitName,
    N: prefix,
    p: prefix,
    P: prefix,
    i: "",
    I: "",
    t: "/run",
    S: "/var/lib",
    C: "/var/cache",
    L: "/var/log",
    E: "/etc",
    h: "/root",
    u: "root",
    U: "0",
  };
  return text.replace(/%(.)/g, (_m, c: string) => {
    const v = table[c];
    if (v === undefined) throw new Error(`${what}: specifier %${c} is not modeled by the machine's systemd stand-in`);
    return v;
  });
}

/** Parses one Exec*= value into its command lines (`;` as a word separates them). */
export function parseExecValue(value: string, ctx: SpecifierContext, what: string): ExecCommand[] {
  const words = splitWords(expandSpecifiers(value, ctx, what), what, true);
  const commands: ExecCommand[] = [];
  let current: string[] = [];
  const flush = () => {
    if (current.length) commands.push(toCommand(current, what));
    current = [];
  };
  for (const w of words) {
    if (w === ";") flush();
    else current.push(w === "\\;" ? ";" : w.replace(/\\;/g, ";"));
  }
  flush();
  return commands;
}

function toCommand(words: string[], what: string): ExecCommand {
  let first = words[0];
  let ignoreFailure = false;
  let noEnvExpansion = false;
  let argv0Given = false;
  let privileged: ExecCommand["privileged"] = "";
  for (;;) {
    if (first.startsWith("!!")) {
      if (privileged) throw new Error(`${what}: only one of +, !, !! may be used`);
      privileged = "!!";
      first = first.slice(2);
    } else if (first.startsWith("-")) {
      ignoreFailure = true;
      first = first.slice(1);
    } else if (first.startsWith("@")) {
      argv0Given = true;
      first = first.slice(1);
    } else if (first.startsWith(":")) {
      noEnvExpansion = true;
      first = first.slice(1);
    } else if (first.startsWith("+") || first.startsWith("!")) {
      if (privileged) throw new Error(`${what}: only one of +, !, !! may be used`);
      privileged = first[0] as "+" | "!";
      first = first.slice(1);
    } else break;
  }
  if (first === "") throw new Error(`${what}: empty executable`);
  if (first.startsWith("$")) throw new Error(`${what}: the program to execute may not be a variable (systemd.service(5))`);
  if (first.includes("/") && !first.startsWith("/")) {
    throw new Error(`${what}: "${first}" must be an absolute path or a file name without slashes (systemd.service(5))`);
  }
  const rest = words.slice(1);
  const argv = argv0Given ? rest : [first, ...rest];
  if (argv.length === 0) throw new Error(`${what}: "@" needs the argv[0] to pass as its next word`);
  return { path: first, argv, ignoreFailure, noEnvExpansion, privileged };
}

/** The fixed search path of the system manager on a merged-/usr system (systemd.exec(5) $PATH). */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

/** Resolves a bare executable name along SYSTEM_PATH, as systemd does at load time (systemd.service(5)). */
export function resolveExecutable(file: string): string | undefined {
  if (file.startsWith("/")) return file;
  for (const dir of SYSTEM_PATH.split(":")) {
    const candidate = path.join(dir, file);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Environment variable substitution in the arguments (not argv[0]): `$FOO` as a whole word is
 * split at whitespace into zero or more words (quotes respected, then removed); `${FOO}` anywhere
 * is replaced by the exact value; `$$` is a literal `$`; unknown variables are empty.
 */
export function expandEnvironment(argv: string[], env: Record<string, string | undefined>, what: string): string[] {
  const out = [argv[0]];
  for (const word of argv.slice(1)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) {
      const v = env[whole[1]] ?? "";
      out.push(...splitWords(v, `${what} ($${whole[1]})`));
      continue;
    }
    out.push(
      word.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced?: string, bare?: string) => {
        if (m === "$$") return "$";
        // systemd 252 expands a bare $FOO only as a word of its own; inside a word it stays as written.
        if (bare !== undefined) return m;
        return env[braced!] ?? "";
      }),
    );
  }
  return out;
}

/**
 * An EnvironmentFile= (systemd.exec(5)): KEY=VALUE lines, `#`/`;` comments, lines without `=`
 * ignored, leading/trailing whitespace dropped, a trailing backslash continues the line, quotes
 * around the whole value removed, backslash escapes the next character.
 */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = text.replace(/\\\n/g, "").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let v = line.slice(eq + 1).trim();
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) {
      v = v.slice(1, -1);
    } else {
      v = v.replace(/\\(.)/g, "$1");
    }
    env[key] = v;
  }
  return env;
}

/** Environment= values: whitespace-separated, quotable KEY=VALUE items (systemd.exec(5)). */
export function parseEnvironmentAssignments(values: string[], what: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of values) {
    for (const item of splitWords(v, what)) {
      const eq = item.indexOf("=");
      if (eq <= 0) throw new Error(`${what}: "${item}" is not KEY=VALUE`);
      env[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  return env;
}
