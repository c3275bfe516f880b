// `systemctl enable/disable/is-enabled` on the unit configuration directory, as systemctl(1)
// describes them: enable creates the symlinks the [Install] section names (WantedBy= and
// RequiredBy= into <target>.wants/ and .requires/, Alias= beside the unit, Also= units too);
// disable removes every symlink to the unit's file or with its name under /etc/systemd/system;
// is-enabled reports enabled / disabled / static / alias / masked / not-found.
import * as fs from "node:fs";
import * as path from "node:path";
import { canonicalName, findUnitFile, loadUnitFile, machinePath, UnitMasked, UnitNotFound, wordValues, type UnitFile } from "./unit-file";

export const CONFIG_DIR = "/etc/systemd/system";

export interface InstallChange {
  kind: "symlink" | "unlink";
  path: string;
  target?: string;
}

function installSection(unit: UnitFile): { wantedBy: string[]; requiredBy: string[]; alias: string[]; also: string[] } {
  return {
    wantedBy: wordValues(unit, "Install", "WantedBy"),
    requiredBy: wordValues(unit, "Install", "RequiredBy"),
    alias: wordValues(unit, "Install", "Alias"),
    also: wordValues(unit, "Install", "Also"),
  };
}

function hasInstallInfo(unit: UnitFile): boolean {
  const s = installSection(unit);
  return s.wantedBy.length + s.requiredBy.length + s.alias.length + s.also.length > 0;
}

export class InstallError extends Error {}

export function enableUnits(names: string[], root = "/"): InstallChange[] {
  const changes: InstallChange[] = [];
  const seen = new Set<string>();
  const visit = (requested: string) => {
    const name = canonicalName(requested);
    if (seen.has(name)) return;
    seen.add(name);
    let unit: UnitFile;
    try {
      unit = loadUnitFile(name, root);
    } catch (err) {
      if (err instanceof UnitMasked) throw new InstallError(`Failed to enable unit: Unit file ${name} is masked.`);
      if (err instanceof UnitNotFound) throw new InstallError(`Failed to enable unit: Unit file ${name} does not exist.`);
      throw err;
    }
    const s = installSection(unit);
    const link = (linkPath: string) => {
      const full = path.join(root, linkPath);
      const target = machinePath(root, unit.fragmentPath);
      try {
        if (fs.readlinkSync(full) === target) return;
        fs.rmSync(full);
      } catch {
        // absent
      }
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.symlinkSync(target, full);
      changes.push({ kind: "symlink", path: linkPath, target });
    };
    for (const t of s.wantedBy) link(path.join(CONFIG_DIR, `${t}.wants`, unit.id));
    for (const t of s.requiredBy) link(path.join(CONFIG_DIR, `${t}.requires`, unit.id));
    for (const a of s.alias) link(path.join(CONFIG_DIR, a));
    for (const a of s.also) visit(a);
  };
  for (const n of names) visit(n);
  return changes;
}

/** Every symlink under the configuration directory that names the unit or points at its file. */
export function disableUnits(names: string[], root = "/"): InstallChange[] {
  const changes: InstallChange[] = [];
  const dir = path.join(root, CONFIG_DIR);
  const targets = new Set<string>();
  const unitNames = new Set<string>();
  const visit = (requested: string) => {
    const name = canonicalName(requested);
    if (unitNames.has(name)) return;
    unitNames.add(name);
    try {
      const unit = loadUnitFile(name, root);
      targets.add(machinePath(root, unit.fragmentPath));
      unitNames.add(unit.id);
      for (const a of installSection(unit).also) visit(a);
      for (const a of installSection(unit).alias) unitNames.add(a);
    } catch (err) {
      if (!(err instanceof UnitNotFound)) throw err;
    }
  };
  for (const n of names) visit(n);
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) {
        walk(full);
        continue;
      }
      if (!e.isSymbolicLink()) continue;
      const link = fs.readlinkSync(full);
      const target = link.startsWith("/") ? link : machinePath(root, path.resolve(path.dirname(full), link));
      // A mask (-> /dev/null) is not an enablement: `disable` leaves it (systemctl(1) mask/unmask).
      if (target === "/dev/null") continue;
      if (unitNames.has(e.name) || targets.has(target)) {
        fs.rmSync(full);
        changes.push({ kind: "unlink", path: machinePath(root, full) });
      }
    }
  };
  walk(dir);
  return changes;
}

export type EnablementState = "enabled" | "disabled" | "static" | "alias" | "masked" | "not-found" | "indirect";

/** systemctl(1) is-enabled, table 2; exit code 0 for enabled, static, alias, indirect. */
export function enablementState(requested: string, root = "/"): EnablementState {
  const name = canonicalName(requested);
  let unit: UnitFile;
  try {
    unit = loadUnitFile(name, root);
  } catch (err) {
    if (err instanceof UnitMasked) return "masked";
    if (err instanceof UnitNotFound) return "not-found";
    throw err;
  }
  if (unit.id !== name) {
    const { fragmentPath } = findUnitFile(name, root);
    if (fragmentPath === unit.fragmentPath) return "alias";
  }
  const dir = path.join(root, CONFIG_DIR);
  let enabled = false;
  const walk = (d: string) => {
    if (!fs.existsSync(d) || enabled) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory() && (e.name.endsWith(".wants") || e.name.endsWith(".requires"))) walk(full);
      else if (e.isSymbolicLink() && e.name === unit.id && /\.(wants|requires)$/.test(path.basename(d))) enabled = true;
    }
  };
  walk(dir);
  if (enabled) return "enabled";
  if (!hasInstallInfo(unit)) return "static";
  return installSection(unit).wantedBy.length + installSection(unit).requiredBy.length === 0 && installSection(unit).also.length > 0
    ? "indirect"
    : "disabled";
}

export function isEnabledExit(state: EnablementState): number {
  return ["enabled", "static", "alias", "indirect"].includes(state) ? 0 : 1;
}

/** The units a target wants through the configuration directory: what a boot starts for it. */
export function bootUnits(target: string, root = "/"): string[] {
  const d = path.join(root, CONFIG_DIR, `${target}.wants`);
  if (!fs.existsSync(d)) return [];
  return fs.readdirSync(d).sort();
}
