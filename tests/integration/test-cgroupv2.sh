#!/bin/bash
# nanoshim on cgroup v2 (run inside the guest of tools/vm-run.sh, or on any host whose
# /sys/fs/cgroup is the unified hierarchy), under a private containerd, side by side
# with containerd-shim-runc-v2, with runc and with crun as the runtime:
#   OOM of the init and of a child (event before exit, the exit record's flag),
#   pause/resume (cgroup.freeze), stats (v2 metrics: cpu, memory, pids, io),
#   Update (memory.max, cpu.max, pids.max), ShimCgroup, an exec cycle without leaks,
#   orphans, and the container's cgroup removed at delete.
#   test-cgroupv2.sh SHIM_BINARY SHIMCTL SOURCE_ROOT
# CG2_RUNTIMES (default "runc crun") and CG2_SCENARIOS (default: all) choose, and
# CG2_SCENARIOS_<runtime> (e.g. CG2_SCENARIOS_runc) for one runtime;
# CTRD=1.6|1.7|2.1 the containerd (ctrd-lib.sh). Exit 77 when not on cgroup v2.
set -u
SHIM=$(readlink -f "$1")
SHIMCTL=$(readlink -f "$2")
SRC=$(readlink -f "$3")
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
skip_unless_ready containerd ctr runc
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
        echo "SKIP: /sys/fs/cgroup is not the unified hierarchy (run it in the guest: tools/vm-run.sh)"
        exit 77
fi

export CTR_NS=${CTR_NS:-nanoshim-cg2}
NANO=io.containerd.nanoshim.v2
RUNC=io.containerd.runc.v2
IMAGE=localhost/nanoshim-busybox:cg2
RUNTIMES=${CG2_RUNTIMES:-runc crun}
SCENARIOS=${CG2_SCENARIOS:-oom-init oom-child pause stats update shim-cgroup exec-cycle orphans}
WORK=$(mktemp -d /tmp/nanoshim-cg2-XXXXXX)
EVPID=
passed=0
failed=0

cleanup() {
        [ -n "$EVPID" ] && kill "$EVPID" 2>/dev/null
        ctrd_teardown "$WORK"
}
trap cleanup EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }
task_dir() { echo "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$1"; }
# ctr gives a container the cgroup /<namespace>/<id>.
cg_dir() { echo "/sys/fs/cgroup/$CTR_NS/$1"; }
# The shim's socket: bootstrap.json (containerd 2.x) or address (1.x).
shim_sock() {
        local d a
        d=$(task_dir "$1")
        if [ -f "$d/bootstrap.json" ]; then
                a=$(grep -o '"address":"[^"]*"' "$d/bootstrap.json" | cut -d'"' -f4)
        else
                a=$(cat "$d/address")
        fi
        [ -n "$a" ] && echo "${a#unix://}"
}
shim_pid() { ss -xlpn 2>/dev/null | awk -v s="$(shim_sock "$1")" '$5 == s' | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2; }
zombies_of() { ps -eo ppid=,stat= | awk -v p="$1" '$1 == p && $2 ~ /^Z/' | wc -l; }

# The runtime binary for the shim in $RT: runc-v2 takes it as runc's BinaryName
# (--runc-binary), nanoshim from the options file of ConfigPath (--runtime-config-path).
rt_args() {
        if [ "$RT" = "$NANO" ]; then
                echo "--runtime $NANO --runtime-config-path $WORK/opts-$BIN.toml"
        else
                echo "--runtime $RUNC --runc-binary $BIN"
        fi
}
# start_d ID [ctr run options...] -- CMD...: a detached task, started.
start_d() {
        local id=$1 opts=()
        shift
        while [ "$1" != -- ]; do opts+=("$1"); shift; done
        shift
        # shellcheck disable=SC2046
        ctr_ run -d $(rt_args) "${opts[@]}" "$IMAGE" "$id" "$@" >/dev/null || { echo "run $id failed"; return 1; }
}
# run_d: the same, and running.
run_d() {
        start_d "$@" || return 1
        poll_until 60 task_running "$1" || { echo "$1 never running"; return 1; }
}
# finish ID: kill, delete, and the container's cgroup gone with it.
finish() {
        local id=$1
        ctr_ task kill -s KILL "$id" >/dev/null 2>&1
        poll_until 60 task_stopped "$id" || echo "$id: not stopped by KILL"
        ctr_ task delete "$id" >/dev/null 2>&1
        ctr_ containers rm "$id" >/dev/null 2>&1
        poll_until 30 test ! -d "$(cg_dir "$id")" || echo "$id: cgroup left after delete"
}
# Events of one container, in order, as topics ("/tasks/oom" ...).
topics_of() { grep "\"container_id\":\"$1\"" "$WORK/events" | grep -o '/tasks/[a-z-]*' | tr '\n' ' '; }

