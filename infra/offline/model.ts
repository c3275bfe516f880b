// The contract between the offline engine (infra/offline/engine*.ts: steps, order, preview) and
// the provider stand-ins (infra/offline/providers/: tls, hcloud, cloudflare, command, the Node
// dynamic provider host). It mirrors the provider gRPC interface the real engine speaks
// (pulumi/pulumi proto/pulumi/provider.proto: Check, Diff, Create, Read, Update, Delete), so a rule
// the real engine applies between those calls is applied here in the engine, and a rule a real
// provider applies is applied in its stand-in. Facts and their sources: ../shared notes
// engine-and-replacement.md, and the comments beside each rule.

/** Property-value markers of Pulumi's wire format (sdk/nodejs/runtime/rpc.ts). */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const SPECIAL_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17";
export const ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7";
/** What an unknown value looks like on the wire and to a dynamic provider during preview. */
export const UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** A secret value, still marked as one. */
export class Secret {
  constructor(readonly value: unknown) {}
  toJSON(): string {
    return "[secret]";
  }
}

/** A value that is only known once the real provider ran (preview). */
export const Unknown: unique symbol = Symbol("unknown");
export type UnknownValue = typeof Unknown;

/**
 * A property value as the engine sees it: JSON, with Secret wrappers and Unknown markers anywhere.
 * Assets and archives keep their wire form (an object with SPECIAL_SIG_KEY = ASSET_SIG / ARCHIVE_SIG
 * and `path`, `text` or `uri`, or `assets`).
 */
export type PropertyValue = unknown;
export type PropertyMap = Record<string, PropertyValue>;

/** One resource in a checkpoint: the shape of `pulumi stack export` (apitype.ResourceV3). */
export interface ResourceState {
  urn: string;
  type: string;
  custom: boolean;
  /** "" for components */
  id?: string;
  inputs: PropertyMap;
  outputs: PropertyMap;
  parent?: string;
  /** URN::id of the provider resource, when explicit */
  provider?: string;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  protect: boolean;
  retainOnDelete: boolean;
  deletedWith?: string;
  /** replaced (create-before-delete) and still waiting for its delete */
  delete?: boolean;
  /** deleted ahead of its re-creation (delete-before-replace) */
  pendingReplacement?: boolean;
  /** the id it was imported with, when it came in through the `import` option */
  importId?: string;
  additionalSecretOutputs?: string[];
  ignoreChanges?: string[];
  replaceOnChanges?: string[];
  /** explicit deleteBeforeReplace option of the last registration; undefined when not set */
  deleteBeforeReplace?: boolean;
  /** resources whose replacement also replaces this one (replaceWith option) */
  replaceWith?: string[];
  /** read with `get`: Pulumi does not own its life cycle */
  external?: boolean;
  /** URNs this resource had before (aliases option) */
  aliases?: string[];
  /**
   * Fields of `pulumi stack export` the engine does not model (created, modified, customTimeouts,
   * sourcePosition, ...): carried through unchanged when the state is written back.
   */
  unmodeled?: Record<string, unknown>;
}

/** The whole state between two runs (what `pulumi stack export` writes, reduced to what we model). */
export interface Checkpoint {
  /** stack outputs */
  outputs: PropertyMap;
  resources: ResourceState[];
}

export interface CheckFailure {
  /** "" for a failure of the whole resource */
  property: string;
  reason: string;
}

/**
 * DiffResponse. `changes`: "some" (DIFF_SOME), "none" (DIFF_NONE) or "unknown" (DIFF_UNKNOWN, the
 * engine then compares old and new inputs itself). `detailedDiff` keys are property paths as the
 * engine prints them (`triggers[0]`, `data.flags`); the engine matches replaceOnChanges against them.
 */
export interface DiffResult {
  changes: "some" | "none" | "unknown";
  /** top-level keys that force a replacement (ReplaceKeys) */
  replaceKeys: string[];
  /** top-level keys that changed (ChangedKeys) */
  changedKeys: string[];
  detailedDiff: Record<string, { kind: "add" | "update" | "delete"; replace: boolean }>;
  /** the provider asks for delete-before-replace (an explicit resource option overrides it) */
  deleteBeforeReplace: boolean;
}

/** What a provider call knows about the run. */
export interface CallContext {
  urn: string;
  /** `pulumi preview`: nothing is created, changed or deleted; outputs may be Unknown */
  preview: boolean;
  /** where the stand-in logs what it would print (`pulumi up` shows provider diagnostics) */
  log(message: string): void;
}

