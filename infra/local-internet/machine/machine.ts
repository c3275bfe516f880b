// A machine: a host of the local internet (a network namespace) that behaves like a freshly booted
// Hetzner server for the real commands a deployment runs, without writing to this computer's own
// /etc, /usr, /var, /root or /home.
//
// Each machine runs in its own mount, PID, UTS, IPC and cgroup namespaces inside the namespace that
// holds the server's addresses:
//   /etc /usr /var  overlayfs: lower = this computer's directory (Debian's binaries, dovecot,
//                   sshd, useradd, as installed here), upper = the machine's disk; every write
//                   lands in the machine's own upper directory
//   /root /home     the machine's own directories (a fresh server's, not this computer's)
//   /run /tmp       tmpfs, empty at every boot
//   /dev            tmpfs with the usual device nodes and the attached volumes as
//                   /dev/sdX + /dev/disk/by-id/scsi-0HC_Volume_<id>, as Hetzner exposes them
//   /proc /sys      the machine's own (its PIDs, its network namespace's interfaces)
//   /sys/fs/cgroup  the machine's cgroup subtree (the service manager tracks units there)
// Everything else (/work, /opt, ...) is this computer's, read as it is.
//
// PID 1 is a shell that mounts this, then reaps orphans; its child is the service manager
// (in-machine/machine-init.ts), which boots as a Debian server would: fstab, cloud-init, sshd and
// the enabled services. A new machine (server replacement) is a fresh disk and a new machine-id;
// a power cycle keeps the disk and loses /run, /tmp and every process, and resets the namespace's
// kernel state a reboot resets (nftables rules, the unprivileged-port floor).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCommand, type NetHost, type RunResult } from "../netns";
import { parseUserData, packageNames } from "./in-machine/cloud-init";
import { machineTools } from "./machine-tools";

export interface MachineDevice {
  /** the kernel name inside the machine, e.g. `sdb` */
  name: string;
  major: number;
  minor: number;
  /** the name under /dev/disk/by-id, e.g. `scsi-0HC_Volume_1234` */
  byId: string;
}

export interface MachineSpec {
  /** the namespace holding the server's addresses (its primary IPs) */
  host: NetHost;
  /** the server's name: its hostname */
  name: string;
  /** the server's id: cloud-init's instance-id */
  instanceId: string;
  /** the #cloud-config the server was created with */
  userData: string;
  /** the public keys of the server's SSH keys, as the metadata service gives them to cloud-init */
  publicKeys: string[];
  /** the nameserver the machine's /etc/resolv.conf names (Hetzner's resolvers stand-in) */
  resolver: string;
  /** a fresh directory for the machine's disk and hardware state */
  dir: string;
}

const CGROUP_PARENT = "mailstack-machines";
const MACHINE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function cgroupRoot(): string {
  // cgroup v2 alone (/sys/fs/cgroup) or the hybrid layout's unified hierarchy.
  for (const root of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
    if (fs.existsSync(path.join(root, "cgroup.procs")) && fs.existsSync(path.join(root, "cgroup.subtree_control"))) return root;
  }
  throw new Error(
    "machine: no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified; the machines need one to track their processes",
  );
}

function isInstalled(pkg: string): boolean {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.endsWith("install ok installed");
}

/** The shell that is the machine's PID 1: mounts, device nodes, then the service manager, then reaps. */
function initScript(disk: string, hw: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `set -euo pipefail
disk=${q(disk)}
hw=${q(hw)}
mount --make-rprivate /
umount -l /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
mount -t proc -o nosuid,nodev,noexec proc /proc
for d in etc usr var; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$disk/upper/$d,workdir=$disk/work/$d" "/$d"
done
mount --bind "$disk/root" /root
mount --bind "$disk/home" /home
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
mkdir -p /run/mailstack-machine /run/cloud-init /run/lock /run/systemd
cp "$hw/datasource.json" /run/cloud-init/mailstack-datasource.json
cp "$hw/devices" /run/mailstack-machine/devices
mount -t tmpfs -o nosuid,mode=0755 tmpfs /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/full c 1 7
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
mknod -m 0666 /dev/tty c 5 0
mkdir -p /dev/pts /dev/shm /dev/disk/by-id
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
while read -r name major minor byid; do
  [ -n "$name" ] || continue
  mknod -m 0660 "/dev/$name" b "$major" "$minor"
  ln -s "../../$name" "/dev/disk/by-id/$byid"
done < /run/mailstack-machine/devices
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
hostname "$(cat /etc/hostname)"
# The namespace outlives the machine; what a reboot resets in the kernel, reset: the firewall
# rules, and the unprivileged-port floor the local internet lowers for its own hosts (a server's
# kernel keeps Linux's 1024, so binding 25 takes CAP_NET_BIND_SERVICE).
if command -v nft >/dev/null; then nft flush ruleset; fi
sysctl -qw net.ipv4.ip_unprivileged_port_start=1024
cd /
/usr/lib/mailstack-machine/node /usr/lib/mailstack-machine/machine-init.js init </dev/null &
manager=$!
trap 'kill -TERM "$manager" 2>/dev/null || true' TERM INT
while kill -0 "$manager" 2>/dev/null; do wait "$manager" || true; done
`;
}

