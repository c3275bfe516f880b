import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import type { StackSpec } from "../../components/spec";
import { ConfigError, validateStackConfig, type ConfigProblem } from "../../components/config/validate";
import { SecretValue } from "../../components/config/secret";
import { readStackFile } from "../../components/config/stack-file";
import { TEST_PASSWORD_HASH } from "../fixtures/password-hash";

// A real argon2id hash (argon2 CLI: -id -t 3 -m 16 -p 1 -e) of a throwaway password.
const HASH = TEST_PASSWORD_HASH;

function minimal(): Record<string, unknown> {
  return {
    hostname: "mail.example.org",
    domains: [{ name: "example.org" }],
    users: [{ address: "alice@example.org", passwordHash: HASH }],
    acme: { email: "alice@example.org" },
  };
}

/** Sets (or with undefined, deletes) the value at a path written like the error paths. */
function setAt(root: Record<string, unknown>, at: string, value: unknown): void {
  const tokens = at.match(/[^.[\]]+/g)!.map((t) => (/^\d+$/.test(t) ? Number(t) : t));
  let node: any = root;
  for (const [i, token] of tokens.slice(0, -1).entries()) {
    if (node[token] === undefined) node[token] = typeof tokens[i + 1] === "number" ? [] : {};
    node = node[token];
  }
  const last = tokens[tokens.length - 1];
  if (value === undefined) delete node[last];
  else node[last] = value;
}