/**
 * A provider as the engine talks to it. One stand-in may serve several resource types (all of
 * `hcloud:index/*`). Stand-ins are strict: they refuse what the real provider or API refuses, with
 * the real error's code and text where known (cite the source beside each rule).
 */
export interface ProviderStandIn {
  /** the package this stand-in serves: "hcloud", "cloudflare", "tls", "command", "pulumi-nodejs" */
  readonly pkg: string;
  /** Check: olds = the old inputs (undefined for a create), news = the program's inputs after ignoreChanges. */
  check(
    ctx: CallContext,
    type: string,
    olds: PropertyMap | undefined,
    news: PropertyMap,
  ): Promise<{ inputs: PropertyMap; failures: CheckFailure[] }>;
  /** Diff of the new checked inputs against the old state. Unknown values in news count as changes. */
  diff(
    ctx: CallContext,
    type: string,
    id: string,
    oldInputs: PropertyMap,
    oldOutputs: PropertyMap,
    news: PropertyMap,
    ignoreChanges: string[],
  ): Promise<DiffResult>;
  /** In preview: the planned outputs (computed ones Unknown), id may be Unknown, nothing happens. */
  create(ctx: CallContext, type: string, inputs: PropertyMap): Promise<{ id: string | UnknownValue; outputs: PropertyMap }>;
  /**
   * Read for import and refresh; undefined when the resource does not exist. `inputs` may be absent
   * when the provider cannot report them (the Node dynamic host without `read`): importing then fails
   * as it does in the engine (step.go ImportStep.Apply).
   */
  read(
    ctx: CallContext,
    type: string,
    id: string,
    inputs?: PropertyMap,
    outputs?: PropertyMap,
  ): Promise<{ id: string; inputs?: PropertyMap; outputs: PropertyMap } | undefined>;
  /** In preview: the planned outputs, nothing happens. */
  update(
    ctx: CallContext,
    type: string,
    id: string,
    oldInputs: PropertyMap,
    oldOutputs: PropertyMap,
    news: PropertyMap,
    ignoreChanges: string[],
  ): Promise<{ outputs: PropertyMap }>;
  /** Never called in preview. */
  delete(ctx: CallContext, type: string, id: string, oldInputs: PropertyMap, oldOutputs: PropertyMap): Promise<void>;
  /**
   * Invoke (a data source, `cloudflare:index/getZone:getZone`): the provider's answer, or a thrown
   * error the engine reports as the program's. Runs in preview too, as real invokes do. Optional:
   * packages without data sources the program uses leave it out.
   */
  invoke?(ctx: CallContext, token: string, args: PropertyMap): Promise<PropertyMap>;
}

/** What the engine did to one resource, in the order it happened. */
export type StepOp =
  | "same"
  | "create"
  | "update"
  /** a create-before-delete replacement: the new one is created here, the old one deleted at the end */
  | "create-replacement"
  /** a delete-before-replace: the old one (or a dependent of it) deleted before its re-creation */
  | "delete-replaced"
  /** the old one of a create-before-delete replacement, deleted at the end */
  | "delete-replaced-old"
  | "delete"
  | "import"
  /** deleted from the state only (retainOnDelete): the cloud resource stays */
  | "retain"
  /** a resource read with `get` (ReadResourceRequest): the provider's Read, nothing changes */
  | "read";

export interface Step {
  op: StepOp;
  urn: string;
  type: string;
  /** why: the keys that changed, the keys that force a replacement, the rule that applied */
  reason: string;
  /** for update/replace: top-level keys that differ (secret values never printed) */
  changedKeys: string[];
  replaceKeys: string[];
  /** old and new inputs, for a detailed diff (`mailstack preview --diff`) */
  oldInputs?: PropertyMap;
  newInputs?: PropertyMap;
  /** the property paths that differ (`triggers[1]`, `data.flags`) and whether each forces a replacement */
  detailedDiff?: Record<string, { kind: "add" | "update" | "delete"; replace: boolean }>;
  /** for the deletes run after the program finished: the wave (antichain) it belongs to, from 0 */
  wave?: number;
}

/** A problem the engine reports (protect, check failures, provider errors). In `up` the first one stops the run. */
export interface EngineDiagnostic {
  urn: string;
  severity: "error" | "warning";
  message: string;
}
