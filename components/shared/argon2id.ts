// Mailbox passwords are stored only as argon2id hashes in the PHC string format
// (https://github.com/P-H-C/phc-string-format): $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>,
// salt and hash in unpadded standard base64. The stack validator, maild's validator and maild's
// login check all read them here.
import { argon2Sync, randomBytes } from "node:crypto";

/** An argon2id PHC string for `password`: fresh 16-byte salt, OWASP's second parameter set (m=19 MiB, t=2, p=1). */
export function argon2idHash(password: string): string {
  const b64 = (b: Buffer) => b.toString("base64").replace(/=+$/, "");
  const salt = randomBytes(16);
  const hash = argon2Sync("argon2id", { message: password, nonce: salt, parallelism: 1, tagLength: 32, memory: 19456, passes: 2 });
  return `$argon2id$v=19$m=19456,t=2,p=1$${b64(salt)}$${b64(hash)}`;
}

/** The shell command the docs and error messages suggest for making a hash. */
export const HASH_COMMAND = `printf %s "$PASSWORD" | argon2 "$(head -c 16 /dev/urandom | base64)" -id -t 3 -m 16 -p 1 -e`;

const PHC = /^\$argon2id\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export interface Argon2idPhc {
  version: number;
  /** KiB */
  memory: number;
  passes: number;
  parallelism: number;
  /** unpadded base64, as written */
  salt: string;
  hash: string;
}

/** The fields of an argon2id PHC string, or undefined when `text` is not one (checked no further). */
export function parseArgon2id(text: string): Argon2idPhc | undefined {
  const m = PHC.exec(text);
  if (m === null) return undefined;
  const [, version, memory, passes, lanes, salt, hash] = m;
  return { version: Number(version), memory: Number(memory), passes: Number(passes), parallelism: Number(lanes), salt, hash };
}

/** Why `text` is not a usable argon2id PHC string, or undefined if it is one. Never echoes the hash. */
export function argon2idProblem(text: string): string | undefined {
  const phc = parseArgon2id(text);
  if (phc === undefined) {
    const scheme = /^\$([a-z0-9-]+)\$/.exec(text)?.[1];
    const what = scheme !== undefined && scheme !== "argon2id" ? `is a "${scheme}" hash` : "is not a PHC string";
    return `${what}; expected an argon2id PHC string $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, made e.g. with: ${HASH_COMMAND}`;
  }
  const { version, memory, passes, parallelism: p, salt, hash } = phc;
  if (version !== 19) return `has argon2 version v=${version}; only v=19 (argon2 1.3) is accepted`;
  // RFC 9106 3.1: 1 <= p <= 2^24-1, t >= 1, m >= 8p KiB, salt >= 8 bytes, tag >= 4 bytes.
  if (p < 1 || p > 0xffffff) return `has p=${p}; parallelism must be from 1 to 16777215 (RFC 9106 3.1)`;
  if (passes < 1) return `has t=${passes}; at least one pass is needed (RFC 9106 3.1)`;
  if (memory < 8 * p || memory > 0xffffffff) return `has m=${memory}; memory must be from 8*p KiB to 2^32-1 KiB (RFC 9106 3.1)`;
  const saltBytes = base64Length(salt);
  const hashBytes = base64Length(hash);
  if (saltBytes === undefined || hashBytes === undefined) return "has a salt or hash that is not unpadded base64";
  if (saltBytes < 8) return `has a ${saltBytes}-byte salt; at least 8 bytes are required (RFC 9106 3.1)`;
  if (hashBytes < 16) return `has a ${hashBytes}-byte hash; at least 16 bytes are expected`;
  return undefined;
}

function base64Length(text: string): number | undefined {
  if (text.length % 4 === 1) return undefined;
  return Math.floor((text.length * 3) / 4);
}
