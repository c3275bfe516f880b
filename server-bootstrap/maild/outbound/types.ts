// The contracts between maild's outbound parts: the queue (spool.ts, scheduler), which decides
// when a message is tried and what happens with each recipient's result, and the transport
// (transport.ts), which makes one delivery attempt to one recipient domain over SMTP.
import type { Logger } from "../log";

/** One delivery attempt: one message, one recipient domain, the recipients there still pending. */
export interface DeliveryAttempt {
  /** queue id, for logs */
  id: string;
  /** lowercase recipient domain (the part after the last "@" of every recipient) */
  domain: string;
  /** RFC 5321 reverse-path; "" is the null sender (DSNs) */
  sender: string;
  recipients: string[];
  /** absolute path of the complete message (headers, DKIM signatures included), CRLF line ends */
  messagePath: string;
  /** size of that file in bytes (SIZE= on MAIL FROM when the server offers SIZE) */
  size: number;
}

/**
 * What happened to one recipient in one attempt.
 * - delivered: a server accepted it (250 after DATA).
 * - deferred: try again later (4xx, connection or TLS failure, DNS temporary failure, policy
 *   temporarily unsatisfiable e.g. MTA-STS enforce without valid TLS).
 * - failed: permanent (5xx from the server, null MX, NXDOMAIN for the domain); the queue bounces.
 */
export interface RecipientResult {
  recipient: string;
  status: "delivered" | "deferred" | "failed";
  /** RFC 3463 status, e.g. "5.1.1", "4.4.1"; also used in the DSN's Status field */
  enhancedCode: string;
  /** human-readable, e.g. the server's reply "550 5.1.1 <bob@x>: user unknown" or our own reason */
  diagnostic: string;
  /** true when `diagnostic` is the remote server's reply (DSN Diagnostic-Code: smtp; ...) */
  remoteReply: boolean;
  /** the MX host that gave this answer (DSN Remote-MTA: dns; ...), when one did */
  remoteMta?: string;
}

export interface Transport {
  /** Never rejects: every failure is a result per recipient. */
  deliver(attempt: DeliveryAttempt): Promise<RecipientResult[]>;
  /** Closes what it keeps open between attempts (cached connections); the queue calls it when it stops. */
  close?(): Promise<void>;
}

/** RFC 8460 result types we count per recipient (policy) domain, for TLSRPT reports later. */
export type TlsResultType =
  | "success"
  | "starttls-not-supported"
  | "certificate-host-mismatch"
  | "certificate-expired"
  | "certificate-not-trusted"
  | "validation-failure"
  | "tlsa-invalid"
  | "dnssec-invalid"
  | "sts-policy-fetch-error"
  | "sts-policy-invalid"
  | "sts-webpki-invalid";

export interface OutboundDeps {
  config: () => import("../config").MaildConfig;
  log: Logger;
}
