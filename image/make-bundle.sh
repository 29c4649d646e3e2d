#!/usr/bin/env bash
# The update bundle of a build: an uncompressed tar (it is written to a disk or a USB stick as is) whose
# first member is manifest.json (version, root hash, sha256 of every other member) and its ECDSA P-256
# signature manifest.sig made with the update key; the box checks the signature against the key baked
# into its root image before it looks at anything else.
#   make-bundle.sh WORK VERSION UPDATE_KEY OUT
set -euo pipefail
work=$1 version=$2 key=$3 out=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln "$work/root.squashfs" "$tmp/root.squashfs" 2>/dev/null || cp "$work/root.squashfs" "$tmp/root.squashfs"
ln "$work/root.verity" "$tmp/root.verity" 2>/dev/null || cp "$work/root.verity" "$tmp/root.verity"
cp "$work/imaging-edge-a.efi" "$tmp/uki-a.efi"
cp "$work/imaging-edge-b.efi" "$tmp/uki-b.efi"
sum() { sha256sum "$tmp/$1" | cut -d' ' -f1; }
bytes() { stat -c %s "$tmp/$1"; }
cat >"$tmp/manifest.json" <<EOT
{"format":"imaging-edge-bundle/1","version":"$version","rootHash":"$(cat "$work/roothash")","files":{
"root.squashfs":{"sha256":"$(sum root.squashfs)","bytes":$(bytes root.squashfs)},
"root.verity":{"sha256":"$(sum root.verity)","bytes":$(bytes root.verity)},
"uki-a.efi":{"sha256":"$(sum uki-a.efi)","bytes":$(bytes uki-a.efi)},
"uki-b.efi":{"sha256":"$(sum uki-b.efi)","bytes":$(bytes uki-b.efi)}}}
EOT
openssl dgst -sha256 -sign "$key" -out "$tmp/manifest.sig" "$tmp/manifest.json"
tar --create --file "$out" --directory "$tmp" --format=ustar --owner=0 --group=0 --numeric-owner \
  --mtime="@${SOURCE_DATE_EPOCH:-0}" manifest.json manifest.sig uki-a.efi uki-b.efi root.verity root.squashfs
