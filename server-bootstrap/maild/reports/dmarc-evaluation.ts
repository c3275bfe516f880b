// What DMARC said about each message we received, kept for the aggregate reports we send
// (RFC 7489 7.2; RFC 9990): the source, the identifiers, the aligned verdicts and the raw SPF and
// DKIM results. One line per message in <dataDir>/reports/dmarc-evaluations/<YYYY-MM-DD>.jsonl by
// UTC day; a day file stops at a bound, and days are deleted once past the retention.
//
// rspamd is the one verifier of incoming mail (issue 16), so the evaluation is read from its
// /checkv2 symbols (`evaluationFromRspamd`), with the author domain from the From field maild read.
import { appendFile, mkdir, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { dkimTrace } from "../spam-verdict";

export interface DmarcEvaluation {
  /** ms since the epoch */
  at: number;
  sourceIp: string;
  /** RFC 5322.From domain */
  headerFrom: string;
  /** RFC 5321.MailFrom domain (or the HELO name for the null sender) */
  envelopeFrom: string;
  /** where the applied DMARC record was found (RFC 9989 3.2.5 DMARC Policy Domain) */
  policyDomain: string;
  /** the DMARC policy we applied: none, quarantine (to Junk) or reject (refused at SMTP); see dispositionFromRspamd */
  disposition: "none" | "quarantine" | "reject";
  dkimAligned: "pass" | "fail";
  spfAligned: "pass" | "fail";
  dkim: { domain: string; selector?: string; result: string }[];
  spf: { domain: string; scope: "mfrom" | "helo"; result: string };
  /**
   * The message went to one of our report addresses: counted in reports but never the reason to
   * send one (mox dmarcdb/eval.go "Optional"), so reports about reports cannot loop.
   */
  optional: boolean;
}

const lower = (s: string | undefined) => (s ?? "").toLowerCase().replace(/\.$/, "");
const domainOf = (address: string) => lower(address.slice(address.lastIndexOf("@") + 1));

export interface EvaluationContext {
  at: number;
  sourceIp: string;
  /** MAIL FROM, "" for the null sender */
  sender: string;
  helo: string;
  disposition: DmarcEvaluation["disposition"];
  optional: boolean;
}

/** rspamd's /checkv2 reply as maild reads it (rspamd-client.ts RspamdReply): symbol name -> options. */
export interface RspamdSymbolsLike {
  symbols: Record<string, { options?: string[] }>;
}

// rspamd 3.4 src/plugins/lua/dmarc.lua: DMARC_POLICY_ALLOW carries [policy domain, policy];
// DMARC_POLICY_REJECT/QUARANTINE/SOFTFAIL carry ["<policy domain> : <reasons>", policy, ...], where
// the reasons name what did not align ("SPF not aligned (relaxed)", "No valid SPF", "DKIM not
// aligned (strict)", "No valid DKIM"). DKIM_TRACE lists each signature's domain and result
// (spam-verdict.ts dkimTrace).
const DMARC_SYMBOLS = ["DMARC_POLICY_ALLOW", "DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE", "DMARC_POLICY_SOFTFAIL"];
const SPF_SYMBOLS: [string, string][] = [
  ["R_SPF_ALLOW", "pass"],
  ["R_SPF_FAIL", "fail"],
  ["R_SPF_SOFTFAIL", "softfail"],
  ["R_SPF_NEUTRAL", "neutral"],
  ["R_SPF_DNSFAIL", "temperror"],
  ["R_SPF_PERMFAIL", "permerror"],
];

/**
 * From rspamd's symbols. rspamd does not say which identifier aligned when DMARC passed, so
 * alignment is recomputed the way dmarc.lua does it in relaxed mode: an identifier aligns when it
 * is the policy domain or below it (the policy domain is where the record was found, the
 * organizational domain for a record inherited from it).
 */
export function evaluationFromRspamd(
  reply: RspamdSymbolsLike,
  ctx: EvaluationContext & { headerFrom: string },
): DmarcEvaluation | undefined {
  const name = DMARC_SYMBOLS.find((s) => s in reply.symbols);
  if (!name) return undefined;
  const options = reply.symbols[name].options ?? [];
  const policyDomain = lower((options[0] ?? "").split(" : ")[0]);
  if (!policyDomain) return undefined;
  const under = (d: string) => d === policyDomain || d.endsWith(`.${policyDomain}`);
  const envelopeFrom = ctx.sender ? domainOf(ctx.sender) : lower(ctx.helo);
  const spfResult = SPF_SYMBOLS.find(([s]) => s in reply.symbols)?.[1] ?? "none";
  const dkim = dkimTrace(reply.symbols);
  const passed = name === "DMARC_POLICY_ALLOW";
  const spfAligned = spfResult === "pass" && under(envelopeFrom);
  const dkimAligned = dkim.some((d) => d.result === "pass" && under(d.domain));
  return {
    at: ctx.at,
    sourceIp: ctx.sourceIp,
    headerFrom: lower(ctx.headerFrom),
    envelopeFrom,
    policyDomain,
    disposition: ctx.disposition,
    // a pass needs one aligned pass (RFC 7489 4.2); a failure has none, whatever we would compute
    dkimAligned: passed && dkimAligned ? "pass" : "fail",
    spfAligned: passed && spfAligned ? "pass" : "fail",
    dkim,
    spf: { domain: envelopeFrom, scope: ctx.sender ? "mfrom" : "helo", result: spfResult },
    optional: ctx.optional,
  };
}

/**
 * The DMARC policy we applied (RFC 7489 7.2.1.1 PolicyEvaluatedType disposition): reject when a
 * failure under an enforced p=reject or p=quarantine was refused, quarantine when one under
 * p=quarantine went to Junk, none otherwise (a pass, p=none, a failure sampled out by pct=, or a
 * failure we delivered anyway). A message refused or filed as spam while DMARC passed was not
 * DMARC's doing: none.
 */
export function dispositionFromRspamd(reply: RspamdSymbolsLike, outcome: { kind: string }): DmarcEvaluation["disposition"] {
  // dmarc.lua marks a failure that pct= sampled out with the option "sampled_out"
  const failedUnder = (symbol: string) => symbol in reply.symbols && !(reply.symbols[symbol].options ?? []).includes("sampled_out");
  const enforced = failedUnder("DMARC_POLICY_REJECT") || failedUnder("DMARC_POLICY_QUARANTINE");
  if (outcome.kind === "reject" && enforced) return "reject";
  if (outcome.kind === "junk" && failedUnder("DMARC_POLICY_QUARANTINE")) return "quarantine";
  return "none";
}

const DAY_MS = 86_400_000;
const FILE_RE = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;

/** The evaluations of recent days, appended as messages arrive. */
export class DmarcEvaluations {
  private readonly dir: string;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    dataDir: string,
    private readonly opts: { retentionDays: number; maxDayBytes: number } = { retentionDays: 3, maxDayBytes: 32 * 1024 * 1024 },
  ) {
    this.dir = join(dataDir, "reports", "dmarc-evaluations");
  }

  /** Appends one evaluation (serialised; a full day drops it and says so). */
  record(e: DmarcEvaluation): Promise<"stored" | "day-full"> {
    const run = this.writing.then(async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o750 });
      const file = join(this.dir, `${new Date(e.at).toISOString().slice(0, 10)}.jsonl`);
      const line = JSON.stringify(e) + "\n";
      const size = await stat(file).then(
        (s) => s.size,
        () => 0,
      );
      if (size + line.length > this.opts.maxDayBytes) return "day-full" as const;
      await appendFile(file, line, { mode: 0o640 });
      return "stored" as const;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  async day(date: string): Promise<DmarcEvaluation[]> {
    await this.writing;
    const text = await readFile(join(this.dir, `${date}.jsonl`), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as DmarcEvaluation];
        } catch {
          return [];
        }
      });
  }

  async expire(now: number): Promise<void> {
    const oldest = new Date(now - this.opts.retentionDays * DAY_MS).toISOString().slice(0, 10);
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const m = FILE_RE.exec(name);
      if (m && m[1] < oldest) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }
}
