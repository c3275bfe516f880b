// `systemctl` inside the machine: the verbs and options our scripts and Debian's packages use,
// with the output and exit codes of systemctl 252 (systemctl(1): the verbs, "EXIT STATUS" and its
// LSB table: 0 active / ok, 1 failed or not failed for is-failed, 3 not active, 4 no such unit; 5
// is what systemctl returns when a unit to start is not found). Anything else is refused by name.
import * as fs from "node:fs";
import { JobFailed, type ServiceManager } from "./service-manager";
import { canonicalName, findUnitFile, UnitMasked, UnitNotFound } from "./unit-file";
import { disableUnits, enableUnits, enablementState, InstallError, isEnabledExit } from "./unit-install";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const VERBS = [
  "start",
  "stop",
  "restart",
  "try-restart",
  "reload",
  "reload-or-restart",
  "try-reload-or-restart",
  "is-active",
  "is-failed",
  "is-enabled",
  "enable",
  "disable",
  "daemon-reload",
  "cat",
  "status",
  "show",
  "reset-failed",
  "poweroff",
];

const FLAGS = new Set([
  "-q",
  "--quiet",
  "--now",
  "--no-pager",
  "--no-legend",
  "--full",
  "-l",
  "--value",
  "--system",
  "--plain",
  "--no-ask-password",
]);

interface Parsed {
  verb: string;
  units: string[];
  quiet: boolean;
  now: boolean;
  value: boolean;
  properties: string[];
}

function parse(argv: string[]): Parsed | CommandResult {
  let verb: string | undefined;
  const units: string[] = [];
  const flags = new Set<string>();
  const properties: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-p" || a === "--property") {
      properties.push(...(argv[++i] ?? "").split(","));
      continue;
    }
    if (a.startsWith("--property=")) {
      properties.push(...a.slice(11).split(","));
      continue;
    }
    if (a.startsWith("--job-mode=")) continue; // one job per call here: every mode behaves like "replace"
    if (a.startsWith("-")) {
      if (/^-[a-z]{2,}$/.test(a)) {
        for (const c of a.slice(1)) flags.add(`-${c}`);
        continue;
      }
      if (!FLAGS.has(a))
        return { code: 1, stdout: "", stderr: `systemctl: unrecognized option '${a}' (not modeled by the machine's systemd stand-in)\n` };
      flags.add(a);
      continue;
    }
    if (verb === undefined) verb = a;
    else units.push(a);
  }
  for (const f of flags) if (!FLAGS.has(f)) return { code: 1, stdout: "", stderr: `systemctl: invalid option -- '${f.slice(1)}'\n` };
  verb ??= "list-units";
  if (!VERBS.includes(verb))
    return { code: 1, stdout: "", stderr: `Unknown command verb ${verb} (not modeled by the machine's systemd stand-in).\n` };
  return { verb, units, quiet: flags.has("-q") || flags.has("--quiet"), now: flags.has("--now"), value: flags.has("--value"), properties };
}

