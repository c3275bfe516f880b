// The load both SIGKILL crash tests (maild-crash: local delivery; maild-forward-crash: forwarding)
// drive: clients send numbered messages over port 25, one connection at a time each, while the
// daemon is killed with SIGKILL again and again and restarted at once.
import { RawSmtp, type MaildProcess } from "./maild";

export interface CrashLoad {
  host: string;
  rcpt: string;
  /** the message for attempt n, without the terminating "." line */
  body: (n: number) => string;
  /** at least this many messages are sent; the load goes on while the kills last */
  attempts: number;
  workers: number;
  /** SIGKILLs, 200-600 ms apart; afterwards the rest of the load runs to the end undisturbed */
  kills: number;
}

export interface CrashLoadResult {
  /** attempts answered 250 at the end of DATA */
  acked: Set<number>;
  /** attempts whose end of DATA was sent and got no reply: the kill came in between */
  unanswered: Set<number>;
  /** attempts answered with something other than 250 at the end of DATA */
  refused: number;
  /** attempts cut off anywhere (no reply, or refused) */
  interrupted: number;
  /** attempts made */
  attempted: number;
  kills: number;
}

export async function sendUnderKills(maild: MaildProcess, load: CrashLoad): Promise<CrashLoadResult> {
  const acked = new Set<number>();
  const unanswered = new Set<number>();
  let refused = 0;
  let interrupted = 0;
  let next = 0;
  let killing = true;

  // Any failure (the daemon died) leaves that attempt unacknowledged; the worker reconnects and
  // goes on with the next one.
  const worker = async (): Promise<void> => {
    let c: RawSmtp | undefined;
    while (next < load.attempts || killing) {
      try {
        if (!c || c.isClosed) {
          c = await RawSmtp.connect(load.host, 25);
          if ((await c.reply()).code !== 220 || (await c.command("EHLO load.test")).code !== 250) throw new Error("not ready");
        }
      } catch {
        c?.close();
        c = undefined;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const n = next++;
      try {
        if ((await c.command("MAIL FROM:<load@lax.test>")).code !== 250) throw new Error("MAIL");
        if ((await c.command(`RCPT TO:<${load.rcpt}>`)).code !== 250) throw new Error("RCPT");
        if ((await c.command("DATA")).code !== 354) throw new Error("DATA");
        c.write(load.body(n) + ".\r\n");
        let r;
        try {
          r = await c.reply();
        } catch (e) {
          unanswered.add(n);
          throw e;
        }
        if (r.code === 250) acked.add(n);
        else {
          refused++;
          throw new Error(`end of DATA: ${r.code}`);
        }
      } catch {
        interrupted++;
        c.close();
        c = undefined;
      }
    }
    c?.close();
  };

  let kills = 0;
  const killer = async (): Promise<void> => {
    for (; kills < load.kills; kills++) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 400));
      await maild.kill9();
      await maild.restart();
    }
    killing = false;
  };

  await Promise.all([...Array.from({ length: load.workers }, worker), killer()]);
  return { acked, unanswered, refused, interrupted, attempted: next, kills };
}
