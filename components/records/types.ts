// A DNS record exactly as Cloudflare stores it, so a preview compares like with like.
export type RecordType = "A" | "AAAA" | "MX" | "TXT" | "CAA" | "SRV" | "TLSA";

export interface CaaData {
  flags: number;
  tag: "issue" | "issuewild" | "iodef";
  value: string;
}
export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}
export interface TlsaData {
  usage: number;
  selector: number;
  matchingType: number;
  certificate: string;
}

export interface PlannedRecord {
  /**
   * Stable identity of the record, independent of its content, e.g. `TXT _dmarc.example.org`,
   * `TXT example.org spf`, `A mail.example.org`, `CAA example.org issue letsencrypt.org`.
   * Components derive Pulumi logical names from it, so changed content is an in-place update.
   */
  key: string;
  /** fully qualified, lowercase, no trailing dot */
  name: string;
  type: RecordType;
  /**
   * Content as Cloudflare stores it: TXT as RFC 1035 quoted strings (<= 255 bytes each, joined by
   * one space); MX/A/AAAA plain; CAA/SRV/TLSA their presentation format (Cloudflare derives it from `data`).
   */
  content: string;
  /** MX preference */
  priority?: number;
  data?: CaaData | SrvData | TlsaData;
  /** 1 = Cloudflare "auto" */
  ttl: number;
  /** Why the record exists, with the RFC. Also written as the Cloudflare record comment. */
  comment: string;
}

/** Facts about the mail host that records depend on. */
export interface HostFacts {
  hostname: string;
  /** the server's IPv4 address */
  ipv4: string;
  /** the server's IPv6 address (the /64 prefix + ::1) */
  ipv6: string;
  /** SHA-256 (hex) of the TLS key's SubjectPublicKeyInfo, for DANE TLSA 3 1 1; absent: no TLSA. */
  tlsSpkiSha256?: string;
  /** ACME account URL for CAA accounturi (RFC 8657); absent: CAA without accounturi. */
  acmeAccountUri?: string;
}

/** Public DKIM keys for one domain, by selector. */
export interface DkimPublicKey {
  selector: string;
  algorithm: "rsa" | "ed25519";
  /** base64 of the RSA SubjectPublicKeyInfo DER, or of the raw 32-byte Ed25519 key (RFC 8463 3.2) */
  publicKeyB64: string;
}
