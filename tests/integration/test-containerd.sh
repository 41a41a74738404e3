#!/bin/bash
# nanoshim under a real, private containerd, driven by ctr, side by side with
# containerd-shim-runc-v2: every scenario runs with both runtimes and their observable
# results must match.
#   test-containerd.sh SHIM_BINARY SOURCE_ROOT
# CTRD=1.6|1.7|2.1 picks the containerd (with its own ctr and runc shim; ctrd-lib.sh);
# CTRD_SCENARIOS="name ..." runs only those scenarios (the 1.7 smoke test), plus the
# final leftovers check. Needs root (exit 77 = skipped otherwise).
set -u
SHIM=$(readlink -f "$1")
SRC=$(readlink -f "$2")
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
skip_unless_ready containerd ctr runc script
# The asked containerd (fetched from Debian's archive for 1.7 and 2.x): skip if it cannot be had.
ctrd_select || { echo "SKIP: containerd $CTRD cannot be had (tools/containerd-version.sh $CTRD failed)"; exit 77; }

NANO=io.containerd.nanoshim.v2
RUNC=io.containerd.runc.v2
IMAGE=localhost/nanoshim-busybox:test
WORK=$(mktemp -d /tmp/nanoshim-ctrd-XXXXXX)
passed=0
failed=0

