// The one path by which maild takes responsibility for a message: receiving (25), submission
// (587/465) and the notices the daemon writes itself (DSNs). The local copies and the outbound
// queue's entry commit together (delivery.ts, protocol B, with the queue's enqueue as its
// `beforeCommit`), or, with no local copy, the queue entry alone is the commit (protocol C); a
// message that is not acknowledged leaves neither a spool file nor a queue entry.
import { pipeline } from "node:stream/promises";
import type { Transform } from "node:stream";
import type { SMTPServerDataStream, SMTPServerSession } from "smtp-server";
import type { Logger, LogFields } from "./log";
import { metrics } from "./metrics";
import { mailboxKey, type Mailbox } from "./router";
import { BareNewlineGuard } from "./bare-newline";
import { ByteLimit } from "./byte-limit";
import { HeaderSection } from "./header-section";
import { parseMailboxField } from "./mailbox-field";
import type { LimitsConfig } from "./config";
import { LargeMessageBusy, LargeMessageTurns } from "./large-messages";
import { newMessageId, type LocalStore } from "./delivery";
import { ReceivedData } from "./received-data";
import { receivedHeader } from "./trace-headers";
import { smtpError } from "./smtp-replies";
import type { RemoteQueue } from "./remote-queue";
import type { StoragePolicy, StorageRefusal } from "./storage-policy";

const RETURN_PATH = /^return-path[ \t]*:/i;

/** DATA up to this size is held in memory while it is checked; larger DATA goes to a spool file. */
const IN_MEMORY_DATA_BYTES = 128 * 1024;

/** The recipients one MAIL transaction has accepted so far, local mailboxes and remote addresses apart. */
export class Recipients {
  readonly mailboxes = new Map<string, Mailbox>();
  readonly remote = new Set<string>();
  /** accepted RCPT commands, each counting once however many mailboxes it reached */
  count = 0;
  /** our domain whose alias forwards this message to remote addresses (the first such RCPT's): the SRS domain */
  forwardedBy: string | undefined;

  add(route: { mailboxes: Mailbox[]; remote: string[]; forwardedBy?: string }): void {
    this.count++;
    for (const mb of route.mailboxes) this.mailboxes.set(mailboxKey(mb), mb);
    for (const r of route.remote) this.remote.add(r);
    this.forwardedBy ??= route.forwardedBy;
  }

  get empty(): boolean {
    return this.mailboxes.size === 0 && this.remote.size === 0;
  }
}

/** A message's DATA, received and checked, not yet stored. */
export interface ReceivedMessage {
  id: string;
  recipients: Recipients;
  /** bytes of DATA */
  bytes: number;
  /** the Delivered-To addresses of its header section, lowercased (RFC 9228: loop detection) */
  deliveredTo: string[];
  /**
   * the domain of the one mailbox in the one From field (RFC 5322.From, the identifier DMARC is
   * about: RFC 7489 3.1); undefined when there is no such field, more than one, or it does not hold
   * exactly one mailbox
   */
  authorDomain: string | undefined;
  /** the DATA when it stayed in memory; otherwise it is in the spool file the store names by id */
  held: Buffer[] | undefined;
  rawPath: string;
}

export interface AcceptRequest {
  id: string;
  /** the DATA (as received, or as rewritten by the caller); when absent, the spilled spool file */
  held?: Buffer[] | undefined;
  /** trace header fields (and signatures) to put on top, each ending in CRLF */
  prepend: string;
  /** header fields of the DATA to drop (e.g. forged Authentication-Results) */
  dropHeader?: (field: string) => boolean;
  mailboxes: Mailbox[];
  /** a folder of each local mailbox instead of its inbox (spam: JUNK_FOLDER) */
  folder?: string;
  remote: string[];
  /** RFC 5321 reverse-path of the queue entry; "" for the null sender */
  sender: string;
  /** false: the queue reports no failure to `sender` (reverse-path.ts); default true */
  notifySender?: boolean;
}

/** `refuse` counts a refusal under its reason and makes the SMTP reply (SmtpListeners.refuse). */
export type Refuse = (reason: string, code: number, text: string) => Error;

export class MessageAcceptor {
  private readonly turns: LargeMessageTurns;

  constructor(
    private readonly store: LocalStore,
    private readonly queue: RemoteQueue,
    private readonly log: Logger,
    limits: () => LimitsConfig,
    /** quotas and the free-space reserve; absent: neither is checked */
    readonly storage?: StoragePolicy,
  ) {
    this.turns = new LargeMessageTurns(limits);
  }

