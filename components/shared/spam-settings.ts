// The spam filter's settings, as the stack configuration's `spam` section gives them (components/
// config/spam.ts validates them) and the box's rspamd configuration is written from them
// (server-bootstrap/spam/rspamd-conf.ts). Shared by both sides; imports neither.

/** A DNS blocklist (RFC 5782) rspamd's rbl module asks. */
export interface Blocklist {
  /** the list's DNS zone, e.g. zen.spamhaus.org */
  zone: string;
  /**
   * What is looked up: `ip`, the connecting client's address (a DNSBL); `domain`, the domains of the
   * message's links, From, Reply-To and DKIM signatures (a URIBL/DBL).
   */
  checks: "ip" | "domain";
  /** added to the message's score when it is listed; reaching rejectScore refuses the message */
  score: number;
}

export interface SpamSettings {
  /** a message scoring this or more is refused at DATA (550 5.7.1) */
  rejectScore: number;
  /** a message scoring this or more (and less than rejectScore) goes to the recipient's Junk folder */
  junkScore: number;
  greylist: {
    enabled: boolean;
    /** first-time senders scoring at least this are greylisted (451); lower values greylist more mail */
    minScore: number;
    /** how long a greylisted sender must wait before its retry is accepted */
    delaySeconds: number;
  };
  blocklists: Blocklist[];
  /** per-user limit on submitted messages (a stolen password must not turn the box into a spam cannon): 451 beyond */
  outbound: {
    /** messages a user may send at once before the rate applies (the bucket's size) */
    burst: number;
    /** messages per hour a user may send on average (the rate the bucket drains at) */
    perHour: number;
  };
}

/**
 * Spamhaus ZEN (SBL, XBL, PBL: addresses that send spam, are compromised, or should not send mail
 * directly) refuses at once, as Postfix's `reject_rbl_client zen.spamhaus.org` does; a link or sender
 * domain on Spamhaus DBL sends the message to Junk. Both are free for servers of low volume that
 * query through their own resolver (Spamhaus refuses queries through public resolvers: the box runs
 * unbound for this). Thresholds are rspamd's own defaults (/etc/rspamd/actions.conf); the greylist
 * delay is rspamd's default (modules.d/greylist.conf); the outbound limit lets a person send a burst
 * of 100 messages and then 100 an hour.
 */
export const DEFAULT_SPAM_SETTINGS: SpamSettings = {
  rejectScore: 15,
  junkScore: 6,
  greylist: { enabled: true, minScore: 4, delaySeconds: 300 },
  blocklists: [
    { zone: "zen.spamhaus.org", checks: "ip", score: 15 },
    { zone: "dbl.spamhaus.org", checks: "domain", score: 7 },
  ],
  outbound: { burst: 100, perHour: 100 },
};
