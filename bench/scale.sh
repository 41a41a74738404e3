#!/bin/bash
# How the cost grows with the number of running containers under one containerd:
# nanoshim one shim per container, nanoshim in pods of 10 (io.kubernetes.cri.sandbox-id),
# containerd-shim-runc-v2 per container, conmon + runc standalone. At each checkpoint
# N: supervisors' PSS/RSS/USS, threads, fds, containerd's RSS and CPU, CPU and wake-ups
# of all supervisors at rest, start latency of the N-th container, sequential and 8-way
# parallel start throughput; per population: kill of all N inits -> last exit, removal.
# Writes bench/results/<date>-<host>-scale.md, a -<version>.png of curves per containerd
# version and -cri.png, and the raw samples in bench/results/<date>-<host>-scale/.
#   sudo bench/scale.sh [-c "2.1 1.6"] [-p VER=POPS]... [-s SUBJECTS] [-i REST_S] [-k PODS] [-o DIR] [--quick]
# POPS: populations started from zero, e.g. "10 100 500,1000": populations of 10, of 100,
# and one of 1000 measured on its way at 500 (a comma joins checkpoints of one population).
# The whole script is one compound command, parsed before it runs.
{
set -uo pipefail
SRC=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
VERSIONS="2.1 1.6"
declare -A POPS=([2.1]="10,100,500,1000" [1.6]="10,100")
SUBJECTS="nano pod runc conmon"
REST_S=30 # (the defaults take ~16 min here; -p 1.6="10,100,500,1000" -i 60, everything: ~30)
SETTLE_S=3
PAR=8
SEQ_MAX=50 # one-at-a-time starts per fill at most (the rest go $PAR in flight: time)
POD_SIZE=10
OUT=$SRC/bench/results
CRI_PODS=100
CRI_VERSION=2.1
MEASURE=""
REPORT_FROM=""
ORIG_ARGS=("$@")
usage() {
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        echo "  -c LIST     containerd versions (default: $VERSIONS)"
        echo "  -p VER=POPS populations for that version (default: 2.1=\"${POPS[2.1]}\" 1.6=\"${POPS[1.6]}\")"
        echo "  -s LIST     subjects, of: nano pod runc conmon (default: all)"
        echo "  -i SECONDS  the at-rest window at each checkpoint (default $REST_S)"
        echo "  -o DIR      where results go (default bench/results)"
        echo "  -k PODS     pods of 2 containers per handler through the CRI plugin (default $CRI_PODS; 0: none)"
        echo "  -K VERSION  the containerd version for the CRI part (default $CRI_VERSION)"
        echo "  --report DIR  write the report again from a run's raw samples (DIR: <date>-<host>-scale/)"
        echo "  --quick     smoke test: -c 2.1 -p 2.1=\"10,20\" -i 5 -k 20"
}
while [ $# -gt 0 ]; do
        case $1 in
        -c) VERSIONS=$2; shift ;;
        -p) POPS[${2%%=*}]=${2#*=}; shift ;;
        -s) SUBJECTS=$2; shift ;;
        -i) REST_S=$2; shift ;;
        -o) OUT=$2; shift ;;
        -k) CRI_PODS=$2; shift ;;
        -K) CRI_VERSION=$2; shift ;;
        --quick) VERSIONS=2.1 POPS[2.1]="10,20" REST_S=5 CRI_PODS=20 ;;
        --measure) MEASURE=$2; shift ;; # internal: one version's measurements into DIR
        --report) REPORT_FROM=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
        esac
        shift
done
if [ -n "$REPORT_FROM" ]; then
        # shellcheck source=bench/lib.sh
        . "$SRC/bench/lib.sh"
        # shellcheck source=bench/scale-report.sh
        . "$SRC/bench/scale-report.sh"
        RUN=$(mktemp -d /tmp/nss-r.XXXXXX)
        cp -r "$REPORT_FROM"/. "$RUN/" || exit 1
        scale_report "$RUN"
        rm -rf "$RUN"
        exit
fi
if [ "$(id -u)" != 0 ]; then
        echo "scale: run as root (containers need it)" >&2
        exit 1
fi