  /**
   * Waits for the turn of what follows a message's final dot (its checks, then storing it): none
   * for an ordinary message, in arrival order for a large one (large-messages.ts), shared by
   * receiving and submission. Returns what ends the turn. A large message that gets no turn in
   * time is refused with a temporary failure.
   */
  async turn(received: ReceivedMessage, fields: LogFields, refuse: Refuse): Promise<() => void> {
    try {
      return await this.turns.begin(received.bytes);
    } catch (e) {
      if (!(e instanceof LargeMessageBusy)) throw e;
      this.log.warn("accept.large_message_busy", { ...fields, bytes: received.bytes, queued: this.turns.queued });
      throw refuse("large-message-busy", 451, "4.3.2 Too many large messages at once, try again later");
    }
  }

  /**
   * Storage checks before DATA (storage-policy.ts): at MAIL FROM (`mailboxes` undefined) the free
   * space for the size the client declared (RFC 1870 SIZE), at RCPT the recipient's mailboxes.
   * A check that cannot be made lets the mail through: the mail matters more than the figure.
   */
  async storageBeforeData(session: SMTPServerSession, mailboxes?: Mailbox[]): Promise<StorageRefusal | undefined> {
    if (!this.storage) return undefined;
    const declared = declaredSize(session);
    try {
      return mailboxes === undefined ? await this.storage.roomFor(declared ?? 0) : await this.storage.rcpt(mailboxes, declared);
    } catch (e) {
      this.log.warn("storage.check_failed", { session: session.id, error: (e as Error).message });
      return undefined;
    }
  }

  /** false: recipients that need the outbound queue get a temporary refusal at RCPT */
  get acceptsRemote(): boolean {
    return this.queue.accepting;
  }

  newId(): string {
    return newMessageId();
  }

  /**
   * Reads DATA through the checks every SMTP service applies (whole, within the size limits, no bare
   * CR or LF, not looping, at least one recipient), with `taps` seeing every byte that passes the
   * limits. Throws SMTP refusals; the caller's `refused` cleans up.
   */
  async receive(
    id: string,
    stream: SMTPServerDataStream,
    recipients: Recipients | undefined,
    opts: { service: string; limits: LimitsConfig; taps?: Transform[]; fields: LogFields; refuse: Refuse },
  ): Promise<ReceivedMessage> {
    const { limits } = opts;
    const rawPath = this.store.rawPath(id);
    const guard = new BareNewlineGuard();
    const limit = new ByteLimit(limits.maxMessageBytes);
    // first after the size limit: nothing downstream ever holds more of the header section than the cap
    const header = new HeaderSection(Math.min(limits.maxHeaderBytes, limits.maxMessageBytes));
    const data = new ReceivedData(rawPath, IN_MEMORY_DATA_BYTES);
    try {
      await pipeline([stream, guard, limit, header, ...(opts.taps ?? []), data]);
    } catch (e) {
      this.log.info(`${opts.service}.data_aborted`, { ...opts.fields, error: (e as Error).message });
      throw opts.refuse("data-aborted", 451, "4.3.0 Message not received in full");
    }
    if (!recipients || recipients.empty) throw smtpError(503, "5.5.1 No valid recipients");
    if (limit.exceeded || stream.sizeExceeded) {
      this.log.info(`${opts.service}.too_big`, { ...opts.fields, bytes: limit.bytes });
      throw opts.refuse("size", 552, `5.3.4 Message exceeds the size limit of ${limits.maxMessageBytes} bytes`);
    }
    const tooBig = this.storage?.afterData([...recipients.mailboxes.values()], limit.bytes);
    const room = tooBig ?? (await this.storageBeforeStore(limit.bytes, opts.fields));
    if (room) throw opts.refuse(room.reason, room.code, room.text);
    const bare = guard.detector.found;
    if (bare) {
      this.log.warn(`${opts.service}.bare_newline`, { ...opts.fields, kind: bare });
      throw opts.refuse(
        "bare-newline",
        550,
        `5.5.2 Message refused: bare ${bare === "bare-lf" ? "<LF>" : "<CR>"} received; lines must end in <CR><LF> (RFC 5321 2.3.8)`,
      );
    }
    if (header.exceeded) {
      this.log.info(`${opts.service}.header_too_big`, { ...opts.fields, headerBytes: header.bytes });
      // RFC 3463 X.3.4: message too big for system
      throw opts.refuse("header-size", 552, `5.3.4 Message header section exceeds the limit of ${limits.maxHeaderBytes} bytes`);
    }
    if (header.hops > limits.maxHops) {
      this.log.warn(`${opts.service}.too_many_hops`, { ...opts.fields, hops: header.hops });
      // RFC 5321 6.3; RFC 3463 X.4.6: routing loop detected
      throw opts.refuse("loop", 554, `5.4.6 Too many hops (${header.hops} Received header fields): mail loop`);
    }
    const author = header.from.length === 1 ? parseMailboxField(header.from[0]) : undefined;
    return {
      id,
      recipients,
      bytes: limit.bytes,
      deliveredTo: header.deliveredTo,
      // the header section is read as latin1 (one code unit per byte); RFC 6532 allows UTF-8 there
      authorDomain: author?.ok ? Buffer.from(author.domain, "latin1").toString("utf8") : undefined,
      held: data.held,
      rawPath,
    };
  }

