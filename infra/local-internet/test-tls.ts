// A throwaway certificate authority and a server certificate signed by it (openssl), for every
// TLS listener of the local internet and the tests: Dovecot, maild, pebble's own HTTPS, the peers.
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { mustRun } from "./netns";

/** openssl req arguments for a new, unencrypted EC P-256 key (the key is written to -keyout). */
export const NEW_EC_KEY: readonly string[] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export interface TestTls {
  caPem: string;
  caPath: string;
  certPath: string;
  keyPath: string;
}

/**
 * A fresh CA (EC P-256) and a server certificate signed by it for `names` (DNS names or IP
 * literals; the first is also the CN). Files are `<label>-ca.pem`, `<label>-cert.pem`,
 * `<label>-key.pem` in `dir`.
 */
export async function makeTestTls(dir: string, names: string[], label = "server"): Promise<TestTls> {
  fs.mkdirSync(dir, { recursive: true });
  const p = (f: string) => path.join(dir, `${label}-${f}`);
  const ec = NEW_EC_KEY;
  await mustRun([
    "openssl",
    "req",
    "-x509",
    ...ec,
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.pem"),
    "-days",
    "30",
    "-subj",
    `/CN=mailstack test CA (${label})`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await mustRun(["openssl", "req", ...ec, "-keyout", p("key.pem"), "-out", p("req.csr"), "-subj", `/CN=${names[0]}`]);
  const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  fs.writeFileSync(
    p("ext.cnf"),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`,
  );
  await mustRun([
    "openssl",
    "x509",
    "-req",
    "-in",
    p("req.csr"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("cert.pem"),
    "-days",
    "30",
    "-extfile",
    p("ext.cnf"),
  ]);
  return { caPem: fs.readFileSync(p("ca.pem"), "utf8"), caPath: p("ca.pem"), certPath: p("cert.pem"), keyPath: p("key.pem") };
}

/**
 * A server certificate for an existing key (`keyPath`) and `names`, signed by the CA in
 * `caCertPath`/`caKeyPath`, valid exactly from `notBefore` to `notAfter` (`YYYYMMDDHHMMSSZ`): for
 * expired or not-yet-valid certificates. Returns the PEM. `openssl ca`, unlike `x509 -req` in
 * OpenSSL 3.0, takes arbitrary validity dates.
 */
export async function issueWithDates(
  dir: string,
  o: { keyPath: string; names: string[]; caCertPath: string; caKeyPath: string; notBefore: string; notAfter: string },
): Promise<string> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => path.join(dir, f);
  fs.writeFileSync(p("index.txt"), "");
  fs.writeFileSync(p("serial"), "1000\n");
  fs.writeFileSync(
    p("ca.cnf"),
    `[ca]\ndefault_ca = test\n[test]\ndatabase = ${p("index.txt")}\nnew_certs_dir = ${dir}\nserial = ${p("serial")}\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n`,
  );
  const san = o.names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  fs.writeFileSync(
    p("ext.cnf"),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`,
  );
  await mustRun(["openssl", "req", "-new", "-key", o.keyPath, "-subj", `/CN=${o.names[0]}`, "-out", p("req.csr")]);
  const out = p("issued.pem");
  await mustRun([
    "openssl",
    "ca",
    "-batch",
    "-config",
    p("ca.cnf"),
    "-cert",
    o.caCertPath,
    "-keyfile",
    o.caKeyPath,
    "-in",
    p("req.csr"),
    "-out",
    out,
    "-startdate",
    o.notBefore,
    "-enddate",
    o.notAfter,
    "-extfile",
    p("ext.cnf"),
    "-notext",
  ]);
  return fs.readFileSync(out, "utf8");
}