trap 'ctrd_teardown "$WORK"' EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
# selected NAME: whether scenario NAME runs (all of them unless CTRD_SCENARIOS names some).
selected() { [ -z "${CTRD_SCENARIOS:-}" ] || [[ $1 == no-shim-or-mount-left || $1 == no-task-api-downgrade ]] || [[ " $CTRD_SCENARIOS " == *" $1 "* ]]; }
fail() { echo "FAIL: $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }

# Replace what legitimately differs between the two runs (ids, runtime names).
normalize() { tr -d '\000' | sed -e 's/\^@//g' -e "s/$1/ID/g" -e 's/nanoshim/RT/g; s/runc\.v2/RT/g; s/time="[^"]*"/time=T/g' -e '/resize pty/d'; }

# run_both NAME CMD...: CMD is run once per runtime with $RT and $ID set; its combined
# output and exit code must match.
run_both() {
        local name=$1
        shift
        selected "$name" || return 0
        local out_n out_r rc_n rc_r
        RT=$NANO ID=n-$name
        out_n=$(run_captured "$@")
        rc_n=$?
        RT=$RUNC ID=r-$name
        out_r=$(run_captured "$@")
        rc_r=$?
        if [ "$out_n" == "$out_r" ] && [ "$rc_n" == "$rc_r" ]; then
                pass "$name (rc $rc_n)"
        else
                fail "$name" "nanoshim rc=$rc_n out=[$out_n]" "runc-v2  rc=$rc_r out=[$out_r]"
        fi
}

expect() { # expect NAME CONDITION-CMD...
        local name=$1
        shift
        selected "$name" || return 0
        if "$@"; then pass "$name"; else fail "$name" "condition failed: $*"; fi
}

# ---- setup ----
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || { echo "FAIL: cannot build the busybox rootfs"; exit 1; }
ROOTFS=$WORK/bundle/rootfs
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
echo "containerd $CTRD_VERSION ($CTRD_BIN)"
ctrd_import_image "$ROOTFS" "$IMAGE" || { echo "FAIL: cannot import the busybox image"; exit 1; }

run_rootfs() { ctr_ run --rm --runtime "$RT" --env PATH=/bin --rootfs "$ROOTFS" "$ID" "$@"; }
run_image() { ctr_ run --rm --runtime "$RT" "$IMAGE" "$ID" "$@"; }

# ---- ctr run --rm: output and exit codes ----
run_both out-rootfs run_rootfs sh -c 'echo out; echo err >&2; exit 7'
run_both out-image run_image sh -c 'echo out; echo err >&2; exit 7'
for code in 0 1 42; do
        run_both "exit-$code" run_image sh -c "exit $code"
done
# ctr sends CloseIO when its stdin reaches EOF -- but only once the task exists (a
# writer that finishes during Create gets no CloseIO, with runc-v2 too): so write the
# input once the task runs, from a FIFO we control.
stdin_case() {
        local fifo
        fifo=$(mktemp -u)
        mkfifo "$fifo"
        run_image sh -c 'cat; echo done' <"$fifo" &
        local bg=$!
        exec 9>"$fifo"
        poll_until 20 task_running "$ID"
        printf 'data\nmore\n' >&9
        exec 9>&-
        wait "$bg"
        local rc=$?
        rm -f "$fifo"
        return $rc
}
run_both stdin stdin_case
run_both missing-binary run_image /bin/nonexistent
tty_case() { script -qec "ctr --address $CTRD_SOCK -n $CTR_NS run -t --rm --runtime $RT $IMAGE $ID sh -c 'echo tty-out; exit 3'" /dev/null </dev/null | tr -d '\r'; }
run_both tty tty_case
last_line_case() { run_image sh -c 'printf "a\nb\nlast"'; }
run_both last-line-no-newline last_line_case

# exit status of a killed init: run --rm in the background, kill it from outside.
killed_case() { # killed_case SIGNAL CMD...
        local sig=$1
        shift
        run_image "$@" &
        local bg=$!
        poll_until 20 task_running "$ID" || { echo "never running"; kill "$bg"; return 99; }
        ctr_ task kill -s "$sig" "$ID"
        # The task runs before its shell has set its trap, and a signal without a handler
        # does nothing to a PID 1: under load the first TERM can come too early (the run
        # then never ends). Send it again until the task is gone (a deadline, not a sleep).
        local tries=0
        until poll_until 2 task_stopped "$ID" || [ $((tries += 1)) -gt 30 ]; do
                ctr_ task kill -s "$sig" "$ID" 2>/dev/null
        done
        wait "$bg"
}
run_both kill-9 killed_case KILL sleep 100
run_both kill-term-trap killed_case TERM sh -c 'trap "exit 143" TERM; while :; do sleep 0.05; done'

# ---- detached lifecycle ----
detached_case() {
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID" sleep 1000 >/dev/null || return 1
        poll_until 20 task_running "$ID" || return 2
        echo "status: $(task_status "$ID")"
        # 2.x keeps start's answer in bootstrap.json: the same task API version as runc-v2's
        echo "bootstrap: $(grep -o '"version":[0-9]*' "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$ID/bootstrap.json" 2>/dev/null || echo none)"
        echo "ps lines: $(ctr_ task ps "$ID" | tail -n +2 | wc -l)"
        ctr_ task exec --exec-id e1 "$ID" sh -c 'echo in-exec; exit 5'
        echo "exec rc: $?"
        script -qec "ctr --address $CTRD_SOCK -n $CTR_NS task exec -t --exec-id e2 $ID sh -c 'echo exec-tty; exit 6'" /dev/null </dev/null | tr -d '\r'
        ctr_ task exec --exec-id e3 "$ID" /bin/nonexistent
        echo "missing exec rc: $?"
        ctr_ task pause "$ID" && echo "paused: $(task_status "$ID")"
        ctr_ task resume "$ID" && echo "resumed: $(task_status "$ID")"
        ctr_ task metrics "$ID" >/dev/null && echo "metrics ok"
        ctr_ task kill -s TERM "$ID" # sleep as PID 1 has no handler: ignored
        sleep 0.3 # give a (wrong) exit time to happen; the status must still be RUNNING
        echo "after TERM: $(task_status "$ID")"
        ctr_ task delete "$ID" 2>&1 | head -1
        ctr_ task kill -s KILL "$ID"
        poll_until 20 task_stopped "$ID" || return 3
        echo "after KILL: $(task_status "$ID")"
        ctr_ task delete "$ID" | sed 's/^.*status/status/'
        ctr_ containers rm "$ID"
        echo "containers left: $(ctr_ containers ls -q | grep -c "^$ID$")"
}
run_both detached detached_case

# An exec whose Start fails, asked directly on each shim's socket with shimctl: the
# Start error, then State, Wait, Kill, Delete of it, must answer as runc-v2's do (it
# stays "created" with pid 0; Wait answers 0 at once). No exit event for it: counted in
# test-ordering.sh and test-shim.sh. containerd 1.x only: 2.x's runc-v2 serves the task
# API as containerd.task.v3.Task only, which shimctl does not speak.
SHIMCTL=$(dirname "$SHIM")/shimctl
exec_start_failed_case() {
        local sock ctl
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID" sleep 1000 >/dev/null || return 1
        poll_until 20 task_running "$ID" || return 2
        sock=$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$ID/address") || return 3
        ctl() { "$SHIMCTL" -a "${sock#unix://}" "$@" 2>&1; echo "rc $?"; }
        ctl exec "$ID" m1 -- /bin/missing
        ctl start "$ID" --exec m1
        ctl state "$ID" --exec m1
        ctl --timeout 10 wait "$ID" --exec m1
        ctl kill "$ID" --exec m1 --signal KILL
        ctl delete "$ID" --exec m1
        ctl exec "$ID" m2 -- /etc/passwd
        ctl start "$ID" --exec m2
        ctl delete "$ID" --exec m2
        ctr_ task kill -s KILL "$ID"
        poll_until 20 task_stopped "$ID" || return 4
        ctr_ task delete "$ID" | sed 's/^.*status/status/'
        ctr_ containers rm "$ID"
}
[ "$(ctrd_major)" = 1 ] && run_both exec-start-failed exec_start_failed_case

kill_all_case() {
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID" sh -c 'sleep 1000 & sleep 1000 & wait' >/dev/null || return 1
        poll_until 20 task_running "$ID" || return 2
        poll_until 20 sh -c "[ \$(ctr --address $CTRD_SOCK -n $CTR_NS task ps $ID | tail -n +2 | wc -l) -ge 3 ]"
        ctr_ task kill --all -s KILL "$ID"
        poll_until 20 task_stopped "$ID" || return 3
        ctr_ task delete "$ID" >/dev/null
        ctr_ containers rm "$ID"
        echo ok
}
run_both kill-all kill_all_case

# ---- containerd killed and restarted ----
restart_case() {
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID-a" sleep 1000 >/dev/null
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID-b" sh -c 'read x; exit 9' >/dev/null
        poll_until 20 task_running "$ID-a" && poll_until 20 task_running "$ID-b" || return 1
        ctrd_stop KILL
        # While containerd is down, b exits (its stdin FIFO has no writer any more... so
        # kill it by its host pid, as a crash would).
        local bpid
        bpid=$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$ID-b/init.pid")
        kill -KILL "$bpid"
        ctrd_start "$CTRD_DIR" "$SHIM" || return 2
        echo "a after restart: $(task_status "$ID-a")"
        poll_until 20 task_stopped "$ID-b"
        echo "b after restart: $(task_status "$ID-b")"
        ctr_ task kill -s KILL "$ID-a"
        poll_until 20 task_stopped "$ID-a"
        ctr_ task delete "$ID-a" | sed 's/^.*status/status/'
        ctr_ task delete "$ID-b" | sed 's/^.*status/status/'
        ctr_ containers rm "$ID-a" "$ID-b"
}
run_both containerd-restart restart_case

# ---- an init that exits while containerd is down ----
# The record after the restart must be runc-v2's: 1.x lists the task STOPPED and its
# Delete reports 137; 2.x removes it while loading ("cleaning leaked shim process") and
# Delete finds nothing. The /tasks/exit event: runc-v2 publishes it a few times then
# gives up (whether a subscriber sees it depends on how soon containerd is back: on 2.1
# it never does here), nanoshim retries until containerd takes it: at most once, with
# status 137, from either shim; always, from nanoshim.
# exit_taken_after LOGSIZE EVENTS: $ID's /tasks/exit was seen by the subscriber, or
# containerd's log (past LOGSIZE bytes) says it took a /tasks/exit (the only task here).
exit_taken_after() {
        grep -q "/tasks/exit .*\"$ID\"" "$2" ||
                tail -c +"$(($1 + 1))" "$CTRD_DIR/containerd.log" | grep 'event forwarded' | grep -q 'topic=/tasks/exit'
}

exit_while_down_case() {
        local pid ev=$WORK/events-$ID evpid n logsize
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID" sh -c 'read x; exit 9' >/dev/null
        poll_until 20 task_running "$ID" || return 1
        pid=$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$ID/init.pid")
        ctrd_stop KILL
        kill -KILL "$pid"
        # Subscribe as soon as containerd listens again, before it has loaded the shims.
        rm -f "$CTRD_SOCK"
        ( until [ -S "$CTRD_SOCK" ]; do sleep 0.005; done; exec ctr --address "$CTRD_SOCK" events >"$ev" 2>&1 ) &
        evpid=$!
        # containerd's debug log says when it takes a forwarded event: the subscriber
        # above may connect only after containerd took it (its ttrpc socket, which the
        # shims publish to, can serve before the socket ctr connects to).
        logsize=$(stat -c %s "$CTRD_DIR/containerd.log")
        CTRD_LOG_LEVEL=debug ctrd_start "$CTRD_DIR" "$SHIM" || { kill "$evpid"; return 2; }
        poll_until 20 task_stopped "$ID"
        echo "after restart: [$(task_status "$ID")]"
        ctr_ task delete "$ID" 2>&1 | sed -e 's/^.*status/status/' -e '/level=error/d'
        ctr_ containers rm "$ID" && echo "container removed"
        if [ "$RT" = "$NANO" ] && ! poll_until 20 exit_taken_after "$logsize" "$ev"; then
                echo "nanoshim: no /tasks/exit after the restart"
        fi
        kill "$evpid" 2>/dev/null
        wait "$evpid" 2>/dev/null
        n=$(grep '/tasks/exit ' "$ev" | grep -c "\"$ID\"")
        [ "$n" -le 1 ] || echo "/tasks/exit delivered $n times"
        if grep '/tasks/exit ' "$ev" | grep "\"$ID\"" | grep -vq '"exit_status":137'; then
                echo "/tasks/exit with another status: $(grep '/tasks/exit ' "$ev" | grep "\"$ID\"")"
        fi
        return 0
}
run_both exit-while-down exit_while_down_case

