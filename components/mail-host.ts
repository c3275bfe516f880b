import * as pulumi from "@pulumi/pulumi";
import * as hcloud from "@pulumi/hcloud";
import * as tls from "@pulumi/tls";
import type { AdoptSpec, ServerSpec } from "./spec";
import { hetznerVolumeDevice, renderCloudInit } from "../server-bootstrap/cloud-init";

import { PUBLIC_TCP_PORTS } from "./shared/mail-ports";

/** Ports the mail host answers on, and why (components/shared/mail-ports.ts). */
export { PUBLIC_TCP_PORTS };

export interface MailHostArgs {
  /** FQDN of the mail host: the PTR of both addresses and the HELO name. */
  hostname: string;
  server: ServerSpec;
}

/**
 * The Hetzner side of a mail server: a static IPv4/IPv6 pair (primary IPs, kept across server
 * rebuilds), their PTRs, a firewall, a data volume and the server itself.
 *
 * The server can be replaced (new image, new cloud-init) while addresses, PTRs and the volume
 * stay: the primary IPs are not auto-deleted and the Server is deleteBeforeReplace, because a
 * primary IP can be assigned to only one server at a time. With `keepOnDestroy` the addresses,
 * PTRs and volume outlive the stack, and `adopt` takes them over again in a later one.
 */
export class MailHost extends pulumi.ComponentResource {
  /** the server's IPv4 address */
  public readonly ipv4: pulumi.Output<string>;
  /** the server's IPv6 address: the primary IP's /64 network plus ::1 */
  public readonly ipv6: pulumi.Output<string>;
  public readonly hostname: string;
  public readonly serverId: pulumi.Output<string>;
  public readonly volumeId: pulumi.Output<string>;
  /** the data volume as the server sees it: `/dev/disk/by-id/scsi-0HC_Volume_<id>` */
  public readonly volumeDevice: pulumi.Output<string>;
  /** the attachment of the data volume: deploy steps that need the volume depend on it */
  public readonly volumeAttachment: hcloud.VolumeAttachment;
  /** the ids a later stack adopts (`server.adopt`) once this one is destroyed with `keepOnDestroy` */
  public readonly adoptIds: pulumi.Output<AdoptSpec>;
  /** `ssh-ed25519 ...` host key the server presents; pin it when connecting. */
  public readonly hostKeyPublic: pulumi.Output<string>;
  /** Private key (OpenSSH format, secret) the deployment logs in with as root. */
  public readonly deployerPrivateKey: pulumi.Output<string>;
  public readonly deployerPublicKey: pulumi.Output<string>;

