// Simple stand-ins for the packages the real program uses (tls, hcloud, cloudflare, command and,
// where a test must not reach an ACME CA, pulumi-nodejs), for running infra/program.ts under the
// offline engine. A preview returns the inputs (output-only properties unknown); `up` returns what
// infra/offline/mock-provider.ts answers (real key pairs, Hetzner-like ids, the given addresses).
// They do not encode any provider's replace rules: the provider stand-ins of
// infra/offline/providers/ do.
import * as path from "node:path";
import { Unknown, type PropertyMap, type ProviderStandIn } from "../../infra/offline/model";
import { mockProvider } from "../../infra/offline/mock-provider";
import { diffInputs } from "../../infra/offline/property-diff";
import { unwrapSecrets } from "../../infra/offline/property-values";
import { readStackFile } from "../../components/config/stack-file";
import { configFromStackValues } from "../../infra/cli/plan";

export const ROOT = path.resolve(__dirname, "..", "..");
export const CLOUDFLARE_TOKEN = "cf-token-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210";

const mocks = mockProvider({ ipv4: "198.51.100.25", ipv6Network: "2001:db8:1::", acmeAccountUrl: "https://acme.example/acct/1" });
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

export function programStandIn(pkg: string): ProviderStandIn {
  return {
    pkg,
    async check(_ctx, _type, _olds, news) {
      return { inputs: news, failures: [] };
    },
    async diff(_ctx, _type, _id, oldInputs, _oldOutputs, news) {
      const d = diffInputs(unwrapSecrets(oldInputs) as PropertyMap, unwrapSecrets(news) as PropertyMap, ROOT);
      return {
        changes: d.changedKeys.length ? "some" : "none",
        replaceKeys: [],
        changedKeys: d.changedKeys,
        detailedDiff: d.detailedDiff,
        deleteBeforeReplace: false,
      };
    },
    async create(ctx, type, inputs) {
      if (ctx.preview) return { id: Unknown, outputs: inputs };
      const made = await mocks.newResource({ type, name: nameOf(ctx.urn), inputs, provider: "", custom: true, id: undefined } as Parameters<
        typeof mocks.newResource
      >[0]);
      // every output the real provider returns: @pulumi/command's stdout/stderr, AcmeCertificate's certificate
      const extra =
        pkg === "command"
          ? { stdout: "", stderr: "" }
          : pkg === "pulumi-nodejs"
            ? { certificatePem: "-----BEGIN CERTIFICATE-----\n(stand-in)\n-----END CERTIFICATE-----\n" }
            : {};
      return { id: made.id ?? "", outputs: { ...(made.state as PropertyMap), ...extra } };
    },
    async read() {
      return undefined;
    },
    async update(_ctx, _type, _id, _oldInputs, oldOutputs, news) {
      return { outputs: { ...oldOutputs, ...news } };
    },
    async delete() {},
    async invoke(_ctx, token, args) {
      return (await mocks.call({ token, inputs: args, provider: "" } as Parameters<typeof mocks.call>[0])) as PropertyMap;
    },
  };
}

export const PROGRAM_PACKAGES = ["tls", "hcloud", "cloudflare", "command"];

/** The dev stack's config as the program gets it, with the Cloudflare token set. */
export function devConfig(): { config: Record<string, string>; secretKeys: string[] } {
  const { config, secretKeys } = configFromStackValues(readStackFile(path.join(ROOT, "stacks", "Pulumi.dev.yaml")));
  return { config: { ...config, "cloudflare:apiToken": CLOUDFLARE_TOKEN }, secretKeys: [...secretKeys, "cloudflare:apiToken"] };
}

/** The program as `pulumi` runs it: infra/program.ts's stack, returning the stack outputs. */
export function mailProgram(): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defineMailStack } = require("../../infra/program") as typeof import("../../infra/program");
  const { stack: _stack, ...outputs } = defineMailStack();
  return outputs;
}
