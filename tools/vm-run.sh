#!/bin/bash
# Run one command in a QEMU guest that boots Debian bookworm's own kernel (6.1) with
# the unified cgroup hierarchy only (cgroup_no_v1=all, cgroup2 at /sys/fs/cgroup):
#
#   tools/vm-run.sh [-o OUTDIR] [--] COMMAND [ARG...]
#
# The guest sees the host's root filesystem read-only over virtio-9p, under an overlay
# whose upper layer is on an ext4 scratch disk image (so /var/lib, /root, /etc and the
# build directory are writable in the guest, and nothing reaches the host); /tmp and
# /var/tmp are plain ext4 on that disk (overlay upper dirs, as containerd's snapshotter
# makes, cannot live on an overlay), /run is a tmpfs. COMMAND runs as root in the
# current directory with the caller's PATH and the environment variables named in
# VM_ENV; its output is streamed here, its exit status is this script's. Files the
# command writes under $VM_OUT (in the guest) are copied to OUTDIR afterwards.
# The guest always powers off; a deadline (VM_TIMEOUT seconds) kills QEMU by its PID.
#
# KVM is tried first when /dev/kvm is usable; a guest that shows no sign of life within
# VM_KVM_WAIT seconds is killed and the run is repeated under TCG (emulation, 10-30x
# slower). Nothing on the host is mounted or changed: the scratch disk is a file made
# with mkfs.ext4 and read back with debugfs.
#
# The kernel: an installed linux-image-6.1.*-amd64 if /boot and /lib/modules have one,
# else bookworm's linux-image-amd64 fetched and unpacked by tools/fetch-debian.sh
# (never installed). Exit 77 (skipped) when QEMU or the kernel cannot be had.
#
# Environment: VM_TIMEOUT (default 1800), VM_MEM (MiB, default 2048), VM_CPUS (default
# 2), VM_ACCEL (auto|kvm|tcg, default auto), VM_KVM_WAIT (default 20), VM_DISK (scratch
# disk size, default 4G), VM_ENV (names of variables passed to the command),
# VM_SHARE (host directories under /tmp or /var/tmp the command needs besides the
# working directory), VM_KEEP=1 (keep the work dir and say where).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "vm-run: $*" >&2; exit 1; }
skip() { echo "SKIP: vm-run: $*"; exit 77; }

outdir=
while [ $# -gt 0 ]; do
        case $1 in
        -o) outdir=${2:?-o needs a directory}; shift 2 ;;
        --) shift; break ;;
        -*) die "unknown option $1 (usage: $0 [-o OUTDIR] [--] COMMAND [ARG...])" ;;
        *) break ;;
        esac
