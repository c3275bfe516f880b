// The questions `mailstack init` asks, each with the flag that answers it, its default, and the
// check of an answer: pure, so a terminal and a script get the same judgement. A bad answer is a
// BadAnswer naming what is wrong and how to mend it.
import * as fs from "node:fs";
import { parse } from "yaml";
import { ACME_DIRECTORIES } from "../../components/config/acme";
import {
  DEFAULT_SERVER_TYPE,
  SERVER_LOCATIONS,
  SERVER_TYPE_FAMILIES,
  serverTypeProblem,
  type ServerLocation,
} from "../../components/config/hetzner-offer";
import { isAtOrBelow, normaliseDomain, parseEmail } from "../../components/config/name-syntax";
import { stackFilePath } from "./plan";
import { STACK_NAME } from "./project-dir";
import type { InitAnswers } from "./stack-template";

/** Where each Hetzner location is, for people choosing one. */
export const LOCATION_NAMES: Readonly<Record<ServerLocation, string>> = {
  fsn1: "Falkenstein, Germany",
  nbg1: "Nuremberg, Germany",
  hel1: "Helsinki, Finland",
  ash: "Ashburn, Virginia, USA",
  hil: "Hillsboro, Oregon, USA",
  sin: "Singapore",
};

/** The server types Hetzner sells in a location (components/config/hetzner-offer.ts), by family. */
export function serverTypesIn(location: ServerLocation): string[] {
  return SERVER_TYPE_FAMILIES.filter((f) => f.locations.includes(location)).flatMap((f) => [...f.types]);
}

export const isServerLocation = (text: string): text is ServerLocation => (SERVER_LOCATIONS as readonly string[]).includes(text);

/** A bad answer: said at the prompt (which asks again) or as a usage error for a flag. */
export class BadAnswer extends Error {}

export interface Question<T> {
  /** the flag that answers it */
  flag: string;
  prompt: string;
  /** shown once before the first prompt */
  help?: string;
  default?: string;
  parse(text: string): T;
}

function domainName(text: string, what: string): string {
  const name = normaliseDomain(text);
  if (!name.ok) throw new BadAnswer(`"${text}" is not ${what}: it ${name.reason}`);
  return name.value;
}

