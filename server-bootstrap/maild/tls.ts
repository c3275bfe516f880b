// Certificate and key for STARTTLS, read from the paths in the config at start and on reload.
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks the pair (createSecureContext throws if the key does not match the cert). */
export function loadTls(paths: { certPath: string; keyPath: string }): TlsMaterial {
  const read = (what: string, p: string): Buffer => {
    try {
      return readFileSync(p);
    } catch (e) {
      throw new Error(`tls.${what}: cannot read ${p}: ${(e as Error).message}`);
    }
  };
  const material = { cert: read("certPath", paths.certPath), key: read("keyPath", paths.keyPath) };
  try {
    createSecureContext(material);
  } catch (e) {
    throw new Error(`tls: ${paths.certPath} and ${paths.keyPath} are not a usable certificate and key: ${(e as Error).message}`);
  }
  return material;
}
