// The machine's service manager: what systemd (PID 1) does for the calls our scripts make, for
// service and path units. It runs inside the machine (machine-init.ts) as the child of a small PID 1
// that reaps orphans; `systemctl` (systemctl-command.ts) talks to it over a unix socket.
//
// Modeled, each with the man page of systemd 252 (Debian 12) that says so:
// - unit loading: search path, aliases, drop-ins, masks; loaded definitions stay until
//   daemon-reload (enable/disable reload implicitly), and a unit whose files changed on disk gets
//   systemctl's "changed on disk" warning (systemctl(1) daemon-reload, cat, enable);
// - Type=simple/exec/notify/oneshot (systemd.service(5) Type=), notify through $NOTIFY_SOCKET with
//   NotifyAccess=main (sd_notify(3));
// - ExecStartPre/ExecStart/ExecStartPost/ExecReload/ExecStop/ExecStopPost with the -, :, +, !
//   prefixes and $MAINPID (systemd.service(5) ExecStart=, ExecReload=, ExecStop=);
// - User=, Group= (with the user's supplementary groups), UMask=, WorkingDirectory=,
//   Environment=, EnvironmentFile=, LimitNOFILE=, AmbientCapabilities=, CapabilityBoundingSet=,
//   NoNewPrivileges=, SecureBits=, RuntimeDirectory= (systemd.exec(5)), applied with setpriv(1);
// - one cgroup per unit (system.slice/<unit>, as systemd places services), KillMode=,
//   KillSignal=, TimeoutStopSec= then SIGKILL (systemd.kill(5));
// - Restart=, RestartSec=, RestartPreventExitStatus=, SuccessExitStatus=, the start rate limit
//   StartLimitIntervalSec=/StartLimitBurst= with systemd's defaults 10 s / 5 (systemd.service(5),
//   systemd.unit(5), systemd-system.conf(5));
// - RequiresMountsFor= against /etc/fstab, Conflicts= between services (systemd.unit(5));
//   ConditionPathExists=;
// - path units: PathChanged=/PathModified= start Unit= (systemd.path(5));
// - boot (machine-init.ts): the units multi-user.target wants, ordered by After=/Before=;
//   shutdown: every unit stopped in reverse order, file systems unmounted (bootup(7)).
//
// Not modeled (and why): sandboxing and resource directives (see unit-file.ts IGNORED);
// timers, sockets and targets as units of their own (targets count as reached; none of our units
// is socket- or timer-activated); D-Bus, polkit (only root calls systemctl here); the journal's
// rate limits and syslog socket (/dev/log): a service that logs only to syslog loses those lines.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  changedOnDisk,
  checkDirectives,
  listValues,
  loadUnitFile,
  parseBoolean,
  parseTimeSpan,
  UnitMasked,
  UnitNotFound,
  canonicalName,
  value,
  wordValues,
  type UnitFile,
} from "./unit-file";
import {
  expandEnvironment,
  parseEnvironmentAssignments,
  parseEnvironmentFile,
  parseExecValue,
  resolveExecutable,
  SYSTEM_PATH,
  type ExecCommand,
} from "./command-line";
import { Journal } from "./journal";
import { NOTIFY_SOCKET_PATH, type NotifyMessage } from "./notify-socket";
import { entriesFor, mountEntry, readFstab, unmountAll } from "./fstab";
import { enablementState } from "./unit-install";

export type ActiveState = "inactive" | "activating" | "active" | "reloading" | "deactivating" | "failed";

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** systemd's own exit statuses for a process that never reached the program (systemd.exec(5) "Process Exit Codes"). */
const EXIT_CHDIR = 200;
const EXIT_EXEC = 203;
const EXIT_USER = 217;
const EXIT_GROUP = 216;
const EXIT_CGROUP = 219;

/** systemd-system.conf(5): DefaultTimeoutStartSec=, DefaultTimeoutStopSec= (90 s), DefaultStartLimit*. */
const DEFAULT_TIMEOUT_MS = 90_000;
const DEFAULT_START_LIMIT_INTERVAL_MS = 10_000;
const DEFAULT_START_LIMIT_BURST = 5;
/** systemd.service(5) RestartSec=: "Defaults to 100ms". */
const DEFAULT_RESTART_MS = 100;

const CLEAN_SIGNALS = new Set(["SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE"]);

export class JobFailed extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface Service {
  type: "simple" | "exec" | "notify" | "oneshot";
  execStartPre: ExecCommand[];
  execStart: ExecCommand[];
  execStartPost: ExecCommand[];
  execReload: ExecCommand[];
  execStop: ExecCommand[];
  execStopPost: ExecCommand[];
  restart: "no" | "on-success" | "on-failure" | "on-abnormal" | "on-abort" | "on-watchdog" | "always";
  restartMs: number;
  restartPrevent: Set<string>;
  successStatus: Set<string>;
  remainAfterExit: boolean;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  killMode: "control-group" | "mixed" | "process" | "none";
  killSignal: NodeJS.Signals;
  user?: string;
  group?: string;
  umask?: string;
  workingDirectory?: string;
  environment: Record<string, string>;
  environmentFiles: string[];
  limitNofile?: string;
  ambientCaps: string[];
  boundingSet?: string[];
  noNewPrivileges: boolean;
  secureBits: string[];
  runtimeDirectories: string[];
  runtimeDirectoryMode: number;
}

function statusList(unit: UnitFile, key: string): Set<string> {
  return new Set(wordValues(unit, "Service", key));
}

function signalName(text: string, what: string): NodeJS.Signals {
  const name = (text.startsWith("SIG") ? text : `SIG${text}`) as NodeJS.Signals;
  if (!/^SIG[A-Z0-9]+$/.test(name)) throw new Error(`${what}: "${text}" is not a signal name`);
  return name;
}

function capName(c: string): string {
  return c.replace(/^CAP_/i, "").toLowerCase();
}

/** The [Service] section, validated as systemd validates it when loading (systemd.service(5)). */
/**
 * TimeoutSec=, TimeoutStartSec=, TimeoutStopSec=: 0 turns the timeout off, as `infinity` does
 * (systemd src/core/load-fragment.c, config_parse_service_timeout: "these options accepted 0 to
 * disable the timeouts ... fix this to become USEC_INFINITY"; Debian's redis-server.service has
 * TimeoutStopSec=0).
 */
function serviceTimeout(text: string, what: string): number {
  const ms = parseTimeSpan(text, what);
  return ms <= 0 ? Infinity : ms;
}

