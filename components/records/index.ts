// The record planner: pure functions from the stack spec and host facts to DNS records.
export * from "./types";
export { canonicalIpv4, canonicalIpv6, reverseName } from "./address";
export { txtContent, parseTxtContent, parseCharacterStrings, MAX_CHARACTER_STRING_BYTES } from "./txt";
export { domainSpf, heloSpf } from "./spf";
export { dkimSelectors, dkimRecordName, dkimTxt, dkimPublicKeyFromPem, publicKeyFromPem, type DkimAlgorithm } from "./dkim";
export { dmarcRecordName, dmarcTxt } from "./dmarc";
export { mtaStsPolicy, mtaStsId, mtaStsTxt, mtaStsPolicyHost, mtaStsRecordName, MTA_STS_MAX_AGE_LIMIT } from "./mta-sts";
export { tlsrptRecordName, tlsrptTxt } from "./tlsrpt";
export { caaProperties, caaContent, type CaaOptions } from "./caa";
export { srvRecords, srvContent, srvPresentation, type SrvRecordSpec } from "./srv";
export { spkiSha256FromPem, tlsaRecordName, tlsaData, tlsaContent } from "./tlsa";
export {
  planHostRecords,
  planDomainRecords,
  planPtr,
  assertUniqueKeys,
  normalizeName,
  AUTO_TTL,
  MAX_COMMENT_LENGTH,
  MX_PRIORITY,
} from "./plan";
export { placeholderHostFacts, placeholderDkimKeys, type PresentFacts } from "./placeholders";
export { renderZone, type ZoneOptions } from "./zone-file";