# Stage 1 (outside the subreaper): packages, build, containerd versions, then re-run
# under the subreaper so that every daemonised shim and conmon is our child.
if [ -z "${NSB_UNDER_SUBREAPER:-}" ]; then
        "$SRC/tools/install-deps.sh" || exit 1
        # shellcheck source=bench/lib.sh
        . "$SRC/bench/lib.sh"
        bench_install_packages conmon gnuplot-nox || exit 1
        for v in $VERSIONS; do
                "$SRC/tools/containerd-version.sh" "$v" >/dev/null || exit 1
        done
        bench_under_subreaper "$0" "${ORIG_ARGS[@]}"
fi

# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"

# Stage 2: one child per containerd version, then the report of all of them.
if [ -z "$MEASURE" ]; then
        RUN=$(mktemp -d /tmp/nss.XXXXXX)
        T_START=$(now_us)
        LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
        for v in $VERSIONS; do
                mkdir -p "$RUN/$v"
                log "containerd $v: populations ${POPS[$v]:-?}"
                CTRD=$v bash "$0" --measure "$RUN/$v" -p "$v=${POPS[$v]}" -s "$SUBJECTS" -i "$REST_S" ||
                        log "containerd $v: the measurement failed (rc $?), see above"
        done
        if [ "$CRI_PODS" -gt 0 ]; then
                mkdir -p "$RUN/bin"
                cp "$SRC/build/containerd-shim-nanoshim-v2" "$RUN/bin/" &&
                        CTRD=$CRI_VERSION bash "$SRC/bench/scale-cri.sh" "$RUN/cri" "$RUN/bin/containerd-shim-nanoshim-v2" "$CRI_PODS" ||
                        log "CRI: not measured (rc $?)"
                rm -rf "${RUN:?}/bin"
        fi
        T_END=$(now_us)
        LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
        # shellcheck source=bench/scale-report.sh
        . "$SRC/bench/scale-report.sh"
        scale_report "$RUN"
        rm -rf "$RUN"
        exit
fi

# ------------------------------------------------------------------------------------
# Stage 3: one containerd version's measurements into $MEASURE.

# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
RUNC=$(command -v runc)
NANO=io.containerd.nanoshim.v2
RUNCV2=io.containerd.runc.v2
IMAGE=localhost/busybox:nsscale
# Distinct from every other suite's: cgroups /<ns>/<id>, runc state /run/containerd/runc/<ns>.
CTR_NS=${SCALE_NS:-nsscale}-${CTRD//./}
DATA=$MEASURE
WORK=$(mktemp -d /tmp/nss-w.XXXXXX)
chmod 700 "$WORK"
mkdir -p "$WORK/fifo" "$WORK/exits" "$WORK/csock" "$WORK/runc-conmon" "$WORK/cm"
CM_CGROUP=/$CTR_NS-conmon # conmon's containers: cgroups /<this>/<id>

# Everything of ours is gone at the end, or the run says what is left.
scale_cleanup() {
        local rc=$? id
        trap - EXIT INT TERM
        log "cleanup"
        # conmon's containers first (runc state in our root; bench_cleanup deletes the rest)
        for id in $("$RUNC" --root "$WORK/runc-conmon" list -q 2>/dev/null); do
                "$RUNC" --root "$WORK/runc-conmon" delete --force "$id" >/dev/null 2>&1
        done
        if [ -n "${CTRD_SOCK:-}" ] && [ -e "${CTRD_DIR:-/nonexistent}/containerd.pid" ]; then
                ids=$(ctr_ task ls -q 2>/dev/null)
                # running tasks only: a stopped one's PID may be someone else's by now
                # shellcheck disable=SC2046
                [ -z "$ids" ] || kill_inits $(ctr_ task ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" { print $2 }')
                # shellcheck disable=SC2086
                [ -z "$ids" ] || ctr_ task rm -f $ids >/dev/null 2>&1
                ids=$(ctr_ containers ls -q 2>/dev/null)
                # shellcheck disable=SC2086
                [ -z "$ids" ] || ctr_ containers rm $ids >/dev/null 2>&1
        fi
        # bench_cleanup stops containerd, tracked processes, unmounts and removes $WORK.
        (bench_cleanup) # a subshell: it exits
        # Shims and conmons are children of our subreaper: any still alive is ours.
        # runc-v2's and nanoshim's runc root for the namespace
        for id in $("$RUNC" --root "/run/containerd/runc/$CTR_NS" list -q 2>/dev/null); do
                "$RUNC" --root "/run/containerd/runc/$CTR_NS" delete --force "$id" >/dev/null 2>&1
        done
        local p left=0 sr=$PPID
        for p in $(subreaper_children "$sr"); do
                [ "$p" = $$ ] && continue
                kill -KILL "$p" 2>/dev/null && left=$((left + 1))
        done
        # A shim whose starter died (killed from outside) is reparented to init, not to
        # us: any process still talking to our containerd's address is ours too.
        local f
        for f in /proc/[0-9]*/cmdline; do
                p=${f#/proc/}
                p=${p%/cmdline}
                [ "$p" = $$ ] && continue
                tr '\0' ' ' 2>/dev/null <"$f" | grep -qF -- "-address $WORK/ctrd/c.sock" || continue
                kill -KILL "$p" 2>/dev/null && left=$((left + 1))
        done
        [ "$left" = 0 ] || log "cleanup: killed $left processes left behind"
        local d
        for d in /sys/fs/cgroup/*/"$CTR_NS" /sys/fs/cgroup/"$CTR_NS" /sys/fs/cgroup/*"$CM_CGROUP" \
                /sys/fs/cgroup"$CM_CGROUP" /run/containerd/runc/"$CTR_NS"; do
                [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
        done
        verify_clean || rc=1
        exit "$rc"
}

# The PIDs of SUBREAPER's children, but the shell's own helpers.
subreaper_children() {
        local f kids k
        for f in /proc/"$1"/task/*/children; do
                [ -e "$f" ] || continue
                read -r -a kids <"$f" 2>/dev/null || true
                for k in "${kids[@]}"; do echo "$k"; done
        done
}

# Nothing of ours left: no process, mount, cgroup or runc state.
verify_clean() {
        local bad=0 n
        n=$(subreaper_children "$PPID" | grep -vcx "$$")
        [ "$n" = 0 ] || { log "LEFT: $n processes under the subreaper"; bad=1; }
        n=$(awk -v d="$WORK" 'index($2, d) == 1' /proc/mounts | wc -l)
        [ "$n" = 0 ] || { log "LEFT: $n mounts under $WORK"; bad=1; }
        n=$(find /sys/fs/cgroup -maxdepth 2 \( -name "$CTR_NS" -o -name "${CM_CGROUP#/}" \) 2>/dev/null | wc -l)
        [ "$n" = 0 ] || { log "LEFT: $n cgroup directories"; bad=1; }
        [ ! -d /run/containerd/runc/"$CTR_NS" ] || { log "LEFT: /run/containerd/runc/$CTR_NS"; bad=1; }
        [ ! -d "$WORK" ] || { log "LEFT: $WORK"; bad=1; }
        [ "$bad" = 1 ] || log "cleanup verified: no process, mount, cgroup or runc state left"
        echo "$bad" >"$DATA/left"
        return "$bad"
}
trap scale_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/bin"
cp "$SRC/build/containerd-shim-nanoshim-v2" "$WORK/bin/" || exit 1
SHIM=$WORK/bin/containerd-shim-nanoshim-v2
"$SRC/tools/mkbundle.sh" "$WORK/base" sleep 100000 >/dev/null || exit 1
ROOTFS=$WORK/base/rootfs
# conmon's bundles: the same config on the shared rootfs, in our cgroup parent
jq --arg r "$ROOTFS" '.root.path = $r' "$WORK/base/config.json" >"$WORK/cm.json" || exit 1

# containerd's state (the bundles) on a tmpfs, as /run/containerd is on a host: a shim's
# fsync there costs nothing (SCALE_STATE=disk keeps it on $WORK's filesystem, to compare).
mkdir -p "$WORK/ctrd/state"
if [ "${SCALE_STATE:-tmpfs}" = tmpfs ]; then
        mount -t tmpfs -o mode=0711 nsscale-state "$WORK/ctrd/state" || exit 1
fi
echo "state ${SCALE_STATE:-tmpfs}" >"$DATA/state"
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
ctrd_import_image "$ROOTFS" "$IMAGE" || { log "cannot import the image"; exit 1; }
ctr_ events >"$WORK/events.log" 2>&1 &
track $!
# msleep's FIFO, opened after containerd and ctr started (bash cannot make it close-on-exec)
BENCH_SLEEP_FIFO=$WORK/sleep.fifo
mkfifo "$BENCH_SLEEP_FIFO"
# shellcheck disable=SC2034 # msleep (bench/lib.sh) reads it
exec {BENCH_SLEEP_FD}<>"$BENCH_SLEEP_FIFO"
{
        echo "containerd $CTRD_VERSION"
        echo "containerd_shim_runc_v2 $("$CTRD_BIN/containerd-shim-runc-v2" -v 2>/dev/null | awk '/Version/ { print $2; exit }')"
        echo "runc $("$RUNC" --version | awk 'NR == 1 { print $3 }')"
        echo "conmon $(conmon --version | awk 'NR == 1 { print $3 }')"
        echo "nanoshim $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)"
} >"$DATA/versions"

# ------------------------------------------------------------------------------------
# starting one container of a subject

# cid SUBJECT POP I: the container's id.
cid() {
        echo "$1$2-$3"
}

# start_one SUBJECT POP I: start container I of the population; 0 when it runs.
start_one() {
        local s=$1 p=$2 i=$3 id err
        id=$(cid "$s" "$p" "$i")
        case $s in
        nano) err=$(ctr_ run -d --runtime "$NANO" --fifo-dir "$WORK/fifo" "$IMAGE" "$id" sleep 100000 2>&1 >/dev/null) ;;
        pod) err=$(ctr_ run -d --runtime "$NANO" --fifo-dir "$WORK/fifo" \
                --annotation "io.kubernetes.cri.sandbox-id=pod$p-$(((i - 1) / POD_SIZE))" \
                "$IMAGE" "$id" sleep 100000 2>&1 >/dev/null) ;;
        runc) err=$(ctr_ run -d --runtime "$RUNCV2" --fifo-dir "$WORK/fifo" "$IMAGE" "$id" sleep 100000 2>&1 >/dev/null) ;;
        conmon) err=$(conmon_start "$id" 2>&1) ;;
        esac
        local rc=$?
        [ "$rc" = 0 ] || echo "$p $i ${err//$'\n'/ }" >>"$DATA/fail.$s"
        return "$rc"
}

