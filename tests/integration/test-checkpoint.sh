#!/bin/bash
# Checkpoint and restore (CRIU) under a private containerd, driven by ctr, side by side
# with containerd-shim-runc-v2: every scenario runs with both runtimes and must give the
# same result.
#   test-checkpoint.sh SHIM_BINARY SOURCE_ROOT
# CTRD=1.6|1.7|2.1 picks the containerd (tests/integration/ctrd-lib.sh). Needs root and a
# working CRIU: tools/build-criu.sh builds one (cached); exit 77 (skipped) with the
# reason when there is none or `criu check` fails on this kernel.
set -u
SHIM=$(readlink -f "$1")
SRC=$(readlink -f "$2")
# Its own namespace and ids: other suites run in parallel.
CTR_NS=${CTR_NS:-nanoshim-checkpoint}
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
skip_unless_ready containerd ctr runc

NANO=io.containerd.nanoshim.v2
RUNC=io.containerd.runc.v2
IMAGE=localhost/nanoshim-busybox:checkpoint
WORK=$(mktemp -d /tmp/nanoshim-ckpt-XXXXXX)
ATTACH_PIDS=()
passed=0
failed=0

cleanup() {
        local pid
        for pid in "${ATTACH_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
        if [ -n "${CTRD_DIR:-}" ]; then
                ctrd_teardown "$WORK"
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }

# A CRIU that works on this kernel, first on PATH: containerd, the shims and runc inherit it.
criu_select "$WORK" || { echo "SKIP: $CRIU_WHY"; exit 77; }
echo "# criu: $CRIU_DIR/criu ($(cat "$CRIU_DIR/.version" 2>/dev/null))"

"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || { echo "FAIL: cannot build the busybox rootfs"; exit 1; }
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
echo "# containerd $CTRD_VERSION ($CTRD_BIN)"
ctrd_import_image "$WORK/bundle/rootfs" "$IMAGE" || { echo "FAIL: cannot import the busybox image"; exit 1; }

# Every event of the namespace, to count the checkpoint events.
ctr_ events >"$WORK/events.log" 2>&1 &
ATTACH_PIDS+=($!)

COUNTER='i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done'

# attach ID LOG: append the task's output to LOG (ctr task attach, in the background).
# ctr's attach ends with the task, with its exit status, and deletes the task.
declare -A ATTACHED
attach() {
        ctr_ task attach "$1" >>"$2" 2>&1 </dev/null &
        ATTACHED[$1]=$!
        ATTACH_PIDS+=($!)
}

