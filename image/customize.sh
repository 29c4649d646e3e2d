#!/usr/bin/env bash
# mmdebstrap customize hook: turns the Debian root file system into the appliance's. Runs on the build
# host with the root file system's path; everything it does must be deterministic (no random salts, no
# "now"), so that two builds give the same root image.
#   customize.sh ROOTFS STAGE VERSION
set -euo pipefail
root=$1
stage=$2
version=$3
repo=$(cd "$(dirname "$0")/.." && pwd)
in_root() { chroot "$root" "$@"; }

# The application under /opt/imaging-edge, owned by root (edged reads it, never writes it).
install -d -m 0755 "$root/opt/imaging-edge"
cp -a "$stage/app/." "$root/opt/imaging-edge/"
chown -R 0:0 "$root/opt/imaging-edge"
chmod -R u=rwX,go=rX "$root/opt/imaging-edge"
ln -sf /opt/imaging-edge/bin/edgectl "$root/usr/local/bin/edgectl"

# The service user: no shell, no home, in `tss` for /dev/tpmrm0.
in_root useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups tss edge

# Files of the image: units, sysctl, fstab, journald cap, the data-partition script, initramfs parts.
install -m 0644 "$repo"/image/edged.service "$repo"/image/edge-firewall*.service "$repo"/image/edge-firewall.path \
  "$repo"/image/edge-firewall-verify.timer "$root/etc/systemd/system/"
install -m 0644 "$repo"/image/sysctl.d/*.conf "$root/etc/sysctl.d/"
cp -a "$repo/image/rootfs/." "$root/"
chown -R 0:0 "$root/etc/systemd/system" "$root/usr/lib/imaging-edge"
# Mount points on the read-only root.
install -d -m 0755 "$root/etc/edge" "$root/var/lib/imaging-edge" "$root/var/lib/imaging-edge-volume" "$root/media/usb" "$root/efi"
# The site's network (static addresses: DHCP is not in the firewall plan) comes with the site profile and
# lives on the data partition; until provisioning the box has no network, only its console.
install -d -m 0755 "$root/etc/systemd/network"
ln -sf /etc/edge/site.network "$root/etc/systemd/network/50-site.network"

# Units: the firewall and edged (both wait for a provisioned configuration), networkd; no getty but the
# console's; Debian's nftables.service would flush the firewall table; no apt timers on a read-only root.
systemctl --root="$root" enable edged.service edge-firewall.service edge-firewall.path edge-firewall-verify.timer \
  imaging-edge-data.service imaging-edge-boot-check.service systemd-networkd.service >/dev/null 2>&1
systemctl --root="$root" mask nftables.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  e2scrub_reap.service fstrim.timer getty@tty1.service systemd-networkd-wait-online.service >/dev/null 2>&1
systemctl --root="$root" disable systemd-timesyncd.service >/dev/null 2>&1 || true

# Console login for the field engineer: root with the build's console password (development default
# "imaging-edge"; a production build sets IMAGE_ROOT_PASSWORD_HASH to a `openssl passwd -6` hash).
hash=${IMAGE_ROOT_PASSWORD_HASH:-$(openssl passwd -6 -salt imagingedgedev imaging-edge)}
in_root usermod -p "$hash" root

printf '%s\n' "IMAGE_VERSION=$version" 'IMAGE_ID=imaging-edge' >>"$root/etc/os-release"
# Per boot (read-only root): systemd creates a transient machine id when the file is empty.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"

# Kernel modules the box has no use for (graphics, sound, wireless, media, ...): smaller root, smaller attack surface.
kdir=$(ls -d "$root"/lib/modules/*)
rm -rf "$kdir"/kernel/drivers/{gpu,media,staging,infiniband,isdn,bluetooth,net/wireless,iio} "$kdir"/kernel/sound \
  "$kdir"/kernel/net/{bluetooth,wireless,mac80211}
in_root depmod -a "$(basename "$kdir")"

# Manifest of what is in the image (the mirror's state is not archived: keep it with the build).
in_root dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' | sort >"$root/imaging-edge-manifest.txt"

# No compilers, no package caches, nothing that differs between two builds.
for forbidden in gcc cc g++ clang sshd; do
  ! in_root sh -c "command -v $forbidden" >/dev/null 2>&1 || { echo "customize.sh: $forbidden must not be in the image" >&2; exit 1; }
done
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/* "$root"/var/cache/ldconfig/aux-cache
find "$root/var/lib/dpkg" -name '*-old' -delete
