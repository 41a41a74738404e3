#!/bin/bash
# The CRI tier: containerd's CRI plugin runs pods with the handler `nanoshim`
# (io.containerd.nanoshim.v2) and with the handler `runc` (io.containerd.runc.v2), side
# by side, driven by a real CRI client (tests/cri/cri.py, generated from the official
# api.proto); the scenarios are in tests/cri/test_cri.py.
#   test-cri.sh CTRD_VERSION SHIM_BINARY SOURCE_ROOT    (root; 77 = skipped)
# Everything is private: containerd's root, state and sockets, runc's --root, the
# pods' cgroup parent, the CNI bridge and subnet; all of it is removed afterwards and
# checked to be gone. The whole script is one compound command, read before it runs:
# editing the file during a run cannot change what the run does.
{
set -u
export CTRD=$1
SHIM=$(readlink -f "$2")
SRC=$(readlink -f "$3")
TAG=cri${CTRD//./}
# shellcheck source=tests/cri/cri-env.sh
. "$SRC/tests/cri/cri-env.sh"

skip() { echo "SKIP: $*"; exit 77; }

if ! why=$(cri_prereqs); then
        # Install what is missing (CI runs on a fresh machine), then ask again.
        [ "$(id -u)" = 0 ] && "$SRC/tools/install-deps.sh" >/dev/null 2>&1
        why=$(cri_prereqs) || skip "$why"
fi
ctrd_select 2>/dev/null || skip "containerd $CTRD cannot be had (tools/containerd-version.sh $CTRD failed)"
why=$(/usr/bin/python3 -c "
import sys
sys.path.insert(0, '$SRC/tests/cri')
import cri
try:
    cri.load()
except cri.CriError as e:
    print(e)
    sys.exit(1)" 2>&1) || skip "no CRI client: $why"

WORK=$(mktemp -d "/tmp/nanoshim-$TAG-XXXXXX")
export CRI_TAG=$TAG CRI_CGROUP_PARENT=/nanoshim-$TAG-$$
rc=0

cleanup() {
        cri_stop
        local d left=""
        for d in /sys/fs/cgroup/*"$CRI_CGROUP_PARENT" /sys/fs/cgroup"$CRI_CGROUP_PARENT"; do
                [ -d "$d" ] || continue
                # A pod's cgroup left under the parent is a failure; remove it anyway.
                [ -n "$(find "$d" -mindepth 1 -type d -print -quit)" ] && left="$left $d/*"
                find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || left="$left $d"
        done
        [ -n "$left" ] && { echo "FAIL: cgroups left:$left"; rc=1; }
        if ip link show "$CRI_BRIDGE" >/dev/null 2>&1; then
                echo "FAIL: bridge $CRI_BRIDGE left"
                rc=1
        fi
        if grep -q "$WORK" /proc/self/mountinfo; then
                echo "FAIL: mounts left under $WORK:"
                grep "$WORK" /proc/self/mountinfo | awk '{print "  " $5}'
                rc=1
        else
                rm -rf "$WORK"
        fi
}
trap 'cleanup; exit $rc' EXIT
trap 'exit 1' INT TERM

echo "containerd $CTRD_VERSION ($CTRD_BIN), work dir $WORK"
# The checkpoint scenario (2.x only): a CRIU that works on this kernel, first on
# containerd's PATH (the CRI plugin looks for it there, runc too); CRI_NO_CRIU says
# why the scenario is skipped otherwise.
if [ "$(ctrd_major)" -lt 2 ]; then
        export CRI_NO_CRIU="CheckpointContainer is tested on containerd 2.x only"
elif ! criu_select "$WORK"; then
        export CRI_NO_CRIU="$CRIU_WHY"
fi
# The pause image's one binary, static: the image has no libc.
cc -static -O2 -Wall -Werror -o "$WORK/pause" "$SRC/tests/cri/pause.c" || { echo "FAIL: cannot build the pause program"; rc=1; exit 1; }
cri_start "$WORK" "$SHIM" "$WORK/pause" "$TAG" || { echo "FAIL: cannot start containerd with its CRI plugin"; rc=1; exit 1; }
echo "bridge $CRI_BRIDGE on $CRI_SUBNET"
/usr/bin/python3 "$SRC/tests/cri/test_cri.py" || rc=1
# The pods are gone: no veth may be left on the bridge.
if [ -n "$(ip -o link show master "$CRI_BRIDGE" 2>/dev/null)" ]; then
        echo "FAIL: interfaces left on $CRI_BRIDGE:"
        ip -o link show master "$CRI_BRIDGE"
        rc=1
fi
if [ "$rc" != 0 ]; then
        echo "containerd's log (last 40 lines):"
        tail -n 40 "$WORK/containerd.log"
fi
exit $rc
}