# lines_at_least LOG N: LOG holds N lines or more.
lines_at_least() { [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

# consecutive FILE: the numbers in FILE go up by one, line after line.
consecutive() { awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }' "$1"; }

# restore_into ID REF LOG: ctr container restore --live, the task's output appended to
# LOG.
# ctr copies the task's output to its own until it exits, then attach takes over.
restore_into() {
        if ! ctr_ container restore --live "$1" "$2" >>"$3" 2>"$WORK/restore.err"; then
                echo "restore of $1 failed: $(cat "$WORK/restore.err")"
                return 1
        fi
        attach "$1" "$3"
}

# remove ID: kill the attached task, remove the container. REMOVED: the task's exit
# status (its attach's; called in the shell that attached).
remove() {
        local rc
        ctr_ task kill -s KILL "$1" >/dev/null 2>&1
        wait "${ATTACHED[$1]}"
        rc=$?
        poll_until 30 task_stopped "$1"
        ctr_ task delete "$1" >/dev/null 2>&1
        ctr_ container rm "$1" >/dev/null 2>&1
        REMOVED=$rc
}

# scenario_counter RT TAG: a counter container, checkpointed while it runs (ctr c
# checkpoint --task pauses it, dumps it leaving it running, resumes it); the original
# goes; restored twice from the one checkpoint under two ids, the first one's output in
# the original's log. Then the usual lifecycle on a restored one: exec, kill, delete.
# Prints a summary that must be the same for both runtimes.
scenario_counter() {
        local rt=$1 tag=$2 id=ck-$2 log=$WORK/$2.log log2=$WORK/$2-r2.log
        : >"$log"
        : >"$log2"
        ctr_ run -d --runtime "$rt" "$IMAGE" "$id" sh -c "$COUNTER" >/dev/null 2>&1 || { echo "run-failed"; return; }
        attach "$id" "$log"
        poll_until 60 lines_at_least "$log" 5 || { echo "no-output"; return; }
        local out
        if ! out=$(ctr_ container checkpoint --task "$id" "localhost/ckpt-$tag:1" 2>&1); then
                echo "checkpoint-failed: $out"
                return
        fi
        remove "$id" # all of its output is in once its attach ended
        local before last
        before=$(wc -l <"$log")
        last=$(tail -n1 "$log")
        restore_into "$id-r1" "localhost/ckpt-$tag:1" "$log" || return
        restore_into "$id-r2" "localhost/ckpt-$tag:1" "$log2" || return
        poll_until 60 lines_at_least "$log" $((before + 5)) || { echo "no-output-after-restore"; return; }
        poll_until 60 lines_at_least "$log2" 5 || { echo "no-output-after-restore-2"; return; }
        local r1 r2 verdict
        r1=$(sed -n "$((before + 1))p" "$log")
        r2=$(head -n1 "$log2")
        # Continues where the checkpoint was: after the 5 numbers seen before it, and not
        # past what the original printed (its line in flight when it was killed may be
        # lost: runc-v2 loses it). Both restored from one checkpoint: the same number.
        if [ "$r1" -gt 5 ] && [ "$r1" -le $((last + 2)) ] && [ "$r1" = "$r2" ]; then
                verdict="continues"
        else
                verdict="starts-at:$r1/$r2(original-ended-at:$last)"
        fi
        tail -n +$((before + 1)) "$log" >"$WORK/$tag-r1.part"
        consecutive "$WORK/$tag-r1.part" && consecutive "$log2" || verdict="$verdict,not-consecutive"
        # The lifecycle goes on as usual.
        local exec_out status1 status2
        exec_out=$(ctr_ task exec --exec-id x "$id-r1" sh -c 'echo exec-ok; exit 3' 2>&1; echo "rc=$?")
        remove "$id-r1"
        status1=$REMOVED
        remove "$id-r2"
        status2=$REMOVED
        echo "$verdict exec:[$(echo $exec_out)] exit:$status1/$status2"
}

# scenario_failed_restore RT TAG: CRIU cannot restore (the container held a file of its
# rw layer open, and the checkpoint is restored without that layer). The restore fails
# with CRIU's reason, and once the client removed the container nothing is left: no
# mount, no runc state, no cgroup, no shim. Prints a summary.
scenario_failed_restore() {
        local rt=$1 tag=$2 id=ck-$2
        # Checkpointed once the shell holds the file: runc-v2's dump failed once in CI
        # when it came right after the start.
        ctr_ run -d --runtime "$rt" "$IMAGE" "$id" sh -c 'exec 3>/tmp/held; while :; do sleep 0.1; done' \
                >/dev/null 2>&1 || { echo "run-failed"; return; }
        poll_until 30 task_running "$id"
        poll_until 30 holds_file "$id" || { echo "init-never-held-the-file"; return; }
        local out
        if ! out=$(ctr_ container checkpoint --task "$id" "localhost/ckpt-$tag:1" 2>&1); then
                echo "checkpoint-failed: $out"
                return
        fi
        ctr_ task kill -s KILL "$id" >/dev/null 2>&1
        poll_until 30 task_stopped "$id"
        ctr_ task delete "$id" >/dev/null 2>&1
        ctr_ container rm "$id" >/dev/null 2>&1
        local rid=$id-r rc status
        out=$(ctr_ container restore --live "$rid" "localhost/ckpt-$tag:1" 2>&1)
        rc=$?
        echo "$out" >"$WORK/$tag.restore-error"
        status=$(task_status "$rid")
        ctr_ task delete "$rid" >/dev/null 2>&1
        ctr_ container rm "$rid" >/dev/null 2>&1
        poll_until 30 nothing_left "$rid"
        echo "restore-rc:$([ "$rc" != 0 ] && echo failed || echo ok) task-after:${status:-none} left:[$(leftovers "$rid")]"
}

# holds_file ID: the init of task ID (the shell) has its fd 3 on /tmp/held.
holds_file() {
        local pid
        pid=$(ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}')
        [ -n "$pid" ] &&
                case $(readlink "/proc/$pid/fd/3") in */tmp/held) true ;; *) false ;; esac
}

