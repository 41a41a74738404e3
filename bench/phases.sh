#!/bin/bash
# Where a `ctr run --rm IMAGE id /bin/true` spends its time, per phase, for nanoshim and
# containerd-shim-runc-v2: the scheduler's exec/fork/exit events of every process are
# recorded (perf) over N alternating runs, and each run is cut at the same points for
# both shims: ctr starts, the shim's `start` action is exec'd, `runc create` and `runc
# start` run, the container's /bin/true exits, the shim daemon exits, containerd's
# `delete` action ends, ctr exits. Prints a table of medians (ms), with the CPU time of
# the shim's own processes and of runc per run (from the context switches).
#   sudo [CTRD=1.6|1.7|2.1] bench/phases.sh [-r RUNS]      (default 20 runs per shim)
# Needs perf (Debian: linux-perf), installed if missing.
{
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
RUNS=20
ORIG_ARGS=("$@")
while [ $# -gt 0 ]; do
        case $1 in
        -r) RUNS=$2; shift ;;
        -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-r RUNS]" >&2; exit 2 ;;
        esac
        shift
done
[ "$(id -u)" = 0 ] || { echo "phases: run as root" >&2; exit 1; }
if [ -z "${NSB_UNDER_SUBREAPER:-}" ]; then
        "$SRC/tools/install-deps.sh" || exit 1
        command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                linux-perf >/dev/null || exit 1
fi
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
bench_under_subreaper "$0" "${ORIG_ARGS[@]}"
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
CTR_NS=nsphases
[ "${CTRD:-1.6}" = 1.6 ] || CTR_NS=nsphases-ctrd${CTRD//./}
IMAGE=localhost/busybox:nsphases
WORK=$(mktemp -d /tmp/nsp.XXXXXX)
chmod 700 "$WORK"
PERF_PID=""
cleanup() {
        [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
        ctrd_stop 2>/dev/null
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/bin" # (the daemon re-execs this path: it must keep the shim name)
cp "$SRC/build/containerd-shim-nanoshim-v2" "$WORK/bin/"
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || exit 1
ctrd_start "$WORK/ctrd" "$WORK/bin/containerd-shim-nanoshim-v2" || exit 1
ctrd_import_image "$WORK/bundle/rootfs" "$IMAGE" >/dev/null || exit 1
run_one() { ctr_ run --rm --runtime "$1" "$IMAGE" "$2" /bin/true; }
for i in 1 2; do # warm caches
        run_one io.containerd.nanoshim.v2 "warm-n$i"
        run_one io.containerd.runc.v2 "warm-r$i"
done

perf record -q -o "$WORK/perf.data" -e "$PERF_SCHED_EVENTS" \
        -a >/dev/null 2>&1 &
PERF_PID=$!
# perf is recording once it has written its header
for _ in $(seq 100); do [ -s "$WORK/perf.data" ] && break; sleep 0.05; done
for i in $(seq "$RUNS"); do
        if [ $((i % 2)) = 0 ]; then
                run_one io.containerd.nanoshim.v2 "p-n$i"
                run_one io.containerd.runc.v2 "p-r$i"
        else
                run_one io.containerd.runc.v2 "p-r$i"
                run_one io.containerd.nanoshim.v2 "p-n$i"
        fi
done
kill -INT "$PERF_PID"
wait "$PERF_PID"
PERF_PID=""

perf_sched_events "$WORK/perf.data" | cut_phases "$(command -v ctr)" $$ "$CTRD_PID" >"$WORK/phases"

echo "Medians over $RUNS runs of \`ctr run --rm IMAGE id /bin/true\` per shim (ms):"
echo
phase_medians "$WORK/phases"
exit 0
}
