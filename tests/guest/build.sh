#!/usr/bin/env bash
# Builds the small bootable test guest from Debian packages (ENVIRONMENT.md's recipe) into $1
# (default target/test-guest): a FAT disk with SYSLINUX, Debian's kernel and a busybox initramfs.
#
# The guest's init prints to both the serial port and the VGA console:
#   NUAGE-GUEST-BOOTED           once userland runs
#   NUAGE-HOSTNAME=<name>        when a NoCloud `cidata` disk (FAT or ISO) holds a local-hostname
#   NUAGE-ADDRESS=<ip>           when a NIC got an address by DHCP
# then keeps a shell on the VGA console (tty1), for console tests; the shell's output is copied to
# the serial port as well.
#
# Cached: nothing is rebuilt while this script and the kernel version are unchanged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../target/test-guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)

stamp_want=$(sha256sum "$here/build.sh" "$here/init" | sha256sum | cut -c1-16)
if [[ -f $out/base.qcow2 && -f $out/stamp && $(cat "$out/stamp") == "$stamp_want" ]]; then
    echo "test guest: cached at $out/base.qcow2"
    exit 0
fi

for tool in busybox syslinux mcopy mkfs.vfat depmod modprobe cpio qemu-img apt-get dpkg; do
    command -v "$tool" >/dev/null || { echo "test guest: missing $tool (run scripts/setup)" >&2; exit 1; }
done

work=$out/work
rm -rf "$work"
mkdir -p "$work/kernel" "$work/root"

# 1. Debian's kernel, unpacked (not installed).
kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
[[ -n $kpkg ]] || { echo "test guest: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
deb=$(ls "$out"/"$kpkg"_*.deb 2>/dev/null | head -n1 || true)
if [[ -z $deb ]]; then
    (cd "$out" && apt-get download "$kpkg" >/dev/null)
    deb=$(ls "$out"/"$kpkg"_*.deb | head -n1)
fi
dpkg -x "$deb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules" | head -n1)
depmod -b "$work/kernel" "$kver"

# 2. Userland: static busybox, the init script and the modules it needs, in dependency order.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mnt,modules,tmp,etc}
cp /bin/busybox "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
: > "$root/modules/order"
modprobe -a -d "$work/kernel" -S "$kver" --show-depends \
    virtio_pci virtio_blk virtio_net vfat nls_cp437 nls_ascii nls_utf8 isofs \
    | awk '$1 == "insmod" {print $2}' | while read -r ko; do
    name=$(basename "$ko")
    grep -qx "${name%.xz}" "$root/modules/order" && continue
    case $ko in
        *.xz) xz -dc "$ko" > "$root/modules/${name%.xz}" ;;
        *) cp "$ko" "$root/modules/$name" ;;
    esac
    echo "${name%.xz}" >> "$root/modules/order"
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/initrd.gz"

# 3. A FAT disk that SeaBIOS boots through SYSLINUX; no mount, no loop device.
cat > "$work/syslinux.cfg" <<'CFG'
DEFAULT linux
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 console=tty0 loglevel=3
CFG
img=$work/disk.img
truncate -s 64M "$img"
mkfs.vfat -n NUAGEBOOT "$img" >/dev/null
syslinux --install "$img"
mcopy -i "$img" "$work/kernel/boot/vmlinuz-$kver" ::vmlinuz
mcopy -i "$img" "$work/initrd.gz" ::initrd.gz
mcopy -i "$img" "$work/syslinux.cfg" ::syslinux.cfg
qemu-img convert -O qcow2 "$img" "$out/base.qcow2.tmp"
mv "$out/base.qcow2.tmp" "$out/base.qcow2"
rm -rf "$work"
echo "$stamp_want" > "$out/stamp"
echo "test guest: built $out/base.qcow2 (kernel $kver)"
