// The outbound queue as receiving and submission see it: the durable implementation is
// outbound/queue.ts (OutboundQueue); tests may put something else behind it.

export interface QueueEntry {
  id: string;
  /** fsynced message file (trace headers included); the queue links or copies it, never moves it */
  messagePath: string;
  /** RFC 5321 reverse-path; "" for the null sender */
  sender: string;
  recipients: string[];
  /**
   * false: failures are logged, never reported to the sender, whose address nobody verified
   * (reverse-path.ts); default true
   */
  notifySender?: boolean;
}

export interface RemoteQueue {
  /** false: RCPTs that need the queue are refused with a temporary error */
  readonly accepting: boolean;
  /** durably records the entry (fsync) before resolving; called before the 250 */
  enqueue(entry: QueueEntry): Promise<void>;
  /**
   * Protocol C of delivery.ts: writes `message` into the queue itself (nowhere else has it) and
   * durably records the entry; the entry's existence is the commit point, so `commit` may follow
   * at once. Called before the 250.
   */
  enqueueMessage(entry: Omit<QueueEntry, "messagePath">, message: Buffer): Promise<void>;
  /**
   * The message reached its commit point (delivery.ts): it will be acknowledged, so it may be
   * sent on now. Entries found on disk at start are committed (recovery has already discarded
   * those that were not). Until then an entry must not be delivered: a rollback would otherwise
   * leave a copy out in the world that the client sends again.
   */
  commit(id: string): void;
  /** removes an entry whose message was never acknowledged (crash recovery, refused after DATA) */
  discard(id: string): Promise<void>;
  size(): number;
}