export function serviceOf(unit: UnitFile): Service {
  const what = (k: string) => `${unit.id}: ${k}=`;
  const exec = (k: string) => listValues(unit, "Service", k).flatMap((v) => parseExecValue(v, { unitName: unit.id }, what(k)));
  const execStart = exec("ExecStart");
  const typeText = value(unit, "Service", "Type") ?? (execStart.length ? "simple" : "oneshot");
  if (!["simple", "exec", "notify", "oneshot"].includes(typeText)) {
    throw new Error(`${what("Type")} "${typeText}" is not modeled by the machine's systemd stand-in (simple, exec, notify, oneshot)`);
  }
  const type = typeText as Service["type"];
  if (type !== "oneshot" && execStart.length !== 1) {
    throw new Error(
      `${unit.id}: Service has ${execStart.length === 0 ? "no" : "more than one"} ExecStart= setting, which is only allowed for Type=oneshot services.`,
    );
  }
  const restart = (value(unit, "Service", "Restart") ?? "no") as Service["restart"];
  if (!["no", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog", "always"].includes(restart)) {
    throw new Error(`${what("Restart")} "${restart}" is not a restart setting`);
  }
  const timeout = value(unit, "Service", "TimeoutSec");
  const startTimeout = value(unit, "Service", "TimeoutStartSec") ?? timeout;
  const stopTimeout = value(unit, "Service", "TimeoutStopSec") ?? timeout;
  const killMode = (value(unit, "Service", "KillMode") ?? "control-group") as Service["killMode"];
  if (!["control-group", "mixed", "process", "none"].includes(killMode))
    throw new Error(`${what("KillMode")} "${killMode}" is not a kill mode`);
  const bounding = wordValues(unit, "Service", "CapabilityBoundingSet");
  // Assigned, but to nothing in the end (`CapabilityBoundingSet=`): the empty set, every
  // capability dropped (systemd commit d91c34f, "Assigning the empty string to
  // CapabilityBoundSet= should drop all caps"; systemd.exec(5) CapabilityBoundingSet=).
  const boundingAssigned = (unit.sections.get("Service") ?? []).some((a) => a.key === "CapabilityBoundingSet");
  const mode = value(unit, "Service", "RuntimeDirectoryMode");
  return {
    type,
    execStartPre: exec("ExecStartPre"),
    execStart,
    execStartPost: exec("ExecStartPost"),
    execReload: exec("ExecReload"),
    execStop: exec("ExecStop"),
    execStopPost: exec("ExecStopPost"),
    restart,
    restartMs: parseTimeSpan(value(unit, "Service", "RestartSec") ?? "100ms", what("RestartSec")) || DEFAULT_RESTART_MS,
    restartPrevent: statusList(unit, "RestartPreventExitStatus"),
    successStatus: statusList(unit, "SuccessExitStatus"),
    remainAfterExit: parseBoolean(value(unit, "Service", "RemainAfterExit") ?? "no", what("RemainAfterExit")),
    // Type=oneshot: "the timeout is disabled by default" (systemd.service(5) TimeoutStartSec=).
    startTimeoutMs: startTimeout
      ? serviceTimeout(startTimeout, what("TimeoutStartSec"))
      : type === "oneshot"
        ? Infinity
        : DEFAULT_TIMEOUT_MS,
    stopTimeoutMs: stopTimeout ? serviceTimeout(stopTimeout, what("TimeoutStopSec")) : DEFAULT_TIMEOUT_MS,
    killMode,
    killSignal: signalName(value(unit, "Service", "KillSignal") ?? "SIGTERM", what("KillSignal")),
    user: value(unit, "Service", "User"),
    group: value(unit, "Service", "Group"),
    umask: value(unit, "Service", "UMask"),
    workingDirectory: value(unit, "Service", "WorkingDirectory"),
    environment: parseEnvironmentAssignments(listValues(unit, "Service", "Environment"), what("Environment")),
    environmentFiles: listValues(unit, "Service", "EnvironmentFile"),
    limitNofile: value(unit, "Service", "LimitNOFILE"),
    ambientCaps: wordValues(unit, "Service", "AmbientCapabilities").map(capName),
    boundingSet: boundingAssigned ? bounding.map((c) => (c.startsWith("~") ? `~${capName(c.slice(1))}` : capName(c))) : undefined,
    noNewPrivileges: parseBoolean(value(unit, "Service", "NoNewPrivileges") ?? "no", what("NoNewPrivileges")),
    secureBits: wordValues(unit, "Service", "SecureBits"),
    runtimeDirectories: wordValues(unit, "Service", "RuntimeDirectory"),
    runtimeDirectoryMode: mode ? parseInt(mode, 8) : 0o755,
  };
}

interface Account {
  uid: number;
  gid: number;
  home: string;
  shell: string;
  name: string;
}

function lookupUser(name: string): Account | undefined {
  for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name || (/^\d+$/.test(name) && f[2] === name)) {
      return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
    }
  }
  return undefined;
}

function lookupGroup(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of fs.readFileSync("/etc/group", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return Number(f[2]);
  }
  return undefined;
}

const CGROUP_ROOT = "/sys/fs/cgroup";

function cgroupOf(unitId: string): string {
  return path.join(CGROUP_ROOT, "system.slice", unitId);
}