function problemsOf(raw: Record<string, unknown>, opts?: { secretKeys?: ReadonlySet<string> }): ConfigProblem[] {
  try {
    validateStackConfig(raw, opts);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail("validateStackConfig accepted the config");
}

const elevenIncludes = Array.from({ length: 11 }, (_, i) => `spf${i}.example.com`);

interface BadCase {
  name: string;
  set: Record<string, unknown>;
  path: string;
  message: string;
}

const badCases: BadCase[] = [
  { name: "hostname with an empty label", set: { hostname: "mail..example.org" }, path: "hostname", message: "has an empty label" },
  {
    name: "hostname with an underscore",
    set: { hostname: "mail_1.example.org" },
    path: "hostname",
    message: `label "mail_1" may hold only letters, digits and hyphens`,
  },
  {
    name: "hostname in no managed zone",
    set: { hostname: "mail.other.net" },
    path: "hostname",
    message: `"mail.other.net" is in none of the managed zones (example.org)`,
  },
  {
    name: "hostname equal to a mail domain",
    set: { hostname: "example.org" },
    path: "hostname",
    message: "its HELO SPF record would collide with the domain's SPF record",
  },
  { name: "hostname missing", set: { hostname: undefined }, path: "hostname", message: "is required: the mail host's FQDN" },
  {
    name: "misspelt top-level key",
    set: { hostnmae: "mail.example.org" },
    path: "hostnmae",
    message: "unknown key; allowed keys here are hostname, server, domains, users, aliases, acme",
  },
  {
    name: "unknown server location",
    set: { "server.location": "fra1" },
    path: "server.location",
    message: `"fra1" is not one of fsn1|nbg1|hel1|ash|hil|sin`,
  },
  {
    name: "server type of another cloud",
    set: { "server.type": "t2.micro" },
    path: "server.type",
    message: "is not a Hetzner server type; expected cx, cpx, cax or ccx followed by digits",
  },
  {
    name: "a CX type in a US location, where Hetzner sells no CX",
    set: { "server.type": "cx23", "server.location": "ash" },
    path: "server.type",
    message:
      `"cx23" is not offered in "ash" (CX is sold in fsn1, nbg1, hel1 only); ` +
      "in ash use cpx11, cpx21, cpx31, cpx41, cpx51 or ccx13, ccx23, ccx33, ccx43, ccx53, ccx63",
  },
  {
    name: "an ARM type in Singapore",
    set: { "server.type": "cax11", "server.location": "sin" },
    path: "server.type",
    message: `"cax11" is not offered in "sin" (CAX is sold in fsn1, nbg1, hel1 only); in sin use cpx12,`,
  },
  {
    name: "a first-generation CPX type in the EU, where the second generation replaced it",
    set: { "server.type": "cpx11", "server.location": "nbg1" },
    path: "server.type",
    message: `"cpx11" is not offered in "nbg1" (CPX gen 1 is sold in ash, hil only); in nbg1 use cx23, cx33, cx43, cx53 or cax11,`,
  },
  {
    name: "the old default cx22, withdrawn by Hetzner",
    set: { "server.type": "cx22" },
    path: "server.type",
    message:
      `"cx22" is no longer sold (CX gen 2 was withdrawn at the end of 2025 (Hetzner changelog 2025-10-16)); ` +
      "its successor is cx23; in fsn1 use cx23, cx33, cx43, cx53 or cax11",
  },
  {
    name: "a withdrawn CX type in a US location names no EU-only successor",
    set: { "server.type": "cx22", "server.location": "hil" },
    path: "server.type",
    message: `"cx22" is no longer sold (CX gen 2 was withdrawn at the end of 2025 (Hetzner changelog 2025-10-16)); in hil use cpx11,`,
  },
  {
    name: "a server type Hetzner never sold",
    set: { "server.type": "cpx99" },
    path: "server.type",
    message: `"cpx99" is not a server type Hetzner sells; in fsn1 use cx23,`,
  },
  {
    name: "unsupported server image",
    set: { "server.image": "centos-7" },
    path: "server.image",
    message: `"centos-7" is not one of debian-12|ubuntu-24.04|ubuntu-22.04`,
  },
  {
    name: "Debian 13, whose Dovecot 2.4 refuses a 2.3 configuration",
    set: { "server.image": "debian-13" },
    path: "server.image",
    message: `"debian-13" ships Dovecot 2.4, which refuses the Dovecot 2.3 configuration mailstack writes; use debian-12, ubuntu-24.04, ubuntu-22.04`,
  },
  {
    name: "Ubuntu 26.04, whose Dovecot 2.4 refuses a 2.3 configuration",
    set: { "server.image": "ubuntu-26.04" },
    path: "server.image",
    message: `"ubuntu-26.04" ships Dovecot 2.4, which refuses the Dovecot 2.3 configuration mailstack writes`,
  },
  {
    name: "keepOnDestroy not a boolean",
    set: { "server.keepOnDestroy": "always" },
    path: "server.keepOnDestroy",
    message: `expected true or false, got "always"`,
  },
  {
    name: "adopt without the volume",
    set: { "server.adopt": { ipv4: "52418876", ipv6: "52418877" } },
    path: "server.adopt",
    message:
      "needs ipv4, ipv6 and volume together (the primary IPs and the volume a stack with keepOnDestroy left behind); missing: volume",
  },
  {
    name: "adopt with an IP address where the id goes",
    set: { "server.adopt": { ipv4: "198.51.100.25", ipv6: "52418877", volume: "100200300" } },
    path: "server.adopt.ipv4",
    message: `"198.51.100.25" is not a Hetzner id (digits, e.g. 52418876); \`hcloud primary-ip list\` shows it`,
  },
  {
    name: "adopt with a misspelt key",
    set: { "server.adopt": { ipv4: "52418876", ipv6: "52418877", volume: "100200300", volumes: "1" } },
    path: "server.adopt.volumes",
    message: "unknown key; allowed keys here are ipv4, ipv6, volume",
  },
  {
    name: "SSH range with host bits set",
    set: { "server.sshSourceRanges": ["203.0.113.0/24", "10.1.2.3/8"] },
    path: "server.sshSourceRanges[1]",
    message: "has host bits set; the network is 10.0.0.0/8",
  },
  {
    name: "SSH range with a too long IPv6 prefix",
    set: { "server.sshSourceRanges": ["2001:db8::/129"] },
    path: "server.sshSourceRanges[0]",
    message: `prefix length "129" is not an integer from 0 to 128`,
  },
  {
    name: "SSH range that is a bare address",
    set: { "server.sshSourceRanges": ["203.0.113.7"] },
    path: "server.sshSourceRanges[0]",
    message: "write 203.0.113.7/32 for a single address",
  },
  {
    name: "volume below Hetzner's minimum",
    set: { "server.volumeSizeGb": 5 },
    path: "server.volumeSizeGb",
    message: "5 is out of range; expected an integer from 10 to 10240",
  },
  {
    name: "delete protection not a boolean",
    set: { "server.deleteProtection": "yes" },
    path: "server.deleteProtection",
    message: `expected true or false, got "yes"`,
  },
  {
    name: "misspelt server key",
    set: { "server.tpye": "cx22" },
    path: "server.tpye",
    message: "allowed keys here are type, location, image, sshSourceRanges, volumeSizeGb, deleteProtection, keepOnDestroy, adopt",
  },
  { name: "no domains", set: { domains: [] }, path: "domains", message: "at least one mail domain is required" },
  { name: "domain with a space", set: { "domains[0].name": "exa mple.org" }, path: "domains[0].name", message: `contains " "` },
  { name: "domain with one label", set: { "domains[0].name": "localhost" }, path: "domains[0].name", message: "needs at least two labels" },
  {
    name: "domain that is an IP address",
    set: { "domains[0].name": "192.0.2.1" },
    path: "domains[0].name",
    message: `its last label "1" is all digits`,
  },
  {
    name: "domain with an invalid A-label",
    set: { "domains[0].name": "xn--a.org" },
    path: "domains[0].name",
    message: `label "xn--a" is not a valid A-label`,
  },
  {
    name: "duplicate domain after normalisation",
    set: { "domains[1].name": "EXAMPLE.org." },
    path: "domains[1].name",
    message: `"example.org" is listed twice (also domains[0])`,
  },
  {
    name: "zone that does not contain the domain",
    set: { "domains[0].zone": "example.net" },
    path: "domains[0].zone",
    message: `"example.net" does not contain the domain "example.org"`,
  },
  {
    name: "unknown DMARC policy",
    set: { "domains[0].dmarc.policy": "rejct" },
    path: "domains[0].dmarc.policy",
    message: `"rejct" is not one of none|quarantine|reject`,
  },
  {
    name: "unknown DMARC subdomain policy",
    set: { "domains[0].dmarc.subdomainPolicy": "block" },
    path: "domains[0].dmarc.subdomainPolicy",
    message: `"block" is not one of none|quarantine|reject`,
  },
  {
    name: "unknown DKIM alignment",
    set: { "domains[0].dmarc.adkim": "strict" },
    path: "domains[0].dmarc.adkim",
    message: `"strict" is not one of r|s`,
  },
  { name: "unknown SPF alignment", set: { "domains[0].dmarc.aspf": "x" }, path: "domains[0].dmarc.aspf", message: `"x" is not one of r|s` },
  {
    name: "DMARC pct above 100",
    set: { "domains[0].dmarc.pct": 101 },
    path: "domains[0].dmarc.pct",
    message: "101 is out of range; expected an integer from 0 to 100",
  },
  {
    name: "DMARC rua that is not an address",
    set: { "domains[0].dmarc.rua": ["reports"] },
    path: "domains[0].dmarc.rua[0]",
    message: "has no @",
  },
  {
    name: "DMARC rua in a managed domain without a mailbox",
    set: { "domains[0].dmarc.rua": ["reports@example.org"] },
    path: "domains[0].dmarc.rua[0]",
    message: `"reports@example.org" is in a managed domain but is neither a user nor an alias`,
  },
  {
    name: "DMARC ruf in a managed domain without a mailbox",
    set: { "domains[0].dmarc.ruf": ["mailto:Forensic@example.org"] },
    path: "domains[0].dmarc.ruf[0]",
    message: `"forensic@example.org" is in a managed domain but is neither a user nor an alias`,
  },
  {
    name: "misspelt domain key",
    set: { "domains[0].dmarcc": {} },
    path: "domains[0].dmarcc",
    message: "allowed keys here are name, zone, dmarc, spf, mtaSts, tlsrpt, dkim, caa",
  },
  {
    name: "SPF over the lookup limit",
    set: { "domains[0].spf.include": elevenIncludes },
    path: "domains[0].spf.include",
    message: "would need 11 DNS lookups",
  },
  {
    name: "SPF over the limit through nested lookups",
    set: {
      "domains[0].spf.include": [
        { domain: "_spf.google.com", lookups: 4 },
        { domain: "spf.protection.outlook.com", lookups: 7 },
      ],
    },
    path: "domains[0].spf.include",
    message: "would need 11 DNS lookups (_spf.google.com 4, spf.protection.outlook.com 7); RFC 7208 4.6.4 allows at most 10",
  },
  {
    name: "SPF include that is not a domain",
    set: { "domains[0].spf.include": ["spf.example.com", "ip4:192.0.2.1"] },
    path: "domains[0].spf.include[1]",
    message: `"ip4:192.0.2.1" is not a domain an SPF include can name`,
  },
  {
    name: "SPF include with zero lookups",
    set: { "domains[0].spf.include": [{ domain: "spf.example.com", lookups: 0 }] },
    path: "domains[0].spf.include[0].lookups",
    message: "0 is out of range; expected an integer from 1 to 10",
  },
  {
    name: "SPF +all",
    set: { "domains[0].spf.all": "+all" },
    path: "domains[0].spf.all",
    message: "would let every host on the internet send as this domain",
  },
  {
    name: "SPF ?all",
    set: { "domains[0].spf.all": "?all" },
    path: "domains[0].spf.all",
    message: "is neutral, so SPF would protect nothing",
  },
  {
    name: "SPF ip4 holding an IPv6 address",
    set: { "domains[0].spf.ip4": ["2001:db8::1"] },
    path: "domains[0].spf.ip4[0]",
    message: "is not an IPv4 address or CIDR",
  },
  {
    name: "MTA-STS max_age above RFC 8461's limit",
    set: { "domains[0].mtaSts.maxAge": 31557601 },
    path: "domains[0].mtaSts.maxAge",
    message: "31557601 is out of range; expected an integer from 0 to 31557600 seconds (RFC 8461 3.2)",
  },
  {
    name: "MTA-STS max_age under a day",
    set: { "domains[0].mtaSts.maxAge": 3600 },
    path: "domains[0].mtaSts.maxAge",
    message: "3600 seconds is under a day; RFC 8461 3.2 recommends weeks",
  },
  {
    name: "unknown MTA-STS mode",
    set: { "domains[0].mtaSts.mode": "strict" },
    path: "domains[0].mtaSts.mode",
    message: `"strict" is not one of enforce|testing|none`,
  },
  {
    name: "TLSRPT report URL over plain http",
    set: { "domains[0].tlsrpt.rua": ["http://reports.example.net/tlsrpt"] },
    path: "domains[0].tlsrpt.rua[0]",
    message: "is neither an email address nor an https:// URL",
  },
  {
    name: "TLSRPT without report addresses",
    set: { "domains[0].tlsrpt.rua": [] },
    path: "domains[0].tlsrpt.rua",
    message: "RFC 8460 3 requires at least one report address",
  },
  {
    name: "repeated DKIM generation",
    set: { "domains[0].dkim.generations": ["s2", "s2"] },
    path: "domains[0].dkim.generations[1]",
    message: `"s2" is listed twice`,
  },
  {
    name: "DKIM generation with invalid characters",
    set: { "domains[0].dkim.generations": ["S_1"] },
    path: "domains[0].dkim.generations[0]",
    message: "is not a selector generation; use 1 to 40 of a-z 0-9",
  },
  {
    name: "user outside the managed domains",
    set: { "users[0].address": "alice@example.net" },
    path: "users[0].address",
    message: `"alice@example.net" is in none of the managed domains (example.org)`,
  },
  {
    name: "user address with a bad local part",
    set: { "users[0].address": "al..ice@example.org" },
    path: "users[0].address",
    message: "is not an RFC 5322 dot-atom",
  },
  {
    name: "duplicate user differing in case",
    set: {
      users: [
        { address: "alice@example.org", passwordHash: HASH },
        { address: "Alice@Example.ORG", passwordHash: HASH },
      ],
    },
    path: "users[1].address",
    message: `"alice@example.org" is listed twice (addresses compare case-insensitively)`,
  },
  {
    name: "bcrypt password hash",
    set: { "users[0].passwordHash": "$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01" },
    path: "users[0].passwordHash",
    message: `is a "2b" hash; expected an argon2id PHC string`,
  },
  {
    name: "argon2i instead of argon2id",
    set: { "users[0].passwordHash": HASH.replace("argon2id", "argon2i") },
    path: "users[0].passwordHash",
    message: `is a "argon2i" hash`,
  },
  {
    name: "argon2id with a 4-byte salt",
    set: { "users[0].passwordHash": "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$Lsw4zm1ITmFdx9Kt4fL3aW1rNi7TCDLzvs3pWrNqcGA" },
    path: "users[0].passwordHash",
    message: "has a 4-byte salt; at least 8 bytes are required",
  },
  {
    name: "user without a password hash",
    set: { "users[0].passwordHash": undefined },
    path: "users[0].passwordHash",
    message: "is required: an argon2id PHC hash",
  },
  {
    name: "no users at all",
    set: { users: [] },
    path: "users",
    message: "at least one user is required (postmaster@example.org needs a mailbox)",
  },
  {
    name: "alias pointing nowhere",
    set: { aliases: [{ address: "info@example.org", to: ["nobody@example.org"] }] },
    path: "aliases[0].to[0]",
    message: `"nobody@example.org" points nowhere`,
  },
  {
    name: "alias equal to a user",
    set: { aliases: [{ address: "ALICE@example.org", to: ["bob@example.net"] }] },
    path: "aliases[0].address",
    message: `"alice@example.org" is also a user`,
  },
  {
    name: "duplicate aliases",
    set: {
      aliases: [
        { address: "info@example.org", to: ["alice@example.org"] },
        { address: "Info@example.org", to: ["alice@example.org"] },
      ],
    },
    path: "aliases[1].address",
    message: `"info@example.org" is listed twice`,
  },
  {
    name: "aliases forming a loop",
    set: {
      aliases: [
        { address: "a@example.org", to: ["b@example.org"] },
        { address: "b@example.org", to: ["a@example.org"] },
      ],
    },
    path: "aliases[1].to[0]",
    message: "makes a loop: a@example.org -> b@example.org -> a@example.org",
  },
  {
    name: "alias without targets",
    set: { aliases: [{ address: "info@example.org", to: [] }] },
    path: "aliases[0].to",
    message: "an alias needs at least one target",
  },
  {
    name: "catch-all in an unmanaged domain",
    set: { aliases: [{ address: "@example.net", to: ["alice@example.org"] }] },
    path: "aliases[0].address",
    message: `"@example.net" is in none of the managed domains`,
  },
  { name: "acme missing", set: { acme: undefined }, path: "acme", message: "is required: a mapping with email" },
  {
    name: "acme email invalid",
    set: { "acme.email": "hostmaster" },
    path: "acme.email",
    message: `"hostmaster" is not a valid email address`,
  },
  {
    name: "acme directory over plain http",
    set: { "acme.directory": "http://ca.example.net/dir" },
    path: "acme.directory",
    message: "is not one of letsencrypt|letsencrypt-staging and not an https:// URL",
  },
  {
    name: "custom acme directory without CAA identity",
    set: { "acme.directory": "https://ca.example.net/dir" },
    path: "acme.caaIdentity",
    message: "is required with a custom ACME directory",
  },
  {
    name: "CAA identity contradicting Let's Encrypt",
    set: { "acme.caaIdentity": "sectigo.com" },
    path: "acme.caaIdentity",
    message: "would forbid this CA from issuing (its CAA identity is letsencrypt.org)",
  },
  {
    name: "negative mailbox quota",
    set: { "users[0].quotaMiB": -5 },
    path: "users[0].quotaMiB",
    message: "-5 is out of range; expected an integer from 0 to 10485760 (MiB, 0 for none)",
  },
  {
    name: "storage quota in words",
    set: { storage: { quotaMiB: "5 GB" } },
    path: "storage.quotaMiB",
    message: 'expected an integer from 0 to 10485760 (MiB, 0 for none), got "5 GB"',
  },
  {
    name: "free-space reserve as large as the volume",
    set: { storage: { reserveMiB: 10_000 } },
    path: "storage.reserveMiB",
    message: "10000 MiB is the whole 10 GB data volume or more; mail would always be refused",
  },
  {
    name: "unknown storage key",
    set: { storage: { quota: 5 } },
    path: "storage.quota",
    message: "unknown key; allowed keys here are quotaMiB, reserveMiB",
  },
  {
    name: "password hash given as a list",
    set: { "users[0].passwordHash": ["x"] },
    path: "users[0].passwordHash",
    message: "expected an argon2id PHC string, got a list",
  },
  {
    name: "hop limit below the RFC 5321 6.3 range",
    set: { "limits.maxHops": 5 },
    path: "limits.maxHops",
    message: "5 is out of range; expected an integer from 10 to 1000 (Received fields per message)",
  },
  {
    name: "misspelt limit",
    set: { "limits.maxHeaderByte": 65536 },
    path: "limits.maxHeaderByte",
    message: "unknown key; allowed keys here are maxMessageBytes, maxHeaderBytes, maxConnectionsPerIp",
  },
  {
    name: "limits given as a list",
    set: { limits: [1] },
    path: "limits",
    message: "expected a mapping with keys maxMessageBytes, maxHeaderBytes",
  },
  {
    name: "fractional deadline",
    set: { "limits.dataTimeoutSeconds": 1.5 },
    path: "limits.dataTimeoutSeconds",
    message: "expected an integer from 10 to 86400 (seconds from DATA to the final dot), got 1.5",
  },
  {
    name: "spam junk score not below the reject score",
    set: { "spam.rejectScore": 10, "spam.junkScore": 10 },
    path: "spam.junkScore",
    message: "10 is not below rejectScore (10); no message would go to Junk",
  },
  {
    name: "spam score given as words",
    set: { "spam.rejectScore": "high" },
    path: "spam.rejectScore",
    message: 'expected a score (a number from -1000 to 1000, e.g. 6 or 6.5), got "high"',
  },
  {
    name: "greylisting from a score above the junk score",
    set: { "spam.greylist.minScore": 8 },
    path: "spam.greylist.minScore",
    message: "8 is above junkScore (6); set it at most junkScore",
  },
  {
    name: "greylist delay of zero",
    set: { "spam.greylist.delaySeconds": 0 },
    path: "spam.greylist.delaySeconds",
    message: "0 is out of range; expected an integer from 1 to 86400 seconds",
  },
  {
    name: "blocklist without a score",
    set: { "spam.blocklists": [{ zone: "bl.example.net" }] },
    path: "spam.blocklists[0].score",
    message: "is required: added to a listed message's score",
  },
  {
    name: "blocklist checking something unknown",
    set: { "spam.blocklists": [{ zone: "bl.example.net", checks: "url", score: 5 }] },
    path: "spam.blocklists[0].checks",
    message: '"url" is not one of ip|domain',
  },
  {
    name: "blocklist zone listed twice",
    set: {
      "spam.blocklists": [
        { zone: "bl.example.net", score: 5 },
        { zone: "BL.example.net.", score: 6 },
      ],
    },
    path: "spam.blocklists[1].zone",
    message: '"bl.example.net" is listed twice (also spam.blocklists[0])',
  },
  {
    name: "unknown key in the spam section",
    set: { "spam.greylisting": false },
    path: "spam.greylisting",
    message: "unknown key; allowed keys here are rejectScore, junkScore, greylist, blocklists, outbound",
  },
  {
    name: "outbound limit of zero",
    set: { "spam.outbound.perHour": 0 },
    path: "spam.outbound.perHour",
    message: "0 is out of range; expected an integer from 1 to 1000000 messages",
  },
  {
    name: "encrypted value where plain text is needed",
    set: { hostname: new SecretValue("v1:abc") },
    path: "hostname",
    message: "is an encrypted value; only users[].passwordHash may be a secret",
  },
];

describe("validateStackConfig refuses bad input, naming the key and what is allowed", () => {
  test("the table holds at least 30 distinct bad inputs", () => {
    assert.ok(badCases.length >= 30);
    assert.equal(new Set(badCases.map((c) => c.name)).size, badCases.length);
  });
  for (const c of badCases) {
    test(c.name, () => {
      const raw = minimal();
      if (c.path.startsWith("domains[1]") || Object.keys(c.set).some((k) => k.startsWith("domains[1]"))) {
        setAt(raw, "domains[1]", { name: "example.net" });
      }
      for (const [at, value] of Object.entries(c.set)) setAt(raw, at, value);
      const problems = problemsOf(raw);
      assert.deepEqual(
        problems.map((p) => p.path),
        [c.path],
        JSON.stringify(problems),
      );
      assert.ok(
        problems[0].message.includes(c.message),
        `message ${JSON.stringify(problems[0].message)} lacks ${JSON.stringify(c.message)}`,
      );
    });
  }
});

describe("validateStackConfig on good input", () => {
  test("a minimal config gets every documented default", () => {
    const spec = validateStackConfig(minimal());
    const expected: StackSpec = {
      hostname: "mail.example.org",
      server: {
        type: "cx23",
        location: "fsn1",
        image: "debian-12",
        sshSourceRanges: ["0.0.0.0/0", "::/0"],
        volumeSizeGb: 10,
        deleteProtection: false,
        keepOnDestroy: false,
      },
      domains: [
        {
          name: "example.org",
          zone: "example.org",
          dmarc: { policy: "reject", subdomainPolicy: "reject", rua: ["postmaster@example.org"], ruf: [], adkim: "r", aspf: "r", pct: 100 },
          spf: { ip4: [], ip6: [], include: [], all: "-all" },
          mtaSts: { mode: "enforce", maxAge: 604800 },
          tlsrpt: { rua: ["postmaster@example.org"] },
          dkim: { generations: ["s1"] },
          caa: true,
        },
      ],
      users: [{ address: "alice@example.org", passwordHash: HASH }],
      aliases: [{ address: "postmaster@example.org", to: ["alice@example.org"] }],
      acme: {
        email: "alice@example.org",
        directory: "https://acme-v02.api.letsencrypt.org/directory",
        caaIdentity: "letsencrypt.org",
      },
      operations: {
        alertTo: ["postmaster@example.org"],
        digestTime: "06:00",
        admins: [],
        ipBlocklists: ["zen.spamhaus.org", "bl.spamcop.net"],
        domainBlocklists: ["dbl.spamhaus.org"],
        sendReports: true,
      },
      limits: {
        maxMessageBytes: 52428800,
        maxHeaderBytes: 102400,
        maxConnectionsPerIp: 20,
        maxConnections: 500,
        maxMessagesPerIpPerMinute: 120,
        maxRecipients: 100,
        maxFailedRecipients: 20,
        maxHops: 100,
        dataTimeoutSeconds: 600,
        largeMessageBytes: 1048576,
        largeMessageConcurrency: 1,
        sessionTimeoutSeconds: 1800,
        greetWaitMs: 100,
        greetPassSeconds: 86400,
        greetPassClients: 10000,
      },
      spam: {
        rejectScore: 15,
        junkScore: 6,
        greylist: { enabled: true, minScore: 4, delaySeconds: 300 },
        blocklists: [
          { zone: "zen.spamhaus.org", checks: "ip", score: 15 },
          { zone: "dbl.spamhaus.org", checks: "domain", score: 7 },
        ],
        outbound: { burst: 100, perHour: 100 },
      },
      storage: { quotaMiB: 5120, reserveMiB: 256 },
    };
    assert.deepEqual(spec, expected);
  });

  test("limits set in the stack (numbers, or digit strings as pulumi config set stores them) replace only their defaults", () => {
    const raw = minimal();
    raw.limits = { maxHeaderBytes: 65536, sessionTimeoutSeconds: "900" };
    const spec = validateStackConfig(raw);
    assert.equal(spec.limits.maxHeaderBytes, 65536);
    assert.equal(spec.limits.sessionTimeoutSeconds, 900);
    assert.equal(spec.limits.maxHops, 100);
    assert.equal(spec.limits.maxMessageBytes, 52428800);
  });

  test("a spam section keeps what it says and takes the defaults for the rest; an empty blocklist list turns the lists off", () => {
    const raw = minimal();
    setAt(raw, "spam", { junkScore: "5.5", greylist: { enabled: "false" }, blocklists: [], outbound: { perHour: 20 } });
    assert.deepEqual(validateStackConfig(raw).spam, {
      rejectScore: 15,
      junkScore: 5.5,
      greylist: { enabled: false, minScore: 4, delaySeconds: 300 },
      blocklists: [],
      outbound: { burst: 100, perHour: 20 },
    });
  });

  test("a user's own quota and the storage settings are kept", () => {
    const raw = minimal();
    setAt(raw, "users[0].quotaMiB", "0");
    setAt(raw, "storage", { quotaMiB: 1024, reserveMiB: 512 });
    const spec = validateStackConfig(raw);
    assert.equal(spec.users[0].quotaMiB, 0);
    assert.deepEqual(spec.storage, { quotaMiB: 1024, reserveMiB: 512 });
  });

  test("without a type, each location gets the cheapest x86 type Hetzner sells there", () => {
    const typeIn = (location: string) => {
      const raw = minimal();
      setAt(raw, "server.location", location);
      return validateStackConfig(raw).server.type;
    };
    assert.deepEqual(
      ["fsn1", "nbg1", "hel1", "sin", "ash", "hil"].map((l) => [l, typeIn(l)]),
      [
        ["fsn1", "cx23"],
        ["nbg1", "cx23"],
        ["hel1", "cx23"],
        ["sin", "cpx12"],
        ["ash", "cpx11"],
        ["hil", "cpx11"],
      ],
    );
  });

  test("every type/location pair in Hetzner's offer is accepted, ARM and dedicated types included", () => {
    for (const [type, location] of [
      ["cax21", "hel1"],
      ["cpx22", "sin"],
      ["cpx31", "hil"],
      ["ccx13", "ash"],
      ["ccx23", "sin"],
      ["cx53", "nbg1"],
    ]) {
      const raw = minimal();
      setAt(raw, "server", { type, location });
      assert.deepEqual([validateStackConfig(raw).server.type, validateStackConfig(raw).server.location], [type, location]);
    }
  });

  test("keepOnDestroy and adopt are read; ids may be written as numbers, and come out as digit strings", () => {
    const raw = minimal();
    setAt(raw, "server", { keepOnDestroy: "true", adopt: { ipv4: 52418876, ipv6: "52418877", volume: " 100200300 " } });
    const server = validateStackConfig(raw).server;
    assert.equal(server.keepOnDestroy, true);
    assert.deepEqual(server.adopt, { ipv4: "52418876", ipv6: "52418877", volume: "100200300" });
  });

  test("subdomainPolicy defaults to the configured policy", () => {
    const raw = minimal();
    setAt(raw, "domains[0].dmarc.policy", "quarantine");
    assert.equal(validateStackConfig(raw).domains[0].dmarc.subdomainPolicy, "quarantine");
  });

  test("domains, hostnames and managed addresses are lowercased, one trailing dot dropped, IDNs turned into A-labels", () => {
    const raw = minimal();
    raw.hostname = "MAIL.Bücher.Example.";
    raw.domains = [{ name: "Bücher.EXAMPLE.", zone: "BÜCHER.example" }];
    raw.users = [{ address: "Alice@BÜCHER.example", passwordHash: HASH }];
    raw.aliases = [{ address: "Info@bücher.example", to: ["ALICE@bücher.example", "Friend@Elsewhere.EXAMPLE.net"] }];
    raw.acme = { email: "Alice@Bücher.example" };
    const spec = validateStackConfig(raw);
    assert.equal(spec.hostname, "mail.xn--bcher-kva.example");
    assert.equal(spec.domains[0].name, "xn--bcher-kva.example");
    assert.equal(spec.domains[0].zone, "xn--bcher-kva.example");
    assert.equal(spec.users[0].address, "alice@xn--bcher-kva.example");
    // Outside addresses keep their local part: only their own server knows its case rules.
    assert.deepEqual(spec.aliases[0], {
      address: "info@xn--bcher-kva.example",
      to: ["alice@xn--bcher-kva.example", "Friend@elsewhere.example.net"],
    });
    assert.equal(spec.acme.email, "Alice@xn--bcher-kva.example");
  });

  test("a missing postmaster becomes an alias to the domain's first user, else the first user overall", () => {
    const raw = minimal();
    raw.domains = [{ name: "example.org" }, { name: "example.net" }, { name: "example.com" }];
    raw.users = [
      { address: "bob@example.net", passwordHash: HASH },
      { address: "carol@example.com", passwordHash: HASH },
      { address: "dave@example.com", passwordHash: HASH },
    ];
    raw.aliases = [{ address: "postmaster@example.com", to: ["dave@example.com"] }];
    const spec = validateStackConfig(raw);
    assert.deepEqual(spec.aliases, [
      { address: "postmaster@example.com", to: ["dave@example.com"] },
      { address: "postmaster@example.org", to: ["bob@example.net"] },
      { address: "postmaster@example.net", to: ["bob@example.net"] },
    ]);
  });

  test("a report address may be an alias chain's start or the implicit postmaster", () => {
    const raw = minimal();
    raw.aliases = [
      { address: "abuse@example.org", to: ["postmaster@example.org"] },
      { address: "dmarc@example.org", to: ["abuse@example.org"] },
    ];
    setAt(raw, "domains[0].dmarc.rua", ["dmarc@example.org", "mailto:reports@dmarc.example.net"]);
    setAt(raw, "domains[0].tlsrpt.rua", ["postmaster@example.org", "https://tlsrpt.example.net/v1"]);
    const spec = validateStackConfig(raw);
    assert.deepEqual(spec.domains[0].dmarc.rua, ["dmarc@example.org", "reports@dmarc.example.net"]);
    assert.deepEqual(spec.domains[0].tlsrpt.rua, ["postmaster@example.org", "https://tlsrpt.example.net/v1"]);
  });

  test("an encrypted password hash is passed through as the same SecretValue", () => {
    const raw = minimal();
    const secret = new SecretValue("v1:bm9uY2U=:Y2lwaGVydGV4dA==");
    setAt(raw, "users[0].passwordHash", secret);
    const spec = validateStackConfig(raw, { secretKeys: new Set() });
    assert.equal(spec.users[0].passwordHash, secret);
  });

  test("with secretKeys known, a plain-text hash is refused unless users is a secret key", () => {
    const raw = minimal();
    raw.users = [
      { address: "alice@example.org", passwordHash: new SecretValue("v1:x") },
      { address: "bob@example.org", passwordHash: HASH },
    ];
    const problems = problemsOf(raw, { secretKeys: new Set(["acme"]) });
    assert.deepEqual(
      problems.map((p) => p.path),
      ["users[1].passwordHash"],
    );
    assert.match(problems[0].message, /store it encrypted with: mailstack user passwd bob@example\.org /);
    assert.equal(validateStackConfig(raw, { secretKeys: new Set(["users"]) }).users[1].passwordHash, HASH);
  });

  test("without secretKeys (unit use, offline plan) a plain-text hash is accepted", () => {
    assert.equal(validateStackConfig(minimal()).users[0].passwordHash, HASH);
  });

  test("SPF accepts underscore include domains, exactly 10 lookups, and addresses or CIDRs", () => {
    const raw = minimal();
    setAt(raw, "domains[0].spf", {
      ip4: ["192.0.2.10", "198.51.100.0/24"],
      ip6: ["2001:DB8:1::/48"],
      include: ["_spf.google.com", { domain: "spf.protection.outlook.com", lookups: 9 }],
      all: "~all",
    });
    assert.deepEqual(validateStackConfig(raw).domains[0].spf, {
      ip4: ["192.0.2.10", "198.51.100.0/24"],
      ip6: ["2001:db8:1::/48"],
      include: [
        { domain: "_spf.google.com", lookups: 1 },
        { domain: "spf.protection.outlook.com", lookups: 9 },
      ],
      all: "~all",
    });
  });

  test("booleans and integers given as strings (pulumi config set without --type) are read", () => {
    const raw = minimal();
    raw.server = { volumeSizeGb: "20", deleteProtection: "true" };
    setAt(raw, "domains[0].caa", "false");
    const spec = validateStackConfig(raw);
    assert.equal(spec.server.volumeSizeGb, 20);
    assert.equal(spec.server.deleteProtection, true);
    assert.equal(spec.domains[0].caa, false);
  });

  test("a custom ACME directory with its CAA identity is accepted, including an IP host (test CAs)", () => {
    const raw = minimal();
    raw.acme = { email: "alice@example.org", directory: "https://198.51.100.5:14000/dir", caaIdentity: "pebble.test" };
    assert.deepEqual(validateStackConfig(raw).acme, {
      email: "alice@example.org",
      directory: "https://198.51.100.5:14000/dir",
      caaIdentity: "pebble.test",
    });
  });

  test("a mail hostname in a parent zone of the mail domain is accepted", () => {
    const raw = minimal();
    raw.hostname = "mx1.example.org";
    raw.domains = [{ name: "lists.example.org", zone: "example.org" }];
    raw.users = [{ address: "alice@lists.example.org", passwordHash: HASH }];
    const spec = validateStackConfig(raw);
    assert.equal(spec.hostname, "mx1.example.org");
    assert.equal(spec.domains[0].zone, "example.org");
  });
});

describe("ConfigError", () => {
  test("collects every problem and lists each as `path: message` on its own line", () => {
    const raw = minimal();
    setAt(raw, "server.location", "fra1");
    setAt(raw, "domains[0].dmarc.policy", "rejct");
    setAt(raw, "acme.email", "nope");
    let error: unknown;
    try {
      validateStackConfig(raw);
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(
      error.problems.map((p) => p.path),
      ["server.location", "domains[0].dmarc.policy", "acme.email"],
    );
    const lines = error.message.split("\n");
    assert.equal(lines[0], "stack configuration has 3 problems:");
    assert.deepEqual(
      lines.slice(1),
      error.problems.map((p) => `${p.path}: ${p.message}`),
    );
    assert.ok(lines.includes(`domains[0].dmarc.policy: "rejct" is not one of none|quarantine|reject`));
  });

  test("a password hash is never echoed in a message", () => {
    const raw = minimal();
    const leaked = "$argon2id$v=16$m=65536,t=3,p=1$RTM4WUlyZ1k4L042dXdKUjNkWUEzdz09$Lsw4zm1ITmFdx9Kt4fL3aW1rNi7TCDLzvs3pWrNqcGA";
    setAt(raw, "users[0].passwordHash", leaked);
    const problems = problemsOf(raw);
    assert.deepEqual(
      problems.map((p) => p.path),
      ["users[0].passwordHash"],
    );
    assert.ok(problems[0].message.includes("only v=19"));
    assert.ok(!problems[0].message.includes("Lsw4zm1I"));
  });
});

describe("the example stacks", () => {
  const stacks = path.join(__dirname, "..", "..", "stacks");

  test("stacks/Pulumi.dev.yaml validates: two domains in their own zones, staging CA, encrypted hashes", () => {
    const spec = validateStackConfig(readStackFile(path.join(stacks, "Pulumi.dev.yaml")));
    assert.equal(spec.hostname, "mail.example.org");
    assert.deepEqual(
      spec.domains.map((d) => [d.name, d.zone]),
      [
        ["example.org", "example.org"],
        ["example.net", "example.net"],
      ],
    );
    assert.deepEqual([spec.server.type, spec.server.location], ["cx23", "fsn1"]);
    assert.deepEqual(
      spec.users.map((u) => u.address),
      ["alice@example.org", "bob@example.net"],
    );
    assert.ok(spec.users.every((u) => u.passwordHash instanceof SecretValue));
    assert.equal(spec.acme.directory, "https://acme-staging-v02.api.letsencrypt.org/directory");
  });

  test("stacks/Pulumi.prod.yaml validates: one domain, delete protection, restricted SSH, Let's Encrypt", () => {
    const spec = validateStackConfig(readStackFile(path.join(stacks, "Pulumi.prod.yaml")));
    assert.equal(spec.hostname, "mail.example.com");
    assert.deepEqual(
      spec.domains.map((d) => d.name),
      ["example.com"],
    );
    assert.equal(spec.server.deleteProtection, true);
    assert.deepEqual(spec.server.sshSourceRanges, ["203.0.113.0/24", "2001:db8:ffff::/48"]);
    assert.ok(spec.users.every((u) => u.passwordHash instanceof SecretValue));
    assert.equal(spec.acme.directory, "https://acme-v02.api.letsencrypt.org/directory");
  });
});
