// The public component library: `import { MailStack } from "mailstack"`.
export { MailStack, domainPublishingHostRecords } from "./mail-stack";
export type { MailStackArgs, DkimKey, DeployableUser } from "./mail-stack";
export { MailHost, PUBLIC_TCP_PORTS, hostAddressOfV6Network } from "./mail-host";
export type { MailHostArgs } from "./mail-host";
export { MailDomain, recordResourceName } from "./mail-domain";
export { MailDaemon } from "./mail-daemon";
export type { MailDaemonArgs, MailDaemonConnection, MailDaemonDomain, MailDaemonDkimKey } from "./mail-daemon";
export type { MailDomainArgs, HostFactsInput, DkimPublicKeyInput } from "./mail-domain";
export { validateStackConfig, ConfigError } from "./config/validate";
export { SecretValue } from "./config/secret";
export { planDomainRecords, planHostRecords, planPtr } from "./records/plan";
export type * from "./records/types";
export type * from "./spec";
