#!/bin/bash
# nanoshim benchmark: nanoshim vs containerd-shim-runc-v2 (under a private containerd),
# vs conmon and bare runc (standalone); memory, lifecycle latency, stdout throughput,
# exit-event latency, orphan reaping, CPU. Writes bench/results/<date>-<host>.{md,tsv,png}.
#   sudo [CTRD=1.6|1.7|2.1] bench/run.sh [-n CONTAINERS] [-r RUNS] [-t THROUGHPUT_RUNS] [-o DIR] [--quick]
# Subjects alternate run by run (ABBA order) so that drift cancels out of the ratios.
# CTRD picks the containerd (default 1.6, the system's; its own ctr and runc shim).
# The whole script is one compound command, parsed before it runs: editing the file
# during a run cannot change what the run does.
{
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
N=50
RUNS=30
TP_RUNS=3
EV_RUNS=20
ORPH_RUNS=3
IDLE_S=10
REST_S=3
PHASES=""
STATE_TMPFS=""
OUT=$SRC/bench/results
ORIG_ARGS=("$@")
usage() {
        sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
        echo "  -n N   detached containers per subject for memory (default $N)"
        echo "  -r N   runs per latency measurement (default $RUNS)"
        echo "  -t N   runs of the 1 GiB stdout transfer per subject (default $TP_RUNS)"
        echo "  -o DIR where results go (default bench/results)"
        echo "  --quick  small counts for a smoke test (-n 5 -r 5 -t 1)"
        echo "  -p LIST  only these phases (of: memory lifecycle standalone throughput events"
        echo "           orphans); prints the figures, writes no report"
        echo "  --state-tmpfs  containerd's state dir (the bundles) on a tmpfs, as /run is on"
        echo "           most hosts; by default it is under /tmp (this VM's /run is on disk too)"
}
while [ $# -gt 0 ]; do
        case $1 in
        -n) N=$2; shift ;;
        -r) RUNS=$2; shift ;;
        -t) TP_RUNS=$2; shift ;;
        -o) OUT=$2; shift ;;
        -p) PHASES=$2; shift ;;
        --state-tmpfs) STATE_TMPFS=1 ;;
        --quick) N=5 RUNS=5 TP_RUNS=1 EV_RUNS=5 ORPH_RUNS=1 IDLE_S=2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
        esac
        shift
done
if [ "$(id -u)" != 0 ]; then
        echo "bench: run as root (containers need it)" >&2
        exit 1
fi

# Stage 1 (outside the subreaper): packages, build, then re-run under the subreaper so
# that every orphan (shims daemonised by containerd, conmon, bare runc's containers)
# is reaped here.
if [ -z "${NSB_UNDER_SUBREAPER:-}" ]; then
        "$SRC/tools/install-deps.sh" || exit 1
        # shellcheck source=bench/lib.sh
        . "$SRC/bench/lib.sh"
        bench_install_packages conmon gnuplot-nox || exit 1
fi
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
bench_under_subreaper "$0" "${ORIG_ARGS[@]}"
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"

