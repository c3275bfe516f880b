// The exact command lines a deployment runs over SSH. MailDaemon hands them to
// @pulumi/command's remote.Command; the SSH integration tests run the same strings with ssh2,
// so what is tested is what is deployed.
import * as path from "node:path";
import { shq } from "./shell-steps";

/** File names inside the stage directory the deploy copies to. */
export const STAGED = {
  daemon: "maild.js",
  manifest: "files",
  installer: "install.sh",
} as const;

export interface DeployCommandOptions {
  /** where the copies land on the box (created by the copy) */
  stageDir: string;
  /** the SSH user is not root: run the install through `sudo -n` */
  sudo?: boolean;
  /** block device of the data volume to mount at the data directory (Hetzner: /dev/disk/by-id/...) */
  dataDevice?: string;
  /** hosts without systemd (tests) */
  noSystemctl?: boolean;
}

export function stagedPath(opts: Pick<DeployCommandOptions, "stageDir">, file: keyof typeof STAGED): string {
  return path.posix.join(opts.stageDir, STAGED[file]);
}

/**
 * Runs once SSH answers: waits for cloud-init's first boot to finish where there is one, and
 * prints the machine id, which changes exactly when the machine is replaced.
 */
export function waitCommand(): string {
  return [
    "if command -v cloud-init >/dev/null 2>&1; then",
    "  cloud-init status --wait >/dev/null 2>&1 || echo 'cloud-init reported errors; the install step redoes its work' >&2;",
    "fi;",
    "cat /etc/machine-id 2>/dev/null || hostname",
  ].join(" ");
}

function asRoot(opts: DeployCommandOptions, command: string): string {
  return opts.sudo ? `sudo -n ${command}` : command;
}

export function installCommand(opts: DeployCommandOptions): string {
  const args = [
    "bash",
    shq(stagedPath(opts, "installer")),
    "--stage",
    shq(opts.stageDir),
    ...(opts.dataDevice ? ["--data-device", shq(opts.dataDevice)] : []),
    ...(opts.noSystemctl ? ["--no-systemctl"] : []),
  ];
  return asRoot(opts, args.join(" "));
}

/** Stops maild cleanly (SIGTERM, open sessions finish) and disables it; mail and keys stay. */
export function stopCommand(opts: DeployCommandOptions): string {
  const installer = shq(stagedPath(opts, "installer"));
  const viaScript = asRoot(opts, ["bash", installer, "--stop", ...(opts.noSystemctl ? ["--no-systemctl"] : [])].join(" "));
  const viaSystemctl = asRoot(opts, "systemctl disable --now maild.service");
  return `if [ -f ${installer} ]; then ${viaScript}; elif systemctl cat maild.service >/dev/null 2>&1; then ${viaSystemctl}; fi`;
}

/**
 * Before the data volume is detached (server replacement, destroy): stop everything that writes
 * to it and unmount it. Runs only on the machine it was created for: after a rebuild the same
 * address and host key lead to the new machine, which must be left alone.
 */
export function releaseVolumeCommand(opts: DeployCommandOptions, machineId: string): string {
  const installer = shq(stagedPath(opts, "installer"));
  const release = asRoot(opts, ["bash", installer, "--release", ...(opts.noSystemctl ? ["--no-systemctl"] : [])].join(" "));
  return `if [ "$(cat /etc/machine-id 2>/dev/null || hostname)" = ${shq(machineId)} ] && [ -f ${installer} ]; then ${release}; fi`;
}
