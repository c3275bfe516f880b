// Unit files as systemd reads them, for the machine's service manager stand-in (runs inside a
// machine: infra/local-internet/machine/). Syntax: systemd.syntax(7) and systemd.unit(5) of
// systemd 252 (Debian 12), the version a Debian 12 server runs.
//
// Strict on purpose: a directive this stand-in does not implement is either listed in IGNORED
// (sandboxing and resource control, which cannot change whether our services start, stop and
// reload; each listed with why) or refused when the unit is loaded, so a unit never silently
// behaves differently here than on a real box.
import * as fs from "node:fs";
import * as path from "node:path";

export interface Assignment {
  key: string;
  value: string;
  /** where it was read, for messages */
  file: string;
  line: number;
}

/** Assignments by section, in file order (main file first, then drop-ins by file name). */
export type UnitSections = Map<string, Assignment[]>;

/**
 * systemd.syntax(7): `[Section]` headers, `Key=Value` with whitespace around `=` ignored, `#` and
 * `;` comments, and a trailing backslash joining the next line with a space (comment lines in
 * between are skipped).
 */
export function parseUnitText(text: string, file: string, into: UnitSections = new Map()): UnitSections {
  const lines = text.split("\n");
  let section: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const startLine = i + 1;
    let line = lines[i].replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\")) {
      line = line.slice(0, -1) + " ";
      i++;
      while (i < lines.length && /^\s*[#;]/.test(lines[i])) i++;
      if (i >= lines.length) break;
      line += lines[i].replace(/\r$/, "").trim();
    }
    if (line.startsWith("[")) {
      if (!line.endsWith("]")) throw new Error(`${file}:${startLine}: section header "${line}" has no closing "]"`);
      section = line.slice(1, -1);
      if (!into.has(section)) into.set(section, []);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`${file}:${startLine}: "${line}" is not a Key=Value assignment`);
    if (section === undefined) throw new Error(`${file}:${startLine}: assignment outside of any [Section]`);
    into.get(section)!.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), file, line: startLine });
  }
  return into;
}

/** Directives this stand-in carries out, by section. */
const MODELED: Record<string, string[]> = {
  Unit: [
    "Description",
    "Documentation",
    "After",
    "Before",
    "Wants",
    "Requires",
    "Conflicts",
    "RequiresMountsFor",
    "ConditionPathExists",
    "StartLimitIntervalSec",
    "StartLimitBurst",
    "DefaultDependencies",
  ],
  Service: [
    "Type",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "SuccessExitStatus",
    "RemainAfterExit",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "KillMode",
    "KillSignal",
    "NotifyAccess",
    "User",
    "Group",
    "UMask",
    "WorkingDirectory",
    "Environment",
    "EnvironmentFile",
    "LimitNOFILE",
    "AmbientCapabilities",
    "CapabilityBoundingSet",
    "NoNewPrivileges",
    "SecureBits",
    "RuntimeDirectory",
    "RuntimeDirectoryMode",
  ],
  Path: ["PathChanged", "PathModified", "Unit"],
  Install: ["WantedBy", "RequiredBy", "Alias", "Also"],
};

/**
 * Read, and knowingly not carried out. None of them decides whether a service starts, stops or
 * reloads; they confine what a running service may do. What this costs: a service that only works
 * because a sandbox is missing here would pass here and fail on a real box (the unit's own tests
 * run `systemd-analyze verify` and `security --offline` for the real checks).
 */
export const IGNORED: Record<string, string[]> = {
  Unit: [],
  Service: [
    // File-system namespacing (systemd.exec(5) "Sandboxing"): needs a mount namespace per service.
    "ProtectSystem",
    "ProtectHome",
    "ReadWritePaths",
    // the older name of ReadWritePaths= (Debian's redis-server.service still uses it)
    "ReadWriteDirectories",
    "ExecPaths",
    "NoExecPaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "PrivateTmp",
    "PrivateDevices",
    "DevicePolicy",
    "PrivateIPC",
    "PrivateNetwork",
    "PrivateUsers",
    "ProtectHostname",
    "ProtectClock",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectProc",
    "ProcSubset",
    "KeyringMode",
    "RemoveIPC",
    // seccomp and BPF filters (systemd.exec(5) "System Call Filtering", systemd.resource-control(5)).
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "IPAddressDeny",
    "IPAddressAllow",
    // Dovecot's and rspamd's units: O_NONBLOCK on passed sockets, which only matters for socket activation.
    "NonBlocking",
    // systemd.service(5) PIDFile=: read to find the main process of a Type=forking service (a type
    // this stand-in refuses); for other types systemd only removes the file once the service has
    // stopped (Debian's redis-server.service: Type=notify, and Redis removes its own file on exit).
    "PIDFile",
  ],
  Path: [],
  Install: [],
};

