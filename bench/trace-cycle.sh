#!/bin/bash
# Where a standalone nanoshim's create→start→kill→wait→delete goes: runs one cycle with
# the shim under `strace -f -tt -T` and prints, per shimctl call, its wall time, the time
# spent in runc children it ran (execve → exit) and in fsync. Also the shim's fds and the
# mappings behind its PSS at rest.
#   sudo bench/trace-cycle.sh [OUTDIR]     (default: a temp dir, removed; the trace is kept in OUTDIR)
# Run under the subreaper like run.sh (it re-runs itself so).
{
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
if [ -z "${NSB_UNDER_SUBREAPER:-}" ]; then
        ninja -C "$SRC/build" >/dev/null || exit 1
        export NSB_UNDER_SUBREAPER=1
        exec "$SRC/build/tests/subreaper" bash "$0" "$@"
fi
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
KEEP=${1:-}
WORK=$(mktemp -d /tmp/nsbt.XXXXXX)
chmod 700 "$WORK"
DATA=$WORK
BENCH_SLEEP_FIFO=$WORK/sleep.fifo
mkfifo "$BENCH_SLEEP_FIFO"
exec {BENCH_SLEEP_FD}<>"$BENCH_SLEEP_FIFO"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
command -v strace >/dev/null || { echo "trace-cycle: needs strace" >&2; exit 1; }

mkdir -p "$WORK/bin" "$WORK/runc-sa"
cp "$SRC/build/containerd-shim-nanoshim-v2" "$SRC/build/shimctl" "$WORK/bin/"
SHIMCTL=$WORK/bin/shimctl
"$SRC/tools/mkbundle.sh" "$WORK/b" sleep 100000 >/dev/null
SOCK=$WORK/s/shim.sock
TRACE=$WORK/trace.txt
strace -f -tt -T -o "$TRACE" "$WORK/bin/containerd-shim-nanoshim-v2" -namespace nsbench -socket "$SOCK" \
        -runtime-root "$WORK/runc-sa" >"$WORK/shim.log" 2>&1 &
STRACE_PID=$!
track "$STRACE_PID"
poll_fast 20 test -S "$SOCK" || { echo "the shim did not come up" >&2; exit 1; }
SHIM_PID=$(awk '/^[0-9]+ /{ print $1; exit }' "$TRACE")

# phase NAME CMD...: run a shimctl call, keep its start and end (strace's clock format)
: >"$WORK/phases"
phase() {
        local name=$1 a b
        shift
        a=$(date +%H:%M:%S.%6N)
        "$SHIMCTL" -a "$SOCK" "$@" >/dev/null
        b=$(date +%H:%M:%S.%6N)
        echo "$name $a $b" >>"$WORK/phases"
}
phase create create c1 --bundle "$WORK/b"
phase start start c1
echo "## at rest: fds of the shim (pid $SHIM_PID)"
ls -l "/proc/$SHIM_PID/fd" | awk 'NR > 1 { print $9, $10, $11 }'
echo
echo "## at rest: mappings by PSS (KB), top 12"
awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) } /^Pss:/ { pss[name] += $2 }
        END { for (n in pss) printf "%6d %s\n", pss[n], n }' "/proc/$SHIM_PID/smaps" | sort -rn | head -n 12
phase kill kill c1 --signal KILL
phase wait --timeout 20 wait c1
phase delete delete c1
phase shutdown shutdown c1
poll_fast 20 pid_done "$STRACE_PID"
wait "$STRACE_PID" 2>/dev/null

to_s() { awk -F: '{ printf "%.6f\n", $1 * 3600 + $2 * 60 + $3 }' <<<"$1"; }
echo
echo "## per call: wall ms, runc children (ms, what), fsync ms, shim syscalls"
while read -r name a b; do
        sa=$(to_s "$a")
        sb=$(to_s "$b")
        awk -v sa="$sa" -v sb="$sb" -v name="$name" -v shim="$SHIM_PID" '
                function t(s,   p) { split(s, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
                {
                        ts = t($2)
                        if ($3 ~ /^execve\("[^"]*(runc|crun)"/ && ts >= sa && ts <= sb) {
                                match($0, /\["[^]]*\]/); args = substr($0, RSTART, RLENGTH)
                                n = split(args, w, ", "); what = ""
                                for (i = 2; i <= n; i++) if (w[i] ~ /^"(create|start|delete|kill|state)"/) what = w[i]
                                start[$1] = ts; label[$1] = what
                        }
                        if ($3 == "+++" && ($1 in start)) { runc += ts - start[$1]; list = list sprintf(" %s=%.1f", label[$1], (ts - start[$1]) * 1000); delete start[$1] }
                        if (ts >= sa && ts <= sb && $1 == shim) {
                                nsys++
                                if ($3 ~ /^fsync\(/) { match($0, /<[0-9.]+>$/); fs += substr($0, RSTART + 1, RLENGTH - 2) }
                        }
                }
                END { printf "%-8s wall %7.1f  runc %7.1f [%s ]  fsync %5.1f  shim syscalls %d\n", name, (sb - sa) * 1000, runc * 1000, list, fs * 1000, nsys }' \
                "$TRACE"
done <"$WORK/phases"
echo
echo "## the exit: reap -> event"
grep -nE 'wait4\(|fsync\(|renameat|sendmsg|writev|write\(' "$TRACE" | awk -v shim="$SHIM_PID" '$0 ~ "^[0-9]+:" shim " "' |
        grep -A12 -m1 'wait4(-1.*WEXITSTATUS\|wait4(-1, \[{WIFSIGNALED' | cut -c1-160
if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP"
        cp "$TRACE" "$WORK/phases" "$KEEP/"
fi
exit
}
