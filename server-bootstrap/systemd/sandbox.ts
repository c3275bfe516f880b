// The sandbox both long-running mail services of ours share (maild, the backup job): the file
// system read-only but for the data volume, no devices, no kernel tunables, modules or logs, no
// other processes, and only IP and local sockets. Each unit adds what differs (capabilities,
// ProcSubset, IPAddressDeny) beside it. systemd.exec(5) documents each directive.
export function sharedSandbox(dataDir: string): string {
  return `ProtectSystem=strict
ReadWritePaths=${dataDir}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
PrivateIPC=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
KeyringMode=private
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX`;
}
