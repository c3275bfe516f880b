// The provider stand-ins the offline engine looks up by package (the first segment of a resource
// type: `hcloud:index/server:Server` -> "hcloud"). The Node dynamic provider host
// ("pulumi-nodejs") is the engine's own (infra/offline/), not one of these.
import type { ProviderStandIn } from "../model";
import { cloudflareStandIn } from "./cloudflare";
import type { CloudflareWorld } from "./cloudflare-world";
import { commandStandIn } from "./command";
import type { CommandExecutor } from "./command-executor";
import { hcloudStandIn } from "./hcloud";
import type { HcloudWorld } from "./hcloud-world";
import { tlsStandIn, type TlsStandInOptions } from "./tls";

export interface StandInWorlds {
  hcloud: HcloudWorld;
  cloudflare: CloudflareWorld;
  /** the tls provider's clock (certificate validity and renewal) */
  tls?: TlsStandInOptions;
}

export type StandInPackage = "tls" | "hcloud" | "cloudflare" | "command";

export function standInProviders(worlds: StandInWorlds, executor: CommandExecutor): Record<StandInPackage, ProviderStandIn> {
  return {
    tls: tlsStandIn(worlds.tls),
    hcloud: hcloudStandIn(worlds.hcloud),
    cloudflare: cloudflareStandIn(worlds.cloudflare),
    command: commandStandIn(executor),
  };
}

/** The package a resource type or invoke token belongs to. */
export function packageOf(typeOrToken: string): string {
  return typeOrToken.split(":")[0];
}

export { HcloudWorld } from "./hcloud-world";
export type { HcloudWorldOptions, MachineBackend, MachineView, VolumeView } from "./hcloud-world";
export { CloudflareWorld } from "./cloudflare-world";
export type { CloudflareWorldOptions, CloudflareRecord, CloudflareZone, RecordChange } from "./cloudflare-world";
export { startCloudflareApi, type CloudflareApiServer, type CloudflareApiOptions, type CloudflareToken } from "./cloudflare-http";
export {
  RecordingExecutor,
  type CommandExecutor,
  type RecordedCall,
  type SshConnection,
  type RemoteRun,
  type RemoteCopy,
  type LocalRun,
  type CopySource,
} from "./command-executor";
export { RealCommandExecutor, SshCommandExecutor, type SshExecutorOptions } from "./ssh-executor";
export { ProviderCallError } from "./property";
