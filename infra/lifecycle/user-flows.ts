// The user flows of a deployment's life, in the order a user meets them (issue 13): each is what
// the user edits in the stack file (or the package they upgrade) and the Pulumi commands they run.
import type { FlowResult, Lifecycle } from "./lifecycle";

export interface UserFlow {
  name: string;
  /** what the user does; returns the engine runs it took (a destroy takes an `up` first) */
  run(lc: Lifecycle): Promise<FlowResult[]>;
  /** the flow leaves no server (nothing answers afterwards) */
  leavesNoServer?: boolean;
}

type StackValues = Record<string, unknown>;
const server = (v: StackValues) => v.server as Record<string, unknown>;
const domains = (v: StackValues) => v.domains as Record<string, unknown>[];

/** The banner a new maild build answers with (lifecycle builds change it in the project's daemon source). */
export const NEW_BUILD_BANNER = "ESMTP maild (lifecycle build 2)";

/** Waits until the certificate in the state is due for renewal (two thirds of its lifetime gone, the default). */
export async function untilRenewalDue(lc: Lifecycle, log: (line: string) => void = () => undefined): Promise<void> {
  const cert = lc.certificate();
  if (!cert) throw new Error("untilRenewalDue: the state holds no ACME certificate");
  const due = cert.notAfter.getTime() - (cert.notAfter.getTime() - cert.notBefore.getTime()) / 3;
  const wait = due - Date.now() + 2000;
  if (wait > 0) {
    log(`waiting ${Math.ceil(wait / 1000)} s until the certificate is due for renewal`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

export const USER_FLOWS: UserFlow[] = [
  { name: "first up", run: async (lc) => [await lc.up("first up")] },
  { name: "unchanged up", run: async (lc) => [await lc.up("unchanged up")] },
  {
    name: "add a user",
    run: async (lc) => {
      lc.addUser("carol@example.org");
      return [await lc.up("add a user")];
    },
  },
  {
    name: "add an alias",
    run: async (lc) => [
      await lc.up("add an alias", (v) => (v.aliases as unknown[]).push({ address: "sales@example.org", to: ["carol@example.org"] })),
    ],
  },
  {
    name: "rotate DKIM",
    run: async (lc) => [await lc.up("rotate DKIM", (v) => (domains(v)[0].dkim = { generations: ["s2", "s1"] }))],
  },
  {
    name: "renew the certificate",
    run: async (lc) => {
      await untilRenewalDue(lc);
      return [await lc.up("renew the certificate")];
    },
  },
  {
    name: "new maild build",
    run: async (lc) => {
      // An upgrade of the package brings a new daemon: here, a changed source in the project.
      lc.editProjectFile("server-bootstrap/maild/inbound.ts", (t) =>
        t.replace('banner: "ESMTP maild"', `banner: ${JSON.stringify(NEW_BUILD_BANNER)}`),
      );
      return [await lc.up("new maild build")];
    },
  },
  { name: "resize the server type", run: async (lc) => [await lc.up("resize the server type", (v) => (server(v).type = "cx33"))] },
  {
    name: "replace the server (new image)",
    run: async (lc) => [await lc.up("replace the server (new image)", (v) => (server(v).image = "ubuntu-24.04"))],
  },
  {
    name: "destroy keeping IPs and volume",
    leavesNoServer: true,
    run: async (lc) => {
      // README "Teardown": keepOnDestroy must reach the state with an `up` before the destroy.
      const keep = await lc.up("keep on destroy", (v) => (server(v).keepOnDestroy = true));
      return [keep, await lc.destroy("destroy")];
    },
  },
  {
    name: "come back",
    run: async (lc) => {
      const adopt = lc.lastAdoptIds();
      return [await lc.up("come back", (v) => (server(v).adopt = adopt))];
    },
  },
];
