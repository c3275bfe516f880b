/**
 * The benchmark's message: what a real sender's MTA hands over, DKIM-signed by the sending domain,
 * so that every verifier under test does the full work (key lookup, body hash, RSA verification).
 *
 * Signed by dkimpy's `dkimsign` (Debian's python3-dkim), an implementation that is none of the
 * verifiers benchmarked (rspamd, OpenDKIM), with a fresh RSA-2048 key (the size Mail-in-a-Box,
 * docker-mailserver and most senders use: notes/peers.md), relaxed/relaxed canonicalization.
 * smtp-source(1) `-F` sends the file as it is, each line ended by CRLF: the file has LF line ends.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface SignedMessage {
  /** the message file for `smtp-source -F` (LF line ends) */
  file: string;
  /** its size in bytes as sent (CRLF line ends) */
  bytes: number;
  /** the zone-file line publishing the public key: `<selector>._domainkey.<domain>. 300 IN TXT ...` */
  dkimRecord: string;
}

export interface SignedMessageOptions {
  dir: string;
  /** the signing domain (d=), also the From: domain, so DMARC aligns */
  domain: string;
  selector: string;
  from: string;
  to: string;
  /** approximate body size in bytes */
  bodyBytes: number;
}

/** RFC 1035 3.3.14: one TXT character-string holds at most 255 bytes; longer values are several strings. */
function txtStrings(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.join(" ");
}

/** Plain text of about `bytes` bytes in lines of at most 72 characters, as a person's mail reads. */
function bodyText(bytes: number): string {
  const words = "the quarterly report is attached please review the figures before our meeting on thursday and send comments".split(" ");
  const lines: string[] = [];
  let size = 0;
  let line = "";
  for (let i = 0; size < bytes; i++) {
    const word = words[i % words.length];
    if (line.length + word.length + 1 > 72) {
      lines.push(line);
      size += line.length + 2;
      line = "";
    }
    line = line ? `${line} ${word}` : word;
  }
  return lines.join("\n") + "\n";
}

export function makeSignedMessage(o: SignedMessageOptions): SignedMessage {
  fs.mkdirSync(o.dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyFile = path.join(o.dir, "dkim-sender.key");
  fs.writeFileSync(keyFile, privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });
  const unsigned = [
    `From: Load Generator <${o.from}>`,
    `To: <${o.to}>`,
    "Subject: Quarterly figures",
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <bench.${Date.now()}@${o.domain}>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Transfer-Encoding: 7bit",
    "",
    bodyText(o.bodyBytes),
  ].join("\n");
  // dkimsign signs what it reads byte for byte: give it the message as it goes over the wire (CRLF).
  const signed = execFileSync(
    "/usr/bin/dkimsign",
    ["--hcanon", "relaxed", "--bcanon", "relaxed", "--signalg", "rsa-sha256", o.selector, o.domain, keyFile],
    { input: unsigned.replace(/\n/g, "\r\n") },
  ).toString("latin1");
  if (!signed.startsWith("DKIM-Signature:")) throw new Error(`dkimsign did not sign the benchmark message: ${signed.slice(0, 200)}`);
  const lf = signed.replace(/\r\n/g, "\n");
  const file = path.join(o.dir, "message.eml");
  fs.writeFileSync(file, lf);
  const spki = publicKey.export({ type: "spki", format: "der" }).toString("base64");
  return {
    file,
    bytes: Buffer.byteLength(lf.replace(/\n/g, "\r\n"), "latin1"),
    dkimRecord: `${o.selector}._domainkey.${o.domain}. 300 IN TXT ${txtStrings(`v=DKIM1; k=rsa; p=${spki}`)}`,
  };
}