export async function systemctl(manager: ServiceManager, argv: string[], poweroff: () => void): Promise<CommandResult> {
  const p = parse(argv);
  if ("code" in p) return p;
  let stdout = "";
  let stderr = "";
  let code = 0;
  const needUnits = !["daemon-reload", "poweroff", "reset-failed"].includes(p.verb);
  if (needUnits && p.units.length === 0) return { code: 1, stdout: "", stderr: `Too few arguments.\n` };
  const warn = (u: string) => {
    const w = manager.staleWarning(u);
    if (w) stderr += `${w}\n`;
  };
  const job = async (u: string, run: () => Promise<void>, verbForMessage: string) => {
    warn(u);
    try {
      await run();
    } catch (err) {
      if (err instanceof UnitNotFound) {
        stderr += `Failed to ${verbForMessage} ${canonicalName(u)}: Unit ${canonicalName(u)} not found.\n`;
        code = 5;
      } else if (err instanceof UnitMasked) {
        stderr += `Failed to ${verbForMessage} ${canonicalName(u)}: Unit ${canonicalName(u)} is masked.\n`;
        code = 1;
      } else if (err instanceof JobFailed) {
        stderr += `${err.message}\n`;
        code = err.exitCode;
      } else throw err;
    }
  };
  switch (p.verb) {
    case "start":
      await Promise.all(p.units.map((u) => job(u, () => manager.start(u), "start")));
      break;
    case "stop":
      await Promise.all(p.units.map((u) => job(u, () => manager.stop(u), "stop")));
      break;
    case "restart":
      await Promise.all(p.units.map((u) => job(u, () => manager.restart(u), "restart")));
      break;
    case "try-restart":
      await Promise.all(p.units.map((u) => job(u, () => manager.restart(u, true), "try-restart")));
      break;
    case "reload":
      await Promise.all(p.units.map((u) => job(u, () => manager.reload(u), "reload")));
      break;
    case "reload-or-restart":
      await Promise.all(p.units.map((u) => job(u, () => manager.reloadOrRestart(u, false), "reload-or-restart")));
      break;
    case "try-reload-or-restart":
      await Promise.all(p.units.map((u) => job(u, () => manager.reloadOrRestart(u, true), "try-reload-or-restart")));
      break;
    case "is-active": {
      const states = p.units.map((u) => manager.activeState(u));
      if (!p.quiet) stdout += states.map((s) => `${s}\n`).join("");
      code = states.some((s) => s === "active" || s === "reloading") ? 0 : 3;
      break;
    }
    case "is-failed": {
      const states = p.units.map((u) => manager.activeState(u));
      if (!p.quiet) stdout += states.map((s) => `${s}\n`).join("");
      code = states.some((s) => s === "failed") ? 0 : 1;
      break;
    }
    case "is-enabled": {
      code = 1;
      for (const u of p.units) {
        const state = enablementState(u);
        if (state === "not-found") {
          stderr += `Failed to get unit file state for ${canonicalName(u)}: No such file or directory\n`;
          continue;
        }
        if (!p.quiet) stdout += `${state}\n`;
        if (isEnabledExit(state) === 0) code = 0;
      }
      break;
    }
    case "enable":
    case "disable": {
      try {
        const changes = p.verb === "enable" ? enableUnits(p.units) : disableUnits(p.units);
        if (!p.quiet) {
          for (const c of changes) stderr += c.kind === "symlink" ? `Created symlink ${c.path} → ${c.target}.\n` : `Removed "${c.path}".\n`;
        }
        if (p.verb === "enable" && changes.length === 0 && p.units.every((u) => enablementState(u) === "static")) {
          stderr +=
            "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.\n";
        }
        // "the system manager configuration is reloaded (in a way equivalent to daemon-reload)" (systemctl(1) enable, disable).
        manager.daemonReload();
      } catch (err) {
        if (!(err instanceof InstallError)) throw err;
        return { code: 1, stdout, stderr: stderr + `${err.message}\n` };
      }
      if (p.now) {
        for (const u of p.units) {
          await job(
            u,
            () =>
              p.verb === "enable"
                ? manager.start(u)
                : manager.stop(u).catch((e) => (e instanceof JobFailed && e.exitCode === 5 ? undefined : Promise.reject(e))),
            p.verb === "enable" ? "start" : "stop",
          );
        }
      }
      break;
    }
    case "daemon-reload":
      manager.daemonReload();
      break;
    case "reset-failed":
      break;
    case "cat": {
      const parts: string[] = [];
      for (const u of p.units) {
        try {
          const { fragmentPath } = findUnitFile(canonicalName(u));
          parts.push(`# ${fragmentPath}\n${fs.readFileSync(fragmentPath, "utf8")}`);
        } catch (err) {
          if (err instanceof UnitNotFound || err instanceof UnitMasked) {
            stderr += `No files found for ${canonicalName(u)}.\n`;
            code = 1;
          } else throw err;
        }
      }
      stdout += parts.join("\n");
      break;
    }
    case "status": {
      let any = false;
      for (const u of p.units) {
        const lines = manager.statusLines(u);
        stdout += `${lines.join("\n")}\n`;
        const state = manager.activeState(u);
        if (state === "active" || state === "reloading") any = true;
        if (lines[0].includes("could not be found")) code = 4;
      }
      if (code === 0 && !any) code = 3;
      break;
    }
    case "show": {
      for (const u of p.units) {
        const props: Record<string, string> = {
          Id: canonicalName(u),
          ActiveState: manager.activeState(u),
          MainPID: String(manager.mainPidOf(u) ?? 0),
          Result: manager.resultOf(u),
          UnitFileState: enablementState(u),
        };
        const wanted = p.properties.length ? p.properties : Object.keys(props);
        for (const k of wanted) {
          if (!(k in props))
            return { code: 1, stdout, stderr: `systemctl show: property ${k} is not modeled by the machine's systemd stand-in\n` };
          stdout += p.value ? `${props[k]}\n` : `${k}=${props[k]}\n`;
        }
      }
      break;
    }
    case "poweroff":
      poweroff();
      break;
  }
  return { code, stdout, stderr };
}
