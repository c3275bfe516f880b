// /etc/fstab as systemd reads it on a real box: systemd-fstab-generator(8) turns each line into a
// .mount unit that local-fs.target pulls in at boot (`nofail`: wanted, not required, so a missing
// device does not stop the boot), and RequiresMountsFor= (systemd.unit(5)) makes a service require
// the mount units on its path, which mounts them when the service starts.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface FstabEntry {
  spec: string;
  mountPoint: string;
  type: string;
  options: string[];
}

export function parseFstab(text: string): FstabEntry[] {
  const entries: FstabEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [spec, mountPoint, type = "auto", options = "defaults"] = line.split(/\s+/);
    if (!spec || !mountPoint) continue;
    entries.push({ spec, mountPoint, type, options: options.split(",") });
  }
  return entries;
}

export function readFstab(): FstabEntry[] {
  try {
    return parseFstab(fs.readFileSync("/etc/fstab", "utf8"));
  } catch {
    return [];
  }
}

/** systemd-escape --path: `/var/lib/maild` -> `var-lib-maild.mount` (systemd.unit(5) "String Escaping"). */
export function mountUnitName(mountPoint: string): string {
  const trimmed = mountPoint.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "-.mount";
  const escaped = trimmed
    .split("/")
    .map((part) => part.replace(/[^A-Za-z0-9:_.]|^\./g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`))
    .join("-");
  return `${escaped}.mount`;
}

/** Mount points currently mounted (this mount namespace), from /proc/self/mountinfo. */
export function mountedPoints(): Set<string> {
  const points = new Set<string>();
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    if (fields.length > 4) points.add(fields[4].replace(/\\040/g, " "));
  }
  return points;
}

export interface MountResult {
  unit: string;
  ok: boolean;
  message: string;
}

/** Mounts one fstab entry with mount(8), which reads the options from /etc/fstab itself. */
export function mountEntry(entry: FstabEntry): MountResult {
  const unit = mountUnitName(entry.mountPoint);
  if (mountedPoints().has(entry.mountPoint)) return { unit, ok: true, message: `${entry.mountPoint} is mounted` };
  if (entry.spec.startsWith("/dev/") && !fs.existsSync(entry.spec)) {
    // The generator's device unit would wait x-systemd.device-timeout= (default 90 s) and then
    // fail the mount job; this machine fails it at once (a test would only wait longer).
    return { unit, ok: false, message: `Timed out waiting for device ${entry.spec}: ${unit} not mounted` };
  }
  fs.mkdirSync(entry.mountPoint, { recursive: true });
  const r = spawnSync("/usr/bin/mount", [entry.mountPoint], { encoding: "utf8" });
  if (r.status !== 0) return { unit, ok: false, message: `Failed to mount ${entry.mountPoint}: ${(r.stderr || r.stdout).trim()}` };
  return { unit, ok: true, message: `Mounted ${entry.mountPoint}.` };
}

/** local-fs.target: every fstab entry but swap, noauto and what is mounted already (/, /proc, ...). */
export function bootEntries(entries: FstabEntry[]): FstabEntry[] {
  return entries.filter((e) => e.type !== "swap" && !e.options.includes("noauto") && e.mountPoint !== "/" && e.mountPoint.startsWith("/"));
}

/** The fstab entries RequiresMountsFor=<p> pulls in: every mount point on the way to p. */
export function entriesFor(p: string, entries: FstabEntry[]): FstabEntry[] {
  const normal = path.posix.normalize(p);
  return entries
    .filter((e) => e.mountPoint !== "/" && (normal === e.mountPoint || normal.startsWith(`${e.mountPoint.replace(/\/$/, "")}/`)))
    .sort((a, b) => a.mountPoint.length - b.mountPoint.length);
}

/** At shutdown systemd unmounts every file system it mounted, innermost first (systemd-shutdown(8)). */
export function unmountAll(entries: FstabEntry[]): string[] {
  const mounted = mountedPoints();
  const messages: string[] = [];
  for (const e of [...entries].sort((a, b) => b.mountPoint.length - a.mountPoint.length)) {
    if (!mounted.has(e.mountPoint)) continue;
    const r = spawnSync("/usr/bin/umount", [e.mountPoint], { encoding: "utf8" });
    if (r.status === 0) messages.push(`Unmounted ${e.mountPoint}.`);
    else {
      // systemd-shutdown retries, then gives up and detaches; a lazy unmount is the closest.
      spawnSync("/usr/bin/umount", ["-l", e.mountPoint]);
      messages.push(`Failed unmounting ${e.mountPoint} (${(r.stderr || "").trim()}); detached it lazily.`);
    }
  }
  return messages;
}
