// The pregreet test on port 25, in front of smtp-server, as Postfix's postscreen(8) runs it:
// a client the server has not seen behave recently waits `greetWaitMs` for the greeting, and one
// that talks before it is a spambot in a hurry (postscreen(8) "Pregreet test": "The SMTP
// protocol is a classic example of a protocol where the server speaks before the client").
// A client that waited is remembered for `greetPassSeconds` and greeted at once on its next
// connections (postconf(5) postscreen_greet_ttl), so the wait is paid once per client and day,
// not once per connection, and it holds nothing but a timer and the socket.
//
// smtp-server (3.21.6, dist/cjs/smtp-connection.js init()) waits a fixed 100 ms before every
// greeting and answers a line sent before it with `421 You talk too soon`; nothing in maild saw
// or logged those clients, and with 20 sessions at a time the pause, not CPU, bounded the rate.
// It has no option for that pause, so this module owns the test and hands a client that passed
// to smtp-server's documented connect() (CHANGELOG 1.x: "pass already established sockets to the
// server") with the pause taken out (greetWithoutPause below).
import type { Socket } from "node:net";
import type { SMTPServer } from "smtp-server";

/**
 * Clients that passed the pregreet test, by IP address (postscreen caches by address too), each
 * until its pass expires. Bounded: past `maxClients` the oldest pass is forgotten (that client
 * waits once more), so a flood of addresses cannot grow it; postscreen's cache is a file with a
 * cleanup interval (postscreen_cache_cleanup_interval), which a process's memory is not.
 */
export class PregreetPassCache {
  /** address → expiry (ms since the epoch); Map order is insertion order, oldest first */
  private readonly passes = new Map<string, number>();

  constructor(
    private readonly settings: () => { ttlMs: number; maxClients: number },
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.passes.size;
  }

  /** True while `ip` has an unexpired pass; an expired one is forgotten here. */
  passed(ip: string): boolean {
    const until = this.passes.get(ip);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.passes.delete(ip);
    return false;
  }

  /** Records a pass for `ip` from now on (postscreen_greet_ttl: the pass lasts that long from the test). */
  pass(ip: string): void {
    const { ttlMs, maxClients } = this.settings();
    this.passes.delete(ip);
    if (ttlMs <= 0 || maxClients <= 0) return;
    this.passes.set(ip, this.now() + ttlMs);
    // every pass lasts equally long, so the first in the Map expires first as well as being oldest
    for (const oldest of this.passes.keys()) {
      if (this.passes.size <= maxClients) break;
      this.passes.delete(oldest);
    }
  }
}

export interface GreetingGateSettings {
  /** how long a client without a pass must wait silently; 0: no test */
  greetWaitMs: number;
  /** how long a pass lasts */
  greetPassSeconds: number;
  /** passes kept at most */
  greetPassClients: number;
}

export interface GreetingGateEvents {
  /** a client talked before its greeting: `bytes` sent `afterMs` after connecting */
  earlyTalker(ip: string, port: number, bytes: number, afterMs: number, text: string): void;
}

/**
 * postscreen's "drop" action for a pregreet failure (postconf(5) postscreen_greet_action: "Drop
 * the connection immediately with a 521 SMTP reply. Repeat this test the next time the client
 * connects"), with postscreen's own text (postscreen_early.c: "521 5.5.1 Protocol error").
 */
export const PREGREET_REFUSAL = "521 5.5.1 Protocol error\r\n";

/** How long an early talker's socket may linger after the refusal before it is destroyed. */
const REFUSED_LINGER_MS = 5_000;

export class GreetingGate {
  readonly passes: PregreetPassCache;
  /** sockets in their wait, with what ends it, so a shutdown can drop them */
  private readonly waiting = new Map<Socket, () => void>();

  constructor(
    private readonly settings: () => GreetingGateSettings,
    private readonly events: GreetingGateEvents,
    now: () => number = Date.now,
  ) {
    this.passes = new PregreetPassCache(() => {
      const s = this.settings();
      return { ttlMs: s.greetPassSeconds * 1000, maxClients: s.greetPassClients };
    }, now);
  }

  /** sockets in their wait now */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /**
   * Lets `socket` through to `admitted` at once if its client has a pass or the test is off;
   * otherwise after greetWaitMs of silence (and records the pass). A client that sends anything
   * first gets the 521 and is never admitted: no session, no pass.
   */
  admit(socket: Socket, admitted: (socket: Socket) => void): void {
    const ip = socket.remoteAddress ?? "";
    const { greetWaitMs } = this.settings();
    if (greetWaitMs <= 0 || this.passes.passed(ip)) return admitted(socket);
    const started = Date.now();
    // a client that resets during its wait is a closed socket, not a daemon failure
    const failed = (): void => {
      done();
      socket.destroy();
    };
    const done = (): void => {
      clearTimeout(timer);
      this.waiting.delete(socket);
      socket.off("data", early);
      socket.off("close", done);
      socket.off("error", failed);
    };
    const early = (chunk: Buffer): void => {
      done();
      // postscreen logs "PREGREET <bytes> after <time> from [address]:port: <text>" (up to 100 characters)
      this.events.earlyTalker(ip, socket.remotePort ?? 0, chunk.length, Date.now() - started, chunk.toString("latin1", 0, 100));
      socket.on("error", () => socket.destroy());
      socket.end(PREGREET_REFUSAL);
      // whatever else arrives is discarded; reading on lets the socket see the client's FIN and close
      socket.resume();
      socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy());
    };
    const timer = setTimeout(() => {
      done();
      this.passes.pass(ip);
      // reading stays paused until smtp-server pipes the socket into its parser
      socket.pause();
      admitted(socket);
    }, greetWaitMs);
    this.waiting.set(socket, done);
    socket.on("data", early);
    socket.once("close", done);
    socket.on("error", failed);
  }

  /** Drops every socket still in its wait (a shutdown: nothing was promised to them yet). */
  close(): void {
    for (const [socket, done] of this.waiting) {
      done();
      socket.destroy();
    }
  }
}

type SmtpConnection = SMTPServer["connections"] extends Set<infer C> ? C : never;

/**
 * Gives `socket` to smtp-server's documented connect() and has it greet now. connect() runs
 * SMTPConnection.init(), which sets up the socket and then calls `this.connectionReady()` from a
 * fixed 100 ms timer (smtp-server 3.21.6 dist/cjs/smtp-connection.js init(); nothing else calls
 * it). The connection's own connectionReady is called here instead and the timer's call finds a
 * no-op: the pause's job is done by GreetingGate before this. connect() adds the connection to
 * the public `connections` Set last (Set order is insertion order).
 */
export function greetWithoutPause(server: SMTPServer, socket: Socket): void {
  server.connect(socket);
  let connection: SmtpConnection | undefined;
  for (const c of server.connections) connection = c;
  if (!connection) return;
  const ready = connection.connectionReady.bind(connection);
  connection.connectionReady = () => undefined;
  ready();
}