RUNC=$(command -v runc)
NANO=io.containerd.nanoshim.v2
RUNCV2=io.containerd.runc.v2
IMAGE=localhost/busybox:nsbench
# A namespace per containerd version: runs on two versions never share runc state.
CTR_NS=nsbench
[ "${CTRD:-1.6}" = 1.6 ] || CTR_NS=nsbench-ctrd${CTRD//./}
GIB_CMD=(dd if=/dev/zero bs=1M count=1024)

WORK=$(mktemp -d /tmp/nsb.XXXXXX)
chmod 700 "$WORK"
DATA=$WORK/data
mkdir -p "$DATA" "$WORK/fifo" "$WORK/exits" "$WORK/csock" "$WORK/runc-sa" "$WORK/runc-conmon" "$WORK/runc-bare"
BENCH_SLEEP_FIFO=$WORK/sleep.fifo
mkfifo "$BENCH_SLEEP_FIFO"
exec {BENCH_SLEEP_FD}<>"$BENCH_SLEEP_FIFO"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
T_START=$(now_us)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Copies: a rebuild of build/ by someone else during the run must not pull the binary
# from under a running containerd.
mkdir -p "$WORK/bin"
cp "$SRC/build/containerd-shim-nanoshim-v2" "$SRC/build/shimctl" "$WORK/bin/" || exit 1
SHIM=$WORK/bin/containerd-shim-nanoshim-v2
SHIMCTL=$WORK/bin/shimctl

# ------------------------------------------------------------------------------------
# bundles and the image

"$SRC/tools/mkbundle.sh" "$WORK/base" sleep 100000 >/dev/null || exit 1
ROOTFS=$WORK/base/rootfs

# mk_bundle DIR CMD...: a bundle on the shared busybox rootfs running CMD.
# (The config for a command is made once: mkbundle.sh also builds a whole rootfs.)
mk_bundle() {
        local dir=$1 key
        shift
        key=$WORK/cfgcache/$(printf '%s\0' "$@" | sha256sum | cut -c1-16).json
        if [ ! -e "$key" ]; then
                mkdir -p "$WORK/cfgcache"
                "$SRC/tools/mkbundle.sh" "$WORK/cfg.tmp" "$@" >/dev/null || return 1
                sed -e "s|\"path\": \"rootfs\"|\"path\": \"$ROOTFS\"|" "$WORK/cfg.tmp/config.json" >"$key"
                rm -rf "$WORK/cfg.tmp"
        fi
        mkdir -p "$dir"
        cp "$key" "$dir/config.json"
}

if [ -n "$STATE_TMPFS" ]; then
        # (unmounted by bench_cleanup with everything else under $WORK)
        mkdir -p "$WORK/ctrd/state" && mount -t tmpfs -o mode=0711 nsbench-state "$WORK/ctrd/state" || exit 1
fi
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
log "containerd $CTRD_VERSION ($CTRD_BIN), state dir on $(stat -f -c %T "$WORK/ctrd/state")"
ctrd_import_image "$ROOTFS" "$IMAGE" || { log "cannot import the image"; exit 1; }
ctr_ events >"$WORK/events.log" 2>&1 &
EVENTS_PID=$!
track "$EVENTS_PID"

# CPU time below ctr: containerd and all it starts (the shim's start and delete actions,
# shim daemons, runtime calls) run in a cpuacct cgroup of their own (ctr and the bench
# itself do not); its usage over a cycle is what the cycle cost them. Load from others
# on the machine stretches wall time, not this.
CPU_CG=""
if [ -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then
        CPU_CG=/sys/fs/cgroup/cpuacct/nsbench-$$
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        CPU_CG=/sys/fs/cgroup/nsbench-$$
fi
if [ -n "$CPU_CG" ] && mkdir "$CPU_CG" && echo "$CTRD_PID" >"$CPU_CG/cgroup.procs"; then
        BENCH_CGROUPS+=("$CPU_CG")
else
        log "no cgroup for CPU accounting: CPU per cycle not measured"
        CPU_CG=""
fi
cpu_us() {
        if [ -f "$CPU_CG/cpuacct.usage" ]; then
                echo $(($(<"$CPU_CG/cpuacct.usage") / 1000))
        else
                awk '$1 == "usage_usec" { print $2 }' "$CPU_CG/cpu.stat"
        fi
}
# Only containerd left in it: the shims and runtime calls of the cycle are done.
cpu_cg_quiet() { [ "$(wc -l <"$CPU_CG/cgroup.procs")" -le 1 ]; }
# cpu_record NAME US0: wait for the cycle's processes to end, record the CPU ms since US0.
cpu_record() {
        [ -n "$CPU_CG" ] || return 0
        poll_until 10 cpu_cg_quiet || log "$1: processes still in $CPU_CG"
        record "$1" "$(fdiv $(($(cpu_us) - $2)) 1000 %.2f)"
}

# run_d RUNTIME ID [--annotation K=V] -- CMD...: a detached container through ctr.
run_d() {
        local rt=$1 id=$2
        shift 2
        local opts=()
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
                opts+=("$1")
                shift
        done
        shift
        ctr_ run -d --runtime "$rt" --fifo-dir "$WORK/fifo" "${opts[@]}" "$IMAGE" "$id" "$@" >/dev/null
}

# The init's PID of a task.
task_pid() {
        ctr_ task ls | awk -v i="$1" '$1 == i { print $2 }'
}

# exit_event_line ID: the /tasks/exit line for ID's init from the events log.
# (only /tasks/exit has both "container_id" and "id", in this order)
exit_event_line() {
        grep -F "\"container_id\":\"$1\",\"id\":\"$1\"" "$WORK/events.log" | tail -n 1
}

has_exit_event() {
        grep -qF "\"container_id\":\"$1\",\"id\":\"$1\"" "$WORK/events.log"
}

rm_ctr() {
        ctr_ task rm -f "$@" >/dev/null 2>&1
        ctr_ containers rm "$@" >/dev/null 2>&1
}

short() {
        case $1 in
        "$NANO") echo nano ;;
        "$RUNCV2") echo runc ;;
        *) echo "$1" ;;
        esac
}

