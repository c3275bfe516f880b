// `npm start -- --lifecycle`: a short version of the lifecycle test (test/integration/lifecycle.test.ts)
// to watch: the real program on the offline engine against a machine that boots like a Hetzner
// server, through four user flows, each checked as the test checks it.
import { Lifecycle } from "./lifecycle";
import { flowProblems } from "./flow-checks";
import { sendMessage, type SentMessage } from "./lifecycle-mail";
import { USER_FLOWS } from "./user-flows";
import { Progress } from "../demo/progress";

export const SHORT_LIFECYCLE = ["first up", "unchanged up", "add a user", "replace the server (new image)"];

/** Runs the short lifecycle; resolves with the problems found (none: every check held). */
export async function runLifecycleDemo(write: (text: string) => void): Promise<string[]> {
  const progress = new Progress(SHORT_LIFECYCLE.length + 1, write);
  const lc = await progress.step(
    "building the local internet: knot, pebble, the Cloudflare and Hetzner stand-ins, a box namespace for servers",
    () => Lifecycle.start(),
    (l) => ({ ok: true, note: `box ${l.hosts.box.ipv4} ${l.hosts.box.ipv6}` }),
  );
  const problems: string[] = [];
  const sent: SentMessage[] = [];
  try {
    for (const name of SHORT_LIFECYCLE) {
      const flow = USER_FLOWS.find((f) => f.name === name)!;
      const found = await progress.step(
        `${name}: preview, up, then the checks`,
        async () => {
          if (lc.backend.current()) sent.push(await sendMessage(lc, "alice@example.org", `sent before "${name}"`));
          const runs = await flow.run(lc);
          const flowIssues = await flowProblems(lc, flow, runs, sent);
          const r = runs[runs.length - 1];
          const changed = r.up.steps.filter((s) => s.op !== "same").length;
          return {
            flowIssues,
            note: `${changed} step(s) acted, ${r.commands.length} command(s) on the box, ${r.dnsApplied.length} DNS change(s)`,
          };
        },
        ({ flowIssues, note }) => ({ ok: flowIssues.length === 0, note: flowIssues.length ? flowIssues[0] : note }),
      );
      problems.push(...found.flowIssues);
    }
  } finally {
    await lc.stop();
  }
  return problems;
}
