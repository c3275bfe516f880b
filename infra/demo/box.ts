// The mail server of the demo: sshd in the box namespace (infra/local-internet/sshd.ts) stands in for the
// Hetzner server, and the deployment is MailDaemon's, step for step: the same command strings
// (server-bootstrap/install/deploy-commands.ts) over SSH with the host key pinned, the same two
// copies (daemon bundle, install script) and the same idempotent install script, which gets the
// file manifest on its stdin.
//
// What differs from a real box, and why:
// - The box shares this machine's file system, so the system paths of the layout live under a
//   root directory of its own (a fresh root, as cloud-init leaves it: account databases, and Node
//   where cloud-init installs it). The data directory stands in for the mounted volume.
// - There is no systemd: the install script's --no-systemctl starts maild from the unit's own
//   ExecStart as the unit's user, and Dovecot is started here with the deployed configuration,
//   its runtime and state directories moved under the box's root; so are unbound, Redis and rspamd,
//   on their deployed files (infra/local-internet/spam-filter.ts says what differs).
import * as fs from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { LocalInternet, type NetHost } from "../local-internet/netns";
import { connectPinned, copyToRemote, exec, startSshd, type SshServer, type SshTarget } from "../local-internet/sshd";
import { waitForPort } from "../local-internet/wait-for-port";
import { boxLayout, type BoxLayout } from "../../server-bootstrap/install/layout";
import { deployFiles, type DeployInput } from "../../server-bootstrap/install/deploy-files";
import { renderManifest } from "../../server-bootstrap/install/file-manifest";
import { installScript } from "../../server-bootstrap/install/install-script";
import {
  installCommand,
  sha256Hex,
  stagedPath,
  stopCommand,
  waitCommand,
  type DeployCommandOptions,
} from "../../server-bootstrap/install/deploy-commands";
import { MAIL_PORTS } from "../../components/shared/mail-ports";
import { deployedSpamFilterFiles, startDeployedSpamFilter, type SpamFilter } from "../local-internet/spam-filter";
import { LEARN_SERVICES } from "../../server-bootstrap/spam/learn";

const REPO = path.resolve(__dirname, "../..");
/** The pinned Node (layout.ts NODE_VERSION) ships as this package's `node` dev dependency. */
const NODE = path.join(REPO, "node_modules/node/bin/node");

export interface BoxServer {
  internet: LocalInternet;
  host: NetHost;
  sshd: SshServer;
  /** how the deployment logs in: root, the deployer key, the pinned host key */
  ssh: SshTarget;
  layout: BoxLayout;
}

export interface DeployedBox extends BoxServer {
  deployOptions: DeployCommandOptions;
  /** the install script's last line: `mailstack-install: changed=... actions=...` */
  installSummary: string;
  /** the machine id the wait step read (what MailDaemon records to notice a rebuilt server) */
  machineId: string;
  maildLogPath: string;
  maildPid(): number;
  dovecotConfPath: string;
  dovecotLogPath: string;
  /** rspamd, Redis and unbound on the deployed files */
  spam: SpamFilter;
  /** stops maild the way deleting the deployment does (SIGTERM over SSH), then Dovecot and the spam filter */
  stop(): Promise<void>;
}

/** A root directory standing in for a freshly booted box: account databases, and Node where cloud-init puts it. */
function freshRoot(dir: string): string {
  fs.mkdirSync(path.join(dir, "etc"), { recursive: true, mode: 0o755 });
  for (const f of ["passwd", "group", "shadow", "gshadow"]) fs.copyFileSync(`/etc/${f}`, path.join(dir, "etc", f));
  fs.mkdirSync(path.join(dir, "usr/local/bin"), { recursive: true });
  fs.symlinkSync(NODE, path.join(dir, "usr/local/bin/node"));
  return dir;
}

/** sshd on the box with an Ed25519 host key, as MailHost generates it and cloud-init installs it. */
export async function startBoxServer(internet: LocalInternet, host: NetHost): Promise<BoxServer> {
  fs.chmodSync(internet.workDir, 0o711);
  const root = freshRoot(path.join(internet.workDir, "box-root"));
  fs.chmodSync(root, 0o755);
  const layout = boxLayout({ root, dataDir: path.join(root, "var/lib/maild") });
  const sshd = await startSshd(internet, host);
  return {
    internet,
    host,
    sshd,
    ssh: { host: host.ipv4, port: sshd.port, user: "root", privateKey: sshd.client.privateKey, hostKey: sshd.hostKey },
    layout,
  };
}

