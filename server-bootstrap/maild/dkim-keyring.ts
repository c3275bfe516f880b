// Which keys sign a domain's outgoing mail, beside the signer (dkim-sign.ts) that uses them.
import { readFile } from "node:fs/promises";
import type { MaildConfig } from "./config";
import type { DkimSigningKey } from "./dkim-sign";

/**
 * The signing keys of each domain, read from the files the config names: the first (newest) key
 * of each algorithm signs. Read again on reload; a key that cannot be read makes submission for
 * its domain fail temporarily rather than send unsigned mail that DMARC p=reject would drop.
 */
export class DkimKeyring {
  private keys = new Map<string, DkimSigningKey[] | Error>();

  async load(config: MaildConfig): Promise<void> {
    const next = new Map<string, DkimSigningKey[] | Error>();
    for (const d of config.domains) {
      const chosen = (["rsa", "ed25519"] as const).flatMap((alg) => d.dkim.filter((k) => k.algorithm === alg).slice(0, 1));
      try {
        next.set(
          d.name,
          await Promise.all(
            chosen.map(async (k) => ({
              domain: d.name,
              selector: k.selector,
              privateKeyPem: await readFile(k.keyPath, "utf8"),
            })),
          ),
        );
      } catch (e) {
        next.set(d.name, new Error(`DKIM key of ${d.name} unreadable: ${(e as Error).message}`));
      }
    }
    this.keys = next;
  }

  get(domain: string): DkimSigningKey[] | Error {
    return this.keys.get(domain) ?? [];
  }
}
