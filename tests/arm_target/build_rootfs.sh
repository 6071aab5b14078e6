#!/bin/bash
# Build (or reuse) the emulated Raspberry Pi: an arm64 Debian bookworm root file system with Python 3.11, torch
# (CPU) and onnxruntime, run under qemu-user through binfmt_misc. Needs root.
#
# Usage: build_rootfs.sh CACHE_DIR
# The root file system lands in CACHE_DIR/rootfs with a stamp (the sha256 of this script). A cached copy whose
# stamp matches is reused as it is, so only a change to this script rebuilds it (about 7.5 minutes).
set -euo pipefail
CACHE=${1:?usage: build_rootfs.sh CACHE_DIR}
R="$CACHE/rootfs"
STAMP=$(sha256sum "$0" | cut -d' ' -f1)
t() { echo "[$(date +%T)] arm-target: $*"; }

if [ "$(cat "$R/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  t "reusing $R (stamp matches)"
  exit 0
fi
# A private mount namespace: the /proc and /dev mounts made inside the root file system vanish when we exit.
[ -n "${IN_NS:-}" ] || exec unshare -m --propagation private env IN_NS=1 "$0" "$@"

MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)}
TORCH=${TORCH:-torch==2.9.1}
BUILD="$CACHE/rootfs.partial"
rm -rf "$BUILD"
mkdir -p "$CACHE"

t "host packages"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static binfmt-support debootstrap >/dev/null
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64   # F: the interpreter is usable inside the chroot

t "debootstrap stage 1"
debootstrap --arch=arm64 --foreign --variant=minbase \
  --include=python3,python3-venv,openssh-server,ca-certificates bookworm "$BUILD" "$MIRROR" >/dev/null
t "debootstrap stage 2 (emulated)"
chroot "$BUILD" /debootstrap/debootstrap --second-stage >/dev/null
mount -t proc proc "$BUILD/proc"
mount --bind /dev "$BUILD/dev"

t "CA certificates, virtual environment"
cp /usr/local/share/ca-certificates/*.crt "$BUILD/usr/local/share/ca-certificates/" 2>/dev/null || true
E="env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
chroot "$BUILD" $E update-ca-certificates >/dev/null
chroot "$BUILD" $E python3 -m venv /opt/venv
t "pip install $TORCH (emulated)"
chroot "$BUILD" $E /opt/venv/bin/pip install -q --no-cache-dir --progress-bar off "$TORCH" numpy
chroot "$BUILD" $E /opt/venv/bin/pip install -q --no-cache-dir --progress-bar off onnxruntime

t "user pi, sshd config"
chroot "$BUILD" useradd -m -s /bin/bash pi
chroot "$BUILD" usermod -p '*' pi   # not locked: with UsePAM no, '!' would lock the account
mkdir -p "$BUILD/run/sshd"
cat > "$BUILD/etc/ssh/sshd_config.d/bench.conf" <<'CONF'
Port 2222
ListenAddress 127.0.0.1
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
SetEnv QEMU_CPU=cortex-a72
CONF
# A Raspberry Pi 4's /proc/cpuinfo: torch's cpuinfo library crashes on the host's x86 one under emulation.
cat > "$BUILD/etc/fake_cpuinfo" <<'CPU'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

processor	: 1
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Hardware	: BCM2835
Model		: Raspberry Pi 4 Model B Rev 1.1
CPU
chroot "$BUILD" $E apt-get clean
rm -f "$BUILD"/var/lib/apt/lists/*_* 2>/dev/null || true
umount "$BUILD/dev" "$BUILD/proc"

echo "$STAMP" > "$BUILD/.stamp"
rm -rf "$R"
mv "$BUILD" "$R"
t "done: $R"
