// One run of the offline engine against an old checkpoint: for every registration the program sends,
// the steps the real engine would generate (Check, Diff, same/update/replace, create-before-delete or
// delete-before-replace with its dependents) and their execution through the provider stand-ins;
// after the program, the deletes in antichain waves. Each rule cites pulumi/pulumi at 1b594988
// (SG = pkg/resource/deploy/step_generator.go, ST = step.go, SE = step_executor.go,
// DE = deployment_executor.go, SRC = source_eval.go); /work/research/engine.md has the reading notes.
import { randomUUID } from "node:crypto";
import {
  Secret,
  Unknown,
  UNKNOWN_SENTINEL,
  type CallContext,
  type Checkpoint,
  type DiffResult,
  type EngineDiagnostic,
  type PropertyMap,
  type PropertyValue,
  type ProviderStandIn,
  type ResourceState,
  type Step,
  type StepOp,
} from "./model";
import { Semaphore } from "./concurrency";
import { DependencyGraph, providerUrnOf, scheduleDeletes } from "./dependency-graph";
import { diffInputs, type DetailedDiff } from "./property-diff";
import { formatPropertyPath, parsePropertyPath, pathContains, resetPath } from "./property-path";
import { containsSecrets, deepCopy, deepEquals, isObjectValue, unwrapSecrets } from "./property-values";

export const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";
const PROVIDER_TYPE_PREFIX = "pulumi:providers:";
/** The id of a provider that does not exist yet, in preview (providers.UnknownID = plugin.UnknownStringValue). */
export const UNKNOWN_PROVIDER_ID = UNKNOWN_SENTINEL;

/** What the program asked for in one RegisterResourceRequest. */
export interface Goal {
  type: string;
  name: string;
  /** parent URN; "" for the root stack */
  parent: string;
  custom: boolean;
  remote: boolean;
  inputs: PropertyMap;
  /** undefined when the program did not set it (it is then inherited from the parent) */
  protect?: boolean;
  retainOnDelete?: boolean;
  /** undefined unless set explicitly (deleteBeforeReplaceDefined) */
  deleteBeforeReplace?: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  deletedWith: string;
  replaceWith: string[];
  /** the `import` option */
  importId: string;
  /** alias URNs, already resolved */
  aliases: string[];
  additionalSecretOutputs: string[];
  /** explicit provider reference; "" = the package's default provider */
  provider: string;
  /** the SDK's plugin version (names the default provider) */
  version: string;
}

export interface Registered {
  urn: string;
  id: string;
  outputs: PropertyMap;
}

export interface DeploymentOptions {
  mode: "preview" | "up";
  stack: string;
  project: string;
  checkpoint: Checkpoint;
  /** stand-ins by package (`hcloud`, `pulumi-nodejs`) */
  providers: ReadonlyMap<string, ProviderStandIn>;
  /** asked for a package with no stand-in in `providers` (the CLI loads infra/offline/providers/<pkg>) */
  resolveProvider?: (pkg: string) => ProviderStandIn | undefined;
  /** the config of each package's default provider (`hcloud:token` -> providerConfig.hcloud.token) */
  providerConfig: Readonly<Record<string, PropertyMap>>;
  /** worker pool size (`pulumi up --parallel`) */
  parallel: number;
  /** the Pulumi project directory: relative asset paths resolve against it, as against the CLI's working directory */
  projectDir: string;
}

/** A step-generation error: the engine stops the deployment (result.BailErrorf). */
class Bail extends Error {}

/** ST deleteProtectedError: always continue-on-error (SE L447-449). */
class DeleteProtectedError extends Error {
  constructor(urn: string) {
    super(
      `resource "${urn}" cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the \`protect\` flag ` +
        `from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${urn}'\``,
    );
  }
}

interface EngineDiff {
  changes: "some" | "none";
  replaceKeys: string[];
  changedKeys: string[];
  detailedDiff: DetailedDiff;
  deleteBeforeReplace: boolean;
  /** why, for people: which rule made it a change or a replacement */
  notes: string[];
}

interface Planned {
  op: StepOp;
  /** bookkeeping with no Step shown (update.go isInternalStep: default providers, RemovePendingReplace) */
  internal?: boolean;
  urn: string;
  type: string;
  old?: ResourceState;
  new?: ResourceState;
  provider?: ProviderStandIn;
  reason: string;
  changedKeys?: string[];
  replaceKeys?: string[];
  detailedDiff?: DetailedDiff;
  /** create-replacement of a delete-before-replace: the old state leaves the snapshot once created */
  deleteFirst?: boolean;
  /** delete that is part of a replacement (no protect check) */
  replacing?: boolean;
  /** DBR delete: mark the old state pending replacement instead of dropping it (ST L781-785) */
  pendingReplacement?: boolean;
  ignoreChanges?: string[];
  wave?: number;
}

const typeName = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
const packageOf = (type: string) => (type.startsWith(PROVIDER_TYPE_PREFIX) ? type : type.split(":")[0]);
const isProviderType = (type: string) => type.startsWith(PROVIDER_TYPE_PREFIX);

/**
 * deployment.go generateURN + urn.New (sdk/go/common/resource/urn/urn.go L80-95): the parent's
 * qualified type prefixes the type, except when the parent is the root stack.
 */
export function makeUrn(stack: string, project: string, parent: string, type: string, name: string): string {
  let qualified = type;
  if (parent) {
    const parentType = parent.split("::")[2];
    if (parentType !== ROOT_STACK_TYPE) qualified = `${parentType}$${type}`;
  }
  return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
}

/** providers.ProviderRequest.DefaultName (deploy/providers/provider.go L105-140). */
export function defaultProviderName(version: string): string {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/.exec(version);
  if (!m) return "default";
  const pre = m[4] ? m[4].split(".").map((p) => `_${p}`) : [];
  const build = m[5] ? m[5].split(".").map((b) => `_${b}`) : [];
  return `default_${m[1]}_${m[2]}_${m[3]}${pre.join("")}${build.join("")}`;
}

