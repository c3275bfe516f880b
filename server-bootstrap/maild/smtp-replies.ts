// smtp-server derives the RFC 3463 enhanced status code of an application's reply from the
// basic code alone (554 -> 5.6.0, 550 -> 5.1.1), which is wrong for most policy refusals
// (relay denied is 5.7.1). Our replies carry their own enhanced code as the first word of the
// text; this makes smtp-server send that instead of adding its guess.
import { SMTPConnection } from "smtp-server/lib/smtp-connection";

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
let installed = false;

export function useOwnEnhancedStatusCodes(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as { send(code: number, data?: unknown, context?: unknown): void };
  const original = proto.send;
  proto.send = function (this: unknown, code: number, data?: unknown, context?: unknown): void {
    if (typeof data === "string" && ENHANCED.test(data)) return original.call(this, code, data, false);
    return original.call(this, code, data, context);
  };
}

/** An error smtp-server turns into a reply: `<code> <enhanced> <text>`. */
export function smtpError(code: number, enhancedAndText: string): Error & { responseCode: number } {
  const e = new Error(enhancedAndText) as Error & { responseCode: number };
  e.responseCode = code;
  return e;
}
