#!/bin/bash
# The cgroup v2 tier: boots the guest of tools/vm-run.sh (Debian bookworm's kernel,
# cgroup v2 only) and runs in it, on cgroup v2:
#   - the runtime adapter against runc and crun (test-adapter);
#   - test-cgroupv2.sh under containerd 1.6 with runc and crun, side by side with
#     containerd-shim-runc-v2;
#   - test-cgroupv2.sh under containerd 2.1 (Debian sid's, fetched here before the
#     boot: the guest has no network) with crun, a subset of the scenarios.
#   test-vm-cgroupv2.sh SHIM SHIMCTL TEST_ADAPTER SUBREAPER SOURCE_ROOT
# Skips (77) where the guest cannot be had (no QEMU, no kernel). CG2_VM_PARTS chooses
# the parts ("adapter ctrd16 ctrd21", default all).
set -u
SHIM=$(readlink -f "$1")
SHIMCTL=$(readlink -f "$2")
ADAPTER=$(readlink -f "$3")
SUBREAPER=$(readlink -f "$4")
SRC=$(readlink -f "$5")
PARTS=${CG2_VM_PARTS:-adapter ctrd16 ctrd21}

if [ -z "${NANOSHIM_IN_VM:-}" ]; then
        [ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
        CTRD21_BIN=
        if echo " $PARTS " | grep -q ' ctrd21 '; then
                CTRD21_BIN=$("$SRC/tools/containerd-version.sh" 2.1) ||
                        echo "containerd 2.1 could not be fetched: that part is left out"
        fi
        export CTRD21_BIN PARTS NANOSHIM_IN_VM=1 CG2_VM_PARTS=$PARTS
        export VM_ENV="NANOSHIM_IN_VM CTRD21_BIN CG2_VM_PARTS CG2_SCENARIOS CG2_RUNTIMES"
        exec "$SRC/tools/vm-run.sh" bash "$0" "$@"
fi

# ---- in the guest ----
echo "# guest: kernel $(uname -r), $(stat -f -c %T /sys/fs/cgroup) at /sys/fs/cgroup, $(nproc) cpus"
echo "# runc $(runc --version | awk 'NR == 1 {print $3}'), crun $(crun --version | awk 'NR == 1 {print $3}')"
failed=""
part() { # part NAME CMD...
        local name=$1 start rc
        shift
        start=$(date +%s)
        echo "## $name"
        "$@"
        rc=$?
        echo "## $name: exit $rc in $(($(date +%s) - start)) s"
        [ "$rc" = 0 ] || [ "$rc" = 77 ] || failed="$failed $name"
}
for p in $PARTS; do
        case $p in
        adapter)
                part adapter-runc "$ADAPTER" runc "$SRC"
                part adapter-crun "$ADAPTER" crun "$SRC"
                ;;
        ctrd16)
                part cgroupv2-containerd-1.6 env CTRD=1.6 CTR_NS=nanoshim-cg2-16 \
                        "$SUBREAPER" "$SRC/tests/integration/test-cgroupv2.sh" "$SHIM" "$SHIMCTL" "$SRC"
                ;;
        ctrd21)
                if [ -n "${CTRD21_BIN:-}" ]; then
                        part cgroupv2-containerd-2.1 env CTRD=2.1 CTRD_BIN="$CTRD21_BIN" CTR_NS=nanoshim-cg2-21 \
                                CG2_RUNTIMES="${CG2_RUNTIMES:-crun}" \
                                CG2_SCENARIOS="${CG2_SCENARIOS:-oom-init pause stats update}" \
                                "$SUBREAPER" "$SRC/tests/integration/test-cgroupv2.sh" "$SHIM" "$SHIMCTL" "$SRC"
                fi
                ;;
        *) echo "unknown part '$p'"; failed="$failed $p" ;;
        esac
done
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
echo "all parts passed"