/**
 * The `%v` of a PropertyValue in a check-failure message (properties.go String: `{%v}` of the value;
 * a computed one prints `output<string>{}`, a secret `&{...}` of its element). A secret with a known
 * value prints as [secret] here: the engine would print the plaintext.
 */
function goValue(value: PropertyValue): string {
  if (value instanceof Secret && value.value === Unknown) return "{&{output<string>{}}}";
  const inner = (v: PropertyValue): string => {
    if (v === Unknown) return "output<string>{}";
    if (v instanceof Secret) return "[secret]";
    if (v === null || v === undefined) return "<nil>";
    if (Array.isArray(v)) return `[${v.map((e) => `{${inner(e)}}`).join(" ")}]`;
    if (isObjectValue(v)) {
      return `map[${Object.keys(v)
        .sort()
        .map((k) => `${k}:{${inner(v[k])}}`)
        .join(" ")}]`;
    }
    return String(v);
  };
  if (value === Unknown) return "output<string>{}";
  if (value instanceof Secret) return "[secret]";
  return `{${inner(value)}}`;
}

export class Deployment {
  readonly steps: Step[] = [];
  readonly diagnostics: EngineDiagnostic[] = [];
  readonly logs: { urn: string; message: string }[] = [];
  stackOutputs: PropertyMap = {};

  private readonly preview: boolean;
  /** the old snapshot (a copy: replacements mark it in place, as the engine does) */
  private readonly base: ResourceState[];
  private readonly baseSet: Set<ResourceState>;
  private readonly graph: DependencyGraph;
  /** live old states by URN (deployment.go: pending deletes are not looked up) */
  private readonly olds = new Map<string, ResourceState>();
  private readonly newStates: ResourceState[] = [];
  private readonly news = new Map<string, ResourceState>();
  private readonly goals = new Map<string, Goal>();
  /** old states that have left the snapshot */
  private readonly done = new Set<ResourceState>();
  private readonly urns = new Set<string>();
  /** alias URN -> the URN that claimed it */
  private readonly aliased = new Map<string, string>();
  private readonly creates = new Set<string>();
  private readonly sames = new Set<string>();
  private readonly updates = new Set<string>();
  private readonly replaces = new Set<string>();
  private readonly deletes = new Set<string>();
  private readonly reads = new Set<string>();
  private readonly imports = new Set<string>();
  private readonly pendingDeletes = new Set<ResourceState>();
  private readonly defaultProviders = new Map<string, string>();
  private readonly generation = new Semaphore(1);
  private readonly workers: Semaphore;
  private bailReason?: string;
  private signalBail!: () => void;
  /** resolves when the deployment stopped early (a bail, or the first error in `up`) */
  readonly bailed: Promise<void>;

  constructor(private readonly options: DeploymentOptions) {
    this.preview = options.mode === "preview";
    this.workers = new Semaphore(options.parallel);
    this.base = options.checkpoint.resources.map((r) => structuredCloneState(r));
    this.baseSet = new Set(this.base);
    this.graph = new DependencyGraph(this.base);
    for (const r of this.base) if (!r.delete) this.olds.set(r.urn, r);
    this.bailed = new Promise((resolve) => (this.signalBail = resolve));
  }

  get stopped(): boolean {
    return this.bailReason !== undefined;
  }

  get failed(): boolean {
    return this.stopped || this.diagnostics.some((d) => d.severity === "error");
  }

  urnOf(parent: string, type: string, name: string): string {
    return makeUrn(this.options.stack, this.options.project, parent, type, name);
  }

  private error(urn: string, message: string): void {
    this.diagnostics.push({ urn, severity: "error", message });
  }

  private warn(urn: string, message: string): void {
    this.diagnostics.push({ urn, severity: "warning", message });
  }

  private bail(urn: string, message: string, report = true): never {
    if (report) this.error(urn, message);
    throw new Bail(message);
  }

  private stop(reason: string): void {
    if (this.bailReason !== undefined) return;
    this.bailReason = reason;
    this.signalBail();
  }

  private ctx(urn: string): CallContext {
    return { urn, preview: this.preview, log: (message) => this.logs.push({ urn, message }) };
  }

  private providerFor(type: string, urn: string): ProviderStandIn {
    if (isProviderType(type)) return providerResourceStandIn(this.preview);
    const pkg = packageOf(type);
    const found = this.standIn(pkg);
    if (!found) {
      this.bail(urn, `no provider stand-in for package "${pkg}" (resource ${urn})`);
    }
    return found;
  }

  private readonly resolved = new Map<string, ProviderStandIn | undefined>();

  private standIn(pkg: string): ProviderStandIn | undefined {
    const given = this.options.providers.get(pkg);
    if (given) return given;
    if (!this.resolved.has(pkg)) this.resolved.set(pkg, this.options.resolveProvider?.(pkg));
    return this.resolved.get(pkg);
  }

  /**
   * Registers (or reuses) the default provider of a package, as default_providers.go does before the
   * resource's own registration: inputs = the package's config plus `version`. Its steps are internal
   * (update.go isInternalStep). A changed config or version is an update of the provider, never a
   * replacement of what it manages: providerChanged asks the new provider's DiffConfig (SG L2800-2880),
   * which the stand-ins do not model.
   */
  private ensureDefaultProvider(pkg: string, version: string): string {
    const urn = this.urnOf("", `${PROVIDER_TYPE_PREFIX}${pkg}`, defaultProviderName(version));
    const known = this.defaultProviders.get(urn);
    if (known) return known;
    const inputs: PropertyMap = { ...deepCopy(this.options.providerConfig[pkg] ?? {}), ...(version ? { version } : {}) };
    const old = this.olds.get(urn);
    const state: ResourceState = {
      urn,
      type: `${PROVIDER_TYPE_PREFIX}${pkg}`,
      custom: true,
      id: old?.id ?? (this.preview ? UNKNOWN_PROVIDER_ID : randomUUID()),
      inputs,
      outputs: inputs,
      dependencies: [],
      propertyDependencies: {},
      protect: false,
      retainOnDelete: false,
    };
    this.urns.add(urn);
    if (!old) this.creates.add(urn);
    else if (deepEquals(unwrapSecrets(old.inputs), unwrapSecrets(inputs), this.options.projectDir)) this.sames.add(urn);
    else this.updates.add(urn);
    this.commit(state, old);
    const ref = `${urn}::${state.id}`;
    this.defaultProviders.set(urn, ref);
    return ref;
  }