  constructor(name: string, args: MailHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mailstack:index:MailHost", name, {}, opts);
    const parent = { parent: this };
    const server = args.server;
    const protection = server.deleteProtection;
    // What outlives the stack with keepOnDestroy: the addresses, their PTRs and the mail volume.
    // Pulumi checks `protect` before `retainOnDelete` on a delete (engine.md sec. 6: a protected
    // resource fails the destroy), so retainOnDelete takes protect's place; Hetzner's own delete
    // protection (deleteProtection) stays on them either way.
    const keep = server.keepOnDestroy;
    const kept = { ...parent, protect: protection && !keep, retainOnDelete: keep };
    // Adopted resources keep their names here, so they land under this component as a created
    // one would (same URN); the import only reads them, then the usual diff applies.
    const adopt = (id: string | undefined) => (id !== undefined ? { import: id } : {});

    const hostKey = new tls.PrivateKey(`${name}-ssh-host-key`, { algorithm: "ED25519" }, parent);
    const deployerKey = new tls.PrivateKey(`${name}-deployer-key`, { algorithm: "ED25519" }, parent);
    const sshKey = new hcloud.SshKey(`${name}-deployer`, { publicKey: deployerKey.publicKeyOpenssh.apply((k) => k.trim()) }, parent);

    // autoDelete false: the addresses outlive any one server (reputation, PTR, DNS).
    const ipv4 = new hcloud.PrimaryIp(
      `${name}-ipv4`,
      { type: "ipv4", location: server.location, autoDelete: false, deleteProtection: protection },
      { ...kept, ...adopt(server.adopt?.ipv4) },
    );
    const ipv6 = new hcloud.PrimaryIp(
      `${name}-ipv6`,
      { type: "ipv6", location: server.location, autoDelete: false, deleteProtection: protection },
      { ...kept, ...adopt(server.adopt?.ipv6) },
    );

    const volume = new hcloud.Volume(
      `${name}-data`,
      {
        size: server.volumeSizeGb,
        location: server.location,
        format: "ext4",
        // cloud-init mounts it by id; Hetzner's automount would mount it under a changing path.
        automount: false,
        deleteProtection: protection,
      },
      { ...kept, ...adopt(server.adopt?.volume) },
    );

    const anywhere = ["0.0.0.0/0", "::/0"];
    const firewall = new hcloud.Firewall(
      `${name}-firewall`,
      {
        rules: [
          { direction: "in", protocol: "tcp", port: "22", sourceIps: server.sshSourceRanges, description: "SSH (deployment)" },
          ...PUBLIC_TCP_PORTS.map(({ port, why }) => ({
            direction: "in",
            protocol: "tcp",
            port: String(port),
            sourceIps: anywhere,
            description: why,
          })),
          { direction: "in", protocol: "icmp", sourceIps: anywhere, description: "ICMP (PMTU discovery, ping)" },
        ],
      },
      parent,
    );

    // The volume id is as stable as the host key: the volume outlives every server.
    const userData = pulumi
      .all([hostKey.privateKeyOpenssh, hostKey.publicKeyOpenssh, volume.id])
      .apply(([priv, pub, volumeId]) => renderCloudInit({ hostKeyPrivateOpenssh: priv, hostKeyPublicOpenssh: pub, volumeId }));

    const srv = new hcloud.Server(
      `${name}-server`,
      {
        serverType: server.type,
        image: server.image,
        location: server.location,
        userData: pulumi.secret(userData),
        sshKeys: [sshKey.id],
        firewallIds: [firewall.id.apply(Number)],
        publicNets: [
          {
            ipv4Enabled: true,
            ipv4: ipv4.id.apply(Number),
            ipv6Enabled: true,
            ipv6: ipv6.id.apply(Number),
          },
        ],
        shutdownBeforeDeletion: true,
      },
      // The primary IPs can be assigned to one server only: the old server must go first.
      { ...parent, deleteBeforeReplace: true },
    );

    this.volumeAttachment = new hcloud.VolumeAttachment(
      `${name}-data-attachment`,
      { serverId: srv.id.apply(Number), volumeId: volume.id.apply(Number), automount: false },
      { ...parent, deleteBeforeReplace: true },
    );

    this.ipv4 = ipv4.ipAddress;
    this.ipv6 = ipv6.ipAddress.apply(hostAddressOfV6Network);

    // PTRs hang on the primary IPs, not the server, so they survive a server replacement. Kept
    // with the addresses: deleting an Rdns resets the PTR. Never imported: creating one sets the PTR
    // an adopted address already has.
    const ptrOpts = { ...parent, retainOnDelete: keep };
    new hcloud.Rdns(`${name}-ptr-ipv4`, { primaryIpId: ipv4.id.apply(Number), ipAddress: this.ipv4, dnsPtr: args.hostname }, ptrOpts);
    new hcloud.Rdns(`${name}-ptr-ipv6`, { primaryIpId: ipv6.id.apply(Number), ipAddress: this.ipv6, dnsPtr: args.hostname }, ptrOpts);

    this.hostname = args.hostname;
    this.serverId = srv.id;
    this.volumeId = volume.id;
    this.volumeDevice = volume.id.apply(hetznerVolumeDevice);
    this.adoptIds = pulumi.all([ipv4.id, ipv6.id, volume.id]).apply(([v4, v6, vol]) => ({ ipv4: v4, ipv6: v6, volume: vol }));
    this.hostKeyPublic = hostKey.publicKeyOpenssh.apply((k) => k.trim());
    this.deployerPrivateKey = pulumi.secret(deployerKey.privateKeyOpenssh);
    this.deployerPublicKey = deployerKey.publicKeyOpenssh.apply((k) => k.trim());

    this.registerOutputs({
      ipv4: this.ipv4,
      ipv6: this.ipv6,
      serverId: this.serverId,
      volumeId: this.volumeId,
      hostKeyPublic: this.hostKeyPublic,
    });
  }
}

/**
 * Hetzner hands out an IPv6 /64 as its network address (`2a01:4f8:c0c:1234::`); the server
 * uses `::1` in it (notes: pulumi-and-providers.md).
 */
export function hostAddressOfV6Network(network: string): string {
  const bare = network.split("/")[0];
  if (!bare.endsWith("::")) {
    throw new Error(`expected an IPv6 /64 network address ending in "::", got "${network}"`);
  }
  return `${bare}1`;
}
