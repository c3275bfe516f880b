// What Hetzner Cloud sells where, as the `server` section's checks need it: server types by family
// and location, the images mailstack can configure, and the cheapest default type per location.
// Hetzner has no one shared type sold in every location (CX and CAX: EU only; CPX gen 2: EU and
// Singapore; CPX gen 1: the US only), so the default depends on the location.
//
// Sources (research notes hetzner.md sec. 1-2, late 2026; availability itself is API data,
// `server_types[].locations[]`, and stock varies):
// - Hetzner changelog 2025-10-16 "server types deprecated": CX gen 2 (cx22..cx52) and CPX gen 1
//   (cpx11..cpx51) deprecated, removed from sale in the EU at the end of 2025
//   (hetznercloud/terraform-provider-hcloud c9cdbb9c; hcloud-talos/terraform-hcloud-talos #316).
// - CX and CAX are EU-only; CPX gen 1 stays in ash/hil, CPX gen 2 replaced it in fsn1/nbg1/hel1/sin;
//   CCX unchanged everywhere (third-party notes read from the authenticated API, Sept 2026;
//   trailofbits/algo #14562 "CX ... not offered in our US-Locations"; roots/trellis-cli #622: cax11
//   in ash -> "unsupported location for server type"; terraform-provider-hcloud
//   internal/servertype/data_source_test.go at v1.67.0: cpx22 in exactly 4 locations).
// - Prices (EU, net, after 2026-06-15): cx23 5.49, cpx12 11.49; US cpx11 17.49 (same notes).
// - Dovecot per image: debian-12 2.3.19 (bookworm), ubuntu-24.04 and ubuntu-22.04 2.3
//   (packages.ubuntu.com noble-updates/jammy dovecot-core), debian-13 2.4.1
//   (packages.debian.org/trixie/dovecot-core), ubuntu-26.04 2.4.2 (packages.ubuntu.com resolute).
// Not confirmed by those sources, and so the first things to check against the API's
// `server_types` when Hetzner refuses a pair admitted here: CCX in sin, and no CX/CPX gen 1 in sin.

import { DOVECOT_CONFIG_VERSION } from "../../server-bootstrap/dovecot/dovecot-conf";

export const SERVER_LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
export type ServerLocation = (typeof SERVER_LOCATIONS)[number];

const EU: readonly ServerLocation[] = ["fsn1", "nbg1", "hel1"];

export interface ServerTypeFamily {
  /** how Hetzner names the family */
  family: string;
  types: readonly string[];
  /** where Hetzner sells it */
  locations: readonly ServerLocation[];
  architecture: "x86" | "arm";
}

/** Every server type Hetzner sells today, by family, cheapest first within a family. */
export const SERVER_TYPE_FAMILIES: readonly ServerTypeFamily[] = [
  { family: "CX", types: ["cx23", "cx33", "cx43", "cx53"], locations: EU, architecture: "x86" },
  { family: "CAX", types: ["cax11", "cax21", "cax31", "cax41"], locations: EU, architecture: "arm" },
  {
    family: "CPX",
    types: ["cpx12", "cpx22", "cpx32", "cpx42", "cpx52", "cpx62"],
    locations: [...EU, "sin"],
    architecture: "x86",
  },
  { family: "CPX gen 1", types: ["cpx11", "cpx21", "cpx31", "cpx41", "cpx51"], locations: ["ash", "hil"], architecture: "x86" },
  {
    family: "CCX",
    types: ["ccx13", "ccx23", "ccx33", "ccx43", "ccx53", "ccx63"],
    locations: SERVER_LOCATIONS,
    architecture: "x86",
  },
];

/**
 * The cheapest x86 type on sale in each location (x86: Hetzner's ARM types are EU-only, and a
 * stack moved to another location keeps working on the same architecture).
 */
export const DEFAULT_SERVER_TYPE: Readonly<Record<ServerLocation, string>> = {
  fsn1: "cx23",
  nbg1: "cx23",
  hel1: "cx23",
  sin: "cpx12",
  ash: "cpx11",
  hil: "cpx11",
};

const CX_GEN2_GONE = "CX gen 2 was withdrawn at the end of 2025 (Hetzner changelog 2025-10-16)";
// terraform-provider-hcloud TestAccServerResource_UnavailableServerType expects cx11 "unavailable in all locations".
const CX_GEN1_GONE = "CX gen 1 was withdrawn before CX gen 2";

/** Types Hetzner no longer sells anywhere, and what replaced each. */
export const RETIRED_SERVER_TYPES: Readonly<Record<string, { successor: string; why: string }>> = {
  cx22: { successor: "cx23", why: CX_GEN2_GONE },
  cx32: { successor: "cx33", why: CX_GEN2_GONE },
  cx42: { successor: "cx43", why: CX_GEN2_GONE },
  cx52: { successor: "cx53", why: CX_GEN2_GONE },
  cx11: { successor: "cx23", why: CX_GEN1_GONE },
  cx21: { successor: "cx23", why: CX_GEN1_GONE },
  cx31: { successor: "cx33", why: CX_GEN1_GONE },
  cx41: { successor: "cx43", why: CX_GEN1_GONE },
  cx51: { successor: "cx53", why: CX_GEN1_GONE },
};

function familyOf(type: string): ServerTypeFamily | undefined {
  return SERVER_TYPE_FAMILIES.find((f) => f.types.includes(type));
}

/** The types on sale in a location, grouped by family ("cpx11, cpx21 or ccx13, ccx23"). */
export function typesSoldIn(location: ServerLocation): string {
  return SERVER_TYPE_FAMILIES.filter((f) => f.locations.includes(location))
    .map((f) => f.types.join(", "))
    .join(" or ");
}

/**
 * Why Hetzner would not sell `type` in `location`, as the end of a config message; undefined when
 * it does.
 */
export function serverTypeProblem(type: string, location: ServerLocation): string | undefined {
  const family = familyOf(type);
  if (family?.locations.includes(location)) return undefined;
  const useInstead = `in ${location} use ${typesSoldIn(location)}`;
  if (family) {
    return `is not offered in "${location}" (${family.family} is sold in ${family.locations.join(", ")} only); ${useInstead}`;
  }
  const retired = RETIRED_SERVER_TYPES[type];
  if (retired) {
    const successorHere = familyOf(retired.successor)?.locations.includes(location);
    return `is no longer sold (${retired.why}); ${successorHere ? `its successor is ${retired.successor}; ` : ""}${useInstead}`;
  }
  return `is not a server type Hetzner sells; ${useInstead}`;
}

export interface ServerImage {
  /** the Dovecot major version the image's packages install */
  dovecot: string;
}

/** The Hetzner images mailstack knows, with the Dovecot each one installs. */
export const HETZNER_IMAGES: Readonly<Record<string, ServerImage>> = {
  "debian-12": { dovecot: "2.3" },
  "ubuntu-24.04": { dovecot: "2.3" },
  "ubuntu-22.04": { dovecot: "2.3" },
  "debian-13": { dovecot: "2.4" },
  "ubuntu-26.04": { dovecot: "2.4" },
};

/** The images whose Dovecot reads the configuration mailstack writes (DOVECOT_CONFIG_VERSION). */
export const SERVER_IMAGES: readonly string[] = Object.keys(HETZNER_IMAGES).filter(
  (image) => HETZNER_IMAGES[image].dovecot === DOVECOT_CONFIG_VERSION,
);