  /** SG getOldResource: by URN first, then by alias; an alias claimed twice is an error. */
  private findOld(urn: string, aliases: string[]): ResourceState | undefined {
    for (const candidate of [urn, ...aliases]) {
      const old = this.olds.get(candidate);
      if (!old) continue;
      if (candidate !== urn) {
        const claimed = this.aliased.get(candidate);
        if (claimed !== undefined || this.urns.has(candidate)) {
          this.bail(
            urn,
            `Duplicate resource alias '${candidate}' applied to resource with URN '${urn}' conflicting with resource with URN '${claimed ?? candidate}'`,
          );
        }
        this.aliased.set(candidate, urn);
      }
      return old;
    }
    return undefined;
  }

  /** source_eval.go inheritFromParent (L2004-2021): deletedWith, protect, retainOnDelete, provider. */
  private inherit(goal: Goal): Goal {
    const parent = this.goals.get(goal.parent);
    if (!parent) return goal;
    const inherited = { ...goal };
    if (!inherited.deletedWith) inherited.deletedWith = parent.deletedWith;
    if (inherited.protect === undefined) inherited.protect = parent.protect;
    if (inherited.retainOnDelete === undefined) inherited.retainOnDelete = parent.retainOnDelete;
    if (!inherited.provider && parent.provider) {
      const providerPkg = (providerUrnOf(parent.provider) ?? "").split("::")[2]?.slice(PROVIDER_TYPE_PREFIX.length);
      if ((!goal.remote && !goal.custom) || providerPkg === packageOf(goal.type)) inherited.provider = parent.provider;
    }
    return inherited;
  }

  private newState(goal: Goal, urn: string, provider: string): ResourceState {
    return {
      urn,
      type: goal.type,
      custom: goal.custom,
      id: "",
      inputs: deepCopy(goal.inputs),
      outputs: {},
      ...(goal.parent ? { parent: goal.parent } : {}),
      ...(provider ? { provider } : {}),
      dependencies: [...goal.dependencies],
      propertyDependencies: { ...goal.propertyDependencies },
      protect: goal.protect ?? false,
      retainOnDelete: goal.retainOnDelete ?? false,
      ...(goal.deletedWith ? { deletedWith: goal.deletedWith } : {}),
      ...(goal.replaceWith.length ? { replaceWith: [...goal.replaceWith] } : {}),
      ...(goal.importId ? { importId: goal.importId } : {}),
      ...(goal.additionalSecretOutputs.length ? { additionalSecretOutputs: [...goal.additionalSecretOutputs] } : {}),
      ...(goal.ignoreChanges.length ? { ignoreChanges: [...goal.ignoreChanges] } : {}),
      ...(goal.replaceOnChanges.length ? { replaceOnChanges: [...goal.replaceOnChanges] } : {}),
      ...(goal.deleteBeforeReplace !== undefined ? { deleteBeforeReplace: goal.deleteBeforeReplace } : {}),
    };
  }

  /**
   * One RegisterResource: generate its steps (one at a time, as the step generator does), then run
   * them as one serial chain on the worker pool (DE L651 ExecuteSerial). Resolves with what the SDK
   * gets back; never resolves once the deployment has stopped.
   */
  async register(rawGoal: Goal): Promise<Registered | undefined> {
    if (this.stopped) return never();
    const release = await this.generation.acquire();
    let planned: { chain: Planned[]; result: () => ResourceState };
    let urn = "";
    try {
      if (this.stopped) return never();
      const goal = this.inherit(rawGoal);
      urn = this.urnOf(goal.parent, goal.type, goal.name);
      // SG generateURN: a URN registered twice in one deployment
      if (this.urns.has(urn)) this.bail(urn, `Duplicate resource URN '${urn}'; try giving it a unique name`);
      this.urns.add(urn);
      this.goals.set(urn, goal);
      planned = goal.custom ? await this.generateCustom(goal, urn) : this.generateComponent(goal, urn);
    } catch (err) {
      this.stopOn(urn, err);
      return never();
    } finally {
      release();
    }
    const ok = await this.workers.run(() => this.runChain(planned.chain));
    if (!ok || this.stopped) return never();
    const state = planned.result();
    // SRC L3079-3091: a local component's registration returns no outputs
    return { urn: state.urn, id: state.custom ? (state.id ?? "") : "", outputs: state.custom ? state.outputs : {} };
  }

  private stopOn(urn: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (!(err instanceof Bail)) this.error(urn, message);
    this.stop(message);
  }

  /** Runs a chain's steps in order; a failed step fails the chain and, without continue-on-error, the deployment (SE cancelDueToError). */
  private async runChain(chain: Planned[]): Promise<boolean> {
    for (const step of chain) {
      if (this.stopped) return false;
      try {
        await this.apply(step);
      } catch (err) {
        this.stopOn(step.urn, err);
        return false;
      }
    }
    return true;
  }

  /** Components: no provider; an input change is an update that does nothing (SG diff L2933-2940). */
  private generateComponent(goal: Goal, urn: string): { chain: Planned[]; result: () => ResourceState } {
    const old = this.findOld(urn, goal.aliases);
    const state = this.newState(goal, urn, "");
    if (!old) {
      this.creates.add(urn);
      return { chain: [{ op: "create", urn, type: goal.type, new: state, reason: "new component" }], result: () => state };
    }
    const changed = !deepEquals(old.inputs, state.inputs, this.options.projectDir);
    (changed ? this.updates : this.sames).add(urn);
    const op: StepOp = changed ? "update" : "same";
    return {
      chain: [{ op, urn, type: goal.type, old, new: state, reason: changed ? "component inputs changed" : "no changes" }],
      result: () => state,
    };
  }