# ABBA order for run I: "A B" on even runs, "B A" on odd ones.
order() {
        if [ $(($1 % 2)) -eq 0 ]; then echo "$2 $3"; else echo "$3 $2"; fi
}

# ------------------------------------------------------------------------------------
# memory, threads, fds, start-up and idle CPU

# sample_shims LABEL NCONTAINERS PID...: per-shim samples, idle CPU after IDLE_S.
sample_shims() {
        local label=$1 nctr=$2 p
        shift 2
        local pids=("$@")
        : >"$DATA/shims.$label"
        for p in "${pids[@]}"; do
                proc_sample "$p" >>"$DATA/shims.$label"
        done
        echo "$nctr ${#pids[@]}" >"$DATA/count.$label"
}

# idle_cpu LABEL PID...: "ticks ns" used by each over IDLE_S seconds.
idle_cpu() {
        local label=$1 p
        shift
        local before=() before_ns=()
        for p in "$@"; do
                before+=("$(cpu_ticks "$p")")
                before_ns+=("$(cpu_ns "$p")")
        done
        sleep "$IDLE_S" # the measurement interval itself, not a synchronisation
        local i=0
        : >"$DATA/idle.$label"
        for p in "$@"; do
                echo "$(($(cpu_ticks "$p") - ${before[$i]})) $(($(cpu_ns "$p") - ${before_ns[$i]}))" >>"$DATA/idle.$label"
                i=$((i + 1))
        done
}

shim_of_tasks() {
        local id pid
        for id in "$@"; do
                pid=$(task_pid "$id")
                [ -n "$pid" ] && ppid_of "$pid"
        done | sort -u
}

mem_phase_a() {
        log "memory A: $N sleep containers each for nanoshim and runc-v2 (interleaved)"
        local i rt ids_nano=() ids_runc=()
        for i in $(seq "$N"); do
                for rt in $(order "$i" "$NANO" "$RUNCV2"); do
                        run_d "$rt" "m-$(short "$rt")-$i" -- sleep 100000 || log "run -d m-$(short "$rt")-$i failed"
                done
                ids_nano+=("m-nano-$i")
                ids_runc+=("m-runc-$i")
        done
        local sn sr
        sn=$(shim_of_tasks "${ids_nano[@]}")
        sr=$(shim_of_tasks "${ids_runc[@]}")
        for i in $sn $sr; do track "$i"; done
        # "At rest": a while after the last start (nanoshim closes an idle events
        # connection after 2 s; runc-v2's goroutines settle too).
        msleep "$REST_S"
        # shellcheck disable=SC2086
        sample_shims nano "$N" $sn
        # shellcheck disable=SC2086
        sample_shims runc "$N" $sr
        log "idle CPU over ${IDLE_S}s of $(echo $sn $sr | wc -w) shims"
        # shellcheck disable=SC2086
        idle_cpu nano $sn
        # shellcheck disable=SC2086
        idle_cpu runc $sr
        rm_ctr "${ids_nano[@]}" "${ids_runc[@]}"
}

