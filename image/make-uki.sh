#!/usr/bin/env bash
# One unified kernel image (systemd-stub 252: .osrel, .cmdline, .linux, .initrd), signed for Secure Boot.
# The command line names the root slot and the dm-verity root hash; with Secure Boot on, systemd-stub
# ignores any other command line, so the signature covers which root may run.
#   make-uki.sh WORK SLOT ROOTHASH VERSION DB_KEY DB_CERT OUT
set -euo pipefail
work=$1 slot=$2 roothash=$3 version=$4 key=$5 cert=$6 out=$7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'root=/dev/mapper/root rootfstype=squashfs ro imaging_edge.slot=%s imaging_edge.roothash=%s console=tty0 console=ttyS0,115200 panic=30 lockdown=integrity' \
  "$slot" "$roothash" >"$tmp/cmdline"
cat >"$tmp/osrel" <<EOT
ID=imaging-edge
NAME="Imaging Edge"
PRETTY_NAME="Imaging Edge $version (slot $slot)"
VERSION_ID=$version
IMAGE_ID=imaging-edge
IMAGE_VERSION=$version
EOT
objcopy \
  --add-section .osrel="$tmp/osrel" --change-section-vma .osrel=0x20000 \
  --add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
  --add-section .linux="$work/vmlinuz" --change-section-vma .linux=0x2000000 \
  --add-section .initrd="$work/initrd.img" --change-section-vma .initrd=0x3000000 \
  "$work/linuxx64.efi.stub" "$tmp/unsigned.efi"
sbsign --key "$key" --cert "$cert" --output "$out" "$tmp/unsigned.efi" 2>/dev/null
