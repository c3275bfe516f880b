// The dependency graph of a snapshot (pkg/resource/graph/dependency_graph.go at pulumi/pulumi
// 1b594988): the order delete-before-replace dependents are found in, and the waves deletes run in.
import type { ResourceState } from "./model";

/** A provider reference is `<provider urn>::<provider id>` (sdk/go/common/providers/reference.go). */
export function providerUrnOf(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  const at = ref.lastIndexOf("::");
  return at === -1 ? ref : ref.slice(0, at);
}

/** State.GetAllDependencies without the parent: dependsOn, property dependencies, deletedWith, replaceWith. */
export function dependencyUrns(state: ResourceState): string[] {
  return [
    ...state.dependencies,
    ...Object.values(state.propertyDependencies ?? {}).flat(),
    ...(state.deletedWith ? [state.deletedWith] : []),
    ...(state.replaceWith ?? []),
  ];
}

export class DependencyGraph {
  private readonly index = new Map<ResourceState, number>();
  /** URN -> indices of its transitive children (NewDependencyGraph childrenOf) */
  private readonly childrenOf = new Map<string, number[]>();

  constructor(readonly resources: ResourceState[]) {
    const urnIndex = new Map<string, number>();
    resources.forEach((res, i) => {
      this.index.set(res, i);
      urnIndex.set(res.urn, i);
      let parent = res.parent;
      while (parent) {
        this.childrenOf.set(parent, [...(this.childrenOf.get(parent) ?? []), i]);
        const at = urnIndex.get(parent);
        parent = at === undefined ? undefined : resources[at].parent;
      }
    });
  }

  contains(res: ResourceState): boolean {
    return this.index.has(res);
  }

  /**
   * DependingOn (L55-126): everything after `res` in the snapshot that depends on it directly or
   * transitively through dependsOn, property dependencies, deletedWith, replaceWith or its provider;
   * parents count only with includeChildren. Resources in `ignore` are skipped.
   */
  dependingOn(res: ResourceState, ignore: Set<string>, includeChildren: boolean): ResourceState[] {
    const cursor = this.index.get(res);
    if (cursor === undefined) throw new Error(`${res.urn} is not in the dependency graph`);
    const dependentSet = new Set([res.urn]);
    const dependents: ResourceState[] = [];
    for (let i = cursor + 1; i < this.resources.length; i++) {
      const candidate = this.resources[i];
      if (ignore.has(candidate.urn)) continue;
      const viaParent = includeChildren && candidate.parent !== undefined && dependentSet.has(candidate.parent);
      const viaProvider = dependentSet.has(providerUrnOf(candidate.provider) ?? "");
      if (viaParent || viaProvider || dependencyUrns(candidate).some((u) => dependentSet.has(u))) {
        dependents.push(candidate);
        dependentSet.add(candidate.urn);
      }
    }
    return dependents;
  }

  /**
   * DependenciesOf (L207-256): the states before `res` it depends on (provider, dependsOn,
   * property dependencies, deletedWith, replaceWith, its parent), and for a component it depends on,
   * that component's children placed before `res`.
   */
  dependenciesOf(res: ResourceState): Set<ResourceState> {
    const set = new Set<ResourceState>();
    const cursor = this.index.get(res);
    if (cursor === undefined) throw new Error(`${res.urn} is not in the dependency graph`);
    const urns = new Set(dependencyUrns(res));
    const provider = providerUrnOf(res.provider);
    if (provider) urns.add(provider);
    for (let i = cursor - 1; i >= 0; i--) {
      const candidate = this.resources[i];
      if (urns.has(candidate.urn)) {
        set.add(candidate);
        if (!candidate.custom) {
          for (const child of this.childrenOf.get(candidate.urn) ?? []) if (child < cursor) set.add(this.resources[child]);
        }
      }
      if (candidate.urn === res.parent) set.add(candidate);
    }
    return set;
  }

  /**
   * TransitiveDependenciesOf (L268-335): provider, dependencies and parents, transitively. A URN held
   * by both a delete-marked and a live state resolves to the one of the same kind as the referrer.
   */
  transitiveDependenciesOf(res: ResourceState): Set<ResourceState> {
    const olds = new Map<string, ResourceState>();
    const news = new Map<string, ResourceState>();
    for (const r of this.resources) (r.delete ? olds : news).set(r.urn, r);
    const lookup = (from: ResourceState, urn: string | undefined) => {
      if (!urn) return undefined;
      if (olds.has(urn) && news.has(urn)) return from.delete ? olds.get(urn) : news.get(urn);
      return olds.get(urn) ?? news.get(urn);
    };
    const marked = new Set<ResourceState>();
    const visit = (r: ResourceState | undefined) => {
      if (!r || marked.has(r)) return;
      marked.add(r);
      visit(lookup(r, providerUrnOf(r.provider)));
      for (const u of dependencyUrns(r)) visit(lookup(r, u));
      visit(lookup(r, r.parent));
    };
    visit(lookup(res, res.urn));
    marked.delete(res);
    return marked;
  }
}

/**
 * ScheduleDeletes (step_generator.go L2747-2797): repeatedly take the condemned states none of whose
 * dependencies are still condemned (an antichain), then reverse the list so dependents go first.
 * Within a wave the order is the snapshot's (the engine runs a wave's steps in parallel).
 */
export function scheduleDeletes<T extends { state: ResourceState }>(graph: DependencyGraph, items: T[]): T[][] {
  const condemned = new Set(items.map((i) => i.state));
  const byState = new Map(items.map((i) => [i.state, i]));
  const waves: T[][] = [];
  while (condemned.size > 0) {
    const wave = [...condemned].filter((res) => ![...graph.dependenciesOf(res)].some((d) => condemned.has(d)));
    if (wave.length === 0) throw new Error("the states to delete depend on each other in a cycle; the snapshot is not in dependency order");
    for (const res of wave) condemned.delete(res);
    waves.push(wave.sort((a, b) => graph.resources.indexOf(a) - graph.resources.indexOf(b)).map((s) => byState.get(s)!));
  }
  return waves.reverse();
}