# conmon_create ID BUNDLE: conmon runs `runc create`; waits for the init's pid file.
conmon_create() {
        local id=$1 b=$2
        conmon -c "$id" -u "$id" -n "$id" -r "$RUNC" --runtime-arg "--root=$WORK/runc-conmon" -b "$b" \
                -p "$b/pid" -P "$b/conmon.pid" --exit-dir "$WORK/exits" -l "k8s-file:$b/ctr.log" -0 "$b" \
                --socket-dir-path "$WORK/csock" --log-level error || return 1
        poll_fast 20 test -s "$b/pid" || return 1
        track "$(<"$b/conmon.pid")"
}

mem_phase_b() {
        log "memory B: $N containers in one nanoshim pod group, $N conmon+runc (interleaved)"
        local i s ids=() conmons=()
        for i in $(seq "$N"); do
                for s in $(order "$i" group conmon); do
                        if [ "$s" = group ]; then
                                run_d "$NANO" "g-$i" --annotation io.containerd.runc.v2.group=nsbench-pod -- sleep 100000 ||
                                        log "run -d g-$i failed"
                        else
                                mk_bundle "$WORK/cm/c-$i" sleep 100000
                                conmon_create "c-$i" "$WORK/cm/c-$i" && "$RUNC" --root "$WORK/runc-conmon" start "c-$i" ||
                                        log "conmon c-$i failed"
                        fi
                done
                ids+=("g-$i")
                conmons+=("$(cat "$WORK/cm/c-$i/conmon.pid" 2>/dev/null)")
        done
        local sg
        sg=$(shim_of_tasks "${ids[@]}")
        for i in $sg; do track "$i"; done
        msleep "$REST_S"
        # shellcheck disable=SC2086
        sample_shims group "$N" $sg
        sample_shims conmon "$N" "${conmons[@]}"
        log "idle CPU over ${IDLE_S}s of the group shim and $N conmons"
        # shellcheck disable=SC2086
        idle_cpu group $sg "${conmons[@]}"
        tail -n +2 "$DATA/idle.group" >"$DATA/idle.conmon"
        head -n 1 "$DATA/idle.group" >"$DATA/idle.tmp" && mv "$DATA/idle.tmp" "$DATA/idle.group"
        rm_ctr "${ids[@]}"
        for i in $(seq "$N"); do
                "$RUNC" --root "$WORK/runc-conmon" kill "c-$i" KILL 2>/dev/null
        done
        for i in $(seq "$N"); do
                poll_fast 20 test -e "$WORK/exits/c-$i"
                "$RUNC" --root "$WORK/runc-conmon" delete --force "c-$i" 2>/dev/null
        done
}

# ------------------------------------------------------------------------------------
# lifecycle through containerd

# One `ctr run --rm IMAGE ID /bin/true`; records ms in run_rm.<subject>.
lc_run_rm() {
        local rt=$1 id=$2 t0 t1 c0
        c0=$([ -z "$CPU_CG" ] || cpu_us)
        t0=$(now_us)
        ctr_ run --rm --runtime "$rt" --fifo-dir "$WORK/fifo" "$IMAGE" "$id" /bin/true >/dev/null 2>&1 ||
                log "run --rm $id failed"
        t1=$(now_us)
        record "run_rm.$(short "$rt")" "$(fdiv $((t1 - t0)) 1000)"
        cpu_record "cpu_run_rm.$(short "$rt")" "$c0"
}

# run -d, task kill, wait for containerd's exit event, task delete, containers rm.
lc_detached() {
        local rt=$1 id=$2 t0 t1 c0
        c0=$([ -z "$CPU_CG" ] || cpu_us)
        t0=$(now_us)
        run_d "$rt" "$id" -- sleep 100000 || log "run -d $id failed"
        ctr_ task kill -s KILL "$id" >/dev/null 2>&1
        poll_fast 20 has_exit_event "$id" || log "no exit event for $id"
        ctr_ task rm "$id" >/dev/null 2>&1
        ctr_ containers rm "$id" >/dev/null 2>&1
        t1=$(now_us)
        record "cycle.$(short "$rt")" "$(fdiv $((t1 - t0)) 1000)"
        cpu_record "cpu_cycle.$(short "$rt")" "$c0"
}

