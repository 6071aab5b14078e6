#!/bin/bash
# Start the emulated Raspberry Pi: an aarch64 sshd (under qemu-user) on 127.0.0.1:PORT inside ROOTFS, letting in
# user pi with one public key. Needs root. Prints the sshd's process id, which leads its own process group:
# `kill -- -PID` stops the server and every session it forked.
#
# Usage: start_sshd.sh ROOTFS AUTHORIZED_PUBKEY_FILE [PORT (default 2222)] [LOG (default /dev/null)]
set -euo pipefail
R=${1:?usage: start_sshd.sh ROOTFS PUBKEY [PORT] [LOG]}
KEY=${2:?usage: start_sshd.sh ROOTFS PUBKEY [PORT] [LOG]}
PORT=${3:-2222}
LOG=${4:-/dev/null}
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
install -d -m700 "$R/home/pi/.ssh"
install -m600 "$KEY" "$R/home/pi/.ssh/authorized_keys"
chroot "$R" chown -R pi:pi /home/pi/.ssh
# A private mount namespace: /proc, /sys, /dev and the Pi's cpuinfo exist only for this sshd and its children.
# sshd's -p overrides the Port of its config file.
setsid unshare -m --propagation private sh -c "
  mount -t proc proc '$R/proc' && mount -t sysfs sysfs '$R/sys' && mount --bind /dev '$R/dev' &&
  mount --bind /dev/pts '$R/dev/pts' && mount --bind '$R/etc/fake_cpuinfo' '$R/proc/cpuinfo' &&
  exec chroot '$R' env -i QEMU_CPU=cortex-a72 PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/sshd -D -e -p '$PORT'" \
  >"$LOG" 2>&1 </dev/null &
echo $!