export type UnitType = "service" | "path" | "target" | "mount" | "socket" | "timer";

export interface UnitFile {
  /** the name it was asked for, e.g. `maild.service` */
  name: string;
  /** the name of the file that defines it (differs for an alias such as sshd.service -> ssh.service) */
  id: string;
  type: UnitType;
  /** the fragment path (`systemctl cat` shows it first) */
  fragmentPath: string;
  dropIns: string[];
  sections: UnitSections;
  /** mtimes of fragment and drop-ins when loaded, to tell that a file changed on disk */
  stamp: string;
}

/** A path under `root` as the machine sees it (tests run these functions on a directory standing in for /). */
export function machinePath(root: string, full: string): string {
  return root === "/" ? full : "/" + path.relative(root, full);
}

/** systemd's unit search path for the system manager, highest priority first (systemd.unit(5) "Unit File Load Path"). */
export const UNIT_PATH = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system"];

export class UnitNotFound extends Error {}
export class UnitMasked extends Error {}

export function unitType(name: string): UnitType {
  const suffix = name.slice(name.lastIndexOf(".") + 1);
  if (["service", "path", "target", "mount", "socket", "timer"].includes(suffix)) return suffix as UnitType;
  throw new Error(`unit name "${name}" has no unit type suffix this machine knows (.service, .path, .target, .mount, .socket, .timer)`);
}

/** systemctl appends `.service` to a name without a type suffix (systemctl(1) "Parameter Syntax"). */
export function canonicalName(name: string): string {
  return /\.(service|path|target|mount|socket|timer|slice|scope|device|swap|automount)$/.test(name) ? name : `${name}.service`;
}

function stampOf(files: string[]): string {
  return files.map((f) => `${f}@${fs.statSync(f).mtimeMs}`).join(";");
}

/** Finds the file for `name` along UNIT_PATH, following alias symlinks; reports a mask (symlink to /dev/null). */
export function findUnitFile(name: string, root = "/"): { fragmentPath: string; id: string } {
  for (const dir of UNIT_PATH) {
    const candidate = path.join(root, dir, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(candidate);
      if (target === "/dev/null") throw new UnitMasked(`Unit ${name} is masked.`);
      const resolved = target.startsWith("/") ? path.join(root, target) : path.resolve(path.dirname(candidate), target);
      if (!fs.existsSync(resolved)) continue;
      return { fragmentPath: resolved, id: path.basename(resolved) };
    }
    return { fragmentPath: candidate, id: name };
  }
  throw new UnitNotFound(`Unit ${name} not found.`);
}

/** Drop-ins `<name>.d/*.conf` from every directory of the search path, applied in file-name order (systemd.unit(5)). */
function dropInsOf(names: string[], root: string): string[] {
  const byBase = new Map<string, string>();
  for (const dir of [...UNIT_PATH].reverse()) {
    for (const n of names) {
      const d = path.join(root, dir, `${n}.d`);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) if (f.endsWith(".conf")) byBase.set(f, path.join(d, f));
    }
  }
  return [...byBase.keys()].sort().map((k) => byBase.get(k)!);
}

export function loadUnitFile(requested: string, root = "/"): UnitFile {
  const name = canonicalName(requested);
  const { fragmentPath, id } = findUnitFile(name, root);
  const dropIns = dropInsOf(id === name ? [name] : [id, name], root);
  const sections: UnitSections = new Map();
  for (const f of [fragmentPath, ...dropIns]) parseUnitText(fs.readFileSync(f, "utf8"), f, sections);
  const type = unitType(id);
  return { name, id, type, fragmentPath, dropIns, sections, stamp: stampOf([fragmentPath, ...dropIns]) };
}