lifecycle_phase() {
        log "lifecycle: ctr run --rm and the detached cycle, $RUNS runs each"
        local i rt
        for rt in "$NANO" "$RUNCV2"; do # warm caches for both first
                lc_run_rm "$rt" "warm-$(short "$rt")"
        done
        rm -f "$DATA"/run_rm.*
        for i in $(seq "$RUNS"); do
                for rt in $(order "$i" "$NANO" "$RUNCV2"); do
                        lc_run_rm "$rt" "r-$(short "$rt")-$i"
                done
        done
        for i in $(seq "$RUNS"); do
                for rt in $(order "$i" "$NANO" "$RUNCV2"); do
                        lc_detached "$rt" "d-$(short "$rt")-$i"
                done
        done
}

# ------------------------------------------------------------------------------------
# standalone: nanoshim+shimctl vs conmon+runc vs bare runc

# sa_shim_start NAME [EVENTS_SOCKET]: a standalone nanoshim (sets SA_PID, SA_SOCK).
sa_shim_start() {
        local name=$1 ev=${2:-}
        mkdir -p "$WORK/sa/$name"
        SA_SOCK=$WORK/sa/$name/s.sock
        if [ -n "$ev" ]; then
                "$SHIM" -namespace "$CTR_NS" -socket "$SA_SOCK" -runtime-root "$WORK/runc-sa" -events-address "$ev" \
                        >"$WORK/sa/$name/log" 2>&1 &
        else
                "$SHIM" -namespace "$CTR_NS" -socket "$SA_SOCK" -runtime-root "$WORK/runc-sa" >"$WORK/sa/$name/log" 2>&1 &
        fi
        SA_PID=$!
        track "$SA_PID"
        poll_fast 10 test -S "$SA_SOCK"
}

sa_shim_stop() {
        "$SHIMCTL" -a "$SA_SOCK" shutdown x >/dev/null 2>&1
        poll_fast 10 pid_done "$SA_PID" || kill -KILL "$SA_PID" 2>/dev/null
        wait "$SA_PID" 2>/dev/null
}

ctl() {
        "$SHIMCTL" -a "$SA_SOCK" "$@"
}

# The whole life of one container, as a standalone manager drives nanoshim: the shim is
# launched for the bundle (its process.json: create and start, as conmon is launched to
# create), its socket appears once the container runs; then kill, wait, delete, shim gone.
sa_nano() {
        local id=$1 b=$2 t0 t1
        local ok=1
        mkdir -p "$WORK/sa/$id"
        SA_SOCK=$WORK/sa/$id/s.sock
        t0=$(now_us)
        printf '{"id":"%s","runtime":"%s","runtime_root":"%s"}' "$id" "$RUNC" "$WORK/runc-sa" >"$b/process.json"
        "$SHIM" -namespace "$CTR_NS" -socket "$SA_SOCK" -bundle "$b" -launch >"$WORK/sa/$id/log" 2>&1 &
        SA_PID=$!
        track "$SA_PID"
        poll_fast 20 test -S "$SA_SOCK" || { ok=0; log "standalone launch $id: no socket: $(tail -2 "$WORK/sa/$id/log")"; }
        # one shimctl process for the rest, as a manager holding the socket would
        ctl --timeout 20 kill "$id" --signal KILL + wait "$id" + delete "$id" + shutdown "$id" >/dev/null || ok=0
        poll_fast 10 pid_done "$SA_PID" || kill -KILL "$SA_PID" 2>/dev/null
        wait "$SA_PID" 2>/dev/null
        t1=$(now_us)
        [ "$ok" = 1 ] && record sa.nano "$(fdiv $((t1 - t0)) 1000)"
        rm -rf "${WORK:?}/sa/$id" "$b/process.json"
}

