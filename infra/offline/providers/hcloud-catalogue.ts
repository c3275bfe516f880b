// What Hetzner Cloud sells where, late 2026: server types with their per-location availability and
// deprecations, images per architecture, Storage Box types and locations. Facts and sources:
// /work/research/hetzner.md sec. 1, 2 and 9 (TENT = third-party notes read from the authenticated
// API in Sept 2026; TF = terraform-provider-hcloud v1.67.0 tests). UNCONFIRMED entries say so.

export const LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
export type Location = (typeof LOCATIONS)[number];

/** Location -> the datacenter a server lands in (`<location>-dc<n>`, as the API names them). */
export const DATACENTERS: Record<Location, string> = {
  fsn1: "fsn1-dc14",
  nbg1: "nbg1-dc3",
  hel1: "hel1-dc2",
  ash: "ash-dc1",
  hil: "hil-dc1",
  sin: "sin-dc1",
};

export interface Deprecation {
  announced: string;
  /** ISO date after which the type can no longer be ordered there */
  unavailableAfter: string;
}

export interface ServerTypeInfo {
  id: number;
  name: string;
  architecture: "x86" | "arm";
  cpuType: "shared" | "dedicated";
  cores: number;
  memoryGb: number;
  diskGb: number;
  storageType: "local";
  /** where the type is listed, with a per-location deprecation when there is one */
  locations: Partial<Record<Location, { deprecation?: Deprecation }>>;
  /** a deprecation of the whole type (every location) */
  deprecation?: Deprecation;
}

const EU: Location[] = ["fsn1", "nbg1", "hel1"];
const ALL: Location[] = [...LOCATIONS];
// Changelog 2025-10-16 deprecated CX gen2 and CPX gen1; hcloud-talos/terraform-hcloud-talos #316 quotes
// the API: `Server Type "cx42" is deprecated in all locations and will no longer be available for order as of 2025-12-31`.
const GEN2_DEPRECATION: Deprecation = { announced: "2025-10-16", unavailableAfter: "2025-12-31" };

function listed(where: Location[], deprecated: Location[] = [], deprecation = GEN2_DEPRECATION): ServerTypeInfo["locations"] {
  return Object.fromEntries(where.map((l) => [l, deprecated.includes(l) ? { deprecation } : {}]));
}

let nextTypeId = 100;
function family(
  names: [string, number, number, number][],
  architecture: "x86" | "arm",
  cpuType: "shared" | "dedicated",
  locations: ServerTypeInfo["locations"],
  deprecation?: Deprecation,
): ServerTypeInfo[] {
  return names.map(([name, cores, memoryGb, diskGb]) => ({
    id: nextTypeId++,
    name,
    architecture,
    cpuType,
    cores,
    memoryGb,
    diskGb,
    storageType: "local",
    locations,
    ...(deprecation ? { deprecation } : {}),
  }));
}

/**
 * hetzner.md sec. 1 matrix: CX gen3 and CAX in the EU only (TENT "CX and CAX are EU-only";
 * trellis-cli #622: cax11 in ash -> `unsupported location for server type`); CPX gen2 in the EU and
 * sin (TF servertype test: cpx22 has 4 locations); CPX gen1 listed everywhere but deprecated and
 * unavailable outside ash/hil (TF test d79720fc: cpx11 with 6 locations, fsn1 deprecated; a blog
 * quoting `Server Type "cpx11" is unavailable in "nbg1"`; sin status UNCONFIRMED, modelled like the
 * EU since TENT says cpx12.. replaced cpx11.. in sin); CCX in all six (sin UNCONFIRMED); CX gen2
 * deprecated as a whole type.
 */
export const SERVER_TYPES: ServerTypeInfo[] = [
  ...family(
    [
      ["cx23", 2, 4, 40],
      ["cx33", 4, 8, 80],
      ["cx43", 8, 16, 160],
      ["cx53", 16, 32, 320],
    ],
    "x86",
    "shared",
    listed(EU),
  ),
  ...family(
    [
      ["cax11", 2, 4, 40],
      ["cax21", 4, 8, 80],
      ["cax31", 8, 16, 160],
      ["cax41", 16, 32, 320],
    ],
    "arm",
    "shared",
    listed(EU),
  ),
  ...family(
    [
      ["cpx12", 1, 2, 40],
      ["cpx22", 2, 4, 80],
      ["cpx32", 4, 8, 160],
      ["cpx42", 8, 16, 320],
      ["cpx52", 12, 24, 480],
      ["cpx62", 16, 32, 640],
    ],
    "x86",
    "shared",
    listed([...EU, "sin"]),
  ),
  ...family(
    [
      ["cpx11", 2, 2, 40],
      ["cpx21", 3, 4, 80],
      ["cpx31", 4, 8, 160],
      ["cpx41", 8, 16, 240],
      ["cpx51", 16, 32, 360],
    ],
    "x86",
    "shared",
    listed(ALL, [...EU, "sin"]),
  ),
  ...family(
    [
      ["ccx13", 2, 8, 80],
      ["ccx23", 4, 16, 160],
      ["ccx33", 8, 32, 240],
      ["ccx43", 16, 64, 360],
      ["ccx53", 32, 128, 600],
      ["ccx63", 48, 192, 960],
    ],
    "x86",
    "dedicated",
    listed(ALL),
  ),
  ...family(
    [
      ["cx22", 2, 4, 40],
      ["cx32", 4, 8, 80],
      ["cx42", 8, 16, 160],
      ["cx52", 16, 32, 320],
    ],
    "x86",
    "shared",
    listed(EU, EU),
    GEN2_DEPRECATION,
  ),
];