  private async generateCustom(goal: Goal, urn: string): Promise<{ chain: Planned[]; result: () => ResourceState }> {
    const prov = this.providerFor(goal.type, urn);
    const providerRef = goal.provider || (isProviderType(goal.type) ? "" : this.ensureDefaultProvider(packageOf(goal.type), goal.version));
    let old = this.findOld(urn, goal.aliases);
    const state = this.newState(goal, urn, providerRef);
    // SG L1078: a resource deleted earlier in this deployment (a DBR dependent) is being re-created
    const recreating = this.deletes.has(urn);
    const chain: Planned[] = [];

    // SG L1100-1113: the import option on a resource the state does not hold under that id
    const oldImportId = old ? old.importId || old.id : undefined;
    if (goal.importId && (!old || old.external || oldImportId !== goal.importId)) {
      this.imports.add(urn);
      // ST ImportStep.Apply has no DryRun branch: Read runs in preview too
      const read = await prov.read(this.ctx(urn), goal.type, goal.importId);
      if (!read || read.outputs === undefined) this.bail(urn, `resource '${goal.importId}' does not exist`);
      if (read.inputs === undefined) {
        this.bail(urn, `provider does not support importing resources; please try updating the '${packageOf(goal.type)}' plugin`);
      }
      const imported: ResourceState = {
        ...state,
        id: read.id || goal.importId,
        inputs: read.inputs,
        outputs: read.outputs,
        importId: goal.importId,
      };
      const replaced = old && !recreating ? old : undefined;
      chain.push({
        op: "import",
        urn,
        type: goal.type,
        old: replaced,
        new: imported,
        reason: replaced ? `import ${goal.importId} in place of the resource with id ${replaced.id}` : `import ${goal.importId}`,
      });
      old = imported;
    }

    // SG L1267: ignoreChanges takes the old values before Check
    const inputs = old ? this.processIgnoreChanges(urn, goal.inputs, old.inputs, goal.ignoreChanges) : deepCopy(goal.inputs);
    const fresh = recreating || !old || old.external;
    const checked = await prov.check(this.ctx(urn), goal.type, fresh ? undefined : old!.inputs, fresh ? deepCopy(goal.inputs) : inputs);
    this.issueCheckFailures(urn, goal, checked.failures);
    state.inputs = checked.inputs;

    if (recreating && old) {
      // SG L1495-1508: re-created without a Diff, after its DBR delete
      this.deletes.delete(urn);
      this.replaces.add(urn);
      chain.push({
        op: "create-replacement",
        urn,
        type: goal.type,
        old,
        new: state,
        provider: prov,
        deleteFirst: true,
        reason: "re-created: it was deleted ahead of a delete-before-replace it depends on",
      });
      return { chain, result: () => state };
    }
    if (old) {
      const diffChain = await this.stepsFromDiff(goal, urn, old, state, prov);
      chain.push(...diffChain);
      const imported = this.imports.has(urn) && diffChain.length === 0;
      return { chain, result: () => (imported ? old! : state) };
    }
    this.creates.add(urn);
    chain.push({ op: "create", urn, type: goal.type, new: state, provider: prov, reason: "new resource" });
    return { chain, result: () => state };
  }

  /** SG issueCheckFailures (L3054-3074), then the bail "resource <urn> is invalid" (L1476-1478). */
  private issueCheckFailures(urn: string, goal: Goal, failures: { property: string; reason: string }[], bailMessage?: string): void {
    if (failures.length === 0) return;
    const name = typeName(urn);
    for (const f of failures) {
      this.error(
        urn,
        f.property
          ? `${goal.type} resource '${name}': property ${f.property} value ${goValue(goal.inputs[f.property])} has a problem: ${f.reason}`
          : `${goal.type} resource '${name}' has a problem: ${f.reason}`,
      );
    }
    this.bail(urn, bailMessage ?? `resource ${urn} is invalid`);
  }

  /** SG processIgnoreChanges (L3076-3096): old values for the ignored paths; a path that cannot be reset is not ignored. */
  private processIgnoreChanges(urn: string, news: PropertyMap, olds: PropertyMap, ignoreChanges: string[]): PropertyMap {
    const result = deepCopy(news);
    const invalid: string[] = [];
    for (const path of ignoreChanges) {
      let parsed;
      try {
        parsed = parsePropertyPath(path);
      } catch {
        continue;
      }
      if (!resetPath(parsed, olds, result)) invalid.push(path);
    }
    if (invalid.length)
      this.logs.push({ urn, message: `cannot ignore changes in added or removed elements of the path: "${invalid.join(", ")}"` });
    return result;
  }

