// The stack file `mailstack init` writes: the answers as mailstack: config, with comments saying
// what each part is and what is still to do. Pure: answers in, YAML text out.
import { Document, isMap, isScalar } from "yaml";
import { ACME_DIRECTORIES } from "../../components/config/acme";
import type { ServerLocation } from "../../components/config/hetzner-offer";
import { CONFIG_NAMESPACE } from "../stack-config";

export interface InitAnswers {
  stack: string;
  /** mail domains, normalised */
  domains: string[];
  /** the Cloudflare zone of each domain */
  zones: Record<string, string>;
  hostname: string;
  /** the first mailbox */
  user: string;
  acmeEmail: string;
  /** letsencrypt, letsencrypt-staging, or an https:// directory URL */
  acmeDirectory: string;
  /** with a directory URL: the CA's CAA issuer domain */
  caaIdentity?: string;
  location: ServerLocation;
  serverType: string;
}

/** The mailstack: values (namespace stripped), without the password hash pulumi adds. */
export function stackValues(a: InitAnswers): Record<string, unknown> {
  return {
    hostname: a.hostname,
    server: { type: a.serverType, location: a.location },
    domains: a.domains.map((name) => ({ name, zone: a.zones[name] })),
    users: [{ address: a.user }],
    acme: { email: a.acmeEmail, directory: a.acmeDirectory, ...(a.caaIdentity !== undefined ? { caaIdentity: a.caaIdentity } : {}) },
  };
}

export function renderStackFile(a: InitAnswers, written: Date): string {
  const values = stackValues(a);
  const config = Object.fromEntries(Object.entries(values).map(([k, v]) => [`${CONFIG_NAMESPACE}:${k}`, v]));
  const doc = new Document({ config });
  const zones = [...new Set(a.domains.map((d) => a.zones[d]))];
  const ca = ACME_DIRECTORIES[a.acmeDirectory] ? a.acmeDirectory : `${a.acmeDirectory} (CAA identity ${a.caaIdentity})`;
  doc.commentBefore = [
    ` Stack "${a.stack}", written by \`mailstack init\` on ${written.toISOString().slice(0, 10)}: mail for`,
    ` ${a.domains.join(", ")} on ${a.hostname}, a Hetzner ${a.serverType} in ${a.location}, certificates from ${ca}.`,
    "",
    " Still to do before `pulumi up` (secrets are stored encrypted in this file by the Pulumi CLI):",
    "   pulumi config set --secret hcloud:token          # Hetzner Cloud API token (read & write)",
    `   pulumi config set --secret cloudflare:apiToken   # Cloudflare API token: Zone.DNS edit on ${zones.join(", ")}`,
    " Mailboxes and aliases: mailstack user add|passwd|remove ADDRESS, mailstack alias add|remove.",
    " Every mailstack: key and its default is described in the README's configuration reference.",
  ]
    .map((l) => l.trimEnd())
    .join("\n");
  const comments: Record<string, string> = {
    hostname: " The mail host: MX target, HELO name and PTR of both addresses.",
    server: ` The Hetzner server: ${a.serverType} is sold in ${a.location}; \`mailstack init --help\` lists the others.`,
    domains: " Each mail domain and the Cloudflare zone that holds its records.",
    users: " Each user's passwordHash is an argon2id hash, encrypted by `pulumi config set --secret` (mailstack user passwd).",
    acme: " The ACME account contact and the CA that issues the mail host's certificate.",
  };
  const map = doc.get("config", true);
  if (isMap(map)) {
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value).slice(CONFIG_NAMESPACE.length + 1) : "";
      if (isScalar(pair.key) && comments[key] !== undefined) pair.key.commentBefore = comments[key];
    }
  }
  return doc.toString();
}
