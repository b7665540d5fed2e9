#!/bin/sh
# Run by mmdebstrap (--customize-hook) with the rootfs as $1: turns the Debian tree into
# the lab guest. Part of the image recipe: changing this file rebuilds the image.
set -eu
root=$1
here=$(dirname "$0")

install -m 0755 "$here/flexvdi-lab-init" "$root/usr/local/sbin/flexvdi-lab-init"
install -m 0644 "$here/flexvdi-lab-init.service" "$root/etc/systemd/system/flexvdi-lab-init.service"
ln -sf /etc/systemd/system/flexvdi-lab-init.service \
    "$root/etc/systemd/system/sysinit.target.wants/flexvdi-lab-init.service"

# root on the first virtio disk; eth0 is QEMU user networking (SSH from the controller
# through hostfwd), eth1 the private lab bridge (configured by flexvdi-lab-init).
echo "/dev/vda / ext4 defaults,noatime 0 1" > "$root/etc/fstab"
# Networking is systemd-networkd's (ifupdown stays installed, unused).
printf 'auto lo\niface lo inet loopback\n' > "$root/etc/network/interfaces"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=eth0\n\n[Network]\nAddress=10.0.2.15/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
    > "$root/etc/systemd/network/10-eth0.network"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$root" systemctl disable networking.service >/dev/null 2>&1 || true
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
printf '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --timeout=60\n' \
    > "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/flexvdi-lab.conf"
echo flexvdi-lab > "$root/etc/hostname"
# each guest gets its own id with systemd.machine_id= on the kernel command line
echo 0123456789abcdef0123456789abcdef > "$root/etc/machine-id"

# The hypervisor's qemu user, as libvirt-daemon-system would create it.
chroot "$root" sh -c 'getent group kvm >/dev/null || groupadd --system kvm'
chroot "$root" sh -c 'getent passwd libvirt-qemu >/dev/null || useradd --system -g kvm \
    -d /var/lib/libvirt -s /usr/sbin/nologin -c "Libvirt Qemu" libvirt-qemu'

# open-iscsi's postinst wrote one InitiatorName into the image: every guest would share it,
# like cloned machines. flexvdi-lab-init gives each guest its own at its first boot.
printf 'GenerateName=yes\n' > "$root/etc/iscsi/initiatorname.iscsi"
chmod 0600 "$root/etc/iscsi/initiatorname.iscsi"

# sshd: keys only; no DNS lookups (there is no DNS in the lab)
cat > "$root/etc/ssh/sshd_config.d/flexvdi-lab.conf" <<'EOT'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOT
# console login for debugging through the serial log / monitor
echo 'root:root' | chroot "$root" chpasswd

# Boot time under TCG matters: servers start only where the lab's prepare step wants them,
# and periodic jobs never run.
for unit in smbd.service nmbd.service samba-ad-dc.service winbind.service \
            glusterd.service glustereventsd.service nfs-server.service \
            rpcbind.service rpcbind.socket nfs-blkmap.service \
            apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
            e2scrub_reap.service fstrim.timer logrotate.timer dpkg-db-backup.timer \
            xfs_scrub_all.timer \
            rtslib-fb-targetctl.service targetclid.service targetclid.socket nftables.service; do
    chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
done
chroot "$root" systemctl mask systemd-firstboot.service >/dev/null 2>&1 || true
# glusterd runs geo-replication's gsyncd (Python) about twenty times at every start to write its
# config template: 60 s and more under TCG, at the role's first start and at every boot of a
# Gluster host. The collection never uses geo-replication; without gsyncd glusterd logs
# "geo-replication module not installed" and starts in a second. dpkg-divert, so that dpkg
# knows (a reinstall of glusterfs-common keeps it aside too).
chroot "$root" dpkg-divert --quiet --local --rename \
    --divert /usr/lib/x86_64-linux-gnu/glusterfs/gsyncd.flexvdi-lab \
    --add /usr/lib/x86_64-linux-gnu/glusterfs/gsyncd
# journal in memory only: less I/O under emulation
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/flexvdi-lab.conf"

# The guests have no route out (QEMU user networking with restrict=on): every package a
# role needs must be in the image. The apt lists stay so that the package modules see
# them as installed and report "ok".
rm -f "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
