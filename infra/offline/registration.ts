// What the Node SDK sends to the resource monitor (proto/pulumi/resource.proto
// RegisterResourceRequest, @pulumi/pulumi 3.270 runtime/resource.js registerResource), read into the
// engine's Goal and into the RecordedResource shape the mocks-based callers already use.
import type { Goal } from "./deployment";
import type { PropertyValue } from "./model";
import { mapFromWire } from "./property-values";

interface Struct {
  toJavaScript(): Record<string, unknown>;
}

interface AliasSpec {
  getName(): string;
  getType(): string;
  getStack(): string;
  getProject(): string;
  getParenturn(): string;
  getNoparent(): boolean;
}

/** The getters of RegisterResourceRequest this engine reads. */
export interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getRemote(): boolean;
  getObject(): Struct | undefined;
  hasProtect(): boolean;
  getProtect(): boolean;
  hasRetainondelete(): boolean;
  getRetainondelete(): boolean;
  getDeletebeforereplace(): boolean;
  getDeletebeforereplacedefined(): boolean;
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { entries(): { next(): { done?: boolean; value?: [string, { getUrnsList(): string[] }] } } };
  getDeletedwith(): string;
  getReplaceWithList(): string[];
  getImportid(): string;
  getAliasesList(): { getUrn(): string; getSpec(): AliasSpec | undefined; hasSpec(): boolean }[];
  getAliasurnsList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getProvider(): string;
  getVersion(): string;
}

/** One registration as the program made it (the shape runOffline's callers use). */
export interface RecordedResource {
  urn: string;
  type: string;
  name: string;
  /** URN of the parent resource (the stack's URN for top-level resources) */
  parent: string;
  custom: boolean;
  /** inputs as the engine received them: Secret for secrets, Unknown for values not known yet */
  inputs: Record<string, PropertyValue>;
  options: {
    protect: boolean;
    deleteBeforeReplace: boolean;
    ignoreChanges: string[];
    retainOnDelete: boolean;
    additionalSecretOutputs: string[];
    /** whether deleteBeforeReplace was set at all (an explicit false overrides the provider) */
    deleteBeforeReplaceDefined: boolean;
    replaceOnChanges: string[];
    /** dependsOn, resolved to the custom resources it waits for (components expanded) */
    dependencies: string[];
    /** input key -> URNs its value came from */
    propertyDependencies: Record<string, string[]>;
    importId: string;
    deletedWith: string;
    /** explicit provider reference; "" for the package's default provider */
    provider: string;
  };
}

export type UrnBuilder = (stack: string, project: string, parent: string, type: string, name: string) => string;

/** Reads a RegisterResourceRequest. Alias specs resolve to URNs the way SG generateAliases does for the plain cases. */
export function goalFromRequest(req: RegisterRequest, context: { stack: string; project: string; makeUrn: UrnBuilder }): Goal {
  const propertyDependencies: Record<string, string[]> = {};
  const entries = req.getPropertydependenciesMap().entries();
  for (let next = entries.next(); !next.done && next.value; next = entries.next()) {
    const [key, deps] = next.value;
    propertyDependencies[key] = deps.getUrnsList();
  }
  const type = req.getType();
  const name = req.getName();
  const parent = req.getParent();
  const aliases = [
    ...req.getAliasurnsList(),
    ...req.getAliasesList().map((alias) => {
      const spec = alias.hasSpec() ? alias.getSpec() : undefined;
      if (!spec) return alias.getUrn();
      return context.makeUrn(
        spec.getStack() || context.stack,
        spec.getProject() || context.project,
        spec.getNoparent() ? "" : spec.getParenturn() || parent,
        spec.getType() || type,
        spec.getName() || name,
      );
    }),
  ];
  return {
    type,
    name,
    parent,
    custom: req.getCustom(),
    remote: req.getRemote(),
    inputs: mapFromWire(req.getObject()?.toJavaScript() ?? {}),
    protect: req.hasProtect() ? req.getProtect() : undefined,
    retainOnDelete: req.hasRetainondelete() ? req.getRetainondelete() : undefined,
    deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
    ignoreChanges: req.getIgnorechangesList(),
    replaceOnChanges: req.getReplaceonchangesList(),
    dependencies: req.getDependenciesList(),
    propertyDependencies,
    deletedWith: req.getDeletedwith(),
    replaceWith: req.getReplaceWithList(),
    importId: req.getImportid(),
    aliases,
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    provider: req.getProvider(),
    version: req.getVersion(),
  };
}

export function recordedFrom(goal: Goal, urn: string): RecordedResource {
  return {
    urn,
    type: goal.type,
    name: goal.name,
    parent: goal.parent,
    custom: goal.custom,
    inputs: goal.inputs,
    options: {
      protect: goal.protect ?? false,
      deleteBeforeReplace: goal.deleteBeforeReplace ?? false,
      ignoreChanges: goal.ignoreChanges,
      retainOnDelete: goal.retainOnDelete ?? false,
      additionalSecretOutputs: goal.additionalSecretOutputs,
      deleteBeforeReplaceDefined: goal.deleteBeforeReplace !== undefined,
      replaceOnChanges: goal.replaceOnChanges,
      dependencies: goal.dependencies,
      propertyDependencies: goal.propertyDependencies,
      importId: goal.importId,
      deletedWith: goal.deletedWith,
      provider: goal.provider,
    },
  };
}
