#!/bin/bash
# Pods through containerd's CRI plugin: handler nanoshim vs handler runc (runc-v2),
# interleaved: pod start (RunPodSandbox + 2 x CreateContainer + StartContainer), pod
# stop + remove, and the PSS of a pod's shim with 1, 2 and 5 containers.
#   sudo bench/pods.sh [-r RUNS] [-k PODS] [-c 1.6|1.7|2.1] [-o DIR]
# Writes DIR/<date>-<host>-pods-ctrd<version>.{md,tsv} (default DIR bench/results).
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
RUNS=20
PODS=10
OUT=$SRC/bench/results
ORIG_ARGS=("$@")
export CTRD=${CTRD:-1.6}
while [ $# -gt 0 ]; do
        case $1 in
        -r) RUNS=$2; shift ;;
        -k) PODS=$2; shift ;;
        -c) CTRD=$2; shift ;;
        -o) OUT=$2; shift ;;
        -h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        esac
        shift
done
[ "$(id -u)" = 0 ] || { echo "bench/pods: run as root" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
# Outside the subreaper: packages and build, then again under it.
[ -n "${NSB_UNDER_SUBREAPER:-}" ] || "$SRC/tools/install-deps.sh" || exit 1
bench_under_subreaper "$0" "${ORIG_ARGS[@]}"
# shellcheck source=tests/cri/cri-env.sh
. "$SRC/tests/cri/cri-env.sh"

WORK=$(mktemp -d /tmp/nsb-pods.XXXXXX)
CG=/nanoshim-bench-pods-$$
cleanup() {
        local rc=$? d
        trap - EXIT INT TERM
        [ -n "${CRI_SOCK:-}" ] && /usr/bin/python3 "$SRC/tests/cri/cri.py" --sock "$CRI_SOCK" rm-pods --prefix bench- >/dev/null 2>&1
        cri_stop
        # containerd is gone: its cgroup is empty
        [ -n "${CPU_CG:-}" ] && rmdir "$CPU_CG" 2>/dev/null
        for d in /sys/fs/cgroup/*"$CG"; do
                [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        done
        if awk -v d="$WORK" 'index($5, d) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
                log "mounts left under $WORK; not removing it"
        else
                rm -rf "$WORK"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/bin"
# A copy: a rebuild of build/ during the run cannot pull the binary away.
cp "$SRC/build/containerd-shim-nanoshim-v2" "$WORK/bin/" || exit 1
cc -static -O2 -o "$WORK/pause" "$SRC/tests/cri/pause.c" || exit 1
cri_start "$WORK/ctrd" "$WORK/bin/containerd-shim-nanoshim-v2" "$WORK/pause" bench || exit 1
# containerd in a cgroup of its own, for CPU accounting: what it starts from now on
# (shims, runc, CNI plugins) is counted with it; containers are in their pods' cgroups.
if [ -d /sys/fs/cgroup/cpuacct ]; then
        CPU_CG=/sys/fs/cgroup/cpuacct$CG-ctrd
else
        CPU_CG=/sys/fs/cgroup$CG-ctrd
fi
mkdir -p "$CPU_CG" && echo "$(cat "$CRI_DIR/containerd.pid")" >"$CPU_CG/cgroup.procs" || exit 1
log "containerd $CTRD_VERSION, $RUNS runs, $PODS pods for PSS"
mkdir -p "$OUT"
name=$OUT/$(date +%F)-$(hostname -s)-pods-ctrd$CTRD
/usr/bin/python3 "$SRC/bench/pods.py" --runs "$RUNS" --pods "$PODS" --out "$name" --cgroup-parent "$CG" \
        --cpu-cgroup "$CPU_CG" || exit 1
log "wrote $name.md and $name.tsv"