/** A cgroup and the ones below it (the service manager's system.slice/<unit>), innermost first: rmdir refuses a cgroup with children. */
function removeCgroupTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    // still holds a dying process: left for the kernel to empty
  }
}

const live = new Set<Machine>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const m of live) m.killSync();
  });
}

export class Machine {
  readonly machineId: string;
  readonly dir: string;
  private readonly disk: string;
  private readonly hw: string;
  private readonly cgroup: string;
  private devices: MachineDevice[] = [];
  private child?: ChildProcess;
  private initPid?: number;
  private exited?: Promise<void>;

  private constructor(
    readonly spec: MachineSpec,
    machineId: string,
  ) {
    this.machineId = machineId;
    this.dir = spec.dir;
    this.disk = path.join(spec.dir, "disk");
    this.hw = path.join(spec.dir, "hw");
    this.cgroup = path.join(cgroupRoot(), CGROUP_PARENT, path.basename(spec.dir));
  }

  /**
   * A new server's disk: the image (this computer's Debian seen through the overlays) with a new
   * machine-id, the server's hostname and resolver. Checks first what the machine cannot do, so a
   * user data it cannot run fails here, naming why, before anything exists.
   */
  static async create(spec: MachineSpec): Promise<Machine> {
    if (process.getuid?.() !== 0) throw new Error("machine: needs root (namespaces, overlay mounts, loop devices)");
    const config = parseUserData(spec.userData);
    const missing = packageNames(config).filter((p) => !isInstalled(p));
    if (missing.length) {
      throw new Error(
        `machine ${spec.name}: the user data installs ${missing.join(", ")}, which this computer does not have; a machine cannot run apt: ` +
          `install ${missing.length > 1 ? "them" : "it"} here (bash infra/local-internet/install-packages.sh)`,
      );
    }
    if (fs.existsSync(spec.dir)) throw new Error(`machine ${spec.name}: ${spec.dir} exists; a new machine needs a fresh directory`);
    const machineId = randomBytes(16).toString("hex");
    const m = new Machine(spec, machineId);
    m.buildDisk();
    hookExit();
    return m;
  }

  private buildDisk(): void {
    const { spec } = this;
    for (const d of ["etc", "usr", "var"]) {
      fs.mkdirSync(path.join(this.disk, "upper", d), { recursive: true, mode: 0o755 });
      fs.mkdirSync(path.join(this.disk, "work", d), { recursive: true, mode: 0o755 });
      fs.chmodSync(path.join(this.disk, "upper", d), 0o755);
    }
    fs.chmodSync(this.dir, 0o700);
    fs.mkdirSync(path.join(this.disk, "root"), { mode: 0o700 });
    fs.mkdirSync(path.join(this.disk, "home"), { mode: 0o755 });
    for (const f of [".bashrc", ".profile"]) {
      if (fs.existsSync(`/etc/skel/${f}`)) fs.copyFileSync(`/etc/skel/${f}`, path.join(this.disk, "root", f));
    }
    const etc = path.join(this.disk, "upper/etc");
    // systemd writes a machine-id at first boot when the image's file is empty (machine-id(5)).
    fs.writeFileSync(path.join(etc, "machine-id"), `${this.machineId}\n`, { mode: 0o444 });
    fs.writeFileSync(path.join(etc, "hostname"), `${spec.name}\n`);
    fs.writeFileSync(path.join(etc, "hosts"), `127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n`);
    fs.writeFileSync(path.join(etc, "resolv.conf"), `nameserver ${spec.resolver}\n`);
    fs.writeFileSync(path.join(etc, "fstab"), "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n");
    const tools = machineTools();
    const lib = path.join(this.disk, "upper/usr/lib/mailstack-machine");
    fs.mkdirSync(lib, { recursive: true });
    fs.copyFileSync(tools.bundle, path.join(lib, "machine-init.js"));
    placeNode(tools.node, path.join(lib, "node"));
    const bin = path.join(this.disk, "upper/usr/bin");
    fs.mkdirSync(bin, { recursive: true });
    for (const tool of ["systemctl", "journalctl", "cloud-init"]) {
      fs.writeFileSync(
        path.join(bin, tool),
        `#!/bin/sh\n# The machine's ${tool} (infra/local-internet/machine/in-machine/machine-init.ts).\nexec /usr/lib/mailstack-machine/node /usr/lib/mailstack-machine/machine-init.js ${tool} "$@"\n`,
        { mode: 0o755 },
      );
    }
    // The first-boot script installs the pinned Node from nodejs.org, which cannot be reached
    // here. This package's `node` dev dependency is that same release (pinnedNode() checks the
    // version), so it stands where the download would land and the script's "already pinned"
    // check passes.
    const localBin = path.join(this.disk, "upper/usr/local/bin");
    fs.mkdirSync(localBin, { recursive: true });
    fs.symlinkSync("/usr/lib/mailstack-machine/node", path.join(localBin, "node"));
    fs.mkdirSync(this.hw, { recursive: true });
    fs.writeFileSync(
      path.join(this.hw, "datasource.json"),
      JSON.stringify({ instanceId: spec.instanceId, localHostname: spec.name, publicKeys: spec.publicKeys, userData: spec.userData }),
      { mode: 0o600 },
    );
    this.writeDevices();
  }

