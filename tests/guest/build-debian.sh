#!/usr/bin/env bash
# Builds the real distribution test guest: a Debian 12 cloud image made from Debian's packages
# (systemd, cloud-init with NoCloud, openssh, ifupdown, the cloud kernel, the QEMU guest agent),
# the shape of a hosting shop's template. Output: OUT/debian.qcow2, rebuilt only when this script
# changes. Needs root (a loop device), mmdebstrap, extlinux, e2fsprogs, parted (scripts/setup).
set -euo pipefail
out=${1:?usage: build-debian.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp_want=$(sha256sum "$here/build-debian.sh" | cut -c1-16)
if [[ -f $out/debian.qcow2 && -f $out/debian.stamp && $(cat "$out/debian.stamp") == "$stamp_want" ]]; then
    echo "debian guest: cached at $out/debian.qcow2"
    exit 0
fi

work=$(mktemp -d "$out/debian-work.XXXXXX")
loop=
cleanup() {
    mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
    [[ -n $loop ]] && losetup -d "$loop" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "debian guest: building the root file system (mmdebstrap, a few minutes)"
mmdebstrap --variant=important --quiet \
    --include=udev,cloud-guest-utils,linux-image-cloud-amd64,cloud-init,openssh-server,ifupdown,isc-dhcp-client,netbase,sudo,qemu-guest-agent \
    --customize-hook='echo "LABEL=root / ext4 defaults 0 1" > "$1/etc/fstab"' \
    --customize-hook='chroot "$1" systemctl enable serial-getty@ttyS0.service' \
    --customize-hook='printf "datasource_list: [ NoCloud, None ]\n" > "$1/etc/cloud/cloud.cfg.d/90-nuage.cfg"' \
    --customize-hook='printf "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n" > "$1/etc/network/interfaces"' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*; : > "$1/etc/machine-id"' \
    bookworm "$work/root"

echo "debian guest: making the disk"
raw=$work/debian.raw
truncate -s 2G "$raw"
parted -s "$raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
loop=$(losetup -f --show -o 1048576 --sizelimit $((2048 * 1048576 - 1048576)) "$raw")
mkfs.ext4 -q -O ^64bit -L root -d "$work/root" "$loop"
mkdir -p "$work/mnt"
mount "$loop" "$work/mnt"
kernel=$(cd "$work/mnt/boot" && ls vmlinuz-* | sort -V | tail -n1)
initrd=$(cd "$work/mnt/boot" && ls initrd.img-* | sort -V | tail -n1)
mkdir -p "$work/mnt/boot/extlinux"
cat > "$work/mnt/boot/extlinux/extlinux.conf" <<CFG
DEFAULT debian
TIMEOUT 1
LABEL debian
    LINUX /boot/$kernel
    INITRD /boot/$initrd
    APPEND root=LABEL=root ro console=tty0 console=ttyS0,115200 net.ifnames=0
CFG
extlinux --install "$work/mnt/boot/extlinux" >/dev/null 2>&1
umount "$work/mnt"
losetup -d "$loop"
loop=
dd if=/usr/lib/EXTLINUX/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$raw" "$out/debian.qcow2.part"
mv "$out/debian.qcow2.part" "$out/debian.qcow2"
echo "$stamp_want" > "$out/debian.stamp"
echo "debian guest: built $out/debian.qcow2 ($kernel)"