# conmon runs `runc create` and stays as the container's monitor; we `runc start`.
conmon_start() {
        local id=$1 b=$WORK/cm/$1
        mkdir -p "$b"
        jq --arg c "$CM_CGROUP/$id" '.linux.cgroupsPath = $c' "$WORK/cm.json" >"$b/config.json" || return 1
        conmon -c "$id" -u "$id" -n "$id" -r "$RUNC" --runtime-arg "--root=$WORK/runc-conmon" -b "$b" \
                -p "$b/pid" -P "$b/conmon.pid" --exit-dir "$WORK/exits" -l "k8s-file:$b/ctr.log" -0 "$b" \
                --socket-dir-path "$WORK/csock" --log-level error || return 1
        poll_fast 30 test -s "$b/pid" || { echo "no pid file"; return 1; }
        "$RUNC" --root "$WORK/runc-conmon" start "$id"
}

# seq_starts POP FROM TO KIND: start containers FROM..TO of each subject one at a time,
# subjects interleaved (rotated each step); records "k ms KIND" in lat.<subject>.
seq_starts() {
        local p=$1 from=$2 to=$3 kind=$4 i s t0 t1
        for ((i = from; i <= to; i++)); do
                for s in $(rotate "$i" $GROUP); do
                        t0=$(now_us)
                        start_one "$s" "$p" "$i" || continue
                        t1=$(now_us)
                        echo "$i $(fdiv $((t1 - t0)) 1000) $kind $p" >>"$DATA/lat.$s"
                done
        done
}

# par_starts POP FROM TO: for each subject in turn, containers FROM..TO with $PAR
# starts in flight; sets PAR_S[subject] to the seconds it took.
declare -A PAR_S
par_starts() {
        local p=$1 from=$2 to=$3 s t0 t1
        for s in $GROUP; do PAR_S[$s]=0; done
        [ "$to" -ge "$from" ] || return 0
        for s in $(rotate "$from" $GROUP); do
                t0=$(now_us)
                (
                        n=0
                        for ((i = from; i <= to; i++)); do
                                start_one "$s" "$p" "$i" &
                                n=$((n + 1))
                                if [ "$n" -ge "$PAR" ]; then
                                        wait -n
                                        n=$((n - 1))
                                fi
                        done
                        wait
                )
                t1=$(now_us)
                PAR_S[$s]=$(fdiv $((t1 - t0)) 1000000 %.6f)
        done
}

