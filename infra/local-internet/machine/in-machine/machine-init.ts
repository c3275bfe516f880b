// What runs inside a machine (infra/local-internet/machine/machine.ts), bundled into one file and
// started from the machine's own /usr/lib/mailstack-machine. One program, four names:
//   init        the service manager and boot sequence (the child of the machine's PID 1)
//   systemctl   the command-line client of the service manager
//   journalctl  reads the machine's journal
//   cloud-init  `cloud-init status [--wait]`
//
// Boot, as bootup(7) and cloud-init's units order it on a Debian server: local-fs (fstab), the
// cloud-init init stage (host keys; Before=ssh.service), the units sysinit.target and then
// multi-user.target want (sshd among them), then cloud-init's config and final stages (packages,
// runcmd).
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import { Journal } from "./journal";
import { NotifySocket } from "./notify-socket";
import { ServiceManager } from "./service-manager";
import { systemctl, type CommandResult } from "./systemctl-command";
import { journalctl } from "./journalctl";
import { CloudInit, cloudInitStatusCli, DATASOURCE_FILE, type Datasource } from "./cloud-init";
import { BOOT_TARGETS, prepareImage } from "./image";
import { bootEntries, mountEntry, readFstab } from "./fstab";
import { bootUnits } from "./unit-install";

export const CONTROL_SOCKET = "/run/systemd/mailstack-manager.sock";
export const STATE_FILE = "/run/mailstack-machine/state";
const BOOT_ID_FILE = "/run/mailstack-machine/boot-id";

function consoleLine(line: string): void {
  process.stdout.write(`[${new Date().toISOString()}] ${line}\n`);
}

function setState(state: "booting" | "running" | "stopping"): void {
  fs.writeFileSync(STATE_FILE, `${state}\n`);
}

async function init(): Promise<void> {
  fs.mkdirSync("/run/mailstack-machine", { recursive: true });
  fs.mkdirSync("/run/systemd", { recursive: true });
  setState("booting");
  const bootId = randomBytes(16).toString("hex");
  fs.writeFileSync(BOOT_ID_FILE, bootId);
  const journal = new Journal(bootId);
  prepareImage(consoleLine);
  const manager = new ServiceManager({ journal, console: consoleLine });
  const notify = await NotifySocket.start((m) => manager.onNotify(m));

  let stopping: Promise<void> | undefined;
  const poweroff = () => {
    stopping ??= (async () => {
      setState("stopping");
      consoleLine("powering off: stopping units");
      await manager.shutdown();
      notify.stop();
      consoleLine("reached target power-off");
      process.exit(0);
    })();
  };
  process.on("SIGTERM", poweroff);
  process.on("SIGINT", poweroff);

  const server = net.createServer((sock) => {
    let pending = "";
    sock.on("data", (chunk) => {
      pending += chunk.toString("utf8");
      const nl = pending.indexOf("\n");
      if (nl < 0) return;
      const req = JSON.parse(pending.slice(0, nl)) as { argv: string[] };
      systemctl(manager, req.argv, poweroff)
        .catch((err: Error): CommandResult => ({ code: 1, stdout: "", stderr: `${err.message}\n` }))
        .then((r) => sock.end(JSON.stringify(r) + "\n"));
    });
    sock.on("error", () => undefined);
  });
  fs.rmSync(CONTROL_SOCKET, { force: true });
  await new Promise<void>((resolve) => server.listen(CONTROL_SOCKET, resolve));
  fs.chmodSync(CONTROL_SOCKET, 0o600);

  for (const entry of bootEntries(readFstab())) {
    const r = mountEntry(entry);
    journal.write({ unit: r.unit, ident: "systemd", pid: 1, message: r.message });
  }
  let cloud: CloudInit | undefined;
  try {
    cloud = new CloudInit(JSON.parse(fs.readFileSync(DATASOURCE_FILE, "utf8")) as Datasource, journal);
    await cloud.initStage();
  } catch (err) {
    consoleLine(`cloud-init: ${(err as Error).message}`);
  }
  for (const target of BOOT_TARGETS) await manager.startAll(bootUnits(target));
  setState("running");
  consoleLine("reached target multi-user");
  if (cloud) {
    await cloud.configAndFinalStages((units) => manager.startAll(units));
    consoleLine("cloud-init finished");
  }
}

/** The client side of `systemctl`: hands argv to the service manager and prints its answer. */
function systemctlClient(argv: string[]): void {
  if (!fs.existsSync(CONTROL_SOCKET)) {
    process.stderr.write(
      "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
    );
    process.exit(1);
  }
  const sock = net.connect(CONTROL_SOCKET);
  let reply = "";
  sock.on("connect", () => sock.write(JSON.stringify({ argv }) + "\n"));
  sock.on("data", (d) => (reply += d.toString("utf8")));
  sock.on("error", (err) => {
    process.stderr.write(`Failed to connect to bus: ${err.message}\n`);
    process.exit(1);
  });
  sock.on("end", () => {
    const r = JSON.parse(reply) as CommandResult;
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.code;
  });
}

async function main(): Promise<void> {
  const [tool, ...args] = process.argv.slice(2);
  switch (tool) {
    case "init":
      await init();
      return;
    case "systemctl":
      systemctlClient(args);
      return;
    case "journalctl": {
      const bootId = fs.existsSync(BOOT_ID_FILE) ? fs.readFileSync(BOOT_ID_FILE, "utf8").trim() : undefined;
      process.exitCode = journalctl(args, bootId, (s) => process.stdout.write(s));
      return;
    }
    case "cloud-init":
      process.exitCode = await cloudInitStatusCli(args, (s) => process.stdout.write(s));
      return;
    default:
      process.stderr.write(`machine-init: unknown tool ${tool ?? "(none)"} (init, systemctl, journalctl, cloud-init)\n`);
      process.exitCode = 2;
  }
}

void main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
