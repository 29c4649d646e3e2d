#!/usr/bin/env bash
# A bundle whose edged cannot start, derived from a build without rebuilding it: the root image with
# bin/edged replaced by a script that exits 1, squashed again, a new hash tree, both kernel images made
# again (the same kernel and initrd, the new root hash) and signed with the build's keys.
#   broken-bundle.sh IMAGE_DIR VERSION OUT
set -euo pipefail
image=$(realpath "$1") version=$2 out=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
unsquashfs -q -no-progress -d "$work/rootfs" "$image/root.squashfs" >/dev/null
printf '#!/bin/sh\necho "edged: this build is broken on purpose" >&2\nexit 1\n' >"$work/rootfs/opt/imaging-edge/bin/edged"
printf '%s\n' "$version" >"$work/rootfs/opt/imaging-edge/VERSION"
mksquashfs "$work/rootfs" "$work/root.squashfs" -noappend -quiet -no-progress -comp zstd -Xcompression-level 3 -b 1M -no-xattrs >/dev/null
veritysetup format "$work/root.squashfs" "$work/root.verity" | sed -n 's/^Root hash:[[:space:]]*//p' >"$work/roothash"
objcopy -O binary --only-section=.linux "$image/imaging-edge-a.efi" "$work/vmlinuz"
objcopy -O binary --only-section=.initrd "$image/imaging-edge-a.efi" "$work/initrd.img"
cp /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$work/linuxx64.efi.stub"
for slot in a b; do
  "$repo/image/make-uki.sh" "$work" "$slot" "$(cat "$work/roothash")" "$version" "$image/keys/db.key" "$image/keys/db.crt" "$work/imaging-edge-$slot.efi"
done
"$repo/image/make-bundle.sh" "$work" "$version" "$image/keys/update.key" "$out"
