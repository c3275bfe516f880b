// The mailstack Pulumi program: stack config -> validated spec -> MailStack -> stack outputs.
import { defineMailStack } from "./program";

const outputs = defineMailStack();

export const hostname = outputs.hostname;
export const ipv4 = outputs.ipv4;
export const ipv6 = outputs.ipv6;
export const records = outputs.records;
export const dkimPublicKeys = outputs.dkimPublicKeys;
export const hostKey = outputs.hostKey;
export const adoptIds = outputs.adoptIds;
export const acmeAccountUrl = outputs.acmeAccountUrl;
export const backup = outputs.backup;
export const backupRepositoryPassword = outputs.backupRepositoryPassword;
export const backupAdminPrivateKey = outputs.backupAdminPrivateKey;
export const deployerPrivateKey = outputs.deployerPrivateKey;
export const rspamdControllerPassword = outputs.rspamdControllerPassword;