  /** SG generateStepsFromDiff + continueStepsFromDiff (L1788-2200). */
  private async stepsFromDiff(
    goal: Goal,
    urn: string,
    old: ResourceState,
    state: ResourceState,
    prov: ProviderStandIn,
  ): Promise<Planned[]> {
    let diff = await this.diff(goal, urn, old, state, prov);
    diff = applyReplaceOnChanges(diff, goal.replaceOnChanges);
    const replace = diff.replaceKeys.length > 0 || Object.values(diff.detailedDiff).some((d) => d.replace);
    const common = {
      urn,
      type: goal.type,
      old,
      new: state,
      provider: prov,
      changedKeys: diff.changedKeys,
      replaceKeys: diff.replaceKeys,
      detailedDiff: diff.detailedDiff,
    };

    if (diff.changes !== "some" && !old.pendingReplacement) {
      if (this.imports.has(urn)) return []; // SG L1903: an imported resource with no diff completes with the imported state
      this.sames.add(urn);
      return [{ op: "same", ...common, reason: "no changes" }];
    }
    if (!replace && !old.pendingReplacement) {
      this.updates.add(urn);
      return [{ op: "update", ...common, ignoreChanges: goal.ignoreChanges, reason: describe("update", diff) }];
    }

    // SG L1957-1974: replacing a resource protected in the old and the new state
    if (state.protect && old.protect) {
      const message =
        `unable to replace resource "${urn}"\nas it is currently marked for protection. To unprotect the resource, ` +
        "remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`";
      this.error(urn, message);
      // preview shows the replacement and fails at the end; up stops before the create
      if (!this.preview) this.bail(urn, message, false);
    }
    // SG L1976-1999: a replacement would change the id the program imports
    if (goal.importId) {
      const replaceDiff = diff.replaceKeys.map((k) => `${k}: ${redacted(old.inputs[k])} => ${redacted(state.inputs[k])}`).join("\n");
      const message =
        "previously-imported resources that still specify an ID may not be replaced; please remove the `import` declaration from your program;\n" +
        replaceDiff;
      if (this.preview) this.warn(urn, message);
      else this.bail(urn, message);
    }
    this.replaces.add(urn);
    // SG L2002-2019: Check again on the program's own values: defaults recomputed, ignoreChanges dropped
    const rechecked = await prov.check(this.ctx(urn), goal.type, undefined, deepCopy(goal.inputs));
    this.issueCheckFailures(urn, goal, rechecked.failures, `resource ${urn} has check errors`);
    state.inputs = rechecked.inputs;

    // SG L2043-2046: an explicit deleteBeforeReplace option overrides the provider
    const deleteFirst = goal.deleteBeforeReplace ?? diff.deleteBeforeReplace;
    const how = deleteFirst
      ? `delete-before-replace (${goal.deleteBeforeReplace !== undefined ? "deleteBeforeReplace resource option" : "the provider asks for it"})`
      : `create-before-delete${goal.deleteBeforeReplace === false ? " (deleteBeforeReplace: false)" : ""}: the old one is deleted after every create and update`;
    const reason = `${describe("replace", diff)}; ${how}`;
    if (!deleteFirst) {
      // SG L2158-2165: the delete comes "later", after all creates and updates
      return [{ op: "create-replacement", ...common, reason }];
    }
    return [...(await this.deleteBeforeReplaceChain(urn, old)), { op: "create-replacement", ...common, deleteFirst: true, reason }];
  }

  /** SG L2047-2156: the dependents that must go first (reverse order), then the old resource. */
  private async deleteBeforeReplaceChain(urn: string, old: ResourceState): Promise<Planned[]> {
    const toReplace = !this.preview || this.graph.contains(old) ? await this.calculateDependentReplacements(old) : [];
    toReplace.push(...this.findDependentCascadeReplacements(urn, toReplace));
    const chain: Planned[] = [];
    for (let i = toReplace.length - 1; i >= 0; i--) {
      const { res, why } = toReplace[i];
      if (this.pendingDeletes.has(res)) continue;
      if (res.delete) {
        chain.push({ op: "delete", urn: res.urn, type: res.type, old: res, reason: `pending delete, deleted ahead of replacing ${urn}` });
      } else {
        if (res.protect) {
          this.bail(
            urn,
            `unable to replace resource "${res.urn}" as part of replacing "${urn}" as it is currently marked for protection. To unprotect the resource, ` +
              "remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`, or use the command:\n" +
              `\`pulumi state unprotect '${res.urn}'\``,
          );
        }
        chain.push({
          op: "delete-replaced",
          urn: res.urn,
          type: res.type,
          old: res,
          replacing: true,
          pendingReplacement: true,
          reason: `deleted ahead of replacing ${urn} (delete-before-replace): ${why}`,
        });
      }
      this.deletes.add(res.urn);
      this.pendingDeletes.add(res);
    }
    if (!old.pendingReplacement) {
      this.deletes.add(urn);
      chain.push({
        op: "delete-replaced",
        urn,
        type: old.type,
        old,
        replacing: true,
        pendingReplacement: true,
        reason: "delete-before-replace: deleted before its replacement is created",
      });
    }
    return chain;
  }

  /**
   * SG calculateDependentReplacements (L3268-3416): the old snapshot's transitive dependents (no parent
   * edges, nothing already handled in this run), each replaced only when its provider or deletedWith
   * target is replaced, or when its own provider's Diff, with the inputs that depend on the replaced
   * set made unknown, says replace (replaceOnChanges included).
   */
  private async calculateDependentReplacements(root: ResourceState): Promise<{ res: ResourceState; why: string }[]> {
    const replaceSet = new Set([root.urn]);
    const ignore = new Set([...this.reads, ...this.creates, ...this.sames, ...this.updates, ...this.deletes, ...this.replaces]);
    const result: { res: ResourceState; why: string }[] = [];
    for (const r of this.graph.dependingOn(root, ignore, false)) {
      const why = await this.requiresReplacement(r, replaceSet);
      if (why) {
        result.push({ res: r, why });
        replaceSet.add(r.urn);
      }
    }
    return result;
  }

  private async requiresReplacement(r: ResourceState, replaceSet: Set<string>): Promise<string | undefined> {
    if (!r.custom || r.external) return undefined;
    const provider = providerUrnOf(r.provider);
    if (provider && replaceSet.has(provider)) return `its provider ${provider} is replaced`;
    if (r.deletedWith && replaceSet.has(r.deletedWith)) return `it is deletedWith ${r.deletedWith}`;
    const inputsForDiff: PropertyMap = {};
    const unknownKeys: string[] = [];
    for (const [key, value] of Object.entries(r.inputs)) {
      const dependsOnReplaced = (r.propertyDependencies[key] ?? []).some((u) => replaceSet.has(u));
      inputsForDiff[key] = dependsOnReplaced ? Unknown : value;
      if (dependsOnReplaced) unknownKeys.push(key);
    }
    if (unknownKeys.length === 0) return undefined;
    const prov = this.providerFor(r.type, r.urn);
    let diff = await this.diffResource(r.urn, r.type, r.id ?? "", r.inputs, r.outputs, inputsForDiff, prov, r.ignoreChanges ?? []);
    diff = applyReplaceOnChanges(diff, r.replaceOnChanges ?? []);
    const replace = diff.replaceKeys.length > 0 || Object.values(diff.detailedDiff).some((d) => d.replace);
    return replace
      ? `its ${unknownKeys.join(", ")} depend${unknownKeys.length === 1 ? "s" : ""} on it and its provider's diff says replace (${diff.replaceKeys.join(", ") || "detailed diff"})`
      : undefined;
  }

