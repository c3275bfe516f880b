// SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489/9989) and ARC (RFC 8617) verification of a
// received message with mailauth, reading the spooled DATA as a stream. Our part is the policy:
// which verdict refuses the message.
import { createReadStream } from "node:fs";
import { authenticate, type DNSResolver } from "mailauth";

export interface AuthVerdict {
  /** Received-SPF and Authentication-Results fields, each ending in CRLF */
  headers: string;
  spf: string;
  dkim: string[];
  dmarc: string;
  arc: string;
  /** set when the message must be refused: RFC 7489 6.6.2 / 10.3 (reject in SMTP) */
  reject?: { code: number; message: string };
}

export interface AuthInput {
  path: string;
  clientIp: string;
  helo: string;
  /** MAIL FROM, "" for the null sender */
  sender: string;
  hostname: string;
  resolver: DNSResolver;
}

export async function authenticateMessage(input: AuthInput): Promise<AuthVerdict> {
  const res = await authenticate(createReadStream(input.path), {
    ip: input.clientIp,
    helo: input.helo,
    sender: input.sender,
    mta: input.hostname,
    resolver: input.resolver,
    disableBimi: true,
    // trust nothing the message says about where it came from
    trustReceived: false,
  });
  const dmarc = res.dmarc ? res.dmarc.status.result : "none";
  const verdict: AuthVerdict = {
    headers: res.headers,
    spf: res.spf ? res.spf.status.result : "none",
    dkim: (res.dkim.results ?? []).map((r) => r.status.result),
    dmarc,
    arc: res.arc ? res.arc.status.result : "none",
  };
  // The policy mailauth reports already reflects pct/t=y testing and sp/np for subdomains.
  if (res.dmarc && dmarc === "fail" && res.dmarc.policy === "reject") {
    verdict.reject = {
      code: 550,
      message: `5.7.1 Message refused: DMARC policy of ${res.dmarc.status.header?.from ?? res.dmarc.domain} is reject and the message fails DMARC`,
    };
  }
  return verdict;
}
