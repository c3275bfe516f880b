// The `server` section: the Hetzner Cloud machine that runs the mail daemon.
import type { AdoptSpec, ServerSpec } from "../spec";
import { Problems } from "./config-error";
import { DOVECOT_CONFIG_VERSION } from "../../server-bootstrap/dovecot/dovecot-conf";
import {
  DEFAULT_SERVER_TYPE,
  HETZNER_IMAGES,
  SERVER_IMAGES,
  SERVER_LOCATIONS,
  serverTypeProblem,
  type ServerLocation,
} from "./hetzner-offer";
import { parseCidr } from "./name-syntax";
import { isAbsent, keyPath, readBoolean, readEnum, readInteger, readObject, readString, readStringList, show } from "./shape";

export { SERVER_IMAGES, SERVER_LOCATIONS } from "./hetzner-offer";

const SERVER_KEYS = ["type", "location", "image", "sshSourceRanges", "volumeSizeGb", "deleteProtection", "keepOnDestroy", "adopt"] as const;
const ADOPT_KEYS = ["ipv4", "ipv6", "volume"] as const;
// Hetzner's shared (cx, cpx, cax) and dedicated-vCPU (ccx) families.
const SERVER_TYPE = /^(cx|cpx|cax|ccx)[0-9]+$/;

/** Defaults; the server type's depends on the location (DEFAULT_SERVER_TYPE). */
export const SERVER_DEFAULTS: Omit<ServerSpec, "type"> = {
  location: "fsn1",
  image: "debian-12",
  sshSourceRanges: ["0.0.0.0/0", "::/0"],
  volumeSizeGb: 10,
  deleteProtection: false,
  keepOnDestroy: false,
};

export function readServer(value: unknown, path: string, problems: Problems): ServerSpec | undefined {
  const d = SERVER_DEFAULTS;
  if (isAbsent(value)) {
    return { ...d, type: DEFAULT_SERVER_TYPE[d.location as ServerLocation], sshSourceRanges: [...d.sshSourceRanges] };
  }
  const raw = readObject(value, path, SERVER_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;

  const location = isAbsent(raw.location)
    ? (d.location as ServerLocation)
    : readEnum(raw.location, keyPath(path, "location"), SERVER_LOCATIONS, problems);
  const type = isAbsent(raw.type)
    ? location && DEFAULT_SERVER_TYPE[location]
    : readType(raw.type, keyPath(path, "type"), location, problems);
  const image = isAbsent(raw.image) ? d.image : readImage(raw.image, keyPath(path, "image"), problems);

  let sshSourceRanges: string[] | undefined = [...d.sshSourceRanges];
  if (!isAbsent(raw.sshSourceRanges)) {
    const rangesPath = keyPath(path, "sshSourceRanges");
    sshSourceRanges = readStringList(raw.sshSourceRanges, rangesPath, problems, (text, itemPath) => {
      const cidr = parseCidr(text);
      if (!cidr.ok) problems.add(itemPath, `${show(text)} ${cidr.reason}`);
      return cidr.ok ? cidr.value : undefined;
    });
    if (sshSourceRanges !== undefined && sshSourceRanges.length === 0) {
      problems.add(rangesPath, "is empty; the deployment reaches the server over SSH, so at least one CIDR is needed");
    }
  }
  const volumeSizeGb = isAbsent(raw.volumeSizeGb)
    ? d.volumeSizeGb
    : readInteger(raw.volumeSizeGb, keyPath(path, "volumeSizeGb"), 10, 10240, problems, " (GB, Hetzner's volume limits)");
  const deleteProtection = isAbsent(raw.deleteProtection)
    ? d.deleteProtection
    : readBoolean(raw.deleteProtection, keyPath(path, "deleteProtection"), problems);
  const keepOnDestroy = isAbsent(raw.keepOnDestroy)
    ? d.keepOnDestroy
    : readBoolean(raw.keepOnDestroy, keyPath(path, "keepOnDestroy"), problems);
  const adopt = isAbsent(raw.adopt) ? undefined : readAdopt(raw.adopt, keyPath(path, "adopt"), problems);

  if (problems.count > before) return undefined;
  return {
    type: type!,
    location: location!,
    image: image!,
    sshSourceRanges: sshSourceRanges!,
    volumeSizeGb: volumeSizeGb!,
    deleteProtection: deleteProtection!,
    keepOnDestroy: keepOnDestroy!,
    ...(adopt !== undefined ? { adopt } : {}),
  };
}

/** A server type Hetzner sells in `location` (checked once the location itself is valid). */
function readType(value: unknown, path: string, location: ServerLocation | undefined, problems: Problems): string | undefined {
  const text = readString(value, path, problems, "a Hetzner server type");
  if (text === undefined) return undefined;
  if (!SERVER_TYPE.test(text)) {
    problems.add(
      path,
      `${show(text)} is not a Hetzner server type; expected cx, cpx, cax or ccx followed by digits, e.g. cx23, cpx12, cax11, ccx13`,
    );
    return undefined;
  }
  if (location === undefined) return text;
  const problem = serverTypeProblem(text, location);
  if (problem !== undefined) {
    problems.add(path, `${show(text)} ${problem}`);
    return undefined;
  }
  return text;
}

function readImage(value: unknown, path: string, problems: Problems): string | undefined {
  const allowed = SERVER_IMAGES.join(", ");
  const other = typeof value === "string" ? HETZNER_IMAGES[value] : undefined;
  if (other !== undefined && !SERVER_IMAGES.includes(value as string)) {
    problems.add(
      path,
      `${show(value)} ships Dovecot ${other.dovecot}, which refuses the Dovecot ${DOVECOT_CONFIG_VERSION} configuration mailstack writes; use ${allowed}`,
    );
    return undefined;
  }
  return readEnum(value, path, SERVER_IMAGES, problems);
}

/** The three ids a `keepOnDestroy` stack left behind: all of them, as digits. */
function readAdopt(value: unknown, path: string, problems: Problems): AdoptSpec | undefined {
  const raw = readObject(value, path, ADOPT_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;
  const missing = ADOPT_KEYS.filter((k) => isAbsent(raw[k]));
  if (missing.length > 0) {
    problems.add(
      path,
      `needs ipv4, ipv6 and volume together (the primary IPs and the volume a stack with keepOnDestroy left behind); missing: ${missing.join(", ")}`,
    );
  }
  const where: Record<(typeof ADOPT_KEYS)[number], string> = {
    ipv4: "hcloud primary-ip list",
    ipv6: "hcloud primary-ip list",
    volume: "hcloud volume list",
  };
  const ids: Partial<AdoptSpec> = {};
  for (const key of ADOPT_KEYS) {
    const v = raw[key];
    if (isAbsent(v)) continue;
    const text = typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? String(v) : typeof v === "string" ? v.trim() : undefined;
    if (text === undefined || !/^[1-9][0-9]*$/.test(text)) {
      problems.add(keyPath(path, key), `${show(v)} is not a Hetzner id (digits, e.g. 52418876); \`${where[key]}\` shows it`);
      continue;
    }
    ids[key] = text;
  }
  if (problems.count > before) return undefined;
  return ids as AdoptSpec;
}
