// The exact command lines a deployment runs over SSH. MailDaemon hands them to
// @pulumi/command's remote.Command; the SSH integration tests run the same strings with ssh2,
// so what is tested is what is deployed.
import { createHash } from "node:crypto";
import * as path from "node:path";
import { shq } from "./shell-steps";

/** File names inside the stage directory the deploy copies to. */
export const STAGED = {
  daemon: "maild.js",
  installer: "install.sh",
} as const;

/**
 * The name of the file manifest earlier versions staged beside them (it held every private key):
 * the install script deletes it. The manifest now only ever travels on the install step's stdin.
 */
export const LEGACY_STAGED_MANIFEST = "files";

export interface DeployCommandOptions {
  /** where the copies land on the box (created 0700 by the wait step) */
  stageDir: string;
  /** the SSH user is not root: run the install through `sudo -n` */
  sudo?: boolean;
  /** block device of the data volume to mount at the data directory (Hetzner: /dev/disk/by-id/...) */
  dataDevice?: string;
  /** hosts without systemd (tests) */
  noSystemctl?: boolean;
}

/** SHA-256 (hex) of what one install is made of: the two staged copies and the manifest it gets on stdin. */
export interface InstallDigests {
  installer: string;
  daemon: string;
  files: string;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export function stagedPath(opts: Pick<DeployCommandOptions, "stageDir">, file: keyof typeof STAGED): string {
  return path.posix.join(opts.stageDir, STAGED[file]);
}

/** What identifies the machine: systemd's machine id, generated at first boot. */
const MACHINE_ID = "cat /etc/machine-id 2>/dev/null || hostname";

/**
 * Runs once SSH answers: creates the stage directory (0700: only the deploying user reads what
 * lands there), waits for cloud-init's first boot to finish where there is one, and prints the
 * machine id, which changes exactly when the machine is replaced.
 */
export function waitCommand(opts: Pick<DeployCommandOptions, "stageDir">): string {
  const dir = shq(opts.stageDir);
  return [
    `mkdir -p -m 0700 ${dir} && chmod 0700 ${dir};`,
    "if command -v cloud-init >/dev/null 2>&1; then",
    "  cloud-init status --wait >/dev/null 2>&1 || echo 'cloud-init reported errors; the install step redoes its work' >&2;",
    "fi;",
    MACHINE_ID,
  ].join(" ");
}

function asRoot(opts: DeployCommandOptions, command: string): string {
  return opts.sudo ? `sudo -n ${command}` : command;
}

function checkDigest(digest: string, what: string): string {
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`${what}: ${JSON.stringify(digest)} is not a SHA-256 in hex`);
  return digest;
}

/**
 * The install step. It names the exact content it installs (the digests), so any change of the
 * daemon, the install script or the manifest changes this command line and @pulumi/command
 * runs it as an in-place update; its triggers carry only the machine. The staged copies are
 * checked against the digests first, so a stale or partial copy is refused; the manifest (every
 * key and password hash) comes on stdin and is checked by the script.
 */
export function installCommand(opts: DeployCommandOptions, digests: InstallDigests): string {
  const installer = stagedPath(opts, "installer");
  const daemon = stagedPath(opts, "daemon");
  const expected = [
    `${checkDigest(digests.installer, "digests.installer")}  ${installer}`,
    `${checkDigest(digests.daemon, "digests.daemon")}  ${daemon}`,
  ];
  const check =
    `printf '%s\\n' ${expected.map(shq).join(" ")} | sha256sum --check --quiet - >&2 || ` +
    `{ echo 'mailstack-install: error: the staged copies are not the ones this deployment made (stale or partial); run pulumi up again' >&2; exit 1; }`;
  const args = [
    "bash",
    shq(installer),
    "--stage",
    shq(opts.stageDir),
    "--files-sha256",
    checkDigest(digests.files, "digests.files"),
    ...(opts.dataDevice ? ["--data-device", shq(opts.dataDevice)] : []),
    ...(opts.noSystemctl ? ["--no-systemctl"] : []),
  ];
  return `${check}; ${asRoot(opts, args.join(" "))}`;
}

/** Runs `command` only on the machine whose id is `machineId`; elsewhere it does nothing. */
function onMachine(machineId: string, command: string): string {
  return `if [ "$(${MACHINE_ID})" = ${shq(machineId)} ]; then ${command}; fi`;
}

/**
 * Stops maild cleanly (SIGTERM, open sessions finish) and disables it; mail and keys stay. Only
 * on the machine it was installed on: the same address and host key may lead to a new machine by
 * the time a replaced install step's delete runs, and that machine's maild must keep running.
 */
export function stopCommand(opts: DeployCommandOptions, machineId: string): string {
  const installer = shq(stagedPath(opts, "installer"));
  const viaScript = asRoot(opts, ["bash", installer, "--stop", ...(opts.noSystemctl ? ["--no-systemctl"] : [])].join(" "));
  const viaSystemctl = asRoot(opts, "systemctl disable --now maild.service");
  return onMachine(
    machineId,
    `if [ -f ${installer} ]; then ${viaScript}; elif systemctl cat maild.service >/dev/null 2>&1; then ${viaSystemctl}; fi`,
  );
}

/**
 * Before the data volume is detached (server replacement, destroy): stop everything that writes
 * to it and unmount it. Runs only on the machine it was created for: after a rebuild the same
 * address and host key lead to the new machine, which must be left alone.
 */
export function releaseVolumeCommand(opts: DeployCommandOptions, machineId: string): string {
  const installer = shq(stagedPath(opts, "installer"));
  const release = asRoot(opts, ["bash", installer, "--release", ...(opts.noSystemctl ? ["--no-systemctl"] : [])].join(" "));
  return onMachine(machineId, `if [ -f ${installer} ]; then ${release}; fi`);
}