/** Dovecot's deployed configuration, with the directories a real box keeps under / moved under the box's root. */
function dovecotWrapper(layout: BoxLayout): { confPath: string; logPath: string } {
  const under = (p: string) => path.join(layout.root, p);
  for (const d of ["run/dovecot", "var/lib/dovecot", "var/log"]) fs.mkdirSync(under(d), { recursive: true, mode: 0o755 });
  const confPath = under("etc/dovecot/local-internet.conf");
  const logPath = under("var/log/dovecot.log");
  // Dovecot reads settings in order; a later assignment overrides an earlier one.
  fs.writeFileSync(
    confPath,
    [
      "# The demo box shares the host's file system: everything below / of a real box lives under the box's root.",
      `!include ${layout.dovecotConf}`,
      `base_dir = ${under("run/dovecot")}`,
      `state_dir = ${under("var/lib/dovecot")}`,
      `log_path = ${logPath}`,
      `info_log_path = ${logPath}`,
      // The learn services' sockets belong to the maild account, which exists only in the box's
      // root (Dovecot looks owners up in this machine's /etc/passwd): here any local account may
      // connect to them. The box itself keeps them to the maild account (mode 0600).
      ...Object.values(LEARN_SERVICES).map(
        (name) => `service ${name} {\n  unix_listener ${name} {\n    user = root\n    mode = 0666\n  }\n}`,
      ),
      "",
    ].join("\n"),
  );
  return { confPath, logPath };
}

/** MailDaemon's steps, in order: wait-for-ssh, the two copies, install (manifest on stdin); then Dovecot. */
export async function deployToBox(
  server: BoxServer,
  input: DeployInput,
  daemonBundle: string,
  /** rspamd's controller password (only its hash is in `input`) */
  controllerPassword: string,
): Promise<DeployedBox> {
  const { layout } = server;
  const deployOptions: DeployCommandOptions = { stageDir: path.join(layout.root, "root/.mailstack-deploy"), noSystemctl: true };
  const conn = await connectPinned(server.ssh);
  let machineId: string;
  let installSummary: string;
  try {
    const wait = await exec(conn, waitCommand(deployOptions));
    if (wait.code !== 0) throw new Error(`the wait step failed (exit ${wait.code}): ${wait.stderr.trim()}`);
    machineId = wait.stdout.trim();
    const daemon = fs.readFileSync(daemonBundle);
    const installer = installScript(layout);
    const manifest = renderManifest(deployFiles(layout, input));
    await copyToRemote(conn, daemon, stagedPath(deployOptions, "daemon"));
    await copyToRemote(conn, installer, stagedPath(deployOptions, "installer"));
    const digests = { installer: sha256Hex(installer), daemon: sha256Hex(daemon), files: sha256Hex(manifest) };
    const install = await exec(conn, installCommand(deployOptions, digests), manifest);
    if (install.code !== 0)
      throw new Error(`the install step failed (exit ${install.code}): ${install.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    installSummary = install.stdout.trim().split("\n").pop() ?? "";
  } finally {
    conn.end();
  }

  const spam = await startDeployedSpamFilter(server.internet, server.host, deployedSpamFilterFiles(layout), {
    settings: input.spam.settings,
    controllerPassword,
  });
  const dovecot = dovecotWrapper(layout);
  const child: ChildProcess = server.host.spawn(["/usr/sbin/dovecot", "-F", "-c", dovecot.confPath], {
    logFile: `${dovecot.logPath}.stdout`,
  });
  try {
    await waitForPort(
      server.host.ipv4,
      MAIL_PORTS.imaps.port,
      "dovecot",
      10_000,
      () => child.exitCode === null && child.signalCode === null,
    );
  } catch (err) {
    const log = [dovecot.logPath, `${dovecot.logPath}.stdout`]
      .filter((f) => fs.existsSync(f))
      .map((f) => fs.readFileSync(f, "utf8"))
      .join("");
    throw new Error(`${(err as Error).message}\n${log.slice(-2000)}`);
  }

  const pidFile = path.join(layout.runDir, "maild.pid");
  return {
    ...server,
    deployOptions,
    installSummary,
    machineId,
    maildLogPath: path.join(layout.runDir, "maild.log"),
    maildPid: () => Number(fs.readFileSync(pidFile, "utf8")),
    dovecotConfPath: dovecot.confPath,
    dovecotLogPath: dovecot.logPath,
    spam,
    async stop() {
      const stopMaild = async () => {
        const c = await connectPinned(server.ssh);
        try {
          const r = await exec(c, stopCommand(deployOptions, machineId));
          if (r.code !== 0) throw new Error(`stopping maild failed (exit ${r.code}): ${r.stderr.trim()}`);
        } finally {
          c.end();
        }
      };
      const [maild] = await Promise.allSettled([stopMaild(), LocalInternet.stopProcess(child), spam.stop()]);
      if (maild.status === "rejected") throw maild.reason;
    },
  };
}
