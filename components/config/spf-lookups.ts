// RFC 7208 4.6.4: evaluating an SPF record may cause at most 10 DNS-querying terms (include, a, mx,
// ptr, exists, redirect), counted across nested includes; beyond that receivers return permerror
// and the domain's mail fails SPF.
import type { SpfInclude } from "../spec";

export const SPF_LOOKUP_LIMIT = 10;

/**
 * Lookups the terms the planner itself writes cost: it lists the server's own addresses as ip4:/ip6:
 * terms, which query nothing. Raise this if the planner ever publishes `a`, `mx` or similar.
 */
export const SPF_OWN_TERMS_LOOKUPS = 0;

export function spfLookupCount(include: readonly SpfInclude[]): number {
  return include.reduce((sum, inc) => sum + inc.lookups, SPF_OWN_TERMS_LOOKUPS);
}