  /** SG findDependentCascadeReplacements (L3419-3445): replaceWith and deletedWith targets, unconditionally. */
  private findDependentCascadeReplacements(urn: string, already: { res: ResourceState }[]): { res: ResourceState; why: string }[] {
    const seen = new Set(already.map((a) => a.res.urn));
    const found: { res: ResourceState; why: string }[] = [];
    for (const state of [...this.newStates, ...this.base]) {
      if (seen.has(state.urn)) continue;
      if ((state.replaceWith ?? []).includes(urn) || state.deletedWith === urn) {
        found.push({ res: state, why: state.deletedWith === urn ? `it is deletedWith ${urn}` : `it is replaceWith ${urn}` });
        seen.add(state.urn);
      }
    }
    return found;
  }

  /** SG diff (L2884-2972): replaceWith, deletedWith and provider changes first, then the provider's Diff. */
  private async diff(goal: Goal, urn: string, old: ResourceState, state: ResourceState, prov: ProviderStandIn): Promise<EngineDiff> {
    const forced = (key: string, note: string): EngineDiff => ({
      changes: "some",
      replaceKeys: [key],
      changedKeys: [],
      detailedDiff: {},
      deleteBeforeReplace: false,
      notes: [note],
    });
    const replacedWith = goal.replaceWith.find((u) => this.replaces.has(u));
    if (replacedWith) return forced("replaceWith", `replaceWith ${replacedWith}, which is being replaced`);
    if (goal.deletedWith && this.replaces.has(goal.deletedWith))
      return forced("deletedWith", `deletedWith ${goal.deletedWith}, which is being replaced`);
    if (this.providerChanged(old, state)) return forced("provider", "its provider changed to a different kind of provider");
    return this.diffResource(urn, goal.type, old.id ?? "", old.inputs, old.outputs, state.inputs, prov, goal.ignoreChanges);
  }

  /**
   * SG providerChanged (L2800-2880): "" on one side (component <-> custom) is a replacement; otherwise
   * the new provider's DiffConfig decides. DiffConfig is not modeled: no provider we stand in for
   * replaces its resources on a config or version change, so two providers never force one.
   */
  private providerChanged(old: ResourceState, state: ResourceState): boolean {
    if ((old.provider ?? "") === (state.provider ?? "")) return false;
    return !old.provider || !state.provider;
  }

