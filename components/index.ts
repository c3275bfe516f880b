// The public component library: `import { MailStack } from "mailstack"`.
export { MailStack, domainPublishingHostRecords } from "./MailStack";
export type { MailStackArgs, DkimKey, DeployableUser } from "./MailStack";
export { MailHost, PUBLIC_TCP_PORTS, hostAddressOfV6Network } from "./MailHost";
export type { MailHostArgs } from "./MailHost";
export { MailDomain, recordResourceName } from "./MailDomain";
export { MailDaemon } from "./MailDaemon";
export type { MailDaemonArgs, MailDaemonConnection, MailDaemonDomain, MailDaemonDkimKey } from "./MailDaemon";
export type { MailDomainArgs, HostFactsInput, DkimPublicKeyInput } from "./MailDomain";
export { validateStackConfig, ConfigError } from "./config/validate";
export { SecretValue } from "./config/secret";
export { planDomainRecords, planHostRecords, planPtr } from "./records/plan";
export type * from "./records/types";
export type * from "./spec";
