#!/bin/bash
# Exit ordering under stress, under a real, private containerd (CTRD=1.6|2.1): exec
# starts raced against the death of the container's init, many times over.
#   test-ordering.sh SHIM_BINARY SOURCE_ROOT
# Races: an init living a random 0-300 ms, three execs started around its exit (at
# once, halfway, at the end), in ORDERING_LANES containers at a time, ORDERING_ROUNDS
# times per lane; then ORDERING_BURSTS containers with 30 concurrent execs whose init
# gets SIGKILL while they start. From containerd's own event stream (`ctr events`),
# for every container:
#   - exactly one exit event of the init, and it is the container's LAST exit event
#     (containerd relies on it: its regressions 4769, 9719, 10589);
#   - every exec that started (/tasks/exec-started, itself before the init's exit) has
#     exactly one exit event, before the init's;
#   - no exec that never started has one.
# Needs root (exit 77 = skipped otherwise). Namespace nanoshim-ordering-<version>-<pid>.
set -u
SHIM=$(readlink -f "$1")
SRC=$(readlink -f "$2")
CTRD=${CTRD:-1.6}
# (the pid too: two runs at once on one host must not share container ids)
export CTR_NS=${CTR_NS:-nanoshim-ordering-$CTRD-$$}
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
skip_unless_ready containerd ctr runc busybox
LANES=${ORDERING_LANES:-3}
ROUNDS=${ORDERING_ROUNDS:-50}
BURSTS=${ORDERING_BURSTS:-3}
NANO=io.containerd.nanoshim.v2
IMAGE=localhost/nanoshim-ordering:test
WORK=$(mktemp -d /tmp/nanoshim-ord-XXXXXX)
EVPID=

cleanup() {
        [ -n "$EVPID" ] && kill "$EVPID" 2>/dev/null && wait "$EVPID" 2>/dev/null
        if [ -n "${CTRD_SOCK:-}" ]; then
                ctrd_remove_all
                ctrd_stop
        fi
        grep -o " ${WORK}[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
        rm -rf "$WORK"
}
trap cleanup EXIT

n_deleted() { grep -c '/tasks/delete ' "$WORK/events"; }

# Remove a container once its task stopped (containerd's delete of it).
finish() {
        local id=$1
        poll_until 60 task_stopped "$id" || echo "$id: task not stopped after 60 s" >>"$WORK/problems"
        ctr_ task delete "$id" >/dev/null 2>&1
        ctr_ containers rm "$id" >/dev/null 2>&1
}

# One race: the init lives a random 0-300 ms; three execs started around its death.
race() {
        local id=$1 t=$(( (RANDOM * 10) % 300000 )) k pids=()
        ctr_ run -d --runtime "$NANO" "$IMAGE" "$id" usleep "$t" >/dev/null 2>>"$WORK/run-errors" ||
                { echo "$id: ctr run failed" >>"$WORK/problems"; return; }
        for k in 1 2 3; do
                (
                        [ "$k" -gt 1 ] && busybox usleep $(( t * (k - 1) / 2 ))
                        ctr_ task exec --exec-id "x$k" "$id" usleep $(( RANDOM % 20000 )) >/dev/null 2>&1
                ) &
                pids+=($!)
        done
        wait "${pids[@]}"
        finish "$id"
}

lane() {
        local l=$1 i
        for i in $(seq 1 "$ROUNDS"); do race "r$l-$i"; done
}

# 30 execs started at once; the init is killed once some have started.
burst() {
        local id=$1 k pids=()
        ctr_ run -d --runtime "$NANO" "$IMAGE" "$id" sleep 1000 >/dev/null 2>>"$WORK/run-errors" ||
                { echo "$id: ctr run failed" >>"$WORK/problems"; return; }
        for k in $(seq 1 30); do
                ctr_ task exec --exec-id "y$k" "$id" sleep 1000 >/dev/null 2>&1 &
                pids+=($!)
        done
        poll_until 60 sh -c "[ \$(grep -c '/tasks/exec-started {\"container_id\":\"$id\"' '$WORK/events') -ge 10 ]"
        ctr_ task kill -s KILL "$id"
        finish "$id"
        wait "${pids[@]}"
}

# check: the rules above, per container, over the event stream; prints what is wrong.
check_events() {
        awk '
        $6 == "/tasks/exec-started" || $6 == "/tasks/exit" {
                if (!match($7, /"container_id":"[^"]*"/)) next
                c = substr($7, RSTART + 16, RLENGTH - 17)
                seen[c] = 1
                if ($6 == "/tasks/exec-started") {
                        match($7, /"exec_id":"[^"]*"/)
                        p = substr($7, RSTART + 11, RLENGTH - 12)
                        started[c, p] = 1
                        if (init_exits[c]) print c ": " p " started after the init exit"
                        next
                }
                match($7, /"id":"[^"]*"/)
                p = substr($7, RSTART + 6, RLENGTH - 7)
                if (p == c) {
                        if (init_exits[c]++) print c ": the init exited twice"
                        next
                }
                if (init_exits[c]) print c ": exit of " p " after the init exit"
                if (exits[c, p]++) print c ": " p " exited twice"
                if (!((c, p) in started)) print c ": exit of " p ", which never started"
        }
        END {
                for (k in started) {
                        split(k, a, SUBSEP)
                        if (!exits[a[1], a[2]]) print a[1] ": " a[2] " started and has no exit event"
                }
                for (c in seen) if (!init_exits[c]) print c ": no exit event of the init"
        }' "$WORK/events"
}

# ---- setup ----
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || { echo "FAIL: cannot build the busybox rootfs"; exit 1; }
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
ctrd_import_image "$WORK/bundle/rootfs" "$IMAGE" || { echo "FAIL: cannot import the busybox image"; exit 1; }
ctr --address "$CTRD_SOCK" events >"$WORK/events" 2>&1 &
EVPID=$!
: >"$WORK/problems"
echo "containerd $CTRD_VERSION: $LANES lanes x $ROUNDS races, $BURSTS bursts of 30 execs"
start=$(date +%s)

lanes=()
for l in $(seq 1 "$LANES"); do
        lane "$l" &
        lanes+=($!)
done
wait "${lanes[@]}"
for b in $(seq 1 "$BURSTS"); do burst "b$b"; done

total=$((LANES * ROUNDS + BURSTS))
poll_until 60 sh -c "[ \$(grep -c '/tasks/delete ' '$WORK/events') -ge $total ]" ||
        echo "only $(n_deleted)/$total delete events seen" >>"$WORK/problems"
kill "$EVPID" 2>/dev/null
wait "$EVPID" 2>/dev/null
EVPID=

n_started=$(grep -c '/tasks/exec-started ' "$WORK/events")
n_added=$(grep -c '/tasks/exec-added ' "$WORK/events")
n_exits=$(grep -c '/tasks/exit ' "$WORK/events")
echo "$total containers, $n_added execs added, $n_started started, $n_exits exit events, $(( $(date +%s) - start )) s"
check_events >>"$WORK/problems"
# the races must have happened: some execs started, and some did not
[ "$n_started" -gt 0 ] && [ "$n_started" -lt "$n_added" ] ||
        echo "no race seen: $n_added execs added, $n_started started (timing off?)" >>"$WORK/problems"
if [ -s "$WORK/problems" ]; then
        echo "FAIL: exit ordering"
        head -n 40 "$WORK/problems" | sed 's/^/    /'
        exit 1
fi
echo "PASS: exit ordering: the init's exit last, one exit per started exec, none for the others"