sa_conmon() {
        local id=$1 b=$2 t0 t1 cpid
        rm -f "$b/pid" "$b/conmon.pid" "$WORK/exits/$id"
        t0=$(now_us)
        conmon_create "$id" "$b" || log "conmon $id failed"
        cpid=$(<"$b/conmon.pid")
        "$RUNC" --root "$WORK/runc-conmon" start "$id"
        "$RUNC" --root "$WORK/runc-conmon" kill "$id" KILL
        poll_fast 20 test -e "$WORK/exits/$id" || log "no exit file for $id"
        "$RUNC" --root "$WORK/runc-conmon" delete "$id"
        poll_fast 10 pid_done "$cpid"
        t1=$(now_us)
        record sa.conmon "$(fdiv $((t1 - t0)) 1000)"
}

sa_bare() {
        local id=$1 b=$2 t0 t1 pid
        t0=$(now_us)
        "$RUNC" --root "$WORK/runc-bare" run -d -b "$b" --pid-file "$b/pid" "$id" </dev/null >/dev/null 2>&1 ||
                log "runc run -d $id failed"
        pid=$(<"$b/pid")
        "$RUNC" --root "$WORK/runc-bare" kill "$id" KILL
        poll_fast 20 pid_done "$pid"
        "$RUNC" --root "$WORK/runc-bare" delete "$id"
        t1=$(now_us)
        record sa.bare "$(fdiv $((t1 - t0)) 1000)"
}

standalone_phase() {
        log "standalone: nanoshim+shimctl vs conmon+runc vs bare runc, $RUNS runs each"
        local i s
        for s in nano conmon bare; do
                mk_bundle "$WORK/sab/$s" sleep 100000
        done
        sa_nano warm-n "$WORK/sab/nano"
        sa_conmon warm-c "$WORK/sab/conmon"
        sa_bare warm-b "$WORK/sab/bare"
        rm -f "$DATA"/sa.*
        for i in $(seq "$RUNS"); do
                case $((i % 3)) in
                0) set -- nano conmon bare ;;
                1) set -- conmon bare nano ;;
                2) set -- bare nano conmon ;;
                esac
                for s in "$@"; do
                        "sa_$s" "s$s$i" "$WORK/sab/$s"
                done
        done
}

# ------------------------------------------------------------------------------------
# stdout throughput: 1 GiB from dd inside the container

tp_host() {
        local t0 t1
        t0=$(now_us)
        /bin/busybox "${GIB_CMD[@]}" 2>/dev/null | cat >/dev/null
        t1=$(now_us)
        record tp.host "$(fdiv $((t1 - t0)) 1000000 %.6f)"
}

tp_sa() {
        local i=$1 f=$WORK/sa/tp/out$1 t0 t1 reader
        mkfifo "$f"
        cat "$f" >/dev/null &
        reader=$!
        track "$reader"
        ctl create "tp$i" --bundle "$WORK/tpb" --stdout "$f" >/dev/null || log "shimctl create tp$i failed"
        t0=$(now_us)
        ctl start "tp$i" >/dev/null
        wait "$reader"
        t1=$(now_us)
        ctl --timeout 60 wait "tp$i" >/dev/null
        ctl delete "tp$i" >/dev/null
        rm -f "$f"
        record tp.sa "$(fdiv $((t1 - t0)) 1000000 %.6f)"
}

tp_ctr() {
        local rt=$1 id=$2 t0 t1
        t0=$(now_us)
        ctr_ run --rm --runtime "$rt" --fifo-dir "$WORK/fifo" "$IMAGE" "$id" "${GIB_CMD[@]}" >/dev/null 2>&1 ||
                log "ctr run $id (1 GiB) failed"
        t1=$(now_us)
        record "tp.$(short "$rt")" "$(fdiv $((t1 - t0)) 1000000 %.6f)"
}

