// The machine's "image": the host's Debian as a fresh server would have it. The machine sees the
// host's /etc, /usr and /var through overlays, so the host's own servers (postfix, knot, unbound,
// ...) look installed and enabled. On first boot, before anything starts, their enablement is
// hidden (removed in the machine's upper layer only), leaving the services a Debian cloud image
// runs that this machine models; cloud-init's `packages` brings back those of the packages it
// installs, as their postinst would. /usr/sbin/policy-rc.d (which keeps apt on this host from
// starting daemons) is not on a real server either.
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Enabled in a Debian 12 cloud image and modeled here. Not modeled, so not run: the image's cron,
 * rsyslog, systemd-timesyncd, systemd-pstore and the apt/fstrim timers.
 */
export const IMAGE_UNITS = ["ssh.service"];

/** The targets a boot reaches, in order (bootup(7): sysinit.target, then multi-user.target). */
export const BOOT_TARGETS = ["sysinit.target", "multi-user.target"];

const STATE_DIR = "/var/lib/mailstack-machine";
const HIDDEN_FILE = path.join(STATE_DIR, "hidden-units.json");
const WANTS_ROOT = "/etc/systemd/system";

interface HiddenLink {
  link: string;
  target: string;
}

export function prepareImage(log: (m: string) => void): void {
  const marker = path.join(STATE_DIR, "image-prepared");
  if (fs.existsSync(marker)) return;
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const hidden: HiddenLink[] = [];
  // Only what a boot starts: the units sysinit.target and multi-user.target want.
  for (const target of BOOT_TARGETS) {
    const full = path.join(WANTS_ROOT, `${target}.wants`);
    if (!fs.existsSync(full)) continue;
    for (const name of fs.readdirSync(full)) {
      const link = path.join(full, name);
      if (!fs.lstatSync(link).isSymbolicLink() || IMAGE_UNITS.includes(name)) continue;
      hidden.push({ link, target: fs.readlinkSync(link) });
      fs.rmSync(link);
    }
  }
  fs.rmSync("/usr/sbin/policy-rc.d", { force: true });
  fs.writeFileSync(HIDDEN_FILE, JSON.stringify(hidden, null, 1));
  fs.writeFileSync(marker, "");
  log(`image: hid the host's own enabled units (${hidden.map((h) => path.basename(h.link)).join(", ") || "none"})`);
}

interface DpkgPackage {
  name: string;
  installed: boolean;
  depends: string[][];
  provides: string[];
}

function readStatus(): Map<string, DpkgPackage> {
  const packages = new Map<string, DpkgPackage>();
  const text = fs.readFileSync("/var/lib/dpkg/status", "utf8");
  for (const stanza of text.split(/\n\n+/)) {
    const fields = new Map<string, string>();
    let last = "";
    for (const line of stanza.split("\n")) {
      if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`);
      else {
        const c = line.indexOf(":");
        if (c <= 0) continue;
        last = line.slice(0, c);
        fields.set(last, line.slice(c + 1).trim());
      }
    }
    const name = fields.get("Package");
    if (!name) continue;
    const deps = [fields.get("Pre-Depends"), fields.get("Depends")]
      .filter((d): d is string => Boolean(d))
      .flatMap((d) => d.split(","))
      .map((alt) => alt.split("|").map((p) => p.trim().split(/[\s(:]/)[0]))
      .filter((alt) => alt[0]);
    const provides = (fields.get("Provides") ?? "")
      .split(",")
      .map((p) => p.trim().split(/[\s(:]/)[0])
      .filter(Boolean);
    packages.set(name, { name, installed: (fields.get("Status") ?? "").endsWith("install ok installed"), depends: deps, provides });
  }
  return packages;
}

export function packageInstalled(name: string): boolean {
  return readStatus().get(name)?.installed ?? false;
}

/** The packages and everything they depend on (first installed alternative, virtual packages through Provides). */
export function packageClosure(names: string[]): Set<string> {
  const status = readStatus();
  const providers = new Map<string, string>();
  for (const p of status.values()) if (p.installed) for (const v of p.provides) if (!providers.has(v)) providers.set(v, p.name);
  const out = new Set<string>();
  const visit = (name: string) => {
    const real = status.get(name)?.installed ? name : providers.get(name);
    if (!real || out.has(real)) return;
    out.add(real);
    for (const alt of status.get(real)!.depends) {
      const pick = alt.find((a) => status.get(a)?.installed || providers.has(a));
      if (pick) visit(pick);
    }
  };
  for (const n of names) visit(n);
  return out;
}

/** Which installed package ships a file (dpkg -S), from dpkg's file lists; /lib and /usr/lib are the same on merged /usr. */
function owners(files: string[]): Map<string, string> {
  const wanted = new Map<string, string>();
  for (const f of files) {
    wanted.set(f, f);
    wanted.set(f.replace(/^\/usr\/lib\//, "/lib/"), f);
    wanted.set(f.replace(/^\/lib\//, "/usr/lib/"), f);
  }
  const found = new Map<string, string>();
  const info = "/var/lib/dpkg/info";
  for (const list of fs.readdirSync(info)) {
    if (!list.endsWith(".list")) continue;
    const pkg = list.slice(0, -5).split(":")[0];
    for (const line of fs.readFileSync(path.join(info, list), "utf8").split("\n")) {
      const f = wanted.get(line);
      if (f && !found.has(f)) found.set(f, pkg);
    }
  }
  return found;
}

/** Re-enables the hidden units shipped by the given packages; returns their names (to be started). */
export function restoreHiddenUnits(packages: Set<string>): string[] {
  if (!fs.existsSync(HIDDEN_FILE)) return [];
  const hidden = JSON.parse(fs.readFileSync(HIDDEN_FILE, "utf8")) as HiddenLink[];
  const targets = hidden.map((h) => (h.target.startsWith("/") ? h.target : path.resolve(path.dirname(h.link), h.target)));
  const owner = owners(targets);
  const restored: string[] = [];
  const remaining: HiddenLink[] = [];
  hidden.forEach((h, i) => {
    const pkg = owner.get(targets[i]);
    if (pkg && packages.has(pkg)) {
      fs.mkdirSync(path.dirname(h.link), { recursive: true });
      if (!fs.existsSync(h.link)) fs.symlinkSync(h.target, h.link);
      restored.push(path.basename(h.link));
    } else remaining.push(h);
  });
  fs.writeFileSync(HIDDEN_FILE, JSON.stringify(remaining, null, 1));
  return [...new Set(restored)];
}