  /** SG diffResource (L2974-3008): Diff, and for DIFF_UNKNOWN the engine's own input comparison. */
  private async diffResource(
    urn: string,
    type: string,
    id: string,
    oldInputs: PropertyMap,
    oldOutputs: PropertyMap,
    newInputs: PropertyMap,
    prov: ProviderStandIn,
    ignoreChanges: string[],
  ): Promise<EngineDiff> {
    const result: DiffResult = await prov.diff(this.ctx(urn), type, id, oldInputs, oldOutputs, newInputs, ignoreChanges);
    if (result.changes !== "unknown") {
      return {
        changes: result.changes,
        replaceKeys: [...result.replaceKeys],
        changedKeys: [...result.changedKeys],
        detailedDiff: { ...result.detailedDiff },
        deleteBeforeReplace: result.deleteBeforeReplace,
        notes: [],
      };
    }
    // DIFF_UNKNOWN: compare the inputs (ignoreChanges applied, secrets unwrapped); the provider's
    // ReplaceKeys are kept; the changes are updates (InputDiff) unless replaceOnChanges says otherwise
    const processed = this.processIgnoreChanges(urn, newInputs, oldInputs, ignoreChanges);
    const d = diffInputs(unwrapSecrets(oldInputs) as PropertyMap, unwrapSecrets(processed) as PropertyMap, this.options.projectDir);
    if (d.changedKeys.length === 0) {
      return {
        changes: "none",
        replaceKeys: [],
        changedKeys: [],
        detailedDiff: {},
        deleteBeforeReplace: result.deleteBeforeReplace,
        notes: [],
      };
    }
    return {
      changes: "some",
      replaceKeys: [...result.replaceKeys],
      changedKeys: d.changedKeys,
      detailedDiff: d.detailedDiff,
      deleteBeforeReplace: result.deleteBeforeReplace,
      notes: ["the provider gave no diff (DIFF_UNKNOWN): the engine compared the inputs"],
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Step execution

  private record(step: Planned): void {
    if (step.internal || (step.urn && isDefaultProviderUrn(step.urn))) return;
    this.steps.push({
      op: step.op,
      urn: step.urn,
      type: step.type,
      reason: step.reason,
      changedKeys: step.changedKeys ?? [],
      replaceKeys: step.replaceKeys ?? [],
      ...(step.old ? { oldInputs: step.old.inputs } : {}),
      ...(step.new ? { newInputs: step.new.inputs } : {}),
      ...(step.detailedDiff && Object.keys(step.detailedDiff).length ? { detailedDiff: step.detailedDiff } : {}),
      ...(step.wave !== undefined ? { wave: step.wave } : {}),
    });
  }

  private async apply(step: Planned): Promise<void> {
    this.record(step);
    const { old, new: state } = step;
    switch (step.op) {
      case "same":
        // ST SameStep.Apply L173-214: old id and outputs, no provider call, in preview as in up
        state!.id = old!.id;
        state!.outputs = deepCopy(old!.outputs);
        this.commit(state!, old);
        return;
      case "create":
        if (state!.custom) await this.create(step);
        this.commit(state!);
        return;
      case "create-replacement":
        await this.create(step);
        if (step.deleteFirst) {
          // the DBR old (pending replacement) leaves the snapshot once its replacement exists
          this.commit(state!, old);
        } else {
          // ST CreateStep.Apply L468-473: the old one is marked for deletion, in preview too
          old!.delete = true;
          this.commit(state!);
        }
        return;
      case "update": {
        if (state!.custom) {
          // ST UpdateStep.Apply L960-1100: id from the old state; preview asks the provider for planned outputs
          const result = await step.provider!.update(
            this.ctx(step.urn),
            step.type,
            old!.id ?? "",
            old!.inputs,
            old!.outputs,
            state!.inputs,
            step.ignoreChanges ?? [],
          );
          state!.outputs = result.outputs;
        }
        state!.id = old!.id;
        this.commit(state!, old);
        return;
      }
      case "import":
        // the Read ran while generating; replacing an existing resource pends its delete (ST L2220-2222)
        if (old) old.delete = true;
        return;
      case "delete-replaced":
      case "delete":
        await this.delete(step);
        return;
      default:
        throw new Error(`step ${step.op} cannot run inside a registration`);
    }
  }

  private async create(step: Planned): Promise<void> {
    const state = step.new!;
    const result = await step.provider!.create(this.ctx(step.urn), step.type, state.inputs);
    // ST CreateStep.Apply: a real create must return an id
    if (!this.preview && (result.id === Unknown || result.id === "")) throw new Error("provider did not return an ID from Create");
    state.id = result.id === Unknown ? "" : result.id;
    state.outputs = result.outputs;
  }

  /** ST DeleteStep.Apply (L626-800): protect, then preview does nothing, then retainOnDelete, deletedWith, the provider. */
  private async delete(step: Planned): Promise<void> {
    const old = step.old!;
    if (!step.replacing && old.protect) throw new DeleteProtectedError(old.urn);
    if (!this.preview && !old.external && !old.retainOnDelete && !(old.deletedWith && this.deletes.has(old.deletedWith)) && old.custom) {
      await this.providerFor(old.type, old.urn).delete(this.ctx(old.urn), old.type, old.id ?? "", old.inputs, old.outputs);
    }
    if (step.pendingReplacement) old.pendingReplacement = true;
    else this.done.add(old);
  }

  /** SE L520-566: additionalSecretOutputs, and outputs named like a secret input, become secret. */
  private commit(state: ResourceState, old?: ResourceState): void {
    for (const key of state.additionalSecretOutputs ?? []) {
      if (key in state.outputs && !(state.outputs[key] instanceof Secret)) state.outputs[key] = new Secret(state.outputs[key]);
    }
    for (const [key, value] of Object.entries(state.outputs)) {
      if (!(value instanceof Secret) && state.inputs[key] instanceof Secret) state.outputs[key] = new Secret(value);
    }
    // what the engine keeps that this one does not model (created, customTimeouts, ...) stays as it was
    if (old?.unmodeled && !state.unmodeled) state.unmodeled = { ...old.unmodeled };
    this.newStates.push(state);
    this.news.set(state.urn, state);
    if (old && this.baseSet.has(old)) this.done.add(old);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads, invokes and outputs

  /** SG GenerateReadSteps: a `get` resource, read through its provider (external: never deleted by Pulumi). */
  async read(goal: Goal, id: string): Promise<Registered | undefined> {
    if (this.stopped) return never();
    const urn = this.urnOf(goal.parent, goal.type, goal.name);
    try {
      const prov = this.providerFor(goal.type, urn);
      const provider = goal.provider || this.ensureDefaultProvider(packageOf(goal.type), goal.version);
      const read = await prov.read(this.ctx(urn), goal.type, id, goal.inputs);
      if (!read) this.bail(urn, `resource '${id}' does not exist`);
      const state: ResourceState = {
        ...this.newState(goal, urn, provider),
        id: read.id || id,
        inputs: read.inputs ?? goal.inputs,
        outputs: read.outputs,
        external: true,
      };
      this.reads.add(urn);
      this.urns.add(urn);
      this.record({ op: "read", urn, type: goal.type, new: state, reason: `read ${id}` });
      this.commit(state, this.olds.get(urn));
      return { urn, id: state.id ?? "", outputs: state.outputs };
    } catch (err) {
      this.stopOn(urn, err);
      return never();
    }
  }

  /** An invoke: the stand-in's answer; a thrown error is the program's to fail on. */
  async invoke(token: string, args: PropertyMap): Promise<PropertyMap> {
    const pkg = token.split(":")[0];
    const prov = this.standIn(pkg);
    if (!prov) throw new Error(`no provider stand-in for package "${pkg}"`);
    if (!prov.invoke) throw new Error(`unknown function ${token}`);
    return prov.invoke(this.ctx(""), token, args);
  }

  /** An invoke that failed: the program would fail on it, so the run stops with the error. */
  invokeFailed(token: string, message: string): void {
    this.error("", `Invoke of '${token}' failed: ${message}`);
    this.stop(message);
  }

  /** RegisterResourceOutputs: a component's (and the stack's) outputs. */
  registerOutputs(urn: string, outputs: PropertyMap): void {
    const state = this.news.get(urn);
    if (state) state.outputs = outputs;
    if (urn.split("::")[2] === ROOT_STACK_TYPE) this.stackOutputs = outputs;
  }

  /** getResource for resource references (pulumi:pulumi:getResource). */
  lookup(urn: string): ResourceState | undefined {
    return this.news.get(urn);
  }

  // ---------------------------------------------------------------------------------------------
  // After the program

  /**
   * SG GenerateDeletes (L2328-2540) and DE performPostSteps (L490-554): replaced olds and everything the
   * program no longer registers, scheduled in antichains over the old snapshot, dependents first. A
   * protected resource's delete fails but the run goes on without its dependencies; any other
   * failure in `up` stops the run.
   */
  async finish(): Promise<void> {
    if (this.stopped) return;
    const condemned: Planned[] = [];
    for (const res of this.base) {
      if (res.delete) {
        if (this.pendingDeletes.has(res)) continue;
        this.deletes.add(res.urn);
        condemned.push({
          op: res.retainOnDelete ? "retain" : "delete-replaced-old",
          urn: res.urn,
          type: res.type,
          old: res,
          replacing: true,
          reason: res.retainOnDelete
            ? "replaced; retainOnDelete: dropped from the state, the provider's delete is skipped"
            : "replaced: the old one is deleted now",
        });
      } else if (!this.isOperatedOn(res.urn)) {
        this.deletes.add(res.urn);
        if (res.pendingReplacement) {
          condemned.push({
            op: "delete",
            internal: true,
            urn: res.urn,
            type: res.type,
            old: res,
            reason: "pending replacement no longer registered: dropped from the state",
          });
        } else {
          condemned.push({
            op: res.retainOnDelete && !res.protect ? "retain" : "delete",
            urn: res.urn,
            type: res.type,
            old: res,
            reason: res.retainOnDelete
              ? "no longer in the program; retainOnDelete: dropped from the state, the provider's delete is skipped"
              : "no longer in the program",
          });
        }
      }
    }
    const waves = scheduleDeletes(
      this.graph,
      condemned.map((p) => ({ state: p.old!, step: p })),
    );
    const erroredDependencies = new Set<ResourceState>();
    for (const [index, wave] of waves.entries()) {
      const errored: ResourceState[] = [];
      const runnable = wave.filter((item) => !erroredDependencies.has(item.state));
      await Promise.all(
        runnable.map((item) =>
          this.workers.run(async () => {
            if (this.stopped) return;
            const step = { ...item.step, wave: index };
            this.record(step);
            try {
              if (step.internal) this.done.add(step.old!);
              else await this.delete(step);
            } catch (err) {
              this.error(step.urn, (err as Error).message);
              if (err instanceof DeleteProtectedError) errored.push(step.old!);
              else if (!this.preview) this.stop((err as Error).message);
            }
          }),
        ),
      );
      if (this.stopped) return;
      for (const res of errored) for (const dep of this.graph.transitiveDependenciesOf(res)) erroredDependencies.add(dep);
    }
  }

  /** SG isOperatedOn (L2242-2256): sames, updates, replaces and reads, through aliases. */
  private isOperatedOn(urn: string): boolean {
    const target = this.aliased.get(urn) ?? urn;
    return this.sames.has(target) || this.updates.has(target) || this.replaces.has(target) || this.reads.has(target);
  }

  /** The snapshot after the run (snapshot.go: new states in the order they completed, then the old states still held). */
  checkpoint(): Checkpoint {
    if (this.preview) return this.options.checkpoint;
    return {
      outputs: this.stackOutputs,
      resources: [...this.newStates, ...this.base.filter((r) => !this.done.has(r))],
    };
  }
}

function describe(kind: "update" | "replace", diff: EngineDiff): string {
  const changed = Object.keys(diff.detailedDiff).length ? Object.keys(diff.detailedDiff) : diff.changedKeys;
  const parts = [changed.length ? `changed: ${changed.join(", ")}` : "changed (the provider names no keys)"];
  if (kind === "replace") {
    const forcing = [
      ...diff.replaceKeys,
      ...Object.entries(diff.detailedDiff)
        .filter(([, d]) => d.replace)
        .map(([p]) => p),
    ];
    parts.push(`replaced because of: ${[...new Set(forcing)].join(", ")}`);
  }
  return [...parts, ...diff.notes].join("; ");
}

/**
 * SG applyReplaceOnChanges (L3170-3262): a DetailedDiff path inside a replaceOnChanges path becomes a
 * replace; so does a changed top-level key that a path contains. `triggers[*]` contains `triggers[0]`
 * but not the bare `triggers` (properties_path.go Contains).
 */
function applyReplaceOnChanges(diff: EngineDiff, replaceOnChanges: string[]): EngineDiff {
  if (diff.changes !== "some" || replaceOnChanges.length === 0) return diff;
  const rocPaths = replaceOnChanges.map((p) => ({ text: p, path: parsePropertyPath(p) }));
  const notes = [...diff.notes];
  const detailedDiff: DetailedDiff = {};
  for (const [p, d] of Object.entries(diff.detailedDiff)) {
    let parsed;
    try {
      parsed = parsePropertyPath(p);
    } catch {
      detailedDiff[p] = d;
      continue;
    }
    const match = rocPaths.find((r) => pathContains(r.path, parsed));
    if (match && !d.replace) notes.push(`replaceOnChanges "${match.text}" matches ${formatPropertyPath(parsed)}`);
    detailedDiff[p] = match ? { ...d, replace: true } : d;
  }
  const replaceKeys = new Set(diff.replaceKeys);
  for (const k of diff.changedKeys) {
    const match = rocPaths.find((r) => pathContains(r.path, [k]));
    if (match && !replaceKeys.has(k)) {
      replaceKeys.add(k);
      notes.push(`replaceOnChanges "${match.text}" matches ${k}`);
    }
  }
  return { ...diff, detailedDiff, replaceKeys: [...replaceKeys], notes };
}

function redacted(value: PropertyValue): string {
  return goValue(containsSecrets(value) ? "[secret]" : value);
}

function isDefaultProviderUrn(urn: string): boolean {
  const parts = urn.split("::");
  return (parts[2] ?? "").startsWith(PROVIDER_TYPE_PREFIX) && (parts[3] ?? "").startsWith("default");
}

function structuredCloneState(r: ResourceState): ResourceState {
  return {
    ...r,
    inputs: deepCopy(r.inputs),
    outputs: deepCopy(r.outputs),
    dependencies: [...(r.dependencies ?? [])],
    propertyDependencies: { ...(r.propertyDependencies ?? {}) },
  };
}

/** A promise that never settles: the SDK's registration stays pending after the engine stopped, as when the real engine cancels. */
function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

/**
 * Explicit provider resources (`pulumi:providers:<pkg>` registered by the program): their config is
 * their inputs and outputs. Check passes the inputs; Diff leaves the comparison to the engine
 * (DiffConfig is not modeled), so a config change is an update.
 */
function providerResourceStandIn(preview: boolean): ProviderStandIn {
  return {
    pkg: "pulumi",
    async check(_ctx, _type, _olds, news) {
      return { inputs: news, failures: [] };
    },
    async diff() {
      return { changes: "unknown", replaceKeys: [], changedKeys: [], detailedDiff: {}, deleteBeforeReplace: false };
    },
    async create(_ctx, _type, inputs) {
      return { id: preview ? Unknown : randomUUID(), outputs: inputs };
    },
    async read(_ctx, _type, id, inputs, outputs) {
      return { id, inputs: inputs ?? {}, outputs: outputs ?? inputs ?? {} };
    },
    async update(_ctx, _type, _id, _oi, _oo, news) {
      return { outputs: news };
    },
    async delete() {},
  };
}