throughput_phase() {
        log "stdout throughput: 1 GiB, $TP_RUNS runs per subject"
        mk_bundle "$WORK/tpb" "${GIB_CMD[@]}"
        sa_shim_start tp || log "throughput shim did not come up"
        local i s
        for i in $(seq "$TP_RUNS"); do
                case $((i % 2)) in
                0) set -- host sa nano runc ;;
                1) set -- runc nano sa host ;;
                esac
                for s in "$@"; do
                        case $s in
                        host) tp_host ;;
                        sa) tp_sa "$i" ;;
                        nano) tp_ctr "$NANO" "tp-nano-$i" ;;
                        runc) tp_ctr "$RUNCV2" "tp-runc-$i" ;;
                        esac
                done
        done
        sa_shim_stop
}

# ------------------------------------------------------------------------------------
# kill -> exit event; orphan reaping

# Kill requests under containerd. The interval ends at the exit event's timestamp
# (stamped by the shim when it sent it) and starts at:
#  - ev_kill: the moment the Kill request is sent to the shim's task API, the same
#    client (shimctl -T, which prints when it sent the request) for both shims, on
#    the socket containerd itself uses: the shim's whole kill path, nothing else;
#  - ev_ctrkill: the start of `ctr task kill -s KILL` (what a user of ctr sees: ctr's
#    start-up and containerd are in the interval, the same for both shims);
#  - ev_ctr: a SIGKILL sent from the host to the init (the exit path only: kernel
#    teardown, reaping, publishing).
# ev_done NAME RT ID T0_US: wait for ID's exit event, record its interval from T0_US.
ev_done() {
        local name=$1 rt=$2 id=$3 t0=$4 line ts
        # the shim stamps the event: a slow poll keeps our CPU use out of the interval
        poll_until 20 has_exit_event "$id" || log "no exit event for $id"
        line=$(exit_event_line "$id")
        ts=$(ts_to_us "$(echo "$line" | cut -d' ' -f1-2) UTC")
        record "$name.$(short "$rt")" "$(fdiv $((ts - t0)) 1000 %.4f)"
        rm_ctr "$id"
}

ev_kill() {
        local rt=$1 id=$2 addr t0
        run_d "$rt" "$id" -- sleep 100000 || { log "run -d $id failed"; return; }
        addr=$(ctrd_shim_address "$id")
        t0=$("$SHIMCTL" -T -a "$addr" kill "$id" --signal KILL 2>&1 | awk '$2 == "Kill" && $3 == "sent" { print $4 }')
        [ -n "$t0" ] || { log "$id: no Kill timestamp from shimctl"; rm_ctr "$id"; return; }
        ev_done evk "$rt" "$id" "${t0/./}"
}

ev_ctrkill() {
        local rt=$1 id=$2 t0
        run_d "$rt" "$id" -- sleep 100000 || { log "run -d $id failed"; return; }
        t0=$(now_us)
        ctr_ task kill -s KILL "$id"
        ev_done evc "$rt" "$id" "$t0"
}

ev_ctr() {
        local rt=$1 id=$2 pid t0
        run_d "$rt" "$id" -- sleep 100000 || { log "run -d $id failed"; return; }
        pid=$(task_pid "$id")
        t0=$(now_us)
        kill -KILL "$pid"
        ev_done ev "$rt" "$id" "$t0"
}

ev_sa() {
        local i=$1 pid t0 ts
        pid=$(ctl create "ev$i" --bundle "$WORK/sab/nano")
        ctl start "ev$i" >/dev/null
        t0=$(now_us)
        kill -KILL "$pid"
        poll_until 20 grep -q "\"topic\":\"/tasks/exit\".*\"id\":\"ev$i\"" "$WORK/ev-sa.out" || log "no exit event for ev$i"
        ts=$(grep "\"topic\":\"/tasks/exit\".*\"id\":\"ev$i\"" "$WORK/ev-sa.out" | head -n 1 |
                grep -o '"timestamp":"[^"]*"' | cut -d'"' -f4)
        record ev.sa "$(fdiv $(($(ts_to_us "$ts") - t0)) 1000 %.4f)"
        ctl --timeout 20 wait "ev$i" >/dev/null
        ctl delete "ev$i" >/dev/null
}