/** Whether the unit's files changed on disk since it was loaded (systemctl warns then: "Run 'systemctl daemon-reload'"). */
export function changedOnDisk(unit: UnitFile, root = "/"): boolean {
  try {
    const { fragmentPath } = findUnitFile(unit.name, root);
    const dropIns = dropInsOf(unit.id === unit.name ? [unit.name] : [unit.id, unit.name], root);
    return stampOf([fragmentPath, ...dropIns]) !== unit.stamp;
  } catch {
    return true;
  }
}

/**
 * Refuses a unit with a directive this stand-in neither models nor knowingly ignores. Called
 * before the unit is started: reading a unit's state or [Install] section needs no more than the
 * file's syntax, so `is-enabled postfix` works for a unit this machine would refuse to run.
 */
export function checkDirectives(unit: UnitFile): void {
  const { id, type, sections } = unit;
  const own: Record<UnitType, string | undefined> = {
    service: "Service",
    path: "Path",
    target: undefined,
    mount: "Mount",
    socket: "Socket",
    timer: "Timer",
  };
  for (const [section, assignments] of sections) {
    const allowed = section === "Unit" || section === "Install" || section === own[type];
    if (!allowed) throw new Error(`${id}: section [${section}] does not belong in a .${type} unit`);
    for (const a of assignments) {
      if (a.key.startsWith("X-")) continue; // systemd.unit(5): X- prefixed keys are ignored
      if (MODELED[section]?.includes(a.key) || IGNORED[section]?.includes(a.key)) continue;
      throw new Error(
        `${a.file}:${a.line}: ${a.key}= in [${section}] is not modeled by the machine's systemd stand-in ` +
          `(infra/local-internet/machine/in-machine/unit-file.ts): model it or list it as ignored, with the reason`,
      );
    }
  }
}

/** All values of a key (later files after earlier ones); an empty assignment resets the list (systemd.syntax(7)). */
export function listValues(unit: UnitFile, section: string, key: string): string[] {
  let values: string[] = [];
  for (const a of unit.sections.get(section) ?? []) {
    if (a.key !== key) continue;
    if (a.value === "") values = [];
    else values.push(a.value);
  }
  return values;
}

/** Space-separated list values (After=, WantedBy=, ...), with the empty-reset rule. */
export function wordValues(unit: UnitFile, section: string, key: string): string[] {
  return listValues(unit, section, key).flatMap((v) => v.split(/\s+/).filter(Boolean));
}

/** The last assignment of a single-valued key. */
export function value(unit: UnitFile, section: string, key: string): string | undefined {
  const all = (unit.sections.get(section) ?? []).filter((a) => a.key === key);
  return all.length ? all[all.length - 1].value : undefined;
}

/** systemd.syntax(7): 1/yes/true/on and 0/no/false/off. */
export function parseBoolean(text: string, what: string): boolean {
  const t = text.toLowerCase();
  if (["1", "yes", "true", "on"].includes(t)) return true;
  if (["0", "no", "false", "off"].includes(t)) return false;
  throw new Error(`${what}: "${text}" is not a boolean (yes/no, true/false, on/off, 1/0)`);
}

const TIME_UNITS: Record<string, number> = {
  us: 0.001,
  usec: 0.001,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** A time span in milliseconds (systemd.time(7)); a bare number is seconds; `infinity` is Infinity. */
export function parseTimeSpan(text: string, what: string): number {
  const t = text.trim();
  if (t === "infinity") return Infinity;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)/g)];
  if (
    parts.length === 0 ||
    parts
      .map((p) => p[0])
      .join("")
      .replace(/\s/g, "") !== t.replace(/\s/g, "")
  ) {
    throw new Error(`${what}: "${text}" is not a time span (e.g. 45s, 2min 30s, 100ms)`);
  }
  return parts.reduce((sum, [, n, u]) => {
    const unit = TIME_UNITS[u];
    if (unit === undefined) throw new Error(`${what}: "${u}" in "${text}" is not a time unit (us, ms, s, min, h, d, w)`);
    return sum + Number(n) * unit;
  }, 0);
}
