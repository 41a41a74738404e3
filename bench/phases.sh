#!/bin/bash
# Where a `ctr run --rm IMAGE id /bin/true` spends its time, per phase, for nanoshim and
# containerd-shim-runc-v2: the scheduler's exec/fork/exit events of every process are
# recorded (perf) over N alternating runs, and each run is cut at the same points for
# both shims: ctr starts, the shim's `start` action is exec'd, `runc create` and `runc
# start` run, the container's /bin/true exits, the shim daemon exits, containerd's
# `delete` action ends, ctr exits. Prints a table of medians (ms).
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
        [ -f "$SRC/build/build.ninja" ] || meson setup "$SRC/build" "$SRC" >/dev/null || exit 1
        ninja -C "$SRC/build" >/dev/null || exit 1
        export NSB_UNDER_SUBREAPER=1
        exec "$SRC/build/tests/subreaper" bash "$0" "${ORIG_ARGS[@]}"
fi
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

perf record -q -o "$WORK/perf.data" -e sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit \
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

# One line per event, in time order: TIME KIND TGID DETAIL (the exec'd file, the forked
# child, "dead" for the exit of a whole process).
perf script -i "$WORK/perf.data" -F pid,time,event,trace 2>/dev/null | awk '
        {
                for (i = 1; i <= NF; i++) if ($i ~ /^sched:/) break
                t = $(i - 1); sub(/:$/, "", t); tgid = $(i - 2)
                if ($i ~ /exec/) { for (j = i; j <= NF; j++) if ($j ~ /^filename=/) { sub(/^filename=/, "", $j); print t, "exec", tgid, $j } }
                else if ($i ~ /fork/) { for (j = i; j <= NF; j++) if ($j ~ /^child_pid=/) { sub(/^child_pid=/, "", $j); print t, "fork", tgid, $j } }
                else if ($i ~ /exit/ && $0 ~ /group_dead=true/) print t, "exit", tgid, "dead"
        }' >"$WORK/events"

# Cut each ctr run into phases; one line per run and phase: SHIM PHASE MS.
awk '
        function out(name, a, b) { if (a > 0 && b > 0) printf "%s %s %.3f\n", kind, name, (b - a) * 1000 }
        $2 == "exec" && $4 ~ /\/ctr$/ { run = 1; ctr = $3; t0 = $1; kind = ""; nrunc = 0
                shim_start = rc0 = rc1 = rs0 = rs1 = true_exit = 0; last_shim = 0; split("", shim) }
        !run { next }
        $2 == "exec" && $4 ~ /containerd-shim-/ {
                if (!kind) { kind = ($4 ~ /nanoshim/) ? "nanoshim" : "runc-v2"; shim_start = $1 }
                shim[$3] = 0; last_shim = $3 }
        $2 == "exec" && $4 ~ /\/runc$/ { nrunc++; if (nrunc == 1) { rc = $3; rc0 = $1 } else if (nrunc == 2) { rs = $3; rs0 = $1 } }
        $2 == "exec" && $4 == "/bin/true" { tr = $3 }
        $2 == "exit" {
                if ($3 == rc) rc1 = $1
                if ($3 == rs) rs1 = $1
                if ($3 == tr) true_exit = $1
                if ($3 in shim) shim[$3] = $1
                if ($3 == ctr) {
                        # the last shim process is the delete action of containerd; the daemon
                        # is the one of the others that exited last
                        del_end = shim[last_shim]; daemon_exit = 0
                        for (p in shim) if (p != last_shim && shim[p] > daemon_exit) daemon_exit = shim[p]
                        out("1_ctr_start->shim_start", t0, shim_start)
                        out("2_shim_start->runc_create", shim_start, rc0)
                        out("3_runc_create", rc0, rc1)
                        out("4_create_done->runc_start", rc1, rs0)
                        out("5_runc_start", rs0, rs1)
                        out("6_init_exit->daemon_exit", true_exit, daemon_exit)
                        out("7_daemon_exit->delete_action_done", daemon_exit, del_end)
                        out("8_->ctr_exit", del_end, $1)
                        out("9_total", t0, $1)
                        run = 0
                }
        }' "$WORK/events" | sort -k1,1 -k2,2 -k3g >"$WORK/phases"

echo "Medians over $RUNS runs of \`ctr run --rm IMAGE id /bin/true\` per shim (ms):"
echo
echo "| phase | nanoshim | runc-v2 |"
echo "|---|---|---|"
cut -d' ' -f2 "$WORK/phases" | sort -u >"$WORK/phase-names"
while read -r p; do
        awk -v p="$p" '$2 == p { v[$1, ++n[$1]] = $3 }
                function med(k,   c) { c = n[k]; if (!c) return "-"; return sprintf("%.2f", (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2) }
                END { name = p; sub(/^[0-9]_/, "", name); print "| " name " | " med("nanoshim") " | " med("runc-v2") " |" }' "$WORK/phases"
done <"$WORK/phase-names"
exit 0
}