events_phase() {
        log "kill -> exit event: $EV_RUNS runs per subject"
        local i rt
        "$SHIMCTL" events --listen "$WORK/ev-sa.sock" >"$WORK/ev-sa.out" 2>&1 &
        local rpid=$!
        track "$rpid"
        poll_fast 10 test -S "$WORK/ev-sa.sock"
        [ -e "$WORK/sab/nano/config.json" ] || mk_bundle "$WORK/sab/nano" sleep 100000
        sa_shim_start ev "$WORK/ev-sa.sock" || log "events shim did not come up"
        for i in $(seq "$EV_RUNS"); do
                for rt in $(order "$i" "$NANO" "$RUNCV2"); do
                        ev_kill "$rt" "ek-$(short "$rt")-$i"
                        ev_ctrkill "$rt" "ec-$(short "$rt")-$i"
                        ev_ctr "$rt" "e-$(short "$rt")-$i"
                done
                ev_sa "$i"
        done
        sa_shim_stop
        kill "$rpid" 2>/dev/null
        wait "$rpid" 2>/dev/null
}

# 1000 orphans (host PID namespace, so they are reparented to the shim) block opening
# a FIFO; once all are blocked the FIFO is opened from the host through /proc/PID/root,
# all exit at once and the time until the shim has reaped the last one is taken.
orphans_one() {
        local rt=$1 id=$2 pid shim t0 t1 n
        # shellcheck disable=SC2016 # expanded inside the container
        run_d "$rt" "$id" --with-ns "pid:/proc/$$/ns/pid" -- sh -c \
                'mkfifo /tmp/g; i=0; while [ $i -lt 1000 ]; do (cat /tmp/g >/dev/null &); i=$((i+1)); done; exec sleep 100000' ||
                { log "run -d $id failed"; return; }
        pid=$(task_pid "$id")
        shim=$(ppid_of "$pid")
        poll_fast 60 orphans_blocked "$shim" || log "$id: orphans never all blocked ($(children_count "$shim"))"
        t0=$(now_us)
        : >"/proc/$pid/root/tmp/g"
        # every child but the init reaped
        n=0
        while [ "$(children_count "$shim")" -gt 1 ]; do
                n=$((n + 1))
                [ "$n" -lt 20000 ] || { log "$id: orphans left: $(children_count "$shim")"; break; }
                msleep 0.0005
        done
        t1=$(now_us)
        record "orph.$(short "$rt")" "$(fdiv $((t1 - t0)) 1000 %.3f)"
        rm_ctr "$id"
}

# All 1000 cats are children of SHIM and sleeping in open(2) on the FIFO.
orphans_blocked() {
        local shim=$1 f kids k sc n=0
        for f in /proc/"$shim"/task/*/children; do
                read -r -a kids <"$f" || true # no newline at the end: status 1
                for k in "${kids[@]}"; do
                        read -r sc _ <"/proc/$k/syscall" 2>/dev/null || continue
                        [ "$sc" = 257 ] || [ "$sc" = 2 ] && n=$((n + 1))
                done
        done
        [ "$n" -ge 1000 ]
}

orphans_phase() {
        log "orphan reaping: 1000 orphans, $ORPH_RUNS runs per subject"
        local i rt
        for i in $(seq "$ORPH_RUNS"); do
                for rt in $(order "$i" "$NANO" "$RUNCV2"); do
                        orphans_one "$rt" "o-$(short "$rt")-$i"
                done
        done
}

# ------------------------------------------------------------------------------------

if [ -n "$PHASES" ]; then
        for p in $PHASES; do
                case $p in
                memory) mem_phase_a; mem_phase_b ;;
                lifecycle | standalone | throughput | events | orphans) "${p}_phase" ;;
                *) log "unknown phase '$p'" ;;
                esac
        done
        . "$SRC/bench/report.sh"
        partial_report
        exit
fi
mem_phase_a
mem_phase_b
lifecycle_phase
standalone_phase
throughput_phase
events_phase
orphans_phase
T_END=$(now_us)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
log "measurements done in $(( (T_END - T_START) / 1000000 )) s; writing the report"
. "$SRC/bench/report.sh"
write_report
exit
}
