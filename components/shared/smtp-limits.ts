// What one SMTP client may cost maild (ports 25, 587, 465): the limits, declared once with their
// defaults and allowed ranges. maild's validator (server-bootstrap/maild/config.ts, `limits`) and
// the stack's (components/config/limits.ts, `mailstack:limits`) both read this table, so a stack
// the plan accepts never deploys limits the box refuses. Defaults suit a small server on the open
// internet; Postfix's equivalents are named where there is one (postconf(5), Postfix 3.7).

export interface SmtpLimits {
  /** RFC 1870 SIZE: larger messages are refused (552 5.3.4) */
  maxMessageBytes: number;
  /**
   * the header section (up to the first empty line); larger ones are refused (552 5.3.4) before
   * they are stored. maxMessageBytes bounds it too, so either may be lowered alone.
   */
  maxHeaderBytes: number;
  /** concurrent connections from one client: an IPv4 address, or an IPv6 /64 */
  maxConnectionsPerIp: number;
  /** concurrent SMTP connections in total */
  maxConnections: number;
  /** MAIL transactions one client (IPv4 address or IPv6 /64) may start per minute */
  maxMessagesPerIpPerMinute: number;
  /** RCPT commands accepted per message; RFC 5321 4.5.3.1.8 requires at least 100 */
  maxRecipients: number;
  /** refused RCPT commands in one session before it is closed with 421 (address harvesting) */
  maxFailedRecipients: number;
  /** Received fields a message may carry; more is a mail loop (RFC 5321 6.3) */
  maxHops: number;
  /** from DATA to the final dot: a message must arrive within this, however it trickles */
  dataTimeoutSeconds: number;
  /** messages from this size on take turns for the work after their final dot (checks, storing) */
  largeMessageBytes: number;
  /** large messages whose checks and storing run at the same time; the rest wait in arrival order */
  largeMessageConcurrency: number;
  /** from connect to QUIT: a session is closed with 421 after this, however busy it keeps (a DATA under way may finish) */
  sessionTimeoutSeconds: number;
  /** port 25: a client without a pass waits this long for the greeting; one that talks first is refused (521); 0: no test */
  greetWaitMs: number;
  /** port 25: a client that waited is greeted at once for this long afterwards */
  greetPassSeconds: number;
  /** port 25: passes kept at most (the oldest are forgotten first); 0: none kept */
  greetPassClients: number;
}

export interface LimitRule {
  default: number;
  min: number;
  max: number;
  /** for people: the README tables and error messages */
  meaning: string;
}

export const SMTP_LIMITS: { readonly [K in keyof SmtpLimits]: LimitRule } = {
  // Postfix message_size_limit is 10 MB; attachments today are larger, and the size is announced.
  maxMessageBytes: { default: 50 * 1024 * 1024, min: 1024, max: 2 ** 31 - 1, meaning: "bytes of one message (SIZE)" },
  // Postfix header_size_limit (102400) truncates; OpenDKIM MaximumHeaders (65536) refuses. Real
  // mail's header sections are a few KB; a long list of Received and ARC sets stays far below.
  maxHeaderBytes: { default: 102_400, min: 1024, max: 16 * 1024 * 1024, meaning: "bytes of the header section" },
  // Postfix smtpd_client_connection_count_limit is 50; a sending MTA rarely opens more than a few.
  maxConnectionsPerIp: { default: 20, min: 1, max: 100_000, meaning: "concurrent connections per IPv4 address or IPv6 /64" },
  maxConnections: { default: 500, min: 1, max: 100_000, meaning: "concurrent connections in total" },
  maxMessagesPerIpPerMinute: { default: 120, min: 1, max: 10_000_000, meaning: "messages per IPv4 address or IPv6 /64 and minute" },
  maxRecipients: { default: 100, min: 100, max: 100_000, meaning: "recipients per message" },
  // Postfix smtpd_hard_error_limit: 20 errors without a delivered message, then disconnect.
  maxFailedRecipients: { default: 20, min: 1, max: 100_000, meaning: "refused recipients per session" },
  // RFC 5321 6.3: counting Received fields SHOULD use a large threshold, normally at least 100
  // (Postfix's hopcount_limit is 50).
  maxHops: { default: 100, min: 10, max: 1000, meaning: "Received fields per message" },
  // 50 MB within 10 minutes is 85 KB/s: any real sender; a client trickling a byte a minute is cut off.
  dataTimeoutSeconds: { default: 600, min: 10, max: 86_400, meaning: "seconds from DATA to the final dot" },
  // The spam filter parses a whole message (about 1 s of CPU for 8 MB with rspamd 3.4 here), so
  // large ones take turns and ordinary mail never waits behind them (large-messages.ts).
  largeMessageBytes: { default: 1024 * 1024, min: 1024, max: 2 ** 31 - 1, meaning: "bytes from which a message is large" },
  largeMessageConcurrency: { default: 1, min: 1, max: 1000, meaning: "large messages checked at once" },
  // Postfix has no session deadline (only smtpd_timeout per read); without one, clients that send a
  // byte before each idle timeout would hold every connection slot forever.
  sessionTimeoutSeconds: { default: 1800, min: 10, max: 86_400, meaning: "seconds per session" },
  // The pregreet test (greeting-gate.ts). postscreen waits 6 s (postconf(5) postscreen_greet_wait,
  // 2 s under stress); the default keeps the 100 ms smtp-server waited before every greeting, so
  // no first contact waits longer than before, and a wait a client sits out only once per pass
  // may be raised to postscreen's. Up to 30 s: the wait holds a socket outside the connection
  // limits, which count from the greeting on.
  greetWaitMs: { default: 100, min: 0, max: 30_000, meaning: "milliseconds a new client waits for the greeting" },
  // postconf(5) postscreen_greet_ttl: 1d.
  greetPassSeconds: { default: 86_400, min: 0, max: 30 * 86_400, meaning: "seconds a passed pregreet test lasts" },
  // About 100 bytes a pass: 1 MB at the default.
  greetPassClients: { default: 10_000, min: 0, max: 1_000_000, meaning: "clients remembered as having passed the pregreet test" },
};

export const SMTP_LIMIT_KEYS = Object.keys(SMTP_LIMITS) as (keyof SmtpLimits)[];

export const DEFAULT_SMTP_LIMITS: SmtpLimits = Object.fromEntries(
  SMTP_LIMIT_KEYS.map((k) => [k, SMTP_LIMITS[k].default]),
) as unknown as SmtpLimits;