# ---- scenarios: each prints what must match between the two shims and returns
# non-zero (with a line saying why) on a failed check of its own ----

# The init allocates past memory.max: 137, /tasks/oom before /tasks/exit, and
# nanoshim's exit record carries the OOM flag.
sc_oom-init() {
        local id=$ID rec
        start_d "$id" --memory-limit 16777216 -- sh -c 'x=0123456789abcdef; while :; do x=$x$x; done' || return 1
        poll_until 120 task_stopped "$id" || { echo "$id: not killed"; return 1; }
        if [ "$RT" = "$NANO" ]; then
                rec=$(cut -d' ' -f1,4 "$(task_dir "$id")/init.exit")
                [ "$rec" = "137 1" ] || { echo "exit record (status, oom flag): $rec"; return 1; }
        fi
        echo "delete: $(ctr_ task delete "$id" 2>&1 | grep -o 'exit code [0-9]*\|status [0-9]*')"
        ctr_ containers rm "$id"
        poll_until 30 test ! -d "$(cg_dir "$id")" || { echo "$id: cgroup left after delete"; return 1; }
        poll_until 30 grep -q "\"container_id\":\"$id\".*/tasks/delete\|/tasks/delete.*\"container_id\":\"$id\"" "$WORK/events"
        local t
        t=$(topics_of "$id")
        case $t in
        *"/tasks/oom "*"/tasks/exit "*) echo "oom before exit" ;;
        *) [ "$RT" = "$NANO" ] && { echo "events: $t"; return 1; }
           echo "oom before exit" ;; # runc-v2 misses it at times (issue 14): not held against it
        esac
}

# A child of the init is OOM-killed; the init lives on and sees 137.
sc_oom-child() {
        local id=$ID
        run_d "$id" --memory-limit 33554432 -- sh -c 'sh -c "x=0123456789abcdef; while :; do x=\$x\$x; done"; echo $? >/child-rc; sleep 1000' || return 1
        poll_until 120 sh -c "grep -q '\"container_id\":\"$id\"' '$WORK/events' && grep '\"container_id\":\"$id\"' '$WORK/events' | grep -q /tasks/oom" ||
                { echo "$id: no /tasks/oom: $(topics_of "$id")"; return 1; }
        poll_until 60 sh -c "ctr --address $CTRD_SOCK -n $CTR_NS task exec --exec-id rc $id cat /child-rc 2>/dev/null | grep -q ." ||
                { echo "$id: the child did not end"; return 1; }
        echo "child: $(ctr_ task exec --exec-id rc2 "$id" cat /child-rc)"
        echo "init: $(task_status "$id")"
        finish "$id"
}

# pause/resume through containerd: the runtime freezes the cgroup (cgroup.freeze).
sc_pause() {
        local id=$ID cg
        run_d "$id" -- sleep 1000 || return 1
        cg=$(cg_dir "$id")
        ctr_ task pause "$id" || return 1
        echo "paused: $(task_status "$id") freeze=$(cat "$cg/cgroup.freeze") $(grep frozen "$cg/cgroup.events")"
        ctr_ task resume "$id" || return 1
        echo "resumed: $(task_status "$id") freeze=$(cat "$cg/cgroup.freeze") $(grep frozen "$cg/cgroup.events")"
        finish "$id"
}