# What a container id may leave behind: mounts, runc state, cgroups, a shim.
leftovers() {
        local rid=$1 f
        grep -q "/$rid/" /proc/self/mounts && echo -n "mount "
        [ -e "/run/containerd/runc/$CTR_NS/$rid" ] && echo -n "runc-state "
        for f in /sys/fs/cgroup/*/"$CTR_NS/$rid" /sys/fs/cgroup/"$CTR_NS/$rid"; do
                [ -d "$f" ] && echo -n "cgroup "
        done
        for f in /proc/[0-9]*/cmdline; do
                { tr "\0" " " <"$f"; } 2>/dev/null | grep -q -- "-id $rid " && { echo -n "shim "; break; }
        done
}
nothing_left() { [ -z "$(leftovers "$1")" ]; }

# both SCENARIO NAME: run SCENARIO with each runtime; the summaries must match (and
# satisfy CHECK, a command given the summary).
both() {
        local scenario=$1 name=$2 check=$3 n r
        n=$("$scenario" "$NANO" "n-$name")
        r=$("$scenario" "$RUNC" "r-$name")
        echo "# $name: nanoshim: $n"
        echo "# $name: runc-v2:  $r"
        if [ "$n" = "$r" ] && "$check" "$n"; then
                pass "$name: $n"
        else
                fail "$name" "nanoshim: $n" "runc-v2:  $r"
        fi
}

counter_ok() { [ "$1" = "continues exec:[exec-ok rc=3] exit:137/137" ]; }
failed_ok() { [ "$1" = "restore-rc:failed task-after:CREATED left:[]" ]; }

both scenario_counter counter counter_ok
# One /tasks/checkpointed event per checkpoint, naming the images, from nanoshim;
# neither containerd (1.6, 2.1) nor runc-v2 publishes one for a task checkpoint.
checkpointed() { grep -c "/tasks/checkpointed.*\"$1\".*\"checkpoint\":\"/" "$WORK/events.log"; }
poll_until 30 grep -q "/tasks/checkpointed.*ck-n-counter" "$WORK/events.log"
n_ev=$(checkpointed ck-n-counter) r_ev=$(checkpointed ck-r-counter)
if [ "$n_ev" = 1 ]; then
        pass "one TaskCheckpointed event per checkpoint (runc-v2: $r_ev)"
else
        fail "TaskCheckpointed events" "nanoshim: $n_ev" "runc-v2: $r_ev" "$(grep checkpointed "$WORK/events.log")"
fi
both scenario_failed_restore failed-restore failed_ok
# CRIU's own reason reaches the caller.
err=$(cat "$WORK/n-failed-restore.restore-error")
if grep -q "criu: " <<<"$err" && grep -q "held" <<<"$err"; then
        pass "CRIU's error line reaches ctr: $(echo $err | cut -c1-300)"
else
        fail "CRIU's error line reaches ctr" "nanoshim: $err" "runc-v2: $(cat "$WORK/r-failed-restore.restore-error")"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