# ---- 20 running containers across a containerd crash (nanoshim) ----
# 5 die while containerd is down; after the restart all 20 are listed, the 5 report
# 137, the 15 others run and are killable (137); no exit event is delivered twice.
restart20_case() {
        local i pid ok=0 evpid n
        for i in $(seq 1 20); do
                ctr_ run -d --runtime "$NANO" "$IMAGE" "r20-$i" sleep 1000 >/dev/null || { echo "run $i failed"; return 1; }
        done
        for i in $(seq 1 20); do poll_until 20 task_running "r20-$i" || { echo "r20-$i never running"; return 1; }; done
        ctrd_stop KILL
        for i in $(seq 1 5); do
                kill -KILL "$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/r20-$i/init.pid")"
        done
        ctrd_start "$CTRD_DIR" "$SHIM" || return 2
        ctr --address "$CTRD_SOCK" events >"$WORK/events20" 2>&1 &
        evpid=$!
        # containerd 2.x removes, as it loads them, the tasks whose init exited while it
        # was down ("cleaning leaked shim process", as with runc-v2: exit-while-down); 1.x
        # lists them stopped.
        local listed=20
        [ "$(ctrd_major)" -ge 2 ] && listed=15
        poll_until 20 sh -c "[ \$(ctr --address $CTRD_SOCK -n $CTR_NS task ls -q | grep -c '^r20-') = $listed ]" ||
                { echo "listed after restart: $(ctr_ task ls -q | grep -c '^r20-')/20, not $listed"; ok=1; }
        for i in $(seq 1 5); do poll_until 20 task_stopped "r20-$i" || { echo "r20-$i not stopped"; ok=1; }; done
        for i in $(seq 6 20); do task_running "r20-$i" || { echo "r20-$i not running: $(task_status "r20-$i")"; ok=1; }; done
        for i in $(seq 6 20); do ctr_ task kill -s KILL "r20-$i" || ok=1; done
        for i in $(seq 6 20); do poll_until 20 task_stopped "r20-$i" || { echo "r20-$i not stopped by kill"; ok=1; }; done
        # containerd's exit status of each, from its task delete
        for i in $(seq 1 20); do
                local st
                st=$(ctr_ task delete "r20-$i" 2>&1)
                ctr_ containers rm "r20-$i"
                case $st in
                *"exit code 137"* | *"status 137"* | "") ;;
                *"not found"*) [ "$listed" = 15 ] && [ "$i" -le 5 ] || { echo "r20-$i delete: $st"; ok=1; } ;;
                *) echo "r20-$i delete: $st"; ok=1 ;;
                esac
        done
        poll_until 10 sh -c "[ \$(grep -c '/tasks/delete' '$WORK/events20') -ge 20 ]"
        kill "$evpid" 2>/dev/null
        wait "$evpid" 2>/dev/null
        for i in $(seq 1 20); do
                n=$(grep '/tasks/exit' "$WORK/events20" | grep -c "\"container_id\":\"r20-$i\"")
                if grep '/tasks/exit' "$WORK/events20" | grep "\"container_id\":\"r20-$i\"" | grep -vq '"exit_status":137'; then
                        echo "r20-$i: exit event without status 137"
                        ok=1
                fi
                if [ "$i" -gt 5 ] && [ "$n" != 1 ]; then echo "r20-$i: $n exit events after the restart"; ok=1; fi
                if [ "$i" -le 5 ] && [ "$n" -gt 1 ]; then echo "r20-$i: exit delivered $n times"; ok=1; fi
        done
        return $ok
}
expect "containerd-restart-20-running" restart20_case

