// What `npm start -- --keep-running` prints once the system is up: the namespaces and their
// addresses, the users and their passwords, the logs, and commands to try, among them the
// `mailstack check` that checks the whole system from outside.
import * as fs from "node:fs";
import * as path from "node:path";
import type { DemoHandle } from "./run-demo";

/** A word as a POSIX shell reads it back unchanged. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The exact command line that checks the running system (from the project directory). */
export function checkCommand(h: Pick<DemoHandle, "checkArgs">): string {
  return ["npx", "mailstack", ...h.checkArgs].map(shellWord).join(" ");
}

/** How to reach the running system, for --keep-running. */
export function howToReach(h: DemoHandle): string {
  const { dns, ca, box, peer } = h.hosts;
  const sshDir = path.join(h.internet.workDir, "ssh");
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(sshDir, "deployer");
  const knownHosts = path.join(sshDir, "known_hosts");
  fs.writeFileSync(keyPath, h.box.ssh.privateKey, { mode: 0o600 });
  fs.writeFileSync(knownHosts, `${box.ipv4} ${h.box.ssh.hostKey}\n`);
  const user = h.users[0];
  const zones = h.zones.map((z) => z.origin.replace(/\.$/, "")).join(", ");
  const lines = [
    "",
    "The local internet is up until Ctrl-C.",
    "  namespace addresses",
    `  ${dns.ns.padEnd(12)} ${dns.ipv4.padEnd(15)} ${dns.ipv6.padEnd(22)} knot: ${zones}`,
    `  ${ca.ns.padEnd(12)} ${ca.ipv4.padEnd(15)} ${ca.ipv6.padEnd(22)} pebble: ${h.pebble.directoryUrl}`,
    `  ${box.ns.padEnd(12)} ${box.ipv4.padEnd(15)} ${box.ipv6.padEnd(22)} ${h.plan.hostname}: sshd 22, maild 25/80/443 (+587/465), Dovecot 143/993`,
    `  ${peer.ns.padEnd(12)} ${peer.ipv4.padEnd(15)} ${peer.ipv6.padEnd(22)} ${h.peer.hostname}: Postfix 25, opendkim, opendmarc, mta-sts-daemon`,
    "  users",
    ...h.users.map((u) => `  ${u.address.padEnd(22)} password ${u.password}`),
    `  ${h.peer.user.padEnd(22)} (the peer's mailbox: ${h.peer.maildir})`,
    `  CA root     ${h.caRootPemPath} (trust it to verify the box)`,
    `  logs        maild ${h.box.maildLogPath}`,
    `              Dovecot ${h.box.dovecotLogPath}`,
    `              the peer's Postfix ${path.join(h.peer.postfix.configDir, "maillog")}`,
    "  try",
    `  ip netns exec ${peer.ns} dig +short MX ${h.report.dns.zones[0]}`,
    `  ip netns exec ${peer.ns} swaks --to ${user.address} --from ${h.peer.user} --tls`,
    `  ip netns exec ${peer.ns} env SSL_CERT_FILE=${h.caRootPemPath} mta-sts-query ${h.report.dns.zones[0]}`,
    `  openssl s_client -connect ${box.ipv4}:993 -servername ${h.plan.hostname} -CAfile ${h.caRootPemPath}`,
    `  swaks --server ${box.ipv4} --port 587 --tls --auth PLAIN --auth-user ${user.address} --auth-password '${user.password}' --from ${user.address} --to ${h.peer.user}`,
    `  ssh -i ${keyPath} -o UserKnownHostsFile=${knownHosts} root@${box.ipv4}`,
    "  check it from outside as senders do (every row passes; run it from this directory)",
    `  ${checkCommand(h)}`,
    "",
  ];
  return lines.join("\n");
}