export function questions(a: AnswersSoFar) {
  const stack: Question<string> = {
    flag: "stack",
    prompt: "Stack name (stacks/Pulumi.NAME.yaml)",
    parse: (text) => {
      if (!STACK_NAME.test(text)) throw new BadAnswer(`"${text}" is not a stack name: use letters, digits, _ . -`);
      if (stackFileTaken(a.projectDir!, text))
        throw new BadAnswer(`stacks/Pulumi.${text}.yaml exists already; pick another name (init never overwrites)`);
      return text;
    },
  };
  const domains: Question<string[]> = {
    flag: "domain",
    prompt: "Mail domains, comma-separated (e.g. example.org)",
    parse: (text) => {
      const list = text
        .split(",")
        .map((d) => d.trim())
        .filter(Boolean);
      if (list.length === 0) throw new BadAnswer("at least one mail domain is needed");
      const names = list.map((d) => domainName(d, "a domain name"));
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      if (twice !== undefined) throw new BadAnswer(`${twice} is listed twice`);
      return names;
    },
  };
  const zone = (domain: string): Question<string> => ({
    flag: "zone",
    prompt: `Cloudflare zone holding ${domain}'s records`,
    default: domain,
    parse: (text) => {
      const z = domainName(text, "a zone name");
      if (!isAtOrBelow(domain, z))
        throw new BadAnswer(`zone ${z} does not contain ${domain}; the zone is the domain itself or a parent of it`);
      return z;
    },
  });
  const hostname: Question<string> = {
    flag: "hostname",
    prompt: "Mail host name (MX target, HELO and PTR)",
    default: a.domains ? `mail.${a.domains[0]}` : undefined,
    parse: (text) => {
      const host = domainName(text, "a host name");
      const zones = [...new Set(Object.values(a.zones ?? {}))];
      if (!zones.some((z) => isAtOrBelow(host, z)))
        throw new BadAnswer(`${host} is in none of the zones ${zones.join(", ")}; its A/AAAA records must go in one of them`);
      if (a.domains?.includes(host)) throw new BadAnswer(`${host} is also a mail domain; use a host name such as mail.${host}`);
      return host;
    },
  };
  const user: Question<string> = {
    flag: "user",
    prompt: `First mailbox address (e.g. you@${a.domains?.[0] ?? "example.org"})`,
    parse: (text) => {
      const email = parseEmail(text);
      if (!email.ok) throw new BadAnswer(`"${text}" is not an email address: it ${email.reason}`);
      if (!a.domains?.includes(email.value.domain))
        throw new BadAnswer(`${email.value.address} is in none of the mail domains (${a.domains?.join(", ")})`);
      return `${email.value.local.toLowerCase()}@${email.value.domain}`;
    },
  };
  const acmeEmail: Question<string> = {
    flag: "acme-email",
    prompt: "ACME account contact (expiry notices)",
    default: a.user,
    parse: (text) => {
      const email = parseEmail(text);
      if (!email.ok) throw new BadAnswer(`"${text}" is not an email address: it ${email.reason}`);
      return email.value.address;
    },
  };
  const acmeCa: Question<string> = {
    flag: "acme-ca",
    prompt: `ACME CA: ${Object.keys(ACME_DIRECTORIES).join(", ")} or an https:// directory URL`,
    default: "letsencrypt",
    parse: (text) => {
      if (ACME_DIRECTORIES[text]) return text;
      let url: URL | undefined;
      try {
        url = new URL(text);
      } catch {
        url = undefined;
      }
      if (url?.protocol !== "https:")
        throw new BadAnswer(`"${text}" is not one of ${Object.keys(ACME_DIRECTORIES).join(", ")} or an https:// URL`);
      return text;
    },
  };
  const caaIdentity: Question<string> = {
    flag: "caa-identity",
    prompt: "The CA's CAA issuer domain (RFC 8659 4.2, e.g. letsencrypt.org)",
    parse: (text) => domainName(text, "a domain name"),
  };
  const location: Question<ServerLocation> = {
    flag: "location",
    prompt: `Hetzner location: ${SERVER_LOCATIONS.join(", ")}`,
    help: SERVER_LOCATIONS.map((l) => `  ${l.padEnd(5)} ${LOCATION_NAMES[l]}`).join("\n"),
    default: "fsn1",
    parse: (text) => {
      if (!isServerLocation(text)) throw new BadAnswer(`"${text}" is not a Hetzner location; pick one of ${SERVER_LOCATIONS.join(", ")}`);
      return text;
    },
  };
  const offered = a.location ? serverTypesIn(a.location) : [];
  const serverType: Question<string> = {
    flag: "server-type",
    prompt: `Server type sold in ${a.location}: ${offered.join(" ")}`,
    default: a.location ? DEFAULT_SERVER_TYPE[a.location] : undefined,
    parse: (text) => {
      const type = text.trim().toLowerCase();
      const problem = serverTypeProblem(type, a.location!);
      if (problem !== undefined) throw new BadAnswer(`${type} ${problem}`);
      return type;
    },
  };
  return { stack, domains, zone, hostname, user, acmeEmail, acmeCa, caaIdentity, location, serverType };
}

/** The answers so far, and where the project is (for the stack name's check). */
export type AnswersSoFar = { [K in keyof InitAnswers]?: InitAnswers[K] } & { projectDir?: string };

/** A stack file exists and holds config. One holding only what `pulumi stack init` writes (the secrets provider) is kept and completed. */
export function stackFileTaken(projectDir: string, stack: string): boolean {
  const file = stackFilePath(projectDir, stack);
  if (!fs.existsSync(file)) return false;
  let doc: unknown;
  try {
    doc = parse(fs.readFileSync(file, "utf8"));
  } catch {
    return true;
  }
  if (doc === null || doc === undefined) return false;
  return typeof doc !== "object" || Object.keys(doc).some((k) => !SECRETS_PROVIDER_KEYS.includes(k));
}

/** The top-level keys of a stack file that describe its secrets provider (pulumi/pulumi sdk/go/common/workspace/project.go ProjectStack). */
const SECRETS_PROVIDER_KEYS = ["secretsprovider", "encryptedkey", "encryptionsalt"];
