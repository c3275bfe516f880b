// A Hetzner volume for the machines: a sparse image file that outlives every machine, put on a
// loop device while it is attached to one and shown inside it as /dev/sdX with the udev link
// /dev/disk/by-id/scsi-0HC_Volume_<id> (the name Hetzner's docs and the hcloud provider's
// `linux_device` give it).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCommand } from "../netns";
import type { Machine, MachineDevice } from "./machine";

export class MachineVolume {
  private loop?: string;
  private attachedTo?: Machine;

  private constructor(
    readonly id: string,
    readonly image: string,
  ) {}

  /** `byId` inside a machine: /dev/disk/by-id/<this> */
  get byId(): string {
    return `scsi-0HC_Volume_${this.id}`;
  }

  get devicePath(): string {
    return `/dev/disk/by-id/${this.byId}`;
  }

  get machine(): Machine | undefined {
    return this.attachedTo;
  }

  /**
   * A new volume of `sizeGb`; with `format`, formatted as the Hetzner API does when a volume is
   * created with one (hcloud Volume `format`); without, blank, as the bootstrap finds it.
   */
  static async create(opts: { dir: string; id: string; sizeGb: number; format?: "ext4" | "xfs" }): Promise<MachineVolume> {
    if (!/^[0-9]+$/.test(opts.id)) throw new Error(`volume id ${JSON.stringify(opts.id)} is not a Hetzner id (digits)`);
    if (!Number.isInteger(opts.sizeGb) || opts.sizeGb < 10)
      throw new Error(`volume ${opts.id}: size ${opts.sizeGb} GB; Hetzner volumes are 10 GB or more`);
    fs.mkdirSync(opts.dir, { recursive: true });
    const image = path.join(opts.dir, `volume-${opts.id}.img`);
    if (fs.existsSync(image)) throw new Error(`volume ${opts.id}: ${image} exists already`);
    // Sparse: a 10 GB volume costs only what is written to it.
    fs.writeFileSync(image, "");
    fs.truncateSync(image, opts.sizeGb * 1024 ** 3);
    if (opts.format === "ext4") {
      // Inode tables zeroed now (punched holes on a file): no background ext4lazyinit writes later.
      const r = await runCommand(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=1", image]);
      if (r.code !== 0) throw new Error(`volume ${opts.id}: mkfs.ext4 failed: ${r.stderr.trim()}`);
    } else if (opts.format) {
      throw new Error(`volume ${opts.id}: format ${opts.format} is not modeled (ext4)`);
    }
    return new MachineVolume(opts.id, image);
  }

  /** Attaches the volume to a machine (running: hot-plugged; off: there at its next boot). */
  async attach(machine: Machine): Promise<void> {
    if (this.attachedTo) throw new Error(`volume ${this.id} is already attached to ${this.attachedTo.spec.name}`);
    await this.waitReleased();
    const r = await runCommand(["losetup", "--find", "--show", this.image]);
    if (r.code !== 0) throw new Error(`volume ${this.id}: losetup failed: ${r.stderr.trim()}`);
    this.loop = r.stdout.trim();
    const st = fs.statSync(this.loop);
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    const used = new Set(machine.attachedDevices.map((d) => d.name));
    // sda is the server's own disk; volumes follow as sdb, sdc, ... in attach order.
    const name = ["sdb", "sdc", "sdd", "sde", "sdf", "sdg"].find((n) => !used.has(n))!;
    const device: MachineDevice = { name, major, minor, byId: this.byId };
    try {
      await machine.attach(device);
    } catch (err) {
      await runCommand(["losetup", "-d", this.loop]);
      this.loop = undefined;
      throw err;
    }
    this.attachedTo = machine;
  }

  /** Detaches it; reports whether a file system of it was still mounted in the machine (a real server would see I/O errors). */
  async detach(): Promise<{ wasMounted: boolean }> {
    if (!this.attachedTo) throw new Error(`volume ${this.id} is not attached`);
    const result = await this.attachedTo.detach(this.byId);
    this.attachedTo = undefined;
    await this.releaseLoop();
    return result;
  }

  /** The machine holding it was deleted or powered off for good: the hypervisor lets go of the device. */
  async forget(): Promise<void> {
    this.attachedTo = undefined;
    await this.releaseLoop();
  }

  private async releaseLoop(): Promise<void> {
    if (!this.loop) return;
    const loop = this.loop;
    this.loop = undefined;
    // A file system that is still mounted (a dying mount namespace) holds the device exclusively;
    // wait for it to go, so no two superblocks ever share the image.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        const fd = fs.openSync(loop, fs.constants.O_RDONLY | fs.constants.O_EXCL);
        fs.closeSync(fd);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await runCommand(["losetup", "-d", loop]);
  }

  private async waitReleased(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = spawnSync("losetup", ["-j", this.image], { encoding: "utf8" });
      if (r.stdout.trim() === "") return;
      if (Date.now() > deadline) throw new Error(`volume ${this.id}: still held by ${r.stdout.trim()} (a process of its previous server?)`);
      await new Promise((r2) => setTimeout(r2, 50));
    }
  }

  /** Removes the image (the volume is deleted). */
  async destroy(): Promise<void> {
    if (this.attachedTo) await this.detach();
    fs.rmSync(this.image, { force: true });
  }
}
