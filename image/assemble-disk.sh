#!/usr/bin/env bash
# The GPT disk from partition images, without mounts: sfdisk on a sparse file, the ESP made with
# mkfs.vfat -C and filled with mtools, each partition copied in with dd conv=notrunc.
#   assemble-disk.sh WORK VERSION DISK_GUID
# Layout (MiB): ESP 128 | root-a 640 | verity-a 16 | root-b 640 | verity-b 16 | imaging-edge-data (rest, 1536).
# Slot B starts empty; the data partition stays raw until the box's first boot encrypts it with its TPM.
set -euo pipefail
work=$1 version=$2 guid=$3
esp_mib=128 root_mib=640 verity_mib=16 data_mib=${IMAGE_DATA_MIB:-1536}
root_bytes=$(stat -c %s "$work/root.squashfs")
[ "$root_bytes" -le $((root_mib * 1048576)) ] || { echo "assemble-disk.sh: root image ($root_bytes bytes) exceeds the ${root_mib} MiB slot" >&2; exit 1; }

esp="$work/esp.img"
rm -f "$esp"
mkfs.vfat -C -F 32 -n ESP -i 5EA1ED00 "$esp" $((esp_mib * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/EFI/Linux ::/loader
mcopy -i "$esp" "$work/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$work/systemd-bootx64.efi" ::/EFI/systemd/systemd-bootx64.efi
# No counter on the factory slot: it is good by definition. Updates are installed with "+1" (one try).
mcopy -i "$esp" "$work/imaging-edge-a.efi" "::/EFI/Linux/imaging-edge-$version-a.efi"
printf 'timeout 0\ndefault imaging-edge-*\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n' >"$work/loader.conf"
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf

disk="$work/disk.img"
total_mib=$((1 + esp_mib + 2 * (root_mib + verity_mib) + data_mib + 1))
rm -f "$disk"
truncate -s "${total_mib}M" "$disk"
linux=0FC63DAF-8483-4772-8E79-3D69D8477DE4
esp_type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<EOT
label: gpt
label-id: $guid
unit: sectors
first-lba: 2048
start=2048, size=$((esp_mib * 2048)), type=$esp_type, name="esp", uuid=${guid%??}01
size=$((root_mib * 2048)), type=$linux, name="root-a", uuid=${guid%??}02
size=$((verity_mib * 2048)), type=$linux, name="verity-a", uuid=${guid%??}03
size=$((root_mib * 2048)), type=$linux, name="root-b", uuid=${guid%??}04
size=$((verity_mib * 2048)), type=$linux, name="verity-b", uuid=${guid%??}05
size=$((data_mib * 2048)), type=$linux, name="imaging-edge-data", uuid=${guid%??}06
EOT
put() { dd if="$1" of="$disk" bs=1M seek=$(($2)) conv=notrunc,sparse status=none; }
put "$esp" 1
put "$work/root.squashfs" $((1 + esp_mib))
put "$work/root.verity" $((1 + esp_mib + root_mib))
rm -f "$esp"