# ctr task metrics: the v2 type, with cpu, memory, pids and io figures.
sc_stats() {
        local id=$ID m k ok=0
        run_d "$id" -- sh -c 'dd if=/dev/zero of=/io bs=64k count=32 conv=fsync 2>/dev/null; sync; sleep 1000' || return 1
        # the write-back of /io is charged to the container's cgroup (io.stat)
        poll_until 60 grep -q wbytes "$(cg_dir "$id")/io.stat" || echo "(no io.stat entry yet)"
        m=$(ctr_ task metrics --format json "$id") || { echo "metrics failed"; return 1; }
        for k in '"usage_usec"' '"usage"' '"current"' '"pids"' '"memory"' '"cpu"' '"io"' '"wbytes"'; do
                if echo "$m" | grep -q "$k"; then echo "metrics has $k"; else echo "metrics lacks $k"; ok=1; fi
        done
        echo "$m" | grep -q '"limit"' || { echo "metrics lacks pids limit"; }
        finish "$id"
        [ "$ok" = 0 ] || echo "$m" | head -c 600
        return $ok
}

# Update through the shim's task API (what containerd's Update sends): the v2 files.
# (shimctl speaks containerd.task.v2.Task, which containerd 2.x's runc-v2 no longer
# serves: under 2.x this scenario cannot be compared.)
sc_update() {
        local id=$ID cg
        run_d "$id" -- sleep 1000 || return 1
        cg=$(cg_dir "$id")
        printf '{"memory":{"limit":41943040},"cpu":{"quota":50000,"period":100000},"pids":{"limit":42}}' >"$WORK/res-$id.json"
        "$SHIMCTL" -a "$(shim_sock "$id")" update "$id" --resources "$WORK/res-$id.json" || { echo "update failed"; return 1; }
        echo "memory.max $(cat "$cg/memory.max") cpu.max $(cat "$cg/cpu.max") pids.max $(cat "$cg/pids.max")"
        [ "$(cat "$cg/memory.max")" = 41943040 ] && [ "$(cat "$cg/pids.max")" = 42 ] || return 1
        finish "$id"
}

# ShimCgroup (nanoshim's options file; ctr cannot give runc-v2 one): the shim lives in
# the v2 cgroup named, and leaves it empty when it exits.
sc_shim-cgroup() {
        [ "$RT" = "$NANO" ] || { echo "nanoshim only"; return 0; }
        local id=$ID cg=/sys/fs/cgroup/nanoshim-cg2-shim-$ID spid
        mkdir "$cg" || return 1
        printf 'BinaryName = "%s"\nShimCgroup = "/%s"\n' "$BIN" "${cg#/sys/fs/cgroup/}" >"$WORK/shimcg-$id.toml"
        ctr_ run -d --runtime "$NANO" --runtime-config-path "$WORK/shimcg-$id.toml" "$IMAGE" "$id" sleep 1000 >/dev/null || { rmdir "$cg"; return 1; }
        poll_until 60 task_running "$id"
        spid=$(shim_pid "$id")
        local got
        got=$(cat "/proc/$spid/cgroup")
        finish "$id"
        poll_until 30 sh -c "! kill -0 $spid 2>/dev/null"
        poll_until 10 rmdir "$cg" || { echo "shim cgroup busy: $(cat "$cg/cgroup.procs")"; return 1; }
        [ "$got" = "0::/${cg#/sys/fs/cgroup/}" ] || { echo "shim's cgroup: $got"; return 1; }
        echo "nanoshim only"
}

# 10 execs: afterwards the cgroup holds just the init, nothing is left under the shim,
# and the shim's open fds are what they were after the first.
sc_exec-cycle() {
        local id=$ID spid i fds0 fds1
        run_d "$id" -- sleep 1000 || return 1
        spid=$(shim_pid "$id")
        ctr_ task exec --exec-id e0 "$id" true || return 1
        fds0=$(ls "/proc/$spid/fd" | wc -l)
        for i in $(seq 1 10); do
                ctr_ task exec --exec-id "e$i" "$id" sh -c "echo x >/dev/null; exit $((i % 3))"
                [ $? = $((i % 3)) ] || { echo "exec $i: wrong status"; return 1; }
        done
        poll_until 30 test "$(wc -l <"$(cg_dir "$id")/cgroup.procs")" = 1 || echo "procs left in the cgroup: $(cat "$(cg_dir "$id")/cgroup.procs")"
        echo "procs in the cgroup: $(wc -l <"$(cg_dir "$id")/cgroup.procs")"
        poll_until 30 test "$(zombies_of "$spid")" = 0 || echo "zombies under the shim: $(zombies_of "$spid")"
        fds1=$(ls "/proc/$spid/fd" | wc -l)
        if [ "$RT" = "$NANO" ] && [ "$fds1" -gt "$fds0" ]; then echo "shim fds: $fds0 -> $fds1"; return 1; fi
        finish "$id"
}