function cgroupPids(unitId: string): number[] {
  try {
    return fs
      .readFileSync(path.join(cgroupOf(unitId), "cgroup.procs"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Whether the unit's cgroup has no process left. `cgroup.events` says `populated 0` only once the
 * last process has left the cgroup, which it does after closing its files; cgroup.procs already
 * hides a process that has only begun to exit (its sockets may still be open). systemd waits on
 * the same file (cgroups(7) "cgroups v2 release notification").
 */
function cgroupEmpty(unitId: string): boolean {
  try {
    return /^populated 0$/m.test(fs.readFileSync(path.join(cgroupOf(unitId), "cgroup.events"), "utf8"));
  } catch {
    return true;
  }
}

function signalPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class Runtime {
  active: ActiveState = "inactive";
  sub = "dead";
  result = "success";
  main?: ChildProcess;
  mainPid?: number;
  mainExited?: Promise<ExitStatus>;
  invocationId = "";
  startedOk = false;
  stopping = false;
  ready?: (ok: boolean) => void;
  startTimes: number[] = [];
  restartTimer?: NodeJS.Timeout;
  watchers: fs.FSWatcher[] = [];
  pollTimer?: NodeJS.Timeout;
  queue: Promise<unknown> = Promise.resolve();

  constructor(public file: UnitFile) {}
}

export interface ManagerOptions {
  journal: Journal;
  /** console lines (the machine's serial console) */
  console(line: string): void;
}

export class ServiceManager {
  private readonly units = new Map<string, Runtime>();
  private readonly aliases = new Map<string, string>();
  private readonly startOrder: string[] = [];
  shuttingDown = false;

  constructor(private readonly opts: ManagerOptions) {}

  private log(unit: string | undefined, message: string): void {
    this.opts.journal.write({ unit, ident: "systemd", pid: 1, message });
  }

  /** The loaded unit, loading it now if it is not (systemd loads units on first reference). */
  runtime(requested: string): Runtime {
    const name = canonicalName(requested);
    const id = this.aliases.get(name) ?? name;
    const existing = this.units.get(id);
    if (existing) return existing;
    const file = loadUnitFile(name);
    this.aliases.set(name, file.id);
    const again = this.units.get(file.id);
    if (again) return again;
    const rt = new Runtime(file);
    this.units.set(file.id, rt);
    return rt;
  }

  /** The loaded unit, or undefined if it is not loaded and cannot be (queries never fail on unknown units). */
  peek(requested: string): Runtime | undefined {
    try {
      return this.runtime(requested);
    } catch (err) {
      if (err instanceof UnitNotFound || err instanceof UnitMasked) return undefined;
      throw err;
    }
  }

  /** systemctl(1) prints this when a unit's files changed since they were loaded. */
  staleWarning(requested: string): string | undefined {
    const id = this.aliases.get(canonicalName(requested)) ?? canonicalName(requested);
    const rt = this.units.get(id);
    if (rt && changedOnDisk(rt.file)) {
      return `Warning: The unit file, source configuration file or drop-ins of ${rt.file.id} changed on disk. Run 'systemctl daemon-reload' to reload units.`;
    }
    return undefined;
  }

  /** Jobs on one unit run one after the other, as systemd's job queue does. */
  private serialize<T>(rt: Runtime, job: () => Promise<T>): Promise<T> {
    const run = rt.queue.then(job, job);
    rt.queue = run.catch(() => undefined);
    return run;
  }

  /** systemctl daemon-reload: re-read every loaded unit; running processes keep running. */
  daemonReload(): void {
    for (const [id, rt] of [...this.units]) {
      try {
        rt.file = loadUnitFile(id);
      } catch (err) {
        if (err instanceof UnitNotFound && rt.active === "inactive") this.units.delete(id);
        else if (!(err instanceof UnitNotFound)) throw err;
      }
      if (rt.file.type === "path" && rt.active === "active") this.armPath(rt);
    }
    this.collect();
  }

  /**
   * Unloads units nothing needs: inactive (not failed), not enabled, no job, not named by another
   * loaded unit (systemd.unit(5) CollectMode=inactive). A later reference loads the file afresh.
   */
  private collect(): void {
    const referenced = new Set<string>();
    for (const rt of this.units.values()) {
      if (rt.active === "inactive") continue;
      for (const k of ["Wants", "Requires"]) for (const u of wordValues(rt.file, "Unit", k)) referenced.add(u);
      if (rt.file.type === "path") referenced.add(value(rt.file, "Path", "Unit") ?? rt.file.id.replace(/\.path$/, ".service"));
    }
    for (const [id, rt] of [...this.units]) {
      if (rt.active !== "inactive" || rt.restartTimer || referenced.has(id)) continue;
      if (enablementState(id) === "enabled") continue;
      this.units.delete(id);
      for (const [alias, target] of [...this.aliases]) if (target === id) this.aliases.delete(alias);
    }
  }

  // --- jobs --------------------------------------------------------------------------------------

  start(requested: string): Promise<void> {
    const rt = this.runtime(requested);
    return this.serialize(rt, () => this.doStart(rt, false));
  }

  stop(requested: string): Promise<void> {
    const rt = this.peek(requested);
    if (!rt)
      return Promise.reject(new JobFailed(`Failed to stop ${canonicalName(requested)}: Unit ${canonicalName(requested)} not loaded.`, 5));
    return this.serialize(rt, async () => {
      await this.doStop(rt);
      this.collect();
    });
  }

  restart(requested: string, onlyIfActive = false): Promise<void> {
    const rt = this.runtime(requested);
    return this.serialize(rt, async () => {
      if (onlyIfActive && !isRunning(rt)) return;
      await this.doStop(rt);
      await this.doStart(rt, false);
    });
  }

  reload(requested: string): Promise<void> {
    const rt = this.runtime(requested);
    return this.serialize(rt, () => this.doReload(rt));
  }

  /** reload-or-restart and try-reload-or-restart (systemctl(1)). */
  reloadOrRestart(requested: string, onlyIfActive: boolean): Promise<void> {
    const rt = this.runtime(requested);
    return this.serialize(rt, async () => {
      if (!isRunning(rt)) {
        if (onlyIfActive) return;
        await this.doStart(rt, false);
        return;
      }
      if (rt.file.type === "service" && serviceOf(rt.file).execReload.length > 0) await this.doReload(rt);
      else {
        await this.doStop(rt);
        await this.doStart(rt, false);
      }
    });
  }

  activeState(requested: string): ActiveState {
    const rt = this.peek(requested);
    return rt ? rt.active : "inactive";
  }

  // --- start ---------------------------------------------------------------------------------------

  private checkStartLimit(rt: Runtime): void {
    const interval = parseTimeSpan(
      value(rt.file, "Unit", "StartLimitIntervalSec") ?? `${DEFAULT_START_LIMIT_INTERVAL_MS}ms`,
      `${rt.file.id}: StartLimitIntervalSec=`,
    );
    const burst = Number(value(rt.file, "Unit", "StartLimitBurst") ?? DEFAULT_START_LIMIT_BURST);
    const now = Date.now();
    rt.startTimes = rt.startTimes.filter((t) => now - t < interval);
    if (interval > 0 && burst > 0 && rt.startTimes.length >= burst) {
      rt.active = "failed";
      rt.sub = "failed";
      rt.result = "start-limit-hit";
      this.log(rt.file.id, `${rt.file.id}: Start request repeated too quickly.`);
      this.log(rt.file.id, `${rt.file.id}: Failed with result 'start-limit-hit'.`);
      throw new JobFailed(jobFailedMessage(rt.file.id, "start of the service was attempted too often"));
    }
    rt.startTimes.push(now);
  }

  /** Wants=/Requires= on services, and RequiresMountsFor= on fstab mounts; targets count as reached. */
  private async startDependencies(rt: Runtime): Promise<void> {
    for (const p of wordValues(rt.file, "Unit", "RequiresMountsFor")) {
      for (const entry of entriesFor(p, readFstab())) {
        const r = mountEntry(entry);
        this.log(r.unit, r.message);
        if (!r.ok) {
          rt.active = "failed";
          rt.sub = "failed";
          rt.result = "dependency";
          this.log(rt.file.id, `Dependency failed for ${description(rt.file)}.`);
          this.log(rt.file.id, `${rt.file.id}: Job ${rt.file.id}/start failed with result 'dependency'.`);
          throw new JobFailed(`A dependency job for ${rt.file.id} failed. See 'journalctl -xe' for details.`);
        }
      }
    }
    for (const [key, required] of [
      ["Requires", true],
      ["Wants", false],
    ] as const) {
      for (const dep of wordValues(rt.file, "Unit", key)) {
        if (!/\.(service|path)$/.test(dep)) continue;
        try {
          await this.start(dep);
        } catch (err) {
          if (required) {
            rt.active = "failed";
            rt.result = "dependency";
            throw new JobFailed(`A dependency job for ${rt.file.id} failed. See 'journalctl -xe' for details.`);
          }
          this.log(rt.file.id, `${dep}: ${(err as Error).message}`);
        }
      }
    }
  }

  /**
   * "starting the former will stop the latter" (systemd.unit(5) Conflicts=). A conflict with a
   * target (shutdown.target) only matters at shutdown, which stops every unit here anyway.
   */
  private async stopConflicts(rt: Runtime): Promise<void> {
    for (const other of wordValues(rt.file, "Unit", "Conflicts")) {
      if (other.endsWith(".target")) continue;
      const o = this.peek(other);
      if (o && o !== rt && isRunning(o)) await this.serialize(o, () => this.doStop(o));
    }
  }

  private conditionsMet(rt: Runtime): boolean {
    for (const c of listValues(rt.file, "Unit", "ConditionPathExists")) {
      const negate = c.startsWith("!");
      const p = negate ? c.slice(1) : c;
      if (fs.existsSync(p) === negate) {
        this.log(rt.file.id, `${description(rt.file)} was skipped because of an unmet condition check (ConditionPathExists=${c}).`);
        return false;
      }
    }
    return true;
  }

  private async doStart(rt: Runtime, automatic: boolean): Promise<void> {
    if (rt.restartTimer) {
      clearTimeout(rt.restartTimer);
      rt.restartTimer = undefined;
    }
    if (!automatic && (rt.active === "active" || rt.active === "reloading" || (rt.active === "activating" && rt.sub !== "auto-restart")))
      return;
    if (this.shuttingDown)
      throw new JobFailed(
        `Failed to start ${rt.file.id}: Transaction for ${rt.file.id}/start is destructive (shutdown.target has 'start' job queued, but 'stop' is included in transaction).`,
      );
    if (rt.file.type === "target") return;
    try {
      checkDirectives(rt.file);
    } catch (err) {
      throw new JobFailed(`Failed to start ${rt.file.id}: ${(err as Error).message}`);
    }
    this.checkStartLimit(rt);
    await this.stopConflicts(rt);
    await this.startDependencies(rt);
    if (!this.conditionsMet(rt)) {
      rt.active = "inactive";
      rt.sub = "dead";
      return;
    }
    if (rt.file.type === "path") {
      this.armPath(rt);
      rt.active = "active";
      rt.sub = "waiting";
      this.log(rt.file.id, `Started ${description(rt.file)}.`);
      this.noteStarted(rt.file.id);
      return;
    }
    if (rt.file.type !== "service")
      throw new JobFailed(`Failed to start ${rt.file.id}: .${rt.file.type} units are not modeled by the machine's systemd stand-in`);
    const svc = serviceOf(rt.file);
    rt.invocationId = randomBytes(16).toString("hex");
    rt.active = "activating";
    rt.sub = "start-pre";
    rt.result = "success";
    rt.stopping = false;
    rt.startedOk = false;
    this.log(rt.file.id, `Starting ${description(rt.file)}...`);
    this.makeRuntimeDirectories(rt, svc);
    fs.mkdirSync(cgroupOf(rt.file.id), { recursive: true });
    try {
      for (const cmd of svc.execStartPre) await this.runControl(rt, svc, cmd, "ExecStartPre", svc.startTimeoutMs);
      if (svc.type === "oneshot") {
        rt.sub = "start";
        for (const cmd of svc.execStart) await this.runControl(rt, svc, cmd, "ExecStart", svc.startTimeoutMs);
        rt.startedOk = true;
        for (const cmd of svc.execStartPost) await this.runControl(rt, svc, cmd, "ExecStartPost", svc.startTimeoutMs);
        if (svc.remainAfterExit) {
          rt.active = "active";
          rt.sub = "exited";
        } else {
          await this.finishStop(rt, svc, "success");
        }
        this.log(rt.file.id, `Finished ${description(rt.file)}.`);
        this.noteStarted(rt.file.id);
        return;
      }
      rt.sub = "start";
      const readyWait = svc.type === "notify" ? new Promise<boolean>((resolve) => (rt.ready = resolve)) : undefined;
      this.spawnMain(rt, svc);
      if (readyWait) {
        const timer = Number.isFinite(svc.startTimeoutMs) ? setTimeout(() => rt.ready?.(false), svc.startTimeoutMs) : undefined;
        const ready = await readyWait;
        if (timer) clearTimeout(timer);
        rt.ready = undefined;
        if (!ready) {
          const exited = rt.main === undefined || rt.main.exitCode !== null || rt.main.signalCode !== null;
          this.log(
            rt.file.id,
            exited
              ? `${rt.file.id}: Main process exited before it reported READY=1.`
              : `${rt.file.id}: start operation timed out. Terminating.`,
          );
          if (!exited) await this.killAndWait(rt, svc, "SIGTERM");
          const result = exited ? (rt.result === "success" ? "protocol" : rt.result) : "timeout";
          await this.finishStop(rt, svc, result);
          throw new JobFailed(jobFailedMessage(rt.file.id, RESULT_EXPLANATION[result] ?? "the service failed"));
        }
      }
      rt.active = "active";
      rt.sub = "running";
      rt.startedOk = true;
      for (const cmd of svc.execStartPost) await this.runControl(rt, svc, cmd, "ExecStartPost", svc.startTimeoutMs);
      this.log(rt.file.id, `Started ${description(rt.file)}.`);
      this.noteStarted(rt.file.id);
    } catch (err) {
      if (err instanceof ControlFailed) {
        await this.killAndWait(rt, svc, svc.killSignal);
        await this.finishStop(rt, svc, err.result);
        throw new JobFailed(jobFailedMessage(rt.file.id, RESULT_EXPLANATION[err.result] ?? "the service failed"));
      }
      throw err;
    }
  }

  private noteStarted(id: string): void {
    if (!this.startOrder.includes(id)) this.startOrder.push(id);
  }

  private makeRuntimeDirectories(rt: Runtime, svc: Service): void {
    const account = svc.user ? lookupUser(svc.user) : undefined;
    for (const d of svc.runtimeDirectories) {
      const full = path.join("/run", d);
      fs.mkdirSync(full, { recursive: true, mode: svc.runtimeDirectoryMode });
      fs.chmodSync(full, svc.runtimeDirectoryMode);
      if (account) fs.chownSync(full, account.uid, account.gid);
    }
  }

  // --- processes -----------------------------------------------------------------------------------

  /** Environment of a spawned process (systemd.exec(5) "Environment Variables in Spawned Processes"). */
  private environmentFor(rt: Runtime, svc: Service, control: boolean): Record<string, string> {
    const env: Record<string, string> = { PATH: SYSTEM_PATH, INVOCATION_ID: rt.invocationId };
    const locale = readLocale();
    if (locale) env.LANG = locale;
    if (svc.user) {
      const account = lookupUser(svc.user);
      if (account) Object.assign(env, { USER: account.name, LOGNAME: account.name, HOME: account.home, SHELL: account.shell });
    }
    if (svc.type === "notify") env.NOTIFY_SOCKET = NOTIFY_SOCKET_PATH;
    if (svc.runtimeDirectories.length) env.RUNTIME_DIRECTORY = svc.runtimeDirectories.map((d) => path.join("/run", d)).join(":");
    if (control && rt.mainPid !== undefined && rt.main && rt.main.exitCode === null && rt.main.signalCode === null)
      env.MAINPID = String(rt.mainPid);
    Object.assign(env, svc.environment);
    for (const f of svc.environmentFiles) {
      const optional = f.startsWith("-");
      const file = optional ? f.slice(1) : f;
      try {
        Object.assign(env, parseEnvironmentFile(fs.readFileSync(file, "utf8")));
      } catch (err) {
        if (!optional) throw new ControlFailed("resources", `${rt.file.id}: Failed to load environment files: ${(err as Error).message}`);
      }
    }
    return env;
  }

  /**
   * Starts one process of the unit: into the unit's cgroup, with its limits, umask, directory and
   * credentials (setpriv), stdout/stderr into the journal. Returns undefined with the exit status
   * systemd would report when the process could not even be set up (missing user, binary).
   */
  private spawnProcess(rt: Runtime, svc: Service, cmd: ExecCommand, control: boolean): { child?: ChildProcess; failed?: ExitStatus } {
    const env = this.environmentFor(rt, svc, control);
    const argv = cmd.noEnvExpansion ? cmd.argv : expandEnvironment(cmd.argv, env, `${rt.file.id}`);
    const exe = resolveExecutable(cmd.path);
    if (!exe || !fs.existsSync(exe)) {
      this.log(rt.file.id, `${rt.file.id}: Failed to locate executable ${cmd.path}: No such file or directory`);
      return { failed: { code: EXIT_EXEC, signal: null } };
    }
    if (cmd.argv[0] !== cmd.path)
      throw new ControlFailed("resources", `${rt.file.id}: the "@" prefix is not modeled by the machine's systemd stand-in`);
    const setpriv: string[] = [];
    const dropCredentials = cmd.privileged === "";
    if (svc.user && dropCredentials) {
      const account = lookupUser(svc.user);
      if (!account) {
        this.log(rt.file.id, `${rt.file.id}: Failed to determine user credentials: No such process`);
        return { failed: { code: EXIT_USER, signal: null } };
      }
      const gid = svc.group ? lookupGroup(svc.group) : account.gid;
      if (gid === undefined) {
        this.log(rt.file.id, `${rt.file.id}: Failed to determine group credentials: No such process`);
        return { failed: { code: EXIT_GROUP, signal: null } };
      }
      setpriv.push(`--reuid=${account.uid}`, `--regid=${gid}`, "--init-groups");
    } else if (svc.group && dropCredentials) {
      const gid = lookupGroup(svc.group);
      if (gid === undefined) return { failed: { code: EXIT_GROUP, signal: null } };
      setpriv.push(`--regid=${gid}`, "--keep-groups");
    }
    if (cmd.privileged !== "+") {
      if (svc.secureBits.length) setpriv.push(`--securebits=${svc.secureBits.map((b) => `+${b.replace(/-/g, "_")}`).join(",")}`);
      if (svc.boundingSet) {
        const inverted = svc.boundingSet.length > 0 && svc.boundingSet.every((c) => c.startsWith("~"));
        setpriv.push(
          inverted
            ? `--bounding-set=${svc.boundingSet.map((c) => `-${c.slice(1)}`).join(",")}`
            : `--bounding-set=${["-all", ...svc.boundingSet.map((c) => `+${c}`)].join(",")}`,
        );
      }
      if (svc.ambientCaps.length && svc.user && dropCredentials) {
        const caps = svc.ambientCaps.map((c) => `+${c}`).join(",");
        setpriv.push(`--inh-caps=${caps}`, `--ambient-caps=${caps}`);
      }
      if (svc.noNewPrivileges) setpriv.push("--no-new-privs");
    }
    const cgroup = cgroupOf(rt.file.id);
    // The shell steps systemd's exec_child() takes before execve(): cgroup, rlimits, umask, cwd.
    const prelude = [
      `echo $$ > ${shq(path.join(cgroup, "cgroup.procs"))} || exit ${EXIT_CGROUP}`,
      svc.limitNofile ? nofileLimit(svc.limitNofile) : "",
      `umask ${svc.umask ?? "0022"}`,
      `cd ${shq(svc.workingDirectory ?? (svc.user ? "/" : "/"))} || exit ${EXIT_CHDIR}`,
      setpriv.length ? `exec /usr/bin/setpriv ${setpriv.map(shq).join(" ")} -- "$@"` : `exec "$@"`,
    ]
      .filter(Boolean)
      .join("\n");
    const child = spawn("/bin/bash", ["-c", prelude, "systemd-exec", exe, ...argv.slice(1)], {
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const ident = path.basename(exe);
    child.stdout!.on("data", this.opts.journal.lineSink(rt.file.id, ident, child.pid));
    child.stderr!.on("data", this.opts.journal.lineSink(rt.file.id, ident, child.pid));
    child.on("error", () => undefined);
    return { child };
  }

  private spawnMain(rt: Runtime, svc: Service): void {
    const { child, failed } = this.spawnProcess(rt, svc, svc.execStart[0], false);
    if (!child) {
      rt.main = undefined;
      rt.mainPid = undefined;
      rt.mainExited = Promise.resolve(failed!);
      queueMicrotask(() => this.onMainExit(rt, svc, failed!));
      return;
    }
    rt.main = child;
    rt.mainPid = child.pid;
    rt.mainExited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    void rt.mainExited.then((status) => this.onMainExit(rt, svc, status));
  }

  /** One control process (ExecStartPre=, ExecReload=, ExecStop=, ...) run to its end. */
  private async runControl(rt: Runtime, svc: Service, cmd: ExecCommand, what: string, timeoutMs: number): Promise<void> {
    const { child, failed } = this.spawnProcess(rt, svc, cmd, true);
    let status: ExitStatus;
    if (!child) status = failed!;
    else {
      let timedOut = false;
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            timedOut = true;
            signalPids([child.pid!], "SIGKILL");
          }, timeoutMs)
        : undefined;
      status = await new Promise<ExitStatus>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
      if (timer) clearTimeout(timer);
      if (timedOut) {
        this.log(rt.file.id, `${rt.file.id}: ${what} operation timed out.`);
        if (!cmd.ignoreFailure) throw new ControlFailed("timeout", "");
        return;
      }
    }
    const ok = status.code === 0;
    if (!ok) {
      this.log(
        rt.file.id,
        `${rt.file.id}: Control process exited, code=${status.signal ? `killed, signal=${status.signal.replace(/^SIG/, "")}` : `exited, status=${status.code}`}`,
      );
      if (!cmd.ignoreFailure) throw new ControlFailed(status.signal ? "signal" : "exit-code", "");
    }
  }

  private onMainExit(rt: Runtime, svc: Service, status: ExitStatus): void {
    if (rt.ready) {
      // Type=notify: the main process went away before READY=1.
      rt.result = status.signal ? "signal" : "exit-code";
      rt.ready(false);
      return;
    }
    if (rt.stopping || rt.active === "inactive" || rt.active === "failed") return;
    const clean = isClean(svc, status);
    this.log(
      rt.file.id,
      status.signal
        ? `${rt.file.id}: Main process exited, code=killed, status=${signalNumber(status.signal)}/${status.signal.replace(/^SIG/, "")}`
        : `${rt.file.id}: Main process exited, code=exited, status=${status.code}/${status.code === 0 ? "SUCCESS" : "FAILURE"}`,
    );
    void this.serialize(rt, async () => {
      if (rt.stopping || rt.active === "inactive" || rt.active === "failed") return;
      // "the stop operation is always performed if the service started successfully, even if
      // the processes in the service terminated on their own" (systemd.service(5) ExecStop=).
      rt.active = "deactivating";
      rt.sub = "stop";
      rt.stopping = true;
      if (rt.startedOk)
        for (const cmd of svc.execStop) await this.runControl(rt, svc, cmd, "ExecStop", svc.stopTimeoutMs).catch(() => undefined);
      await this.killAndWait(rt, svc, svc.killSignal);
      const result = clean ? "success" : status.signal ? "signal" : "exit-code";
      await this.finishStop(rt, svc, result);
      if (this.shouldRestart(svc, status, clean) && !this.shuttingDown) {
        rt.active = "activating";
        rt.sub = "auto-restart";
        this.log(rt.file.id, `${rt.file.id}: Scheduled restart job, restart counter is at ${rt.startTimes.length}.`);
        rt.restartTimer = setTimeout(() => {
          rt.restartTimer = undefined;
          void this.serialize(rt, () => this.doStart(rt, true)).catch((err) => this.log(rt.file.id, (err as Error).message));
        }, svc.restartMs);
      } else this.collect();
    });
  }

  /** systemd.service(5) Restart=, table 2, and RestartPreventExitStatus=. */
  private shouldRestart(svc: Service, status: ExitStatus, clean: boolean): boolean {
    const token = status.signal ?? String(status.code);
    if (svc.restartPrevent.has(token) || (status.signal && svc.restartPrevent.has(status.signal.replace(/^SIG/, "")))) return false;
    switch (svc.restart) {
      case "always":
        return true;
      case "on-success":
        return clean;
      case "on-failure":
        return !clean;
      case "on-abnormal":
      case "on-abort":
        return !clean && status.signal !== null;
      default:
        return false;
    }
  }

  /** KillMode=/KillSignal= then, after TimeoutStopSec=, SIGKILL (systemd.kill(5)). */
  private async killAndWait(rt: Runtime, svc: Service, signal: NodeJS.Signals): Promise<void> {
    const mainAlive = () => rt.main !== undefined && rt.main.exitCode === null && rt.main.signalCode === null;
    const targets = () => {
      if (svc.killMode === "none") return [];
      if (svc.killMode === "process") return mainAlive() && rt.mainPid ? [rt.mainPid] : [];
      if (svc.killMode === "mixed") return mainAlive() && rt.mainPid ? [rt.mainPid] : [];
      return cgroupPids(rt.file.id);
    };
    const first = targets();
    signalPids(first, signal);
    // "right after sending the signal ... systemd will always send SIGCONT" (systemd.kill(5) KillSignal=).
    signalPids(first, "SIGCONT");
    const done = () => (svc.killMode === "control-group" ? cgroupEmpty(rt.file.id) && !mainAlive() : !mainAlive());
    const deadline = Date.now() + svc.stopTimeoutMs;
    while (!done() && Date.now() < deadline) await sleep(50);
    if (!done()) {
      this.log(rt.file.id, `${rt.file.id}: State 'stop-sigterm' timed out. Killing.`);
      rt.result = "timeout";
      if (svc.killMode === "control-group" || svc.killMode === "mixed") {
        try {
          fs.writeFileSync(path.join(cgroupOf(rt.file.id), "cgroup.kill"), "1");
        } catch {
          signalPids(cgroupPids(rt.file.id), "SIGKILL");
        }
      } else if (rt.mainPid) signalPids([rt.mainPid], "SIGKILL");
      while (!done()) await sleep(20);
    } else if (svc.killMode === "mixed") {
      signalPids(cgroupPids(rt.file.id), "SIGKILL");
    }
    if (rt.mainExited) await rt.mainExited;
  }

  /** ExecStopPost=, runtime directories removed, and the state the result leaves. */
  private async finishStop(rt: Runtime, svc: Service, result: string): Promise<void> {
    rt.sub = "stop-post";
    for (const cmd of svc.execStopPost) await this.runControl(rt, svc, cmd, "ExecStopPost", svc.stopTimeoutMs).catch(() => undefined);
    for (const d of svc.runtimeDirectories) fs.rmSync(path.join("/run", d), { recursive: true, force: true });
    if (rt.result === "success" || result !== "success") rt.result = result;
    rt.main = undefined;
    rt.mainPid = undefined;
    rt.mainExited = undefined;
    rt.startedOk = false;
    if (rt.result === "success") {
      rt.active = "inactive";
      rt.sub = "dead";
      this.log(rt.file.id, `${rt.file.id}: Deactivated successfully.`);
    } else {
      rt.active = "failed";
      rt.sub = "failed";
      this.log(rt.file.id, `${rt.file.id}: Failed with result '${rt.result}'.`);
    }
  }

  // --- stop / reload -------------------------------------------------------------------------------

  private async doStop(rt: Runtime): Promise<void> {
    if (rt.restartTimer) {
      clearTimeout(rt.restartTimer);
      rt.restartTimer = undefined;
      rt.active = rt.result === "success" ? "inactive" : "failed";
      rt.sub = rt.active === "failed" ? "failed" : "dead";
    }
    if (rt.file.type === "path") {
      if (rt.active === "active") {
        this.disarmPath(rt);
        rt.active = "inactive";
        rt.sub = "dead";
        this.log(rt.file.id, `${description(rt.file)} deactivated.`);
      }
      return;
    }
    if (rt.file.type !== "service" || !isRunning(rt)) return;
    const svc = serviceOf(rt.file);
    rt.stopping = true;
    rt.active = "deactivating";
    rt.sub = "stop";
    this.log(rt.file.id, `Stopping ${description(rt.file)}...`);
    let result = "success";
    if (rt.startedOk) {
      for (const cmd of svc.execStop) {
        try {
          await this.runControl(rt, svc, cmd, "ExecStop", svc.stopTimeoutMs);
        } catch (err) {
          // "It will not fail if any of the commands configured to stop the unit (ExecStop=, etc.)
          // fail, because the manager will still forcibly terminate the unit" (systemctl(1) stop).
          if (err instanceof ControlFailed && err.result === "timeout") break;
        }
      }
    }
    await this.killAndWait(rt, svc, svc.killSignal);
    const exit = rt.mainExited ? await rt.mainExited : undefined;
    if (exit && !isClean(svc, exit) && exit.signal !== "SIGKILL") result = exit.signal ? "signal" : "exit-code";
    await this.finishStop(rt, svc, result);
    if ((rt.active as ActiveState) === "inactive") this.log(rt.file.id, `Stopped ${description(rt.file)}.`);
  }

  private async doReload(rt: Runtime): Promise<void> {
    const notApplicable = new JobFailed(`Failed to reload ${rt.file.id}: Job type reload is not applicable for unit ${rt.file.id}.`);
    if (rt.file.type !== "service") throw notApplicable;
    const svc = serviceOf(rt.file);
    if (svc.execReload.length === 0) throw notApplicable;
    if (!isRunning(rt)) throw new JobFailed(`${rt.file.id} is not active, cannot reload.`);
    rt.active = "reloading";
    rt.sub = "reload";
    this.log(rt.file.id, `Reloading ${description(rt.file)}...`);
    try {
      for (const cmd of svc.execReload) await this.runControl(rt, svc, cmd, "ExecReload", svc.startTimeoutMs);
      this.log(rt.file.id, `Reloaded ${description(rt.file)}.`);
    } catch (err) {
      if (!(err instanceof ControlFailed)) throw err;
      this.log(rt.file.id, `Reload failed for ${description(rt.file)}.`);
      throw new JobFailed(
        jobFailedMessage(rt.file.id, RESULT_EXPLANATION[err.result] ?? "the reload failed").replace("Job for", "Job for"),
      );
    } finally {
      if (rt.active === "reloading") {
        rt.active = "active";
        rt.sub = "running";
      }
    }
  }

  // --- notify and path units -----------------------------------------------------------------------

  /** A message on $NOTIFY_SOCKET; NotifyAccess=main: only the main process is heard (sd_notify(3)). */
  onNotify(m: NotifyMessage): void {
    for (const rt of this.units.values()) {
      if (rt.mainPid !== m.pid) continue;
      if (m.fields.READY === "1" && rt.ready) rt.ready(true);
      return;
    }
    this.log(
      undefined,
      `Got notification message from PID ${m.pid}, but reception only permitted for main PID which is currently not known`,
    );
  }

  /** PathChanged=/PathModified=: start Unit= when the file is written or renamed into place (systemd.path(5)). */
  private armPath(rt: Runtime): void {
    this.disarmPath(rt);
    const target = value(rt.file, "Path", "Unit") ?? rt.file.id.replace(/\.path$/, ".service");
    const paths = [...listValues(rt.file, "Path", "PathChanged"), ...listValues(rt.file, "Path", "PathModified")];
    const trigger = (p: string) => {
      if (this.shuttingDown) return;
      this.log(rt.file.id, `${rt.file.id}: Triggering ${target} for ${p}.`);
      this.start(target).catch((err) => this.log(rt.file.id, `${target}: ${(err as Error).message}`));
    };
    const unwatched: string[] = [];
    for (const p of paths) {
      const dir = path.dirname(p);
      const base = path.basename(p);
      if (!fs.existsSync(dir)) {
        unwatched.push(p);
        continue;
      }
      // Node's fs.watch (inotify) reports renames into the directory and writes to the file; it
      // cannot see IN_CLOSE_WRITE, so a plain write triggers at its first write, not at close.
      const w = fs.watch(dir, (_event, filename) => {
        if (filename === base) trigger(p);
      });
      w.on("error", () => undefined);
      rt.watchers.push(w);
    }
    if (unwatched.length) {
      // systemd watches the closest existing parent; this stand-in polls for the directory.
      rt.pollTimer = setTimeout(() => {
        if (rt.active === "active") this.armPath(rt);
      }, 1000);
    }
  }

  private disarmPath(rt: Runtime): void {
    for (const w of rt.watchers) w.close();
    rt.watchers = [];
    if (rt.pollTimer) clearTimeout(rt.pollTimer);
    rt.pollTimer = undefined;
  }

  // --- boot and shutdown ---------------------------------------------------------------------------

  /** Starts units as one transaction ordered by After=/Before= between them. */
  async startAll(names: string[]): Promise<void> {
    const loaded: Runtime[] = [];
    for (const n of names) {
      try {
        loaded.push(this.runtime(n));
      } catch (err) {
        this.opts.console(`${n}: ${(err as Error).message}`);
      }
    }
    for (const rt of orderByAfter(loaded)) {
      try {
        await this.start(rt.file.id);
      } catch (err) {
        this.opts.console(`[FAILED] ${rt.file.id}: ${(err as Error).message.split("\n")[0]}`);
      }
    }
  }

  /** Everything stopped, reverse start order; file systems unmounted (systemd-shutdown(8)). */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    const running = [...this.units.values()].filter((rt) => isRunning(rt) || rt.restartTimer);
    const order = [...running].sort((a, b) => this.startOrder.indexOf(b.file.id) - this.startOrder.indexOf(a.file.id));
    for (const rt of order) {
      try {
        await this.serialize(rt, () => this.doStop(rt));
        // The console shows what a shutdown did, as systemd's status output on the console does.
        this.opts.console(`[  OK  ] Stopped ${description(rt.file)}.`);
      } catch (err) {
        this.opts.console(`stopping ${rt.file.id}: ${(err as Error).message}`);
      }
    }
    for (const m of unmountAll(readFstab())) {
      this.log(undefined, m);
      this.opts.console(`[  OK  ] ${m}`);
    }
  }

  /** `systemctl status` (a short form: the state lines and the last journal lines are enough for logs). */
  statusLines(requested: string): string[] {
    const rt = this.peek(requested);
    const name = canonicalName(requested);
    if (!rt) return [`Unit ${name} could not be found.`];
    const enabled = enablementState(rt.file.id);
    return [
      `${rt.active === "active" ? "●" : "○"} ${rt.file.id} - ${description(rt.file)}`,
      `     Loaded: loaded (${rt.file.fragmentPath}; ${enabled})`,
      `     Active: ${rt.active} (${rt.sub})${rt.result !== "success" ? ` Result: ${rt.result}` : ""}`,
      ...(rt.mainPid ? [`   Main PID: ${rt.mainPid}`] : []),
    ];
  }

  mainPidOf(requested: string): number | undefined {
    return this.peek(requested)?.mainPid;
  }

  resultOf(requested: string): string {
    return this.peek(requested)?.result ?? "success";
  }
}

class ControlFailed extends Error {
  constructor(
    readonly result: string,
    message: string,
  ) {
    super(message || result);
  }
}

function isRunning(rt: Runtime): boolean {
  return (
    rt.active === "active" ||
    rt.active === "reloading" ||
    (rt.active === "activating" && rt.sub !== "auto-restart") ||
    rt.active === "deactivating"
  );
}

/** systemd.service(5) Restart=: "a clean exit means ..." and SuccessExitStatus=. */
function isClean(svc: Service, status: ExitStatus): boolean {
  if (status.code === 0) return true;
  if (status.signal) {
    if (svc.type !== "oneshot" && CLEAN_SIGNALS.has(status.signal)) return true;
    return svc.successStatus.has(status.signal) || svc.successStatus.has(status.signal.replace(/^SIG/, ""));
  }
  return status.code !== null && svc.successStatus.has(String(status.code));
}

function signalNumber(signal: NodeJS.Signals): number {
  return (
    ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 } as Record<string, number>)[
      signal
    ] ?? 0
  );
}

/** How systemctl explains a failed job, by the unit's result (as systemctl 252 prints it). */
const RESULT_EXPLANATION: Record<string, string> = {
  resources: "of unavailable resources or another system error",
  protocol: "the service did not take the steps required by its unit configuration",
  timeout: "a timeout was exceeded",
  "exit-code": "the control process exited with error code",
  signal: "a fatal signal was delivered to the control process",
  "start-limit-hit": "start of the service was attempted too often",
};

function jobFailedMessage(unit: string, because: string): string {
  return `Job for ${unit} failed because ${because}.\nSee "systemctl status ${unit}" and "journalctl -xeu ${unit}" for details.`;
}

function description(unit: UnitFile): string {
  return value(unit, "Unit", "Description") ?? unit.id;
}

function readLocale(): string | undefined {
  for (const f of ["/etc/locale.conf", "/etc/default/locale"]) {
    try {
      const m = /^LANG=(.*)$/m.exec(fs.readFileSync(f, "utf8"));
      if (m) return m[1].replace(/^["']|["']$/g, "");
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * LimitNOFILE= (systemd.exec(5) "Process Properties": soft[:hard]). PID 1 may raise the hard limit;
 * a machine cannot where this computer withholds CAP_SYS_RESOURCE, so it stops at the hard limit
 * it has and says so in the unit's journal.
 */
function nofileLimit(spec: string): string {
  const [soft, hard = soft] = spec.split(":");
  return [
    `if ! ulimit -Hn ${shq(hard)} 2>/dev/null; then echo ${shq(`LimitNOFILE=${spec}: capped at this computer's hard limit`)} "$(ulimit -Hn)" >&2; fi`,
    `ulimit -Sn ${shq(soft)} 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"`,
  ].join("\n");
}

function shq(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** Orders units so that each starts after the units it names in After= (or that name it in Before=). */
export function orderByAfter<T extends { file: UnitFile }>(units: T[]): T[] {
  const byId = new Map(units.map((u) => [u.file.id, u]));
  const after = new Map<string, Set<string>>(
    units.map((u) => [u.file.id, new Set(wordValues(u.file, "Unit", "After").filter((d) => byId.has(d)))]),
  );
  for (const u of units) for (const b of wordValues(u.file, "Unit", "Before")) after.get(b)?.add(u.file.id);
  const out: T[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string) => {
    if (state.get(id) === "done") return;
    if (state.get(id) === "visiting") return; // an ordering cycle: systemd breaks it too (it drops a job)
    state.set(id, "visiting");
    for (const d of after.get(id) ?? []) visit(d);
    state.set(id, "done");
    out.push(byId.get(id)!);
  };
  for (const u of units) visit(u.file.id);
  return out;
}