done
[ $# -ge 1 ] || die "usage: $0 [-o OUTDIR] [--] COMMAND [ARG...]"
[ "$(id -u)" = 0 ] || skip "needs root (QEMU's 9p export of / must read every file)"

timeout_s=${VM_TIMEOUT:-1800}
mem=${VM_MEM:-2048}
cpus=${VM_CPUS:-2}
accel=${VM_ACCEL:-auto}
kvm_wait=${VM_KVM_WAIT:-20}
disk_size=${VM_DISK:-4G}

qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
busybox=/bin/busybox
[ -x "$busybox" ] || skip "$busybox missing (apt-get install busybox-static)"
for t in mkfs.ext4 debugfs gzip; do
        command -v "$t" >/dev/null || skip "$t not installed"
done

# ---- the kernel and its modules ----
# find_kernel: set KVER, VMLINUZ and MODDIR from an installed 6.1 kernel package or
# from bookworm's, unpacked in the cache.
find_kernel() {
        local v root dir meta
        for v in /boot/vmlinuz-6.1.*-amd64; do
                [ -f "$v" ] || continue
                KVER=${v#/boot/vmlinuz-}
                if [ -d "/lib/modules/$KVER/kernel" ]; then
                        VMLINUZ=$v MODDIR=/lib/modules/$KVER
                        return 0
                fi
        done
        # linux-image-amd64 is a metapackage: its doc dir links to the real package's.
        meta=$("$here/fetch-debian.sh" bookworm linux-image-amd64) || return 1
        root=$(readlink "$meta/usr/share/doc/linux-image-amd64") || return 1
        dir=$("$here/fetch-debian.sh" bookworm "$root") || return 1
        KVER=${root#linux-image-}
        VMLINUZ=$dir/boot/vmlinuz-$KVER MODDIR=$dir/lib/modules/$KVER
        [ -f "$VMLINUZ" ] && [ -d "$MODDIR/kernel" ]
}
find_kernel || skip "no Debian 6.1 kernel: none installed and bookworm's linux-image-amd64 could not be fetched"

work=$(mktemp -d /tmp/nanoshim-vm-XXXXXX)
qpid=
cleanup() {
        if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
                kill -KILL "$qpid" 2>/dev/null
                wait "$qpid" 2>/dev/null
        fi
        if [ "${VM_KEEP:-0}" = 1 ]; then echo "vm-run: work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Modules the guest needs before its root exists (virtio disk and 9p, ext4, overlay)
# and for the tests (overlay for containerd's snapshotter, bridge and veth for a CNI
# bridge network), in load order: each one's "depends=" (from its .modinfo section)
# first. The guest's /lib/modules is the host's: nothing is loaded later.
want_modules="virtio_pci virtio_blk 9pnet_virtio 9p crc32c_generic ext4 overlay bridge veth"
declare -A modpath=() loaded=()
while IFS= read -r f; do
        b=${f##*/}
        modpath[${b%.ko}]=$f
done < <(find "$MODDIR/kernel" -name '*.ko')
order=()
add_module() {
        local m=$1 d deps
        [ -n "${loaded[$m]:-}" ] && return 0
        [ -n "${modpath[$m]:-}" ] || die "module $m not found under $MODDIR"
        deps=$(grep -a -o -m1 'depends=[a-z0-9_,-]*' "${modpath[$m]}" | head -n1 | cut -d= -f2)
        for d in ${deps//,/ }; do add_module "$d"; done
        loaded[$m]=1
        order+=("$m")
}
for m in $want_modules; do add_module "$m"; done

# ---- the initramfs: busybox, the modules, the init script, the command ----
ird=$work/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,mnt,lower,scratch,newroot,modules,ovl}
cp "$busybox" "$ird/bin/busybox"
for a in sh mount umount insmod switch_root poweroff mkdir cat echo sleep sync ls chmod cp; do
        ln -s busybox "$ird/bin/$a"
done
for m in "${order[@]}"; do
        cp "${modpath[$m]}" "$ird/modules/$m.ko"
        echo "$m" >>"$ird/modules/order"
done
{
        printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
        printf 'export PATH=%q\n' "$PATH"
        for v in ${VM_ENV:-}; do
                [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
        done
        printf 'export VM_OUT=/var/tmp/vm-out\n'
        printf 'exec'
        printf ' %q' "$@"
        printf '\n'
} >"$ird/command"
# The guest's /tmp and /var/tmp are its own: a host directory under them that the
# command needs (the working directory, and VM_SHARE: e.g. a clone of the project in
# /tmp) is made visible again at the same path, through the overlay.
for p in "$PWD" ${VM_SHARE:-}; do
        p=$(readlink -f "$p") || continue
        case $p in
        /tmp/?* | /var/tmp/?*) echo "$p" ;;
        esac
done | sort -u >"$ird/share"
cat >"$ird/init" <<'EOF'
#!/bin/sh
# Stage 1 (busybox): modules, the scratch disk, the host's root read-only over 9p under
# an overlay, then stage 2 in the new root.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "nanoshim-vm: init" >/dev/ttyS0
fail() { echo "nanoshim-vm: $*" >/dev/ttyS0; echo "nanoshim-vm: exit 125" >/dev/ttyS1; poweroff -f; }
for m in $(cat /modules/order); do insmod /modules/$m.ko || fail "insmod $m failed"; done
n=0
while [ ! -b /dev/vda ]; do
        n=$((n + 1)); [ $n -lt 300 ] || fail "no /dev/vda"; sleep 0.1
done
mount -t ext4 /dev/vda /scratch || fail "cannot mount the scratch disk"
mkdir -p /scratch/upper /scratch/work /scratch/tmp /scratch/var-tmp/vm-out
chmod 1777 /scratch/tmp /scratch/var-tmp
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=262144 hostroot /lower || fail "cannot mount the host's root over 9p"
mount -t overlay -o lowerdir=/lower,upperdir=/scratch/upper,workdir=/scratch/work overlay /newroot || fail "cannot mount the overlay root"
mount -t tmpfs -o mode=755 run /newroot/run
mkdir -p /ovl
mount --bind /newroot /ovl
mount --bind /scratch/tmp /newroot/tmp
mount --bind /scratch/var-tmp /newroot/var/tmp
for p in $(cat /share); do
        mkdir -p "/newroot$p" && mount --bind "/ovl$p" "/newroot$p" || fail "cannot show $p in the guest"
done
mkdir -p /newroot/run/vm
cp /command /newroot/run/vm/command
cp /stage2 /newroot/run/vm/stage2
chmod +x /newroot/run/vm/stage2
mkdir -p /newroot/run/vm/bin
cp /bin/busybox /newroot/run/vm/bin/busybox
mount --move /dev /newroot/dev
umount /proc /sys 2>/dev/null
exec switch_root /newroot /run/vm/stage2
EOF
cat >"$ird/stage2" <<'EOF'
#!/run/vm/bin/busybox sh
# Stage 2 (PID 1 in the new root): the kernel file systems with cgroup2, the command
# with its output on the second serial port, its status after it, power off.
bb=/run/vm/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
$bb mkdir -p /dev/pts /dev/shm /dev/mqueue
$bb mount -t devpts -o newinstance,ptmxmode=0666,gid=5,mode=620 devpts /dev/pts
$bb ln -sf pts/ptmx /dev/ptmx 2>/dev/null
# what udev would make: crun reads `update --resources -` from /dev/stdin
$bb ln -sf /proc/self/fd /dev/fd
$bb ln -sf /proc/self/fd/0 /dev/stdin
$bb ln -sf /proc/self/fd/1 /dev/stdout
$bb ln -sf /proc/self/fd/2 /dev/stderr
$bb mount -t tmpfs -o mode=1777 shm /dev/shm
$bb mount -t mqueue mqueue /dev/mqueue
$bb hostname nanoshim-vm
$bb ip link set lo up 2>/dev/null
# The controllers for containers: enabled for the root's children.
for c in $($bb cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done
echo "nanoshim-vm: running the command" >/dev/ttyS0
/bin/bash /run/vm/command </dev/null >/dev/ttyS1 2>&1
rc=$?
echo "nanoshim-vm: exit $rc" >/dev/ttyS1
$bb sync
$bb poweroff -f
EOF
chmod +x "$ird/init" "$ird/stage2"
(cd "$ird" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.gz"

# ---- the scratch disk, and a boot ----
# boot ACCEL WAIT: boot once; 0 when the command ran (its status in $work/status),
# 2 when the guest showed no sign of life within WAIT seconds (0 = no such limit).
boot() {
        local acc=$1 wait=$2 cpu start now
        rm -f "$work/scratch.img" "$work/console.log" "$work/out.log"
        truncate -s "$disk_size" "$work/scratch.img"
        mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/scratch.img" >/dev/null
        : >"$work/console.log"
        : >"$work/out.log"
        if [ "$acc" = kvm ]; then cpu=host; else cpu=max; fi
        "$qemu" -name nanoshim-vm -machine q35,accel="$acc" -cpu "$cpu" -smp "$cpus" -m "$mem" \
                -nodefaults -no-user-config -nographic -no-reboot \
                -kernel "$VMLINUZ" -initrd "$work/initramfs.gz" \
                -append "console=ttyS0 panic=-1 quiet loglevel=4 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 rdinit=/init" \
                -serial "file:$work/console.log" -serial "file:$work/out.log" \
                -drive "file=$work/scratch.img,format=raw,if=virtio,cache=unsafe" \
                -virtfs "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap" \
                -monitor none -display none </dev/null >"$work/qemu.log" 2>&1 &
        qpid=$!
        start=$(date +%s)
        shown=0
        while kill -0 "$qpid" 2>/dev/null; do
                show_output
                now=$(date +%s)
                if [ "$wait" -gt 0 ] && ! grep -q 'nanoshim-vm: init' "$work/console.log" &&
                        [ $((now - start)) -ge "$wait" ]; then
                        kill -KILL "$qpid"
                        wait "$qpid" 2>/dev/null
                        qpid=
                        return 2
                fi
                if [ $((now - start)) -ge "$timeout_s" ]; then
                        echo "vm-run: deadline of ${timeout_s}s passed; killing QEMU (pid $qpid)" >&2
                        kill -KILL "$qpid"
                        break
                fi
                sleep 1
        done
        wait "$qpid" 2>/dev/null || true
        qpid=
        show_output
        return 0
}

# show_output: print what the command wrote since the last call.
show_output() {
        local size
        size=$(stat -c %s "$work/out.log")
        [ "$size" -gt "$shown" ] || return 0
        tail -c +$((shown + 1)) "$work/out.log" | head -c $((size - shown))
        shown=$size
}

kvm_ok=0
if [ -w /dev/kvm ] && [ "$accel" != tcg ]; then kvm_ok=1; fi
[ "$accel" = kvm ] && [ "$kvm_ok" = 0 ] && skip "VM_ACCEL=kvm but /dev/kvm is not usable"

used=tcg
if [ "$kvm_ok" = 1 ]; then
        wait_s=$kvm_wait
        [ "$accel" = kvm ] && wait_s=0
        if boot kvm "$wait_s"; then
                used=kvm
        else
                echo "vm-run: no sign of life from the KVM guest within ${kvm_wait}s; repeating under TCG" >&2
        fi
fi
[ "$used" = kvm ] || boot tcg 0
echo "vm-run: accelerator: $used" >&2

if [ -n "$outdir" ]; then
        mkdir -p "$outdir"
        if debugfs -R "rdump /var-tmp/vm-out $work" "$work/scratch.img" >/dev/null 2>&1; then
                cp -a "$work/vm-out/." "$outdir/"
        else
                echo "vm-run: could not copy the guest's /var/tmp/vm-out to $outdir" >&2
        fi
fi
status=$(grep -a -o 'nanoshim-vm: exit [0-9]*' "$work/out.log" | tail -n1 | awk '{print $3}')
if [ -z "$status" ]; then
        echo "vm-run: the command did not finish; the guest's console:" >&2
        tail -n 40 "$work/console.log" >&2
        [ -s "$work/qemu.log" ] && sed 's/^/qemu: /' "$work/qemu.log" >&2
        exit 124
fi
exit "$status"
