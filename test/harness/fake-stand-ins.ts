// Small provider stand-ins for the offline engine's tests: strict about what the engine hands them
// (no provider call in preview but check, diff and preview create/update; no unknowns in `up`), and
// recording every call so a test can assert which calls the engine made and in what order.
import * as pulumi from "@pulumi/pulumi";
import {
  Secret,
  Unknown,
  type CallContext,
  type CheckFailure,
  type DiffResult,
  type PropertyMap,
  type PropertyValue,
  type ProviderStandIn,
} from "../../infra/offline/model";
import { diffInputs } from "../../infra/offline/property-diff";
import { containsUnknowns, unwrapSecrets } from "../../infra/offline/property-values";

export interface FakeCall {
  method: "check" | "diff" | "create" | "read" | "update" | "delete" | "invoke";
  /** the resource's name (last URN segment) */
  name: string;
  preview: boolean;
  id?: string;
  olds?: PropertyMap;
  news?: PropertyMap;
  /** when the call started and finished (a counter shared by all fakes of a test) */
  start: number;
  end?: number;
}

export interface FakeOptions {
  /** top-level inputs whose change forces a replacement (the provider's ReplaceKeys) */
  forceNew?: string[];
  /** the provider asks for delete-before-replace on a replacement */
  deleteBeforeReplace?: boolean;
  /** answer DIFF_UNKNOWN and leave the comparison to the engine (like the dynamic host without diff) */
  diffUnknown?: boolean;
  /** output-only properties: unknown in a preview, computed in `up` */
  computed?: Record<string, (inputs: PropertyMap, name: string) => PropertyValue>;
  checkFailures?: (news: PropertyMap) => CheckFailure[];
  /** resources that exist in the cloud, by id, for import */
  existing?: Record<string, { inputs: PropertyMap; outputs: PropertyMap }>;
  /** a create or update of these names fails with this message */
  failOn?: Record<string, string>;
  /** milliseconds each create/update of a name takes */
  delays?: Record<string, number>;
  invoke?: (token: string, args: PropertyMap) => PropertyMap;
}

export const clock = { now: 0, tick: () => ++clock.now };