# ---- the shim killed ----
socket_pid() { # the process listening on unix socket $1 (a path, or unix://path)
        ss -xlpn 2>/dev/null | awk -v s="${1#unix://}" '$5 == s' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}
shim_pid_of() { # the shim daemon serving container $1
        local sock
        sock=$(ctrd_shim_address "$1") || return 1
        socket_pid "$sock"
}
shim_killed_case() {
        ctr_ run -d --runtime "$RT" "$IMAGE" "$ID" sleep 1000 >/dev/null
        poll_until 20 task_running "$ID" || return 1
        local spid cpid sock
        spid=$(shim_pid_of "$ID")
        cpid=$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$ID/init.pid")
        sock=$(ctrd_shim_address "$ID")
        sock=${sock#unix://}
        [ -n "$spid" ] || { echo "no shim pid"; return 2; }
        kill -KILL "$spid"
        poll_until 20 sh -c "! ctr --address $CTRD_SOCK -n $CTR_NS task ls -q | grep -qx $ID"
        echo "task gone: $?"
        poll_until 10 sh -c "! kill -0 $cpid"
        echo "container process gone: $?"
        # runc-v2 leaves its socket behind when killed; nanoshim's delete removes it
        # (containerd runs the delete action in the background of its cleanup).
        if [ "$RT" = "$NANO" ] && ! poll_until 10 test ! -e "$sock"; then echo "nanoshim socket left behind: $sock"; fi
        poll_until 10 sh -c "! grep -q '/$ID/rootfs' /proc/self/mounts"
        echo "mounts left: $(grep -c "/$ID/rootfs" /proc/self/mounts)"
        ctr_ containers rm "$ID"
        rm -f "$sock" # runc-v2's, not to litter /run/containerd/s
}
run_both shim-killed shim_killed_case

# ---- the delete action answers from the exit the daemon recorded ----
delete_action_case() {
        local d out
        d=$(mktemp -d)
        printf 1234 >"$d/init.pid"
        printf '7 100 5 0\n' >"$d/init.exit"
        # DeleteResponse{pid 1234, exit_status 7, exited_at {100 s, 5 ns}}
        out=$("$SHIM" -namespace "$CTR_NS" -address "$CTRD_SOCK" -id gone1 -bundle "$d" delete | od -An -tx1 | tr -d ' \n')
        rm -rf "$d"
        [ "$out" = "08d20910071a0408641005" ]
}
expect "delete-action-reports-recorded-exit" delete_action_case

# ---- start: a group annotation is found however its key is spelled ----
# (`start` reads config.json in full only when the key's text or a \u escape is there:
# this key is spelled with one, so only the full load sees it.)
start_group_case() {
        local d id a1 a2 sock pid rc=0
        d=$(mktemp -d)
        for id in sg-a sg-b; do
                mkdir -p "$d/$id"
                sed '0,/{/s//{"annotations":{"io.kubernetes.cri.sandbox\\u002did":"sg-grp"},/' \
                        "$WORK/bundle/config.json" >"$d/$id/config.json"
        done
        a1=$(cd "$d/sg-a" && env -u MAX_SHIM_VERSION "$SHIM" -namespace "$CTR_NS" -address "$CTRD_SOCK" -id sg-a start </dev/null)
        a2=$(cd "$d/sg-b" && env -u MAX_SHIM_VERSION "$SHIM" -namespace "$CTR_NS" -address "$CTRD_SOCK" -id sg-b start </dev/null)
        [ -n "$a1" ] && [ "$a1" = "$a2" ] || { echo "two shims for one group: [$a1] [$a2]"; rc=1; }
        for sock in "${a1#unix://}" "${a2#unix://}"; do
                [ -n "$sock" ] || continue
                pid=$(socket_pid "$sock")
                [ -z "$pid" ] || { kill "$pid"; poll_until 10 sh -c "! kill -0 $pid 2>/dev/null"; }
                rm -f "$sock"
        done
        rm -rf "$d"
        return $rc
}
expect "start-group-annotation-escaped" start_group_case

# ---- start: the starts of one group, all at once, find one shim ----
# (a socket bound but not yet listening refuses connections like a dead shim's: a
# second start must not take it for stale and replace it)
start_race_case() {
        local d round i sock pids p n rc=0 out jobs f
        d=$(mktemp -d)
        for round in $(seq 1 ${RACE_ROUNDS:-40}); do
                for i in $(seq 1 ${RACE_N:-32}); do
                        mkdir -p "$d/r$round-$i"
                        sed "0,/{/s//{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"sr$$-$round\"},/" \
                                "$WORK/bundle/config.json" >"$d/r$round-$i/config.json"
                done
                jobs=()
                for i in $(seq 1 ${RACE_N:-32}); do
                        (cd "$d/r$round-$i" && env -u MAX_SHIM_VERSION "$SHIM" -namespace "$CTR_NS" -address "$CTRD_SOCK" \
                                -id "r$round-$i" start </dev/null >"$d/out.$round.$i" 2>&1; echo $? >"$d/rc.$round.$i") &
                        jobs+=($!)
                done
                wait "${jobs[@]}"
                out=$(for f in "$d"/out."$round".*; do cat "$f"; echo; done | sort -u)
                [ "$(cat "$d"/rc."$round".* | sort -u)" = 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] ||
                        { echo "round $round: rc $(cat "$d"/rc."$round".* | sort | uniq -c | tr '\n' ' ') answers: $out"; rc=1; }
                for sock in $(echo "$out" | grep -o '/run/[^ ]*'); do
                        pids=$(ps -eo pid=,args= | awk -v s="$sock" '$0 ~ "-socket " s "( |$)" { print $1 }')
                        n=$(echo "$pids" | grep -c .)
                        [ "$n" = 1 ] || { echo "round $round: $n shims for $sock"; rc=1; }
                        for p in $pids; do kill "$p"; poll_until 10 sh -c "! kill -0 $p 2>/dev/null"; done
                        rm -f "$sock"
                done
        done
        rm -rf "$d"
        return $rc
}
expect "start-group-race" start_race_case

# ---- the teardown starts at the exit: runc's state and the rootfs mount are gone ----
# before `ctr task rm` (nanoshim only: runc-v2 does both in Delete), and Delete still
# reports the exit.
early_teardown_case() {
        local id=n-early-teardown rootfs out
        rootfs=$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$id/rootfs
        ctr_ run -d --runtime "$NANO" "$IMAGE" "$id" sh -c 'exit 3' >/dev/null || return 1
        poll_until 20 task_stopped "$id" || { echo "$id did not stop"; return 1; }
        [ -n "$(task_status "$id")" ] || { echo "$id: no task left to delete"; return 1; }
        poll_until 10 sh -c "! grep -q ' $rootfs ' /proc/self/mounts" ||
                { echo "$id: rootfs still mounted before Delete"; return 1; }
        poll_until 10 sh -c "! runc --root /run/containerd/runc/$CTR_NS state $id >/dev/null 2>&1" ||
                { echo "$id: runc still has state before Delete"; return 1; }
        out=$(ctr_ task rm "$id" 2>&1) || { echo "task rm: $out"; return 1; }
        ctr_ containers rm "$id"
        echo "$out" | grep -q 'exit code 3"' || { echo "Delete reported: $out"; return 1; }
}
expect "early-teardown-before-delete" early_teardown_case

# ---- at rest: an idle shim sleeps until something happens, on at most 12 fds ----
# Read from /proc: blocked in epoll_wait with no timeout short of days (libev's 59.7 s
# clock-jump wake-up replaced by its timerfd; no trim armed by a query such as the
# State calls of `ctr task ls`), the listening socket on fd 0.
epoll_timeout_ms() { # PID: the timeout it is blocked with in epoll_(p)wait; fails if not there
        local nr a1 a2 a3 a4
        read -r nr a1 a2 a3 a4 _ <"/proc/$1/syscall" 2>/dev/null || return 1
        case "$(uname -m):$nr" in x86_64:232 | x86_64:281 | aarch64:22) ;; *) return 1 ;; esac
        echo $((a4 & 0xffffffff)) # an int: -1 (forever) reads as 4294967295
}
asleep_for_days() { local t; t=$(epoll_timeout_ms "$1") && [ "$t" -gt 86400000 ]; }
at_rest_check() {
        local id=$1 spid fds t
        poll_until 20 task_running "$id" || { echo "$id did not start"; return 1; }
        spid=$(shim_pid_of "$id")
        [ -n "$spid" ] || { echo "no shim pid"; return 1; }
        if ! poll_until 15 asleep_for_days "$spid"; then
                echo "shim $spid not asleep 15 s after the start: epoll timeout $(epoll_timeout_ms "$spid") ms" \
                        "($(cut -d' ' -f1-5 /proc/$spid/syscall))"
                return 1
        fi
        fds=$(find "/proc/$spid/fd" -mindepth 1 -maxdepth 1 | wc -l)
        [ "$fds" -le 12 ] || { echo "$fds fds at rest:"; ls -l "/proc/$spid/fd"; return 1; }
        [[ $(readlink "/proc/$spid/fd/0") == socket:* ]] || { echo "fd 0: $(readlink "/proc/$spid/fd/0")"; return 1; }
        ctr_ task ls >/dev/null
        # The answer is out: the first time the shim blocks again is after the query.
        poll_until 5 epoll_timeout_ms "$spid" >/dev/null || { echo "shim not back in epoll_wait"; return 1; }
        t=$(epoll_timeout_ms "$spid")
        [ "${t:-0}" -gt 86400000 ] || { echo "after State: epoll timeout $t ms"; return 1; }
}
at_rest_case() {
        local id=n-at-rest rc
        ctr_ run -d --runtime "$NANO" "$IMAGE" "$id" sleep 1000 >/dev/null || return 1
        at_rest_check "$id"
        rc=$?
        ctr_ task kill -s KILL "$id"
        poll_until 20 task_stopped "$id"
        ctr_ task rm "$id" >/dev/null 2>&1
        ctr_ containers rm "$id"
        return $rc
}
expect "at-rest-asleep-12-fds" at_rest_case

