#!/bin/bash
# `docker run --rm --net none IMAGE true` through nanoshim vs through Docker's runc
# (containerd's io.containerd.runc.v2 shim), under a private dockerd (Debian sid's
# Docker, fetched and unpacked) on a private containerd 2.1. Runs alternate ABBA; the
# ratio is the median of the per-pair ratios. Writes bench/results/<date>-<host>-docker.md.
#   sudo bench/docker.sh [-r RUNS] [-o DIR] [-p]
#   -r N    pairs of runs (default 40)     -o DIR  where the report goes
#   -p      also cut the runs into phases (perf sched events: where the time goes)
# Environment: NANOSHIM_SHIM, the shim binary to measure (default build/'s, copied);
# DOCKER_STATE=disk keeps containerd's state and dockerd's exec-root off tmpfs.
# The whole script is one compound command, parsed before it runs.
{
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
RUNS=40
OUT=$SRC/bench/results
PHASES=0
ORIG_ARGS=("$@")
while [ $# -gt 0 ]; do
        case $1 in
        -r) RUNS=$2; shift ;;
        -o) OUT=$2; shift ;;
        -p) PHASES=1 ;;
        -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-r RUNS] [-o DIR] [-p]" >&2; exit 2 ;;
        esac
        shift
done
[ "$(id -u)" = 0 ] || { echo "bench/docker: run as root" >&2; exit 1; }
if [ -z "${NSB_UNDER_SUBREAPER:-}" ]; then
        "$SRC/tools/install-deps.sh" || exit 1
        if [ "$PHASES" = 1 ] && ! command -v perf >/dev/null; then
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null || exit 1
        fi
        [ -f "$SRC/build/build.ninja" ] || meson setup "$SRC/build" "$SRC" >/dev/null || exit 1
        ninja -C "$SRC/build" >/dev/null || exit 1
        export NSB_UNDER_SUBREAPER=1
        exec "$SRC/build/tests/subreaper" bash "$0" "${ORIG_ARGS[@]}"
fi
export CTR_NS=nsbench-docker CTRD=${CTRD:-2.1}
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
# shellcheck source=tests/integration/docker-lib.sh
. "$SRC/tests/integration/docker-lib.sh"
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"