# rotate I WORD...: the words rotated left by I (so that no subject is always first).
rotate() {
        local i=$1
        shift
        local a=("$@") n=$#
        local k
        for ((k = 0; k < n; k++)); do
                printf '%s ' "${a[$(((i + k) % n))]}"
        done
}

# fill POP FROM TO: the containers FROM..TO of every subject in $GROUP: half one at a
# time, half $PAR-way parallel, and the last few one at a time (the latency "of the
# N-th container" is their median).
fill() {
        local p=$1 from=$2 to=$3 inc k nseq t0 t1
        inc=$((to - from + 1))
        k=$((inc / 5))
        [ "$k" -le 5 ] || k=5
        [ "$k" -ge 1 ] || k=1
        nseq=$(((inc - k) / 2))
        [ "$nseq" -le "$SEQ_MAX" ] || nseq=$SEQ_MAX
        log "  $GROUP: $from..$to ($nseq one at a time, $((inc - k - nseq)) $PAR-way, $k last one at a time)"
        seq_starts "$p" "$from" $((from + nseq - 1)) seq
        par_starts "$p" $((from + nseq)) $((to - k))
        seq_starts "$p" $((to - k + 1)) "$to" last
        # fill.<subject>: "POP N FROM seq_count seq_s par_count par_s"; the sequential
        # time is the sum of the subject's own starts (the subjects were interleaved)
        local s
        for s in $GROUP; do
                awk -v p="$p" -v f="$from" -v t=$((from + nseq - 1)) -v n="$to" -v pc=$((to - k - from - nseq + 1)) \
                        -v ps="${PAR_S[$s]}" '
                        $3 == "seq" && $4 == p && $1 >= f && $1 <= t { c++; ms += $2 }
                        END { printf "%s %d %d %d %.6f %d %s\n", p, n, f, c, ms / 1000, pc, ps }' \
                        "$DATA/lat.$s" >>"$DATA/fill.$s" 2>/dev/null
        done
}

# ------------------------------------------------------------------------------------
# sampling

# list_tasks: containerd's task list into $WORK/tasks, read by supervisors and inits.
# Once per checkpoint, before any sample: a task list makes containerd call every shim
# (State), which would count as activity in the windows of the subjects sampled earlier.
# Only running tasks: a task whose init died keeps its old PID in the list (which the
# kernel may have given to someone else's process since). An init of ours that died
# without being killed by us is recorded as a failure (here other agents' by-PID kills
# of recycled PIDs have hit our containers).
list_tasks() {
        ctr_ task ls >"$WORK/tasks.all" 2>/dev/null
        awk 'NR == 1 || $3 == "RUNNING"' "$WORK/tasks.all" >"$WORK/tasks"
        local id s
        for id in $(awk 'NR > 1 && $3 != "RUNNING" { print $1 }' "$WORK/tasks.all"); do
                grep -qxF "$id" "$WORK/died" 2>/dev/null && continue
                echo "$id" >>"$WORK/died"
                s=${id%%[0-9]*}
                echo "${id#"$s"} died outside the benchmark: $(grep -F "\"container_id\":\"$id\",\"id\"" "$WORK/events.log" | cut -c1-200)" >>"$DATA/fail.$s"
                log "  $id: its init died outside the benchmark"
        done
}

# supervisors SUBJECT POP: PIDs of the processes supervising the population's
# containers (shims: the parents of the inits; conmon: its pid files).
supervisors() {
        local s=$1 p=$2 id pid f st
        if [ "$s" = conmon ]; then
                for id in $(conmon_running "$p"); do
                        echo "$(<"$WORK/cm/$id/conmon.pid")"
                done
                return
        fi
        while read -r id pid _; do
                case $id in "$s$p"-*) ;; *) continue ;; esac
                read -r st <"/proc/$pid/stat" 2>/dev/null || continue
                st=${st##*) }
                read -r -a st <<<"$st"
                echo "${st[1]}"
        done < <(tail -n +2 "$WORK/tasks") | sort -un
}

