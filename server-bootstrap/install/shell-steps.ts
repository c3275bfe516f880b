// Shell functions shared by cloud-init's first-boot script and the deploy-time install script, so
// that both install Node, create the account and mount the volume in exactly the same way.
// Each function is idempotent: running it on a box where the work is done changes nothing.
//
// The functions read the variables `shellHeader` defines; `die` and `log` come from `shellPrelude`.
import type { BoxLayout } from "./layout";
import { NODE_DIST_URL, NODE_TARBALLS, NODE_VERSION } from "./layout";

/** Quote a value for a POSIX shell: single quotes, with embedded ones closed and escaped. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Variable definitions every script starts with: the layout, the pinned Node release. */
export function shellHeader(layout: BoxLayout, extra: Record<string, string> = {}): string {
  const vars: Record<string, string> = {
    ROOT: layout.root,
    DATA_DIR: layout.dataDir,
    MAILD_USER: layout.user,
    MAILD_UID: String(layout.uid),
    MAILD_GID: String(layout.gid),
    MAIL_USER: layout.mailUser,
    MAIL_UID: String(layout.mailUid),
    MAIL_GID: String(layout.mailGid),
    NODE: layout.node,
    NODE_PREFIX: layout.nodePrefix,
    NODE_VERSION,
    NODE_DIST_URL,
    NODE_X64_FILE: NODE_TARBALLS.x86_64.file,
    NODE_X64_SHA256: NODE_TARBALLS.x86_64.sha256,
    NODE_ARM64_FILE: NODE_TARBALLS.aarch64.file,
    NODE_ARM64_SHA256: NODE_TARBALLS.aarch64.sha256,
    ...extra,
  };
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shq(v)}`)
    .join("\n");
}

export function shellPrelude(tag: string): string {
  return `log() { printf '${tag}: %s\\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# The account database of the root being installed into (tests install into a temp root).
passwd_db() { if [ "$ROOT" = / ]; then echo /etc/passwd; else echo "$ROOT/etc/passwd"; fi; }
group_db() { if [ "$ROOT" = / ]; then echo /etc/group; else echo "$ROOT/etc/group"; fi; }
`;
}

/**
 * Creates the maild account and the account of Dovecot's mail processes (vmail), each with its
 * fixed ids, or checks existing ones have them; maild joins vmail's group (the mail tree's).
 */
export const ensureAccount = `ensure_system_account() {
  local name=$1 uid=$2 gid=$3 home=$4 comment=$5 prefix=() line out
  [ "$ROOT" = / ] || prefix=(--prefix "$ROOT")
  line=$(grep -E "^$name:" "$(group_db)" || true)
  if [ -z "$line" ]; then
    if grep -qE "^[^:]*:[^:]*:$gid:" "$(group_db)"; then
      die "gid $gid is taken by group $(grep -E "^[^:]*:[^:]*:$gid:" "$(group_db)" | cut -d: -f1); mail on the data volume is owned by gid $gid"
    fi
    groupadd "\${prefix[@]}" --system --gid "$gid" "$name"
  else
    [ "$(echo "$line" | cut -d: -f3)" = "$gid" ] || die "group $name has gid $(echo "$line" | cut -d: -f3); mail on the data volume is owned by gid $gid"
  fi
  line=$(grep -E "^$name:" "$(passwd_db)" || true)
  if [ -z "$line" ]; then
    if grep -qE "^[^:]*:[^:]*:$uid:" "$(passwd_db)"; then
      die "uid $uid is taken by user $(grep -E "^[^:]*:[^:]*:$uid:" "$(passwd_db)" | cut -d: -f1); mail on the data volume is owned by uid $uid"
    fi
    # A uid above SYS_UID_MAX draws a warning from useradd: show it only if useradd fails.
    out=$(useradd "\${prefix[@]}" --system --uid "$uid" --gid "$gid" --home-dir "$home" \\
      --no-create-home --shell /usr/sbin/nologin --comment "$comment" "$name" 2>&1) \\
      || die "useradd $name failed: $out"
    log "created account $name ($uid:$gid)"
  else
    [ "$(echo "$line" | cut -d: -f3)" = "$uid" ] || die "user $name has uid $(echo "$line" | cut -d: -f3); mail on the data volume is owned by uid $uid"
  fi
}

ensure_account() {
  local prefix=() members
  [ "$ROOT" = / ] || prefix=(--prefix "$ROOT")
  ensure_system_account "$MAILD_USER" "$MAILD_UID" "$MAILD_GID" "$DATA_DIR" "mailstack mail daemon"
  ensure_system_account "$MAIL_USER" "$MAIL_UID" "$MAIL_GID" /nonexistent "mailstack mail store (Dovecot)"
  members=$(grep -E "^$MAIL_USER:" "$(group_db)" | cut -d: -f4)
  if [[ ",$members," != *",$MAILD_USER,"* ]]; then
    usermod "\${prefix[@]}" --append --groups "$MAIL_USER" "$MAILD_USER"
    log "added $MAILD_USER to group $MAIL_USER"
  fi
}
`;

/** Installs the pinned Node release under NODE_PREFIX unless it is already there. */
export const ensureNode = `node_is_pinned() { [ -x "$NODE" ] && [ "$("$NODE" --version 2>/dev/null)" = "v$NODE_VERSION" ]; }

fetch() {
  if command -v curl >/dev/null; then curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null; then wget -q -O "$2" "$1"
  else die "neither curl nor wget is installed: cannot download $1"; fi
}

ensure_node() {
  node_is_pinned && return 0
  local file sum tmp got
  case "$(uname -m)" in
    x86_64) file=$NODE_X64_FILE; sum=$NODE_X64_SHA256 ;;
    aarch64|arm64) file=$NODE_ARM64_FILE; sum=$NODE_ARM64_SHA256 ;;
    *) die "Node.js $NODE_VERSION: no pinned build for machine type $(uname -m) (have x86_64, aarch64)" ;;
  esac
  tmp=$(mktemp -d)
  fetch "$NODE_DIST_URL/$file" "$tmp/$file" || { rm -rf "$tmp"; die "download of $NODE_DIST_URL/$file failed"; }
  got=$(sha256sum "$tmp/$file" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then rm -rf "$tmp"; die "$file: SHA-256 is $got, expected $sum; not installing it"; fi
  mkdir -p "$NODE_PREFIX"
  tar -xJf "$tmp/$file" -C "$NODE_PREFIX" --strip-components=1 --no-same-owner \\
    --wildcards "*/bin" "*/lib" "*/include" "*/share"
  rm -rf "$tmp"
  node_is_pinned || die "Node.js $NODE_VERSION was unpacked into $NODE_PREFIX but $NODE does not report v$NODE_VERSION"
  log "installed Node.js $NODE_VERSION ($file)"
}
`;

/**
 * Mounts the data volume at DATA_DIR. A volume without any signature is formatted (ext4); one
 * that holds anything (a filesystem, a partition table) is never formatted. The fstab line makes
 * the mount come back after a reboot; nofail keeps a missing volume from blocking the boot, and
 * the unit's RequiresMountsFor keeps maild from starting without it.
 */
export const ensureDataVolume = `ensure_data_volume() {
  local dev=$1 fstab=$2 waited=0 fstype source
  while [ ! -e "$dev" ]; do
    [ "$waited" -ge "\${VOLUME_WAIT_SECONDS:-120}" ] && die "data volume $dev did not appear within $waited s (is it attached to this server?)"
    sleep 1; waited=$((waited + 1))
  done
  fstype=$(blkid -o value -s TYPE "$dev" || true)
  if [ -z "$fstype" ]; then
    # blkid -p probes partition tables and other signatures too: anything found means "not empty".
    if blkid -p "$dev" >/dev/null 2>&1; then
      die "data volume $dev holds data blkid recognises but no filesystem; refusing to format it"
    fi
    mkfs.ext4 -q -L maild-data "$dev"
    fstype=ext4
    log "formatted empty data volume $dev (ext4)"
  fi
  mkdir -p "$DATA_DIR" "$(dirname "$fstab")"
  touch "$fstab"
  if ! grep -qF "$dev $DATA_DIR " "$fstab"; then
    printf '%s %s %s defaults,nofail,discard,x-systemd.device-timeout=30s 0 2\\n' "$dev" "$DATA_DIR" "$fstype" >> "$fstab"
  fi
  if mountpoint -q "$DATA_DIR"; then
    source=$(findmnt -n -o SOURCE --target "$DATA_DIR")
    [ "$(readlink -f "$source")" = "$(readlink -f "$dev")" ] || die "$DATA_DIR is mounted from $source, not from the data volume $dev"
  else
    mount -t "$fstype" -o defaults,discard "$dev" "$DATA_DIR"
    log "mounted $dev on $DATA_DIR"
  fi
}
`;