export interface ImageInfo {
  id: number;
  name: string;
  architecture: "x86" | "arm";
  osFlavor: string;
  osVersion: string;
  /** ISO date the deprecation was announced; the image is unavailable three months later (GO exp/deprecationutil/image.go) */
  deprecated?: string;
}

let nextImageId = 161_547_000;
function image(name: string, osFlavor: string, osVersion: string, deprecated?: string): ImageInfo[] {
  return (["x86", "arm"] as const).map((architecture) => ({
    id: nextImageId++,
    name,
    architecture,
    osFlavor,
    osVersion,
    ...(deprecated ? { deprecated } : {}),
  }));
}

/**
 * System images for both architectures (TENT, Sept 2026): debian-11 is deprecated and unavailable
 * after 2026-11-30, so its deprecation is dated three months earlier.
 */
export const IMAGES: ImageInfo[] = [
  ...image("debian-11", "debian", "11", "2026-08-30"),
  ...image("debian-12", "debian", "12"),
  ...image("debian-13", "debian", "13"),
  ...image("ubuntu-22.04", "ubuntu", "22.04"),
  ...image("ubuntu-24.04", "ubuntu", "24.04"),
  ...image("ubuntu-26.04", "ubuntu", "26.04"),
  ...image("fedora-43", "fedora", "43"),
  ...image("rocky-10", "rocky", "10"),
  ...image("alma-10", "alma", "10"),
];

/** Storage Box types (TF internal/teste2e/testing.go: bx11 default, bx21 upgrade; bx31/bx41 UNCONFIRMED). */
export const STORAGE_BOX_TYPES = ["bx11", "bx21", "bx31", "bx41"];
/** Storage Box locations: fsn1 and hel1 are documented (TF tests, ansible hetzner.hcloud 6.3.0); others UNCONFIRMED, refused. */
export const STORAGE_BOX_LOCATIONS = ["fsn1", "hel1"];

export function serverTypeByName(name: string): ServerTypeInfo | undefined {
  return SERVER_TYPES.find((t) => t.name === name);
}

/** Where a type can be ordered at `at`: listed there and not past a deprecation. */
export function orderableLocations(type: ServerTypeInfo, at: Date): Location[] {
  if (type.deprecation && at > endOfDay(type.deprecation.unavailableAfter)) return [];
  return (Object.entries(type.locations) as [Location, { deprecation?: Deprecation }][])
    .filter(([, entry]) => !entry.deprecation || at <= endOfDay(entry.deprecation.unavailableAfter))
    .map(([l]) => l);
}

export function endOfDay(isoDate: string): Date {
  return new Date(`${isoDate}T23:59:59Z`);
}

/**
 * hcloud-go hcloud/exp/deprecationutil/server_type.go `ServerTypeMessage` with a location: the
 * message TF prints (as an error when `unavailable`) before it asks the API for a server.
 */
export function serverTypeDeprecationMessage(
  type: ServerTypeInfo,
  location: string,
  at: Date,
): { message: string; unavailable: boolean } | undefined {
  if (type.deprecation) {
    if (at > endOfDay(type.deprecation.unavailableAfter)) {
      return { message: `Server Type "${type.name}" is unavailable in all locations and can no longer be ordered`, unavailable: true };
    }
    return {
      message: `Server Type "${type.name}" is deprecated in all locations and will no longer be available for order as of ${type.deprecation.unavailableAfter}`,
      unavailable: false,
    };
  }
  const entry = type.locations[location as Location];
  if (!entry?.deprecation) return undefined;
  if (at > endOfDay(entry.deprecation.unavailableAfter)) {
    return { message: `Server Type "${type.name}" is unavailable in "${location}" and can no longer be ordered`, unavailable: true };
  }
  return {
    message: `Server Type "${type.name}" is deprecated in "${location}" and will no longer be available for order as of ${entry.deprecation.unavailableAfter}`,
    unavailable: false,
  };
}

/** GO exp/deprecationutil/image.go `ImageMessage`: unavailable three months after the deprecation. */
export function imageDeprecationMessage(img: ImageInfo, at: Date): { message: string; unavailable: boolean } | undefined {
  if (!img.deprecated) return undefined;
  const until = new Date(img.deprecated);
  until.setUTCMonth(until.getUTCMonth() + 3);
  if (at > until) return { message: `Image "${img.name}" is unavailable and can no longer be ordered`, unavailable: true };
  return {
    message: `Image "${img.name}" is deprecated and will no longer be available for order as of ${until.toISOString().slice(0, 10)}`,
    unavailable: false,
  };
}