# ---- the runtime's library search path: nothing relative to the bundle ----
# containerd's opt plugin hands its shims LD_LIBRARY_PATH="/opt/containerd/lib:" when it
# had none; the empty entry is the current directory, where the runtime runs: the
# bundle. runc-v2 passes it on to runc (shown); nanoshim keeps only absolute entries.
libpath_case() {
        local d=$WORK/ldpath ok=0 id
        mkdir -p "$d"
        for w in nano runcv2; do
                printf '#!/bin/sh\necho "[${LD_LIBRARY_PATH-unset}]" >>"$0.calls"\nexec runc "$@"\n' >"$d/$w-runc"
                chmod +x "$d/$w-runc"
        done
        printf 'BinaryName = "%s"\n' "$d/nano-runc" >"$d/nano.toml"
        ctr_ run -d --runtime "$NANO" --runtime-config-path "$d/nano.toml" "$IMAGE" ldp-n sleep 1000 >/dev/null || ok=1
        ctr_ run -d --runtime "$RUNC" --runc-binary "$d/runcv2-runc" "$IMAGE" ldp-r sleep 1000 >/dev/null || ok=1
        poll_until 20 task_running ldp-n || ok=1
        poll_until 20 task_running ldp-r || ok=1
        echo "  LD_LIBRARY_PATH of the runtime: runc-v2's $(head -n1 "$d/runcv2-runc.calls" 2>/dev/null), nanoshim's $(head -n1 "$d/nano-runc.calls" 2>/dev/null)"
        [ -s "$d/nano-runc.calls" ] || { echo "nanoshim's runtime never ran"; ok=1; }
        # every call of nanoshim's runtime: unset, or absolute entries only
        if grep -Ev '^\[(unset|/[^:]*(:/[^:]*)*)\]$' "$d/nano-runc.calls"; then
                echo "a relative or empty entry reached nanoshim's runtime"
                ok=1
        fi
        for id in ldp-n ldp-r; do
                ctr_ task kill -s KILL "$id" 2>/dev/null
                poll_until 20 task_stopped "$id"
                ctr_ task delete "$id" >/dev/null 2>&1
                ctr_ containers rm "$id" 2>/dev/null
        done
        return $ok
}
expect "runtime-library-path" libpath_case