  private writeDevices(): void {
    fs.writeFileSync(path.join(this.hw, "devices"), this.devices.map((d) => `${d.name} ${d.major} ${d.minor} ${d.byId}\n`).join(""));
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The machine's serial console: what PID 1 and the service manager printed. */
  consoleLog(): string {
    const f = path.join(this.hw, "console.log");
    return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
  }

  /** Powers the machine on; resolves once its service manager runs (sshd and the rest come up after, as on a real boot). */
  async powerOn(): Promise<void> {
    if (this.running) return;
    fs.mkdirSync(this.cgroup, { recursive: true });
    const out = fs.openSync(path.join(this.hw, "console.log"), "a");
    const child = spawn(
      "/bin/sh",
      [
        "-c",
        'echo $$ > "$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" unshare --mount --uts --ipc --pid --cgroup --fork --kill-child --propagation private /bin/bash -c "$3"',
        "machine",
        this.cgroup,
        this.spec.host.ns,
        initScript(this.disk, this.hw),
      ],
      { env: { PATH: MACHINE_PATH }, stdio: ["ignore", out, out], detached: true },
    );
    fs.closeSync(out);
    this.child = child;
    live.add(this);
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!this.running) throw new Error(`machine ${this.spec.name} stopped while booting:\n${this.consoleLog().slice(-3000)}`);
      const pid = this.findInit(child.pid!);
      if (pid && fs.existsSync(`/proc/${pid}/root/run/systemd/mailstack-manager.sock`)) {
        this.initPid = pid;
        return;
      }
      if (Date.now() > deadline)
        throw new Error(`machine ${this.spec.name}: its service manager did not start in 30 s:\n${this.consoleLog().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private findInit(unsharePid: number): number | undefined {
    try {
      const children = fs.readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      return children.length ? Number(children[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  private stateFile(): string | undefined {
    if (!this.initPid) return undefined;
    try {
      return fs.readFileSync(`/proc/${this.initPid}/root/run/mailstack-machine/state`, "utf8").trim();
    } catch {
      return undefined;
    }
  }

  /** Resolves when the boot reached multi-user and cloud-init finished (its status is done or error). */
  async waitForBoot(timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`machine ${this.spec.name} is off:\n${this.consoleLog().slice(-3000)}`);
      if (this.stateFile() === "running" && fs.existsSync(`/proc/${this.initPid}/root/run/cloud-init/result.json`)) return;
      if (Date.now() > deadline)
        throw new Error(`machine ${this.spec.name}: boot did not finish in ${timeoutMs} ms:\n${this.consoleLog().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Runs a command inside the machine as root (as if on its console), in the machine's cgroup. */
  async exec(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    if (!this.running || !this.initPid) throw new Error(`machine ${this.spec.name} is off`);
    return runCommand(
      [
        "nsenter",
        `--target=${this.initPid}`,
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--pid",
        "--cgroup",
        "--wd=/",
        "/bin/sh",
        "-c",
        'echo $$ > /sys/fs/cgroup/cgroup.procs && exec "$@"',
        "sh",
        ...argv,
      ],
      { input: opts.input, timeoutMs: opts.timeoutMs, env: { PATH: MACHINE_PATH, HOME: "/root", LANG: "C.UTF-8" } },
    );
  }

  /** The running machine's / as this computer can read it (/proc/<its PID 1>/root). */
  rootPath(): string {
    if (!this.initPid) throw new Error(`machine ${this.spec.name} is off`);
    return `/proc/${this.initPid}/root`;
  }

  /** A file of the running machine as it sees it (through its mount namespace). */
  readFile(p: string): string {
    if (!this.initPid) throw new Error(`machine ${this.spec.name} is off`);
    return fs.readFileSync(`/proc/${this.initPid}/root${p}`, "utf8");
  }

  /**
   * An ACPI shutdown (what Hetzner's "shutdown" and shutdownBeforeDeletion send): the service
   * manager stops every unit and unmounts file systems. If it has not finished in `timeoutMs`,
   * the power is cut.
   */
  async shutdown(timeoutMs = 60_000): Promise<void> {
    if (!this.running) return;
    await this.exec(["systemctl", "poweroff"]).catch(() => undefined);
    const timer = setTimeout(() => this.cutPower(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    await this.waitEmpty();
  }

  /**
   * A hard power off (Hetzner's "poweroff"): every process of the machine killed at once, no unit
   * stopped, nothing unmounted by the machine. Not modeled: the loss of unwritten data. The kernel
   * still flushes and unmounts the dead namespace's file systems, so what was written survives, as
   * what maild acknowledged (fsynced) survives a real cut.
   */
  async powerOff(): Promise<void> {
    if (!this.running) return;
    this.cutPower();
    await this.exited;
    await this.waitEmpty();
  }

  private cutPower(): void {
    try {
      fs.writeFileSync(path.join(this.cgroup, "cgroup.kill"), "1");
    } catch {
      if (this.child?.pid) process.kill(this.child.pid, "SIGKILL");
    }
  }

  /**
   * Waits until no process of the machine is left: cgroup.events reads `populated 0` only after
   * the last one has closed its files (its sockets), which cgroup.procs does not wait for.
   */
  private async waitEmpty(): Promise<void> {
    const deadline = Date.now() + 10_000;
    const populated = () => {
      try {
        return !/^populated 0$/m.test(fs.readFileSync(path.join(this.cgroup, "cgroup.events"), "utf8"));
      } catch {
        return false;
      }
    };
    while (populated()) {
      if (Date.now() > deadline) throw new Error(`machine ${this.spec.name}: processes still alive 10 s after the power was cut`);
      await new Promise((r) => setTimeout(r, 20));
    }
    this.initPid = undefined;
    live.delete(this);
  }

  /** A block device appears (hot-plug if the machine runs, at the next boot otherwise), as udev would name it. */
  async attach(device: MachineDevice): Promise<void> {
    if (this.devices.some((d) => d.byId === device.byId)) throw new Error(`machine ${this.spec.name}: ${device.byId} is attached already`);
    this.devices.push(device);
    this.writeDevices();
    if (this.running) {
      const r = await this.exec([
        "/bin/sh",
        "-c",
        'mknod -m 0660 "/dev/$1" b "$2" "$3" && mkdir -p /dev/disk/by-id && ln -s "../../$1" "/dev/disk/by-id/$4"',
        "attach",
        device.name,
        String(device.major),
        String(device.minor),
        device.byId,
      ]);
      if (r.code !== 0) throw new Error(`machine ${this.spec.name}: hot-plugging ${device.byId} failed: ${r.stderr.trim()}`);
    }
  }

  /**
   * The device goes away. A file system still mounted from it is detached lazily, as the kernel
   * is left with it on a real server (whose writes then fail); the return value says whether it
   * was mounted, so a caller can treat that as the mistake it is.
   */
  async detach(byId: string): Promise<{ wasMounted: boolean }> {
    const device = this.devices.find((d) => d.byId === byId);
    if (!device) throw new Error(`machine ${this.spec.name}: ${byId} is not attached`);
    this.devices = this.devices.filter((d) => d !== device);
    this.writeDevices();
    if (!this.running) return { wasMounted: false };
    const r = await this.exec([
      "/bin/sh",
      "-c",
      'mounted=0; for m in $(findmnt -rn -S "/dev/$1" -o TARGET); do mounted=1; umount -l "$m"; done; rm -f "/dev/disk/by-id/$2" "/dev/$1"; echo $mounted',
      "detach",
      device.name,
      device.byId,
    ]);
    if (r.code !== 0) throw new Error(`machine ${this.spec.name}: detaching ${byId} failed: ${r.stderr.trim()}`);
    return { wasMounted: r.stdout.trim() === "1" };
  }

  get attachedDevices(): readonly MachineDevice[] {
    return this.devices;
  }

  /** Power off and remove the disk (the server is deleted). */
  async destroy(): Promise<void> {
    await this.powerOff();
    removeCgroupTree(this.cgroup);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** @internal exit hook: no awaiting possible. */
  killSync(): void {
    this.cutPower();
  }
}

/**
 * The pinned Node inside the machine's own /usr. Not a symlink to this checkout: the machine
 * mounts its own /tmp, /root and /home over this computer's (the boot script above), so a
 * checkout under any of them would be out of the machine's sight. A hard link costs nothing; on
 * another file system, a copy.
 */
function placeNode(node: string, target: string): void {
  try {
    fs.linkSync(node, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
    fs.copyFileSync(node, target);
    fs.chmodSync(target, 0o755);
  }
}