NANO=io.containerd.nanoshim.v2
IMAGE=nsbench/busybox:docker
WORK=$(mktemp -d /tmp/nsb-docker.XXXXXX)
chmod 700 "$WORK"
DATA=$WORK/data
mkdir -p "$DATA" "$WORK/bin"
PERF_PID=""
cleanup() {
        local rc=$?
        trap - EXIT
        [ -z "$PERF_PID" ] || { kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null; }
        if [ -s "${DOCKER_DIR:-/nonexistent}/dockerd.ppid" ]; then
                local ids
                ids=$(docker_ ps -aq 2>/dev/null)
                [ -z "$ids" ] || docker_ rm -f $ids >/dev/null 2>&1
                dockerd_stop
        fi
        [ -z "${CTRD_DIR:-}" ] || ctrd_stop
        local m
        for m in $(awk -v d="$WORK" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do umount "$m"; done
        rm -rf "$WORK"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A copy: a rebuild of build/ during the run must not change the binary under test.
cp "${NANOSHIM_SHIM:-$SRC/build/containerd-shim-nanoshim-v2}" "$WORK/bin/containerd-shim-nanoshim-v2" || exit 1
docker_select "$WORK" || exit 1
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || exit 1
# containerd's state (the bundles) and dockerd's exec-root on a tmpfs each, as
# /run/containerd and /var/run/docker are on a host (DOCKER_STATE=disk keeps them on
# $WORK's filesystem, to compare): every small file a shim writes there (its address,
# the exit record, runc's pid file) costs what it costs on a host.
if [ "${DOCKER_STATE:-tmpfs}" = tmpfs ]; then
        mkdir -p "$WORK/ctrd/state" "$WORK/docker/exec"
        mount -t tmpfs -o mode=0711 nsb-ctrd-state "$WORK/ctrd/state" || exit 1
        mount -t tmpfs -o mode=0700 nsb-docker-exec "$WORK/docker/exec" || exit 1
fi
ctrd_start "$WORK/ctrd" "$WORK/bin/containerd-shim-nanoshim-v2" || exit 1
dockerd_start "$WORK/docker" || exit 1
docker_import_image "$WORK/bundle/rootfs" "$IMAGE" || { log "cannot import the image"; exit 1; }

# One timed `docker run --rm`; its ms go to $DATA/<subject>.
run_one() { # run_one RUNTIME SUBJECT
        local t0 t1
        t0=$(now_us)
        docker_ run --rm --net none --runtime "$1" "$IMAGE" true || log "docker run --runtime $1 failed"
        t1=$(now_us)
        record "$2" "$(fdiv $((t1 - t0)) 1000 %.3f)"
}
log "warm-up"
for i in 1 2 3; do
        docker_ run --rm --net none --runtime "$NANO" "$IMAGE" true
        docker_ run --rm --net none --runtime runc "$IMAGE" true
done
if [ "$PHASES" = 1 ]; then
        perf record -q -o "$WORK/perf.data" -e "$PERF_SCHED_EVENTS" \
                -a >/dev/null 2>&1 &
        PERF_PID=$!
        poll_until 10 test -s "$WORK/perf.data"
fi
log "$RUNS pairs of docker run --rm --net none IMAGE true"
T0=$(now_us)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$RUNS"); do
        if [ $((i % 2)) = 0 ]; then
                run_one "$NANO" nano
                run_one runc runc
        else
                run_one runc runc
                run_one "$NANO" nano
        fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T1=$(now_us)
if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID"
        wait "$PERF_PID"
        PERF_PID=""
fi
ratio_file "$DATA/nano" "$DATA/runc" "$DATA/ratio"
read -r n_med n_p90 n_n <<<"$(stats "$DATA/nano")"
read -r r_med r_p90 r_n <<<"$(stats "$DATA/runc")"
read -r q_med q_p90 _ <<<"$(stats "$DATA/ratio")"
read -r q_lo q_hi <<<"$(median_ci "$DATA/ratio")"

mkdir -p "$OUT"
report=$OUT/$(date -u +%F)-$(hostname -s)-docker.md
{
        echo "# docker run --rm: nanoshim vs runc, $(date -u +%F) on $(hostname -s)"
        echo
        echo "Made by \`bench/docker.sh -r $RUNS$([ "$PHASES" = 1 ] && echo " -p")\` in $(( (T1 - T0) / 1000000 )) s (see docs/performance.md)."
        echo
        echo "| | |"
        echo "|---|---|"
        echo "| kernel | $(uname -r) |"
        echo "| load average (1, 5, 15 min) at start / end | $LOAD_START / $LOAD_END |"
        echo "| dockerd, docker CLI | $DOCKER_VERSION (Debian $DOCKER_SUITE, unpacked) |"
        echo "| containerd, containerd-shim-runc-v2 | $CTRD_VERSION |"
        echo "| runc | $(runc --version | awk 'NR == 1 {print $3}') |"
        echo "| containerd's state, dockerd's exec-root | ${DOCKER_STATE:-tmpfs} |"
        echo "| nanoshim | $("$WORK/bin/containerd-shim-nanoshim-v2" -v 2>/dev/null | head -n1) $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null) |"
        echo
        echo "\`docker run --rm --net none IMAGE true\`, $RUNS runs each, alternating (ABBA); ratio: median (and p90) of the per-pair ratios nanoshim/runc."
        echo
        echo "| runtime | median ms | p90 ms | runs |"
        echo "|---|---|---|---|"
        echo "| nanoshim (\`--runtime $NANO\`) | $(fmt "$n_med") | $(fmt "$n_p90") | $n_n |"
        echo "| runc (Docker's default, io.containerd.runc.v2) | $(fmt "$r_med") | $(fmt "$r_p90") | $r_n |"
        echo
        echo "**ratio nanoshim/runc: median $(fmt "$q_med" %.3f), p90 $(fmt "$q_p90" %.3f)** (ratio of the medians: $(fdiv "$n_med" "$r_med"))"
        echo
        echo "95% confidence interval of the median ratio (order statistics): $(fmt "$q_lo" %.3f) to $(fmt "$q_hi" %.3f); target ≤ 0.75: $(awk -v lo="$q_lo" -v hi="$q_hi" 'BEGIN {
                if (lo == "-") print "too few runs to tell"; else if (hi <= 0.75) print "met"; else if (lo > 0.75) print "missed"; else print "not told apart from 0.75" }')"
        if [ "$PHASES" = 1 ]; then
                echo
                echo "Where the time goes (perf sched events during the measured runs; the recording itself slows every run a little):"
                echo
                perf_sched_events "$WORK/perf.data" >"$WORK/events"
                cut_phases "$DOCKER_BIN/docker" $$ "$CTRD_PID" <"$WORK/events" >"$WORK/phases"
                phase_medians "$WORK/phases"
        fi
} >"$report"
cat "$report"
log "report: $report"
exit 0
}