const nameOf = (ctx: CallContext) => ctx.urn.slice(ctx.urn.lastIndexOf("::") + 2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FakeProvider implements ProviderStandIn {
  readonly calls: FakeCall[] = [];
  private ids = 0;

  constructor(
    readonly pkg: string,
    private readonly options: FakeOptions = {},
  ) {}

  /** the calls of one method, as `name` or `name@preview` */
  callsOf(method: FakeCall["method"]): string[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.name);
  }

  private begin(method: FakeCall["method"], ctx: CallContext, extra: Partial<FakeCall> = {}): FakeCall {
    const call: FakeCall = { method, name: nameOf(ctx), preview: ctx.preview, start: clock.tick(), ...extra };
    this.calls.push(call);
    return call;
  }

  private noUnknownsInUp(ctx: CallContext, what: string, value: PropertyMap) {
    if (!ctx.preview && containsUnknowns(value))
      throw new Error(`${this.pkg} ${what} ${nameOf(ctx)}: an unknown value reached the provider outside a preview`);
  }

  async check(ctx: CallContext, _type: string, olds: PropertyMap | undefined, news: PropertyMap) {
    this.begin("check", ctx, { olds, news }).end = clock.tick();
    this.noUnknownsInUp(ctx, "check", news);
    return { inputs: news, failures: this.options.checkFailures?.(news) ?? [] };
  }

  async diff(
    ctx: CallContext,
    _type: string,
    id: string,
    oldInputs: PropertyMap,
    _oldOutputs: PropertyMap,
    news: PropertyMap,
  ): Promise<DiffResult> {
    this.begin("diff", ctx, { id, olds: oldInputs, news }).end = clock.tick();
    if (this.options.diffUnknown)
      return { changes: "unknown", replaceKeys: [], changedKeys: [], detailedDiff: {}, deleteBeforeReplace: false };
    const d = diffInputs(unwrapSecrets(oldInputs) as PropertyMap, unwrapSecrets(news) as PropertyMap, process.cwd());
    const forceNew = this.options.forceNew ?? [];
    const replaceKeys = d.changedKeys.filter((k) => forceNew.includes(k));
    const detailedDiff = Object.fromEntries(
      Object.entries(d.detailedDiff).map(([p, v]) => [
        p,
        { ...v, replace: forceNew.some((k) => p === k || p.startsWith(`${k}.`) || p.startsWith(`${k}[`)) },
      ]),
    );
    return {
      changes: d.changedKeys.length ? "some" : "none",
      replaceKeys,
      changedKeys: d.changedKeys,
      detailedDiff,
      deleteBeforeReplace: replaceKeys.length > 0 && Boolean(this.options.deleteBeforeReplace),
    };
  }

  private outputs(ctx: CallContext, inputs: PropertyMap): PropertyMap {
    const outs: PropertyMap = { ...inputs };
    for (const [k, f] of Object.entries(this.options.computed ?? {})) outs[k] = ctx.preview ? Unknown : f(inputs, nameOf(ctx));
    return outs;
  }

  async create(ctx: CallContext, _type: string, inputs: PropertyMap) {
    const call = this.begin("create", ctx, { news: inputs });
    this.noUnknownsInUp(ctx, "create", inputs);
    const delay = this.options.delays?.[call.name];
    if (delay) await sleep(delay);
    call.end = clock.tick();
    const failure = this.options.failOn?.[call.name];
    if (failure && !ctx.preview) throw new Error(failure);
    return { id: ctx.preview ? Unknown : `${call.name}-${++this.ids}`, outputs: this.outputs(ctx, inputs) } as {
      id: string | typeof Unknown;
      outputs: PropertyMap;
    };
  }

  async read(ctx: CallContext, _type: string, id: string) {
    this.begin("read", ctx, { id }).end = clock.tick();
    const found = this.options.existing?.[id];
    return found ? { id, inputs: found.inputs, outputs: found.outputs } : undefined;
  }

  async update(ctx: CallContext, _type: string, id: string, oldInputs: PropertyMap, _oldOutputs: PropertyMap, news: PropertyMap) {
    const call = this.begin("update", ctx, { id, olds: oldInputs, news });
    this.noUnknownsInUp(ctx, "update", news);
    const delay = this.options.delays?.[call.name];
    if (delay) await sleep(delay);
    call.end = clock.tick();
    const failure = this.options.failOn?.[call.name];
    if (failure && !ctx.preview) throw new Error(failure);
    return { outputs: this.outputs(ctx, news) };
  }

  async delete(ctx: CallContext, _type: string, id: string) {
    if (ctx.preview) throw new Error(`${this.pkg}: delete ${nameOf(ctx)} called in a preview`);
    this.begin("delete", ctx, { id }).end = clock.tick();
  }

  async invoke(ctx: CallContext, token: string, args: PropertyMap) {
    this.begin("invoke", ctx, { news: args }).end = clock.tick();
    if (!this.options.invoke) throw new Error(`unknown function ${token}`);
    return this.options.invoke(token, args);
  }
}

/** A custom resource of the fake package with declared outputs, as generated SDKs declare them. */
export class FakeResource extends pulumi.CustomResource {
  declare readonly out: pulumi.Output<string>;
  declare readonly value: pulumi.Output<unknown>;
  declare readonly triggers: pulumi.Output<unknown[]>;

  constructor(kind: string, name: string, args: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super(`fake:index:${kind}`, name, { out: undefined, value: undefined, triggers: undefined, ...args }, opts);
  }
}

export class FakeComponent extends pulumi.ComponentResource {
  constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super("fake:index:Component", name, {}, opts);
  }
}

export const secretValue = (v: unknown) => (v instanceof Secret ? v.value : v);