# ---- runtime options from a config file (what CRI sends): BinaryName, Root, ShimCgroup ----
# (nanoshim only: runc-v2 does not accept runtimeoptions.v1.Options from ctr.)
options_case() {
        local d=$WORK/opts cg="nanoshim-test-$$" spid ok=0 ctrl
        mkdir -p "$d/root"
        # A runtime binary of our own: runc, logging each call, proves BinaryName is used
        # (and shows the runtime's GLIBC_TUNABLES).
        printf '#!/bin/sh\necho "$* tunables=${GLIBC_TUNABLES-unset}" >>%s/calls\nexec runc "$@"\n' "$d" >"$d/runc-logged"
        chmod +x "$d/runc-logged"
        # The shim's cgroup: in the unified hierarchy itself (cgroup v2 only), or in the
        # v1 hierarchies and the hybrid's unified one.
        local made=""
        if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
                mkdir "/sys/fs/cgroup/$cg" && made=/sys/fs/cgroup/$cg
        else
                for ctrl in memory pids unified; do
                        [ -d "/sys/fs/cgroup/$ctrl" ] && mkdir "/sys/fs/cgroup/$ctrl/$cg" && made="$made /sys/fs/cgroup/$ctrl/$cg"
                done
        fi
        [ -n "$made" ] || { echo "no cgroup made for the shim"; return 1; }
        cat >"$d/options.toml" <<TOML
# nanoshim runtime options
BinaryName = "$d/runc-logged"
Root = "$d/root"
ShimCgroup = "/$cg"
TOML
        ctr_ run -d --runtime "$NANO" --runtime-config-path "$d/options.toml" "$IMAGE" opts1 sleep 1000 >/dev/null || {
                echo "run failed"
                ok=1
        }
        poll_until 20 task_running opts1 || { echo "never running"; ok=1; }
        grep -q "create" "$d/calls" 2>/dev/null || { echo "BinaryName not used"; ok=1; }
        # runc-v2's rule: the runtime's root is <Root>/<namespace> (two namespaces may
        # hold the same container id)
        [ -d "$d/root/$CTR_NS/opts1" ] || { echo "Root/<namespace> not used: $(find "$d/root")"; ok=1; }
        spid=$(shim_pid_of opts1)
        grep -q ":/$cg\$" "/proc/$spid/cgroup" 2>/dev/null || { echo "shim not in /$cg: $(cat "/proc/$spid/cgroup")"; ok=1; }
        # The daemon started without malloc's thread cache, and took that tunable off
        # the environment of what it runs.
        tr '\0' '\n' <"/proc/$spid/environ" | grep -q '^GLIBC_TUNABLES=.*glibc.malloc.tcache_count=0$' ||
                { echo "daemon started without the tcache tunable"; ok=1; }
        ! grep -q "tcache_count" "$d/calls" || { echo "the daemon's tunable reached the runtime: $(head -1 "$d/calls")"; ok=1; }
        ctr_ task kill -s KILL opts1
        poll_until 20 task_stopped opts1
        ctr_ task delete opts1 >/dev/null
        [ ! -e "$d/root/$CTR_NS/opts1" ] || { echo "the runtime's state left in $d/root/$CTR_NS"; ok=1; }
        ctr_ containers rm opts1
        poll_until 20 sh -c "! kill -0 $spid"
        # The shim's runtime calls may still be leaving the cgroup as the shim is reaped:
        # poll its removal.
        local g
        for g in $made; do poll_until 10 rmdir "$g" || { echo "cgroup $g busy: $(cat "$g/cgroup.procs" 2>&1)"; ok=1; }; done
        return $ok
}
expect "runtime-options-file" options_case

