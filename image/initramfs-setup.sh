#!/usr/bin/env bash
# mmdebstrap essential hook: the initramfs-tools parts of the verity root, in place before the kernel
# package is installed, so that its one initrd build is already the appliance's (small, MODULES=list).
#   initramfs-setup.sh ROOTFS
set -euo pipefail
root=$1
here=$(cd "$(dirname "$0")" && pwd)
install -d "$root/etc/initramfs-tools/hooks" "$root/etc/initramfs-tools/scripts/local-top" "$root/etc/initramfs-tools/conf.d"
install -m 0755 "$here/initramfs/hook" "$root/etc/initramfs-tools/hooks/imaging-edge-verity"
install -m 0755 "$here/initramfs/local-top" "$root/etc/initramfs-tools/scripts/local-top/imaging-edge-verity"
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/imaging-edge.conf"