# Orphans in the host's PID namespace (--with-ns pid:...): the init daemonizes 20
# processes and exits 4. Nothing kills them but the shim (the kernel would, in a PID
# namespace of the container's own): the exit is reported once they are gone from the
# cgroup, nothing stays under the shim, and the cgroup goes with the delete.
sc_orphans() {
        local id=$ID cg spid
        cg=$(cg_dir "$id")
        start_d "$id" --with-ns pid:/proc/1/ns/pid -- sh -c 'for i in $(seq 20); do (sleep 1000 &); done; exit 4' || return 1
        spid=$(shim_pid "$id")
        poll_until 60 task_stopped "$id" || { echo "$id: did not stop"; return 1; }
        poll_until 30 sh -c "[ -z \"\$(cat '$cg/cgroup.procs' 2>/dev/null)\" ]" || { echo "$id: stopped with $(wc -l <"$cg/cgroup.procs") processes left in its cgroup"; return 1; }
        poll_until 30 test "$(zombies_of "$spid")" = 0 || { echo "zombies under the shim: $(zombies_of "$spid")"; return 1; }
        echo "delete: $(ctr_ task delete "$id" 2>&1 | grep -o 'exit code [0-9]*\|status [0-9]*')"
        ctr_ containers rm "$id"
        poll_until 30 test ! -d "$cg" || { echo "$id: cgroup left after delete: $(cat "$cg/cgroup.procs")"; return 1; }
        echo "cgroup removed"
}

# ---- the run ----
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || { echo "FAIL: cannot build the busybox rootfs"; exit 1; }
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
echo "# containerd $CTRD_VERSION; runtimes: $RUNTIMES"
ctrd_import_image "$WORK/bundle/rootfs" "$IMAGE" || { echo "FAIL: cannot import the busybox image"; exit 1; }
ctr --address "$CTRD_SOCK" events >"$WORK/events" 2>&1 &
EVPID=$!

for BIN in $RUNTIMES; do
        command -v "$BIN" >/dev/null || { fail "$BIN: not installed"; continue; }
        printf 'BinaryName = "%s"\n' "$BIN" >"$WORK/opts-$BIN.toml"
        scen_var=CG2_SCENARIOS_$BIN
        for sc in ${!scen_var:-$SCENARIOS}; do
                declare -F "sc_$sc" >/dev/null || { fail "no scenario '$sc'"; continue; }
                RT=$NANO ID=n-$BIN-$sc
                out_n=$("sc_$sc" 2>&1)
                rc_n=$?
                RT=$RUNC ID=r-$BIN-$sc
                out_r=$("sc_$sc" 2>&1)
                rc_r=$?
                if [ "$rc_n" = 0 ] && [ "$rc_r" = 0 ] && [ "$out_n" == "$out_r" ]; then
                        pass "$BIN $sc: $(echo "$out_n" | tr '\n' ';' | cut -c1-150)"
                else
                        fail "$BIN $sc" "nanoshim rc=$rc_n: $(echo "$out_n" | tr '\n' ';')" \
                                "runc-v2  rc=$rc_r: $(echo "$out_r" | tr '\n' ';')"
                fi
        done
done

leftovers() {
        [ "$(ps -eo args | grep -c "^[^ ]*containerd-shim-nanoshim-v2 .*-address $CTRD_SOCK")" = 0 ] || return 1
        ! ls -d /sys/fs/cgroup/"$CTR_NS"/*/ 2>/dev/null | grep -q .
}
if poll_until 30 leftovers; then pass "no shim or container cgroup left"; else
        fail "leftovers" "$(ps -eo pid,args | grep "containerd-shim-nanoshim-v2 .*-address $CTRD_SOCK" | grep -v grep)" \
                "$(ls -d /sys/fs/cgroup/"$CTR_NS"/*/ 2>/dev/null)"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