# ---- pods: 20 containers of one group share one shim (nanoshim only) ----
group_case() {
        local i pids=""
        for i in $(seq 1 20); do
                ctr_ run -d --runtime "$NANO" --annotation io.containerd.runc.v2.group=pod1 "$IMAGE" "pod-$i" sleep 1000 >/dev/null || return 1
        done
        for i in $(seq 1 20); do
                pids="$pids $(shim_pid_of "pod-$i")"
        done
        local distinct
        distinct=$(echo "$pids" | tr ' ' '\n' | grep -v '^$' | sort -u | wc -l)
        for i in $(seq 1 20); do ctr_ task kill -s KILL "pod-$i"; done
        for i in $(seq 1 20); do
                poll_until 20 task_stopped "pod-$i"
                ctr_ task delete "pod-$i" >/dev/null
                ctr_ containers rm "pod-$i"
        done
        [ "$distinct" = 1 ]
}
expect "pod-group-20-share-one-shim" group_case

# ---- containerd 2.x used the task API start offered ----
# (2.1 downgrades to containerd.task.v2.Task, with a warning, when v3 is not served)
expect "no-task-api-downgrade" sh -c "! grep 'downgrading client API version' '$CTRD_DIR/containerd.log'"

# ---- nothing left behind ----
leftovers() {
        local n
        # this containerd's shims only (other suites may run shims at the same time)
        n=$(ps -eo args | grep -c "^[^ ]*containerd-shim-nanoshim-v2 .*-address $CTRD_SOCK")
        [ "$n" = 0 ] || { echo "shims left: $n"; return 1; }
        # Exactly the one containerd we are running now (restarts must not leak any).
        n=$(ps -eo args | grep -c "^containerd --config $CTRD_DIR/config.toml")
        [ "$n" = 1 ] || { echo "containerd processes of this test: $n"; return 1; }
        ! grep -q "$CTRD_DIR" /proc/self/mounts || { echo "mounts left"; grep "$CTRD_DIR" /proc/self/mounts; return 1; }
}
expect "no-shim-or-mount-left" poll_until 20 leftovers

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
