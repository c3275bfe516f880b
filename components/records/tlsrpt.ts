// SMTP TLS Reporting policy record (RFC 8460).

export function tlsrptRecordName(domain: string): string {
  return `_smtp._tls.${domain}`;
}

/**
 * RFC 8460 3: `v=TLSRPTv1; rua=<uri>[,<uri>]`, with mailto: or https: URIs. Plain email
 * addresses become mailto: URIs; `,` and `!` inside a URI are %-encoded since `,` separates them.
 */
export function tlsrptTxt(rua: string[]): string {
  if (rua.length === 0) throw new Error("tlsrpt.rua: at least one report URI is required (RFC 8460 3)");
  const uris = rua.map((target) => {
    const uri = /^(mailto:|https:\/\/)/i.test(target) ? target : `mailto:${target}`;
    return uri.replace(/[,!;]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  });
  return `v=TLSRPTv1; rua=${uris.join(",")}`;
}
