#!/usr/bin/env bash
# Build (or find in the cache) the Debian 12 guest image of the flexvdi.storage lab.
#
#   tests/lab/image.sh            build if needed; print the image directory
#   tests/lab/image.sh --hash     print the recipe hash only
#   tests/lab/image.sh --force    rebuild even if cached
#
# The image is made from Debian packages alone (mmdebstrap, minbase), written into a raw
# ext4 file system with `mkfs.ext4 -d` and converted to a qcow2 base. Nothing of it lives in
# the checkout: it is cached in $FLEXVDI_LAB_CACHE (default ~/.cache/flexvdi-lab) under
# images/<hash>, where <hash> covers this script and everything in tests/lab/guest/, so the
# image is rebuilt exactly when the recipe changes. The directory holds:
#   base.qcow2  vmlinuz  initrd.img  recipe.sha256  build.log  build-seconds
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${FLEXVDI_LAB_CACHE:-$HOME/.cache/flexvdi-lab}
suite=bookworm
mirror=${FLEXVDI_LAB_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FLEXVDI_LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
image_size=4G

# The guest's packages (the issue's list, plus what makes it boot and be managed).
packages=(
    linux-image-amd64 initramfs-tools systemd-sysv udev kmod dbus
    openssh-server python3 python3-apt
    ocfs2-tools cifs-utils glusterfs-server glusterfs-client xfsprogs
    samba smbclient nfs-kernel-server nfs-common
    iproute2 ifupdown netbase iputils-ping util-linux procps less
    # the SAN (issue 18): initiator and multipath on the VDI hosts, LIO target and the
    # firewall that drops a portal on nas (one image for every guest)
    open-iscsi multipath-tools targetcli-fb nftables
)

die() { echo "image.sh: $*" >&2; exit 1; }

recipe_hash() {
    # the script, the package list (part of it) and the guest files, by name and content
    (
        cd "$here"
        sha256sum image.sh
        find guest -type f | LC_ALL=C sort | xargs sha256sum
    ) | sha256sum | cut -c1-16
}

force=0
case "${1:-}" in
    --hash) recipe_hash; exit 0 ;;
    --force) force=1 ;;
    "") ;;
    *) die "unknown argument: $1 (use --hash or --force)" ;;
esac

hash=$(recipe_hash)
dest=$cache/images/$hash
mkdir -p "$cache/images"

exec 9>"$cache/images/.lock"
flock 9   # one build at a time; a second caller waits and then finds the cache

if [ "$force" = 0 ] && [ -f "$dest/base.qcow2" ] && [ -f "$dest/recipe.sha256" ]; then
    echo "image.sh: cached image $hash" >&2
    echo "$dest"
    exit 0
fi

for tool in mmdebstrap mkfs.ext4 qemu-img; do
    command -v "$tool" >/dev/null || die "$tool is missing (make setup installs it)"
done
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap --mode=root, mkfs.ext4 -d of a root-owned tree)"

work=$cache/images/.build-$hash
rm -rf "$work" "$dest"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
log=$work/build.log
start=$(date +%s.%N)
echo "image.sh: building image $hash (log: $dest/build.log) ..." >&2

include=$(IFS=,; echo "${packages[*]}")
# initramfs: only what mounts an ext4 root from virtio-blk; a small initrd boots faster
# under emulation than the default MODULES=most one.
setup_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"
printf "MODULES=list\n" > "$1/etc/initramfs-tools/conf.d/flexvdi-lab.conf"
cat > "$1/etc/initramfs-tools/hooks/flexvdi-lab" <<EOT
#!/bin/sh
[ "\$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_scsi crc32c_generic ext4; do force_load \$m; done
EOT
chmod 0755 "$1/etc/initramfs-tools/hooks/flexvdi-lab"'

if ! mmdebstrap --variant=minbase --mode=root --format=directory \
        --include="$include" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --skip=cleanup/apt/lists \
        --setup-hook="$setup_hook" \
        --customize-hook="\"$here/guest/customize.sh\" \"\$1\"" \
        "$suite" "$work/rootfs" \
        "deb $mirror $suite main" \
        "deb $mirror $suite-updates main" \
        "deb $security_mirror $suite-security main" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "mmdebstrap failed (full log above was $log)"
fi
t_debootstrap=$(date +%s.%N)

kernel=$(ls "$work"/rootfs/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$work"/rootfs/boot/initrd.img-* | sort -V | tail -n1)
[ -f "$kernel" ] && [ -f "$initrd" ] || die "no kernel or initrd in the rootfs"
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"

truncate -s "$image_size" "$work/base.raw"
mkfs.ext4 -q -F -L flexvdi-root -d "$work/rootfs" "$work/base.raw" >>"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "mkfs.ext4 -d failed"; }
rm -rf "$work/rootfs"
qemu-img convert -O qcow2 "$work/base.raw" "$work/base.qcow2"
rm -f "$work/base.raw"
end=$(date +%s.%N)

echo "$hash" > "$work/recipe.sha256"
awk -v s="$start" -v d="$t_debootstrap" -v e="$end" \
    'BEGIN { printf "%.1f s (mmdebstrap %.1f s, mkfs.ext4 -d + qcow2 %.1f s)\n", e - s, d - s, e - d }' \
    > "$work/build-seconds"
mv "$work" "$dest"
trap - EXIT
# drop older images: only the current recipe is kept
for old in "$cache"/images/*/; do
    [ "${old%/}" = "$dest" ] || rm -rf "${old%/}"
done
echo "image.sh: built image $hash in $(cat "$dest/build-seconds")" >&2
echo "$dest"