  /**
   * Stores the message in its local mailboxes and queues it for its remote recipients, committed as
   * one; resolves once that is durable, so the caller may acknowledge. On failure nothing is left.
   */
  async accept(req: AcceptRequest): Promise<{ size: number }> {
    const remote = req.remote;
    let enqueued = false;
    const drop = req.dropHeader;
    const entry = {
      id: req.id,
      sender: req.sender,
      recipients: remote,
      ...(req.notifySender === false ? { notifySender: false } : {}),
    };
    try {
      const { size } = await this.store.store({
        id: req.id,
        rawPath: this.store.rawPath(req.id),
        ...(req.held ? { held: req.held } : {}),
        prepend: req.prepend,
        mailboxes: req.mailboxes,
        // RFC 5321 4.4: the final delivery writes Return-Path (the reverse-path, "<>" for the null
        // sender) at the top; one that arrives with the message was not written by a delivery
        // and is dropped, as Postfix's cleanup does. RFC 9228: Delivered-To names the mailbox, so
        // a message that comes back to it is recognised as a loop (inbound.ts).
        perMailbox: (mb) => `Return-Path: <${req.sender}>\r\nDelivered-To: ${mailboxKey(mb)}\r\n`,
        dropHeader: (field) => RETURN_PATH.test(field) || (drop?.(field) ?? false),
        ...(req.folder !== undefined ? { folder: req.folder } : {}),
        ...(remote.length > 0
          ? {
              beforeCommit: async (messagePath: string) => {
                await this.queue.enqueue({ ...entry, messagePath });
                enqueued = true;
              },
              queueMessage: async (message: Buffer) => {
                await this.queue.enqueueMessage(entry, message);
                enqueued = true;
              },
            }
          : {}),
      });
      if (remote.length > 0) this.queue.commit(req.id);
      this.storage?.delivered(req.mailboxes, size);
      metrics.delivered.inc({}, req.mailboxes.length);
      return { size };
    } catch (e) {
      // enqueued but the local commit failed: not acknowledged, so the queue must not send it
      if (enqueued)
        await this.queue.discard(req.id).catch((err: Error) => this.log.error("queue.discard_failed", { id: req.id, error: err.message }));
      throw e;
    }
  }

  private async storageBeforeStore(bytes: number, fields: LogFields): Promise<StorageRefusal | undefined> {
    try {
      return await this.storage?.roomFor(bytes);
    } catch (e) {
      this.log.warn("storage.check_failed", { ...fields, error: (e as Error).message });
      return undefined;
    }
  }

  /**
   * After a refusal or failure between DATA and the reply: drops what the message left behind and
   * returns the reply to send; an error that is not already an SMTP reply is logged and answered
   * with a temporary failure, so the client tries again.
   */
  async refused(id: string, e: unknown, service: string, fields: LogFields, refuse: Refuse): Promise<Error> {
    await this.store.discard(id);
    if ((e as { responseCode?: number }).responseCode) return e as Error;
    this.log.error(`${service}.store_error`, { ...fields, error: (e as Error).message });
    return refuse("store-error", 451, "4.3.0 Local error storing the message, try again later");
  }
}

/** The SIZE= the client declared at MAIL FROM (RFC 1870), if any. */
function declaredSize(session: SMTPServerSession): number | undefined {
  const from = session.envelope.mailFrom;
  const args = from ? (from.args as Record<string, string> | false) : false;
  const size = args ? Number(args.SIZE) : NaN;
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

/** The RFC 5321 4.4 Received field for a message taken in on `session`. */
export function sessionReceived(session: SMTPServerSession, hostname: string, id: string, protocol: string): string {
  const tls = session.secure && session.tlsOptions ? session.tlsOptions : undefined;
  return receivedHeader({
    helo: session.hostNameAppearsAs || "",
    clientIp: session.remoteAddress,
    hostname,
    protocol,
    ...(tls ? { tls: { version: tls.version, cipher: tls.standardName || tls.name } } : {}),
    id,
    date: new Date(),
  });
}