# conmon_running POP: ids of the population's conmon containers that have not exited
# (no exit file); one that has, unless we killed it, is recorded as a failure.
conmon_running() {
        local d id
        for d in "$WORK/cm/conmon$1"-*; do
                id=${d##*/}
                [ -s "$d/pid" ] && [ -s "$d/conmon.pid" ] || continue
                if [ -e "$WORK/exits/$id" ]; then
                        grep -qxF "$id" "$WORK/died" 2>/dev/null && continue
                        echo "$id" >>"$WORK/died"
                        echo "${id#conmon} died outside the benchmark: exit file $(<"$WORK/exits/$id")" >>"$DATA/fail.conmon"
                        continue
                fi
                echo "$id"
        done
}

# inits SUBJECT POP: the PIDs of the population's container inits.
inits() {
        local s=$1 p=$2 f pid
        if [ "$s" = conmon ]; then
                for id in $(conmon_running "$p"); do
                        echo "$(<"$WORK/cm/$id/pid")"
                done
                return
        fi
        awk -v pre="$s$p-" 'index($1, pre) == 1 { print $2 }' "$WORK/tasks"
}

# system_sample: tasks on the machine, pid_max, open files.
system_sample() {
        local t=(/proc/[0-9]*/task/[0-9]*)
        echo "tasks ${#t[@]} pid_max $(</proc/sys/kernel/pid_max) file_nr $(cut -f1 /proc/sys/fs/file-nr) mem_avail_kb $(awk '/MemAvailable/ { print $2 }' /proc/meminfo)"
}

# checkpoint N POP: sample every subject of $GROUP at N, then the rest window.
checkpoint() {
        local n=$1 p=$2 s
        msleep "$SETTLE_S" # "at rest": after the last start, idle connections closed
        list_tasks
        for s in $GROUP; do
                supervisors "$s" "$p" >"$WORK/sup.$s"
                inits "$s" "$p" >"$WORK/init.$s"
                # shellcheck disable=SC2046
                sample_procs $(cat "$WORK/sup.$s") >"$DATA/sup.$s.$n"
                # shellcheck disable=SC2046
                sample_procs $(cat "$WORK/init.$s") >"$DATA/init.$s.$n"
        done
        sample_procs "$CTRD_PID" >"$DATA/ctrd.$n.$(echo $GROUP | tr ' ' +)"
        { system_sample; echo "containerd_tasks $(($(wc -l <"$WORK/tasks") - 1))"; } >"$DATA/sys.$n.$(echo $GROUP | tr ' ' +)"
        log "  N=$n: sampled; at rest for ${REST_S}s"
        local ts te
        ts=$(now_us)
        sleep "$REST_S" # the measurement window itself, not a synchronisation
        te=$(now_us)
        for s in $GROUP; do
                # shellcheck disable=SC2046
                sample_procs $(cat "$WORK/sup.$s") >"$DATA/after.$s.$n"
                rest_delta "$DATA/sup.$s.$n" "$DATA/after.$s.$n" $((te - ts)) >"$DATA/rest.$s.$n"
        done
        sample_procs "$CTRD_PID" >"$WORK/after.ctrd"
        rest_delta "$DATA/ctrd.$n.$(echo $GROUP | tr ' ' +)" "$WORK/after.ctrd" $((te - ts)) \
                >"$DATA/restctrd.$n.$(echo $GROUP | tr ' ' +)"
}

# ------------------------------------------------------------------------------------
# kill all, remove all

kill_inits() {
        kill -KILL "$@" 2>/dev/null
}

# exit_count SUBJECT POP: /tasks/exit events for the population since the kill (the
# events log from line $EV_FROM), or conmon's exit files.
exit_count() {
        if [ "$1" = conmon ]; then
                local f=("$WORK/exits/conmon$2"-*)
                [ -e "${f[0]}" ] && echo "${#f[@]}" || echo 0
        else
                tail -n +"$EV_FROM" "$WORK/events.log" | grep -c "/tasks/exit .*\"container_id\":\"$1$2-"
        fi
}

exits_reached() {
        [ "$(exit_count "$1" "$2")" -ge "$3" ]
}

# last_exit_us SUBJECT POP: the latest exit time of the population: the shim's stamp
# on the /tasks/exit event, or the exit file's mtime written by conmon.
last_exit_us() {
        if [ "$1" = conmon ]; then
                find "$WORK/exits" -name "conmon$2-*" -printf '%T@\n' | sort -g | tail -n 1 | tr -d .
        else
                tail -n +"$EV_FROM" "$WORK/events.log" | grep "/tasks/exit .*\"container_id\":\"$1$2-" |
                        awk '{ print $1, $2, "UTC" }' | date -u -f - +%s%6N | sort -n | tail -n 1
        fi
}

# kill_all SUBJECT POP: SIGKILL every init at once; ms until the last exit.
kill_all() {
        local s=$1 p=$2 pids n t0 t1
        list_tasks
        mapfile -t pids < <(inits "$s" "$p")
        n=${#pids[@]}
        [ "$n" -gt 0 ] || return 0
        EV_FROM=$(($(wc -l <"$WORK/events.log") + 1))
        # conmon: exit files of containers that died before (outside the benchmark) go
        local f
        if [ "$s" = conmon ]; then
                for f in "$WORK/exits/conmon$p"-*; do
                        [ -e "$f" ] && rm -f "$f"
                done
        fi
        t0=$(now_us)
        kill_inits "${pids[@]}"
        if ! poll_until 120 exits_reached "$s" "$p" "$n"; then
                log "  $s: only $(exit_count "$s" "$p") of $n exits seen"
                echo "$p kill: $(exit_count "$s" "$p") of $n exits seen" >>"$DATA/fail.$s"
                return 0
        fi
        t1=$(last_exit_us "$s" "$p")
        t1=${t1:0:16}
        echo "$n $(fdiv $((t1 - t0)) 1000) $p" >>"$DATA/kill.$s"
        # the raw exits (containerd's events: the shim's stamp first), the kill's time
        [ "$s" = conmon ] || { echo "kill $t0"; tail -n +"$EV_FROM" "$WORK/events.log" |
                grep "/tasks/exit .*\"container_id\":\"$s$p-"; } >"$DATA/kill-exits.$s.$p"
}

# remove_all SUBJECT POP: ms to remove every (exited) container of the population.
remove_all() {
        local s=$1 p=$2 ids t0 t1 id
        t0=$(now_us)
        if [ "$s" = conmon ]; then
                mapfile -t ids < <("$RUNC" --root "$WORK/runc-conmon" list -q | grep "^conmon$p-")
                for id in "${ids[@]}"; do
                        "$RUNC" --root "$WORK/runc-conmon" delete "$id" >/dev/null 2>&1 ||
                                echo "$p rm $id failed" >>"$DATA/fail.$s"
                done
        else
                mapfile -t ids < <(ctr_ containers ls -q | grep "^$s$p-")
                ctr_ task rm "${ids[@]}" >/dev/null 2>&1 || echo "$p task rm failed" >>"$DATA/fail.$s"
                ctr_ containers rm "${ids[@]}" >/dev/null 2>&1 || echo "$p containers rm failed" >>"$DATA/fail.$s"
        fi
        t1=$(now_us)
        echo "${#ids[@]} $(fdiv $((t1 - t0)) 1000) $p" >>"$DATA/rm.$s"
        # supervisors gone (conmon exits with its container; shims at Shutdown)
        [ "$s" = conmon ] && rm -rf "${WORK:?}/cm/conmon$p"-*
}

# conmons_gone POP: whether every conmon of the population has exited.
conmons_gone() {
        local f pid
        for f in "$WORK/cm/conmon$1"-*/conmon.pid; do
                [ -s "$f" ] || continue
                pid=$(<"$f")
                kill -0 "$pid" 2>/dev/null && return 1
        done
        return 0
}

# clear_population POP: every subject's containers of the population killed and removed,
# not measured: $PAR removers at once, each with a share of every subject's ids (one
# ctr or runc at a time took 2 minutes for 4 x 500 here).
clear_population() {
        local p=$1 s ids=() cm=() k jobs=()
        for s in $SUBJECTS; do
                if [ "$s" = conmon ]; then
                        mapfile -t -O "${#cm[@]}" cm < <("$RUNC" --root "$WORK/runc-conmon" list -q | grep "^conmon$p-")
                else
                        mapfile -t -O "${#ids[@]}" ids < <(ctr_ containers ls -q | grep "^$s$p-")
                fi
        done
        for ((k = 0; k < PAR; k++)); do
                (
                        local i mine=() id
                        for ((i = k; i < ${#ids[@]}; i += PAR)); do mine+=("${ids[$i]}"); done
                        if [ "${#mine[@]}" -gt 0 ]; then
                                ctr_ task rm -f "${mine[@]}" >/dev/null 2>&1
                                ctr_ containers rm "${mine[@]}" >/dev/null 2>&1 ||
                                        echo "$p clear: containers rm failed" >>"$DATA/fail.clear"
                        fi
                        for ((i = k; i < ${#cm[@]}; i += PAR)); do
                                id=${cm[$i]}
                                "$RUNC" --root "$WORK/runc-conmon" delete --force "$id" >/dev/null 2>&1 ||
                                        echo "$p clear: runc delete $id failed" >>"$DATA/fail.conmon"
                        done
                ) &
                jobs+=($!)
        done
        wait "${jobs[@]}" # (not a bare wait: `ctr events` runs in the background)
        if [ "${#cm[@]}" -gt 0 ]; then
                # (each conmon exits with its container)
                poll_until 60 conmons_gone "$p" || echo "$p clear: conmons still running" >>"$DATA/fail.conmon"
                rm -rf "${WORK:?}/cm/conmon$p"-* "$WORK/exits/conmon$p"-*
        fi
}

# ------------------------------------------------------------------------------------
# limits of the machine and of containerd

{
        for k in kernel/pid_max kernel/threads-max fs/file-max fs/nr_open fs/inotify/max_user_instances \
                fs/inotify/max_user_watches vm/max_map_count; do
                echo "sysctl ${k//\//.} $(cat /proc/sys/$k)"
        done
        echo "ulimit_n $(ulimit -n)"
        echo "ulimit_u $(ulimit -u)"
        awk '/^Max open files/ { print "containerd_max_open_files", $4, $5 }
                /^Max processes/ { print "containerd_max_processes", $3, $4 }' "/proc/$CTRD_PID/limits"
        echo "pids_cgroup_of_containerd $(grep pids /proc/$CTRD_PID/cgroup)"
        echo "cgroup $(if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi)"
} >"$DATA/limits"

# ------------------------------------------------------------------------------------
# the populations

for pop in ${POPS[$CTRD]:-${POPS[2.1]}}; do
        IFS=, read -r -a cps <<<"$pop"
        P=${cps[-1]}
        GROUP=$SUBJECTS
        log "containerd $CTRD_VERSION: population of $P (checkpoints ${cps[*]})"
        prev=0
        for c in "${cps[@]}"; do
                [ "$c" = "$P" ] && break
                fill "$P" $((prev + 1)) "$c"
                checkpoint "$c" "$P"
                prev=$c
        done
        # The top of a population: each subject alone, from zero, filled, killed and
        # removed before the next. Killed together, the first subject's containers died
        # while the others' were still up (their mounts, cgroups and processes), which
        # made its kill-all slower: at N=200, nanoshim's last exit came after 327-359 ms
        # when it was killed first, 198 ms when last; runc-v2's 252 vs 285-292 ms. And
        # filled on top of everyone's containers of the last checkpoint, the first
        # subject started its N-th among more containers than the last one did (at
        # N=1000: 2500 others against 500).
        if [ "$prev" -gt 0 ]; then
                log "  clearing the population: the top starts from zero, each subject alone"
                clear_population "$P"
                prev=0
        fi
        read -r -a groups <<<"$SUBJECTS"
        for GROUP in "${groups[@]}"; do
                [ -n "$GROUP" ] || continue
                fill "$P" $((prev + 1)) "$P"
                checkpoint "$P" "$P"
                for s in $GROUP; do
                        kill_all "$s" "$P"
                        remove_all "$s" "$P"
                        log "  $s: kill-all → last exit $(tail -n 1 "$DATA/kill.$s" 2>/dev/null | cut -d' ' -f2) ms," \
                                "removal $(tail -n 1 "$DATA/rm.$s" | cut -d' ' -f2) ms"
                done
        done
        # what the others left at prev, ungrouped
        GROUP=$SUBJECTS
done
exit 0
}
