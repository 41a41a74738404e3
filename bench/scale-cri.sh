#!/bin/bash
# The CRI part of bench/scale.sh: PODS pods of 2 containers (sleep) through containerd's
# CRI plugin for the handlers nanoshim and runc (containerd-shim-runc-v2), in batches
# of 10 alternating between the handlers, one pod at a time (tests/cri/cri.py, the
# tests' CRI client); pod start latency as the node fills, the shims' memory at a few
# pod counts, then every pod stopped and removed.
#   scale-cri.sh OUTDIR SHIM PODS     (run by scale.sh under its subreaper; CTRD selects)
# Writes OUTDIR/{pods.<handler>,sup.<handler>.<pods>,rm.<handler>,versions}; exit 77
# (and OUTDIR/skipped) when the CRI prerequisites cannot be had.
{
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
DATA=$1
SHIM=$(readlink -f "$2")
PODS=${3:-100}
BATCH=10
# shellcheck source=tests/cri/cri-env.sh
. "$SRC/tests/cri/cri-env.sh"
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
mkdir -p "$DATA"
skip() {
        echo "$*" >"$DATA/skipped"
        log "CRI: skipped: $*"
        exit 77
}
if ! why=$(cri_prereqs); then
        "$SRC/tools/install-deps.sh" >/dev/null 2>&1
        why=$(cri_prereqs) || skip "$why"
fi
ctrd_select 2>/dev/null || skip "containerd $CTRD cannot be had"
CRI_PY=(/usr/bin/python3 "$SRC/tests/cri/cri.py")
/usr/bin/python3 -c "import sys; sys.path.insert(0, '$SRC/tests/cri'); import cri; cri.load()" >/dev/null 2>&1 ||
        skip "no CRI client (tests/cri/cri.py cannot load the CRI api)"

WORK=$(mktemp -d /tmp/nss-cri.XXXXXX)
CGP=/nsscale-cri-$$
export CRI_TAG=scale
cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        if [ -n "${CRI_SOCK:-}" ] && [ -e "$WORK/containerd.pid" ]; then
                for h in nanoshim runc; do
                        "${CRI_PY[@]}" --sock "$CRI_SOCK" rm-pods --prefix "$h-" >/dev/null 2>&1
                done
        fi
        cri_stop
        local d
        for d in /sys/fs/cgroup/*"$CGP" /sys/fs/cgroup"$CGP"; do
                [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        done
        local left=0
        for m in $(awk -v d="$WORK" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
                umount -l "$m" 2>/dev/null
                left=$((left + 1))
        done
        [ "$left" = 0 ] || log "CRI: $left mounts were left under $WORK (unmounted)"
        ls -d /sys/fs/cgroup/*"$CGP" >/dev/null 2>&1 && { log "CRI: LEFT: cgroups $CGP"; rc=1; }
        ip link show "$CRI_BRIDGE" >/dev/null 2>&1 && { log "CRI: LEFT: bridge $CRI_BRIDGE"; rc=1; }
        rm -rf "$WORK"
        [ ! -e "$WORK" ] || { log "CRI: LEFT: $WORK"; rc=1; }
        [ "$rc" != 0 ] || log "CRI: cleanup verified: no pod, mount, cgroup or bridge left"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -static -O2 -o "$WORK/pause" "$SRC/tests/cri/pause.c" || { log "CRI: cannot build the pause program"; exit 1; }
cri_start "$WORK" "$SHIM" "$WORK/pause" scale || { log "CRI: containerd with CRI did not start"; exit 1; }
echo "containerd $CTRD_VERSION" >"$DATA/versions"
log "CRI: containerd $CTRD_VERSION, $PODS pods of 2 containers per handler, batches of $BATCH"

# shims HANDLER: the PIDs of the handler's shims (children of our subreaper).
shims() {
        local want=containerd-shim-nanoshim-v2 p f kids exe
        [ "$1" = runc ] && want=containerd-shim-runc-v2
        for f in /proc/"$SUBREAPER"/task/*/children; do
                read -r -a kids <"$f" 2>/dev/null || true
                for p in "${kids[@]}"; do
                        exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
                        [ "${exe##*/}" = "$want" ] && echo "$p"
                done
        done
}
SUBREAPER=$(ppid_of $$)
# the subreaper is scale.sh's parent; we run under scale.sh's stage 2
while [ -n "$SUBREAPER" ] && [ "$SUBREAPER" != 1 ] && ! grep -q subreaper "/proc/$SUBREAPER/cmdline" 2>/dev/null; do
        SUBREAPER=$(ppid_of "$SUBREAPER")
done

n=0
b=0
while [ "$n" -lt "$PODS" ]; do
        for h in $(if [ $((b % 2)) = 0 ]; then echo nanoshim runc; else echo runc nanoshim; fi); do
                "${CRI_PY[@]}" --sock "$CRI_SOCK" pods --handler "$h" --image "$CRI_IMAGE" --count "$BATCH" \
                        --containers 2 --prefix "$h-b$b" --cgroup-parent "$CGP" --keep >"$WORK/out.json" 2>"$WORK/err" ||
                        { log "CRI: $h batch $b failed: $(tail -n 2 "$WORK/err")"; echo "$h $b $(tail -n 1 "$WORK/err")" >>"$DATA/fail"; }
                # "pods_running_after seconds_to_start_the_pod (sandbox + 2 containers)"
                jq -r --argjson n "$n" '.pods | to_entries[] | "\($n + .key + 1) \(.value.timings.start) \(.value.timings.run_pod) \(.value.timings.containers)"' \
                        "$WORK/out.json" >>"$DATA/pods.$h" 2>/dev/null
        done
        n=$((n + BATCH))
        b=$((b + 1))
        case $n in
        10 | 50 | 100 | 200 | 500 | 1000)
                sleep 3 # at rest after the last start, not a synchronisation
                for h in nanoshim runc; do
                        # shellcheck disable=SC2046
                        sample_procs $(shims "$h") >"$DATA/sup.$h.$n"
                done
                sample_procs "$CTRD_PID" >"$DATA/ctrd.$n"
                log "CRI: $n pods per handler: sampled"
                ;;
        esac
done
for h in $(if [ $((b % 2)) = 0 ]; then echo nanoshim runc; else echo runc nanoshim; fi); do
        t0=$(now_us)
        "${CRI_PY[@]}" --sock "$CRI_SOCK" rm-pods --prefix "$h-" >"$WORK/rm.json" 2>"$WORK/err" ||
                log "CRI: removing the $h pods failed: $(tail -n 2 "$WORK/err")"
        t1=$(now_us)
        echo "$(jq -r .removed "$WORK/rm.json" 2>/dev/null) $(fdiv $((t1 - t0)) 1000000 %.3f)" >"$DATA/rm.$h"
done
exit 0
}
