// The `server` section: the Hetzner Cloud machine that runs the mail daemon.
import type { ServerSpec } from "../spec";
import { Problems } from "./config-error";
import { parseCidr } from "./name-syntax";
import { isAbsent, keyPath, readBoolean, readEnum, readInteger, readObject, readString, readStringList, show } from "./shape";

export const SERVER_LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
export const SERVER_IMAGES = ["debian-12", "debian-13", "ubuntu-24.04", "ubuntu-22.04"] as const;
const SERVER_KEYS = ["type", "location", "image", "sshSourceRanges", "volumeSizeGb", "deleteProtection"] as const;
// Hetzner's shared (cx, cpx, cax) and dedicated-vCPU (ccx) families.
const SERVER_TYPE = /^(cx|cpx|cax|ccx)[0-9]+$/;

export const SERVER_DEFAULTS: ServerSpec = {
  type: "cx22",
  location: "fsn1",
  image: "debian-12",
  sshSourceRanges: ["0.0.0.0/0", "::/0"],
  volumeSizeGb: 10,
  deleteProtection: false,
};

export function readServer(value: unknown, path: string, problems: Problems): ServerSpec | undefined {
  const d = SERVER_DEFAULTS;
  if (isAbsent(value)) return { ...d, sshSourceRanges: [...d.sshSourceRanges] };
  const raw = readObject(value, path, SERVER_KEYS, problems);
  if (raw === undefined) return undefined;
  const before = problems.count;

  let type = d.type;
  if (!isAbsent(raw.type)) {
    const text = readString(raw.type, keyPath(path, "type"), problems, "a Hetzner server type");
    if (text !== undefined && !SERVER_TYPE.test(text)) {
      problems.add(
        keyPath(path, "type"),
        `${show(text)} is not a Hetzner server type; expected cx, cpx, cax or ccx followed by digits, e.g. cx22, cpx31, cax11, ccx13`,
      );
    } else if (text !== undefined) type = text;
  }
  const location = isAbsent(raw.location) ? d.location : readEnum(raw.location, keyPath(path, "location"), SERVER_LOCATIONS, problems);
  const image = isAbsent(raw.image) ? d.image : readEnum(raw.image, keyPath(path, "image"), SERVER_IMAGES, problems);

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

  if (problems.count > before) return undefined;
  return {
    type,
    location: location!,
    image: image!,
    sshSourceRanges: sshSourceRanges!,
    volumeSizeGb: volumeSizeGb!,
    deleteProtection: deleteProtection!,
  };
}
