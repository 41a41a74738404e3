#!/bin/bash
# nanoshim under a real Docker Engine (Debian sid's dockerd and docker CLI, unpacked,
# never installed) on a private containerd 2.1: every scenario runs with
# `--runtime io.containerd.nanoshim.v2` and with Docker's default runtime (runc, through
# containerd's io.containerd.runc.v2 shim) and what the docker CLI shows must match.
#   test-docker.sh SHIM_BINARY SOURCE_ROOT
# Needs root and the Debian archive (or a filled cache); exit 77 = skipped otherwise.
# CTR_NS (default nanoshim-docker) is the containerd namespace and cgroup parent used.
# DOCKER_SCENARIOS (names, space-separated) runs only those scenarios; default all.
set -u
SHIM=$(readlink -f "$1")
SRC=$(readlink -f "$2")
export CTR_NS=${CTR_NS:-nanoshim-docker}
export CTRD=${CTRD:-2.1}
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
# shellcheck source=tests/integration/docker-lib.sh
. "$SRC/tests/integration/docker-lib.sh"
skip_unless_ready runc script curl

NANO=io.containerd.nanoshim.v2
RUNC=runc
IMAGE=nanoshim-docker/busybox:test
WORK=$(mktemp -d /tmp/nanoshim-docker-XXXXXX)
LIVE=',"live-restore": true'
passed=0
failed=0

cleanup() {
        trap - EXIT
        docker_teardown "$WORK"
}
trap cleanup EXIT

# wanted NAME: whether scenario NAME is to run (DOCKER_SCENARIOS).
wanted() { [ -z "${DOCKER_SCENARIOS:-}" ] || [[ " $DOCKER_SCENARIOS " == *" $1 "* ]]; }

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }

# docker's view of a container: `state NAME FIELD` (a Go template field of .State).
state() { docker_ inspect -f "{{.State.$2}}" "$1" 2>/dev/null; }
is_running() { [ "$(state "$1" Status)" = running ]; }
is_exited() { [ "$(state "$1" Status)" = exited ]; }
full_id() { docker_ inspect -f '{{.Id}}' "$1"; }

# Replace what legitimately differs between the two runs: ids, names, runtime names.
normalize() { sed -e 's/[0-9a-f]\{64\}/ID/g' -e 's/[0-9a-f]\{12\}/ID/g' -e "s/$1/NAME/g" -e "s/$NANO/RT/g; s/io\.containerd\.runc\.v2/RT/g"; }

# run_both NAME CMD...: CMD runs once per runtime with $RT and $ID (the container's
# name) set; its output and exit code must match.
run_both() {
        local name=$1
        shift
        wanted "$name" || return 0
        local out_n out_r rc_n rc_r
        RT=$NANO ID=t-nano-$name
        out_n=$(run_captured "$@")
        rc_n=$?
        RT=$RUNC ID=t-runc-$name
        out_r=$(run_captured "$@")
        rc_r=$?
        if [ "$out_n" == "$out_r" ] && [ "$rc_n" == "$rc_r" ]; then
                pass "$name (rc $rc_n)"
                [ -z "${VERBOSE:-}" ] || echo "$out_n" | sed 's/^/    /'
        else
                fail "$name" "nanoshim rc=$rc_n out=[$out_n]" "runc     rc=$rc_r out=[$out_r]"
        fi
}

expect() { # expect NAME CONDITION-CMD...
        local name=$1
        shift
        wanted "$name" || return 0
        local out
        if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "condition failed: $*" "$out"; fi
}

run_() { docker_ run --net none --runtime "$RT" --name "$ID" "$@"; }
# A detached container running CMD, once it runs.
start_() {
        run_ -d "$@" >/dev/null || return 1
        poll_until 30 is_running "$ID" || { echo "$ID never running: $(state "$ID" Status)"; return 1; }
}

# What the host holds for one container: its cgroups, runc state, mounts, netns, shim.
traces_of() {
        local id=$1 n=0 d
        for d in /sys/fs/cgroup/*/"$CTR_NS/$id" /sys/fs/cgroup/"$CTR_NS/$id"; do
                [ -d "$d" ] && { echo "cgroup $d"; n=$((n + 1)); }
        done
        for d in "$DOCKER_DIR/exec/runtime-runc/$CTR_NS/$id" "/run/containerd/runc/$CTR_NS/$id" \
                "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$id" "$DOCKER_DIR/exec/containerd/$id"; do
                [ -e "$d" ] && { echo "state $d"; n=$((n + 1)); }
        done
        if grep -q "$id" /proc/self/mounts; then echo "mounts: $(grep -c "$id" /proc/self/mounts)"; n=$((n + 1)); fi
        if ps -eo args | grep -v grep | grep -q -- "-id $id"; then echo "shim of $id"; n=$((n + 1)); fi
        [ "$n" = 0 ]
}

# ---- setup ----
if ! docker_select "$WORK"; then
        echo "SKIP: Docker (docker.io, docker-cli, tini-static from Debian $DOCKER_SUITE) cannot be had"
        exit 77
fi
if ! ctrd_select; then
        echo "SKIP: containerd $CTRD (Debian sid) cannot be had"
        exit 77
fi
echo "# dockerd $DOCKER_VERSION, containerd $CTRD_VERSION, namespace $CTR_NS"
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || { echo "FAIL: cannot build the busybox rootfs"; exit 1; }
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
# runc with its options from daemon.json, and nanoshim with a ConfigPath (runtimeoptions):
# each with a runtime binary of its own that logs its calls, proving the options are used.
for rt in runc nanoshim dropped; do
        mkdir -p "$WORK/opts-$rt/root"
        printf '#!/bin/sh\necho "$*" >>%s/calls\nexec runc "$@"\n' "$WORK/opts-$rt" >"$WORK/opts-$rt/runc-logged"
        chmod +x "$WORK/opts-$rt/runc-logged"
done
printf 'BinaryName = "%s"\nRoot = "%s"\n' "$WORK/opts-nanoshim/runc-logged" "$WORK/opts-nanoshim/root" >"$WORK/opts-nanoshim/options.toml"
DOCKER_RUNTIMES=",
    \"nanoshim-opts\": { \"runtimeType\": \"$NANO\", \"options\": { \"ConfigPath\": \"$WORK/opts-nanoshim/options.toml\" } },
    \"runc-opts\": { \"runtimeType\": \"io.containerd.runc.v2\", \"options\": { \"BinaryName\": \"$WORK/opts-runc/runc-logged\", \"Root\": \"$WORK/opts-runc/root\" } },
    \"nanoshim-runc-keys\": { \"runtimeType\": \"$NANO\", \"options\": { \"BinaryName\": \"$WORK/opts-dropped/runc-logged\" } }"
dockerd_start "$WORK/docker" "$LIVE" || exit 1
docker_import_image "$WORK/bundle/rootfs" "$IMAGE" || { echo "FAIL: cannot docker import the busybox rootfs"; exit 1; }

# ---- the runtime really is nanoshim: containerd's record and the shim process ----
really_nanoshim() {
        RT=$NANO ID=n-which
        start_ "$IMAGE" sleep 1000 || return 1
        local id
        id=$(full_id "$ID")
        ctr_ containers info "$id" | grep -q "\"Name\": \"$NANO\"" || { echo "containerd's runtime: $(ctr_ containers info "$id" | grep -A1 '"Runtime"')"; return 1; }
        ps -eo args | grep -q "^[^ ]*containerd-shim-nanoshim-v2 .*-id $id" || { echo "no nanoshim process for $id"; return 1; }
        docker_ rm -f "$ID" >/dev/null
}
expect "runtime-is-nanoshim" really_nanoshim

# ---- run --rm: output, exit codes, stdin ----
run_both out-err run_ --rm "$IMAGE" sh -c 'echo out; echo err >&2; exit 7'
for code in 0 1 42; do
        run_both "exit-$code" run_ --rm "$IMAGE" sh -c "exit $code"
done
stdin_case() { printf 'data\nmore\n' | run_ -i --rm "$IMAGE" sh -c 'cat; echo done'; }
run_both stdin stdin_case
run_both missing-binary run_ --rm "$IMAGE" /bin/nonexistent
run_both not-executable run_ --rm "$IMAGE" /etc/passwd
run_both init-flag run_ --rm --init "$IMAGE" sh -c 'ps -o pid,comm | grep -c docker-init; exit 4'
run_both pid1-ignores-term run_ --rm "$IMAGE" sh -c 'kill -TERM $$; echo survived'

# ---- docker exec: exit codes (a failed start is 126/127, as Docker maps runc's error) ----
exec_case() {
        start_ "$IMAGE" sleep 1000 || return 1
        docker_ exec "$ID" sh -c 'echo in-exec; echo exec-err >&2; exit 3'
        echo "exec rc: $?"
        docker_ exec "$ID" sh -c 'kill -9 $$'
        echo "killed rc: $?"
        docker_ exec -u nobody "$ID" id -u
        echo "user rc: $?"
        echo data | docker_ exec -i "$ID" sh -c 'cat; exit 0'
        echo "stdin rc: $?"
        docker_ exec -d "$ID" sh -c 'sleep 1000'
        echo "detached rc: $?"
        poll_until 20 sh -c "[ \$(docker --host unix://$DOCKER_SOCK top $ID | grep -c 'sleep 1000') = 2 ]"
        echo "processes: $(docker_ top "$ID" -o pid,args | awk 'NR > 1 {$1 = ""; print}' | sort | tr '\n' '|')"
        docker_ rm -f "$ID" >/dev/null
}
run_both exec exec_case
# An exec whose process cannot start: Docker maps runc's error to 127 (no such file) and
# 126 (not executable) -- from the exit status the shim reports for that exec.
exec_start_failure_case() {
        start_ "$IMAGE" sleep 1000 || return 1
        docker_ exec "$ID" /bin/nonexistent
        echo "missing rc: $?"
        docker_ exec "$ID" /etc/passwd
        echo "not-executable rc: $?"
        docker_ exec "$ID" true
        echo "next exec rc: $?"
        docker_ rm -f "$ID" >/dev/null
}
run_both exec-start-failure exec_start_failure_case

# ---- logs: stdout and stderr apart ----
logs_case() {
        run_ -d "$IMAGE" sh -c 'echo o1; echo e1 >&2; echo o2; printf "no-newline" >&2' >/dev/null || return 1
        poll_until 30 is_exited "$ID"
        echo "exit: $(state "$ID" ExitCode)"
        echo "stdout: $(docker_ logs "$ID" 2>/dev/null | tr '\n' '|')"
        echo "stderr: $(docker_ logs "$ID" 2>&1 >/dev/null | tr '\n' '|')"
        docker_ rm "$ID" >/dev/null
}
run_both logs logs_case

# ---- stop -t: an init without a TERM handler is killed after the grace (137) ----
stop_case() { # stop_case CMD...
        start_ "$IMAGE" "$@" || return 1
        docker_ stop -t 1 "$ID" >/dev/null
        echo "stop rc: $?"
        echo "exit: $(state "$ID" ExitCode) oom: $(state "$ID" OOMKilled)"
        echo "logs: $(docker_ logs "$ID" 2>&1 | tr '\n' '|')"
        docker_ rm "$ID" >/dev/null
}
run_both stop-no-handler stop_case sleep 1000
run_both stop-term-handler stop_case sh -c 'trap "echo got-term; exit 5" TERM; echo ready; while :; do sleep 0.05; done'
kill_case() {
        start_ "$IMAGE" sh -c 'trap "echo usr1" USR1; while :; do sleep 0.05; done' || return 1
        docker_ kill -s USR1 "$ID" >/dev/null
        poll_until 20 sh -c "docker --host unix://$DOCKER_SOCK logs $ID | grep -q usr1"
        docker_ kill "$ID" >/dev/null
        poll_until 20 is_exited "$ID"
        echo "exit: $(state "$ID" ExitCode) logs: $(docker_ logs "$ID" 2>&1 | tr '\n' '|')"
        docker_ rm "$ID" >/dev/null
}
run_both kill kill_case

# ---- tty: run and exec with the terminal's size (the CLI resizes after start) ----
# In the container: wait (with a deadline) until the terminal has a size.
SIZED='i=0; while [ "$(stty size)" = "0 0" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done'
tty_run_case() {
        script -qec "stty rows 33 cols 77; docker --host unix://$DOCKER_SOCK run -t --rm --net none --runtime $RT --name $ID $IMAGE sh -c '$SIZED; stty size; tty; echo tty-out; exit 3'" /dev/null </dev/null
}
run_both tty-run tty_run_case
tty_exec_case() {
        start_ -t "$IMAGE" sleep 1000 || return 1
        script -qec "stty rows 21 cols 55; docker --host unix://$DOCKER_SOCK exec -t $ID sh -c '$SIZED; stty size; echo exec-tty; exit 6'" /dev/null </dev/null
        echo "exec rc: $?"
        # The API's resize of the container's own terminal, read on its console.
        curl -sf --unix-socket "$DOCKER_SOCK" -X POST "http://docker/containers/$ID/resize?h=11&w=44" || echo "resize failed"
        docker_ exec "$ID" stty -F /dev/console size
        docker_ rm -f "$ID" >/dev/null
}
run_both tty-exec tty_exec_case

# ---- stats, pause/unpause, update --memory ----
stats_case() {
        start_ "$IMAGE" sleep 1000 || return 1
        local s
        s=$(docker_ stats --no-stream --format '{{.PIDs}} {{.MemUsage}}' "$ID")
        echo "pids: ${s%% *}"
        case $s in *" 0B / "*) echo "no memory usage: $s" ;; *" "*B" / "*) echo "memory reported" ;; *) echo "stats: $s" ;; esac
        docker_ pause "$ID" >/dev/null && echo "paused: $(state "$ID" Status)"
        docker_ exec "$ID" true 2>&1 | sed 's/ [0-9a-f]\{64\}/ ID/'
        docker_ unpause "$ID" >/dev/null && echo "unpaused: $(state "$ID" Status)"
        docker_ exec "$ID" echo alive
        docker_ update --memory 64m --memory-swap 128m "$ID" >/dev/null
        echo "update rc: $?"
        echo "limit seen inside: $(docker_ exec "$ID" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || docker_ exec "$ID" cat /sys/fs/cgroup/memory.max)"
        echo "limit in docker: $(docker_ inspect -f '{{.HostConfig.Memory}}' "$ID")"
        docker_ rm -f "$ID" >/dev/null
}
run_both stats-pause-update stats_case

# ---- OOMKilled ----
oom_case() {
        run_ -d --memory 16m --memory-swap 16m "$IMAGE" sh -c 'tail /dev/zero' >/dev/null || return 1
        poll_until 60 is_exited "$ID"
        echo "exit: $(state "$ID" ExitCode) oom: $(state "$ID" OOMKilled)"
        docker_ rm "$ID" >/dev/null
}
run_both oom-killed oom_case

# ---- --restart on-failure ----
restart_policy_case() {
        run_ -d --restart on-failure:2 "$IMAGE" sh -c 'echo run; exit 3' >/dev/null || return 1
        poll_until 60 sh -c "[ \"\$(docker --host unix://$DOCKER_SOCK inspect -f '{{.RestartCount}} {{.State.Status}}' $ID)\" = '2 exited' ]"
        echo "restarts: $(docker_ inspect -f '{{.RestartCount}}' "$ID") exit: $(state "$ID" ExitCode)"
        echo "logs: $(docker_ logs "$ID" 2>&1 | tr '\n' '|')"
        docker_ rm "$ID" >/dev/null
}
run_both restart-on-failure restart_policy_case

# ---- nothing left after docker rm ----
rm_case() {
        start_ "$IMAGE" sh -c 'sleep 1000 & sleep 1000' || return 1
        docker_ exec -d "$ID" sleep 1000
        local id
        id=$(full_id "$ID")
        echo "traces while running: $(traces_of "$id" | wc -l)"
        docker_ rm -f "$ID" >/dev/null
        echo "rm rc: $?"
        poll_until 20 traces_of "$id"
        traces_of "$id"
}
run_both nothing-left-after-rm rm_case

# ---- daemon.json runtimes with options ----
# runc's keys for runc-v2; a ConfigPath (runtimeoptions) for nanoshim: each names a
# runtime binary that logs its calls and a state root. Where the state goes must match
# (runc-v2: <Root>/<namespace>/<id>).
options_case() {
        local rt=runc-opts d=$WORK/opts-runc id
        [ "$RT" = "$NANO" ] && rt=nanoshim-opts d=$WORK/opts-nanoshim
        RT=$rt start_ "$IMAGE" sleep 1000 || return 1
        id=$(full_id "$ID")
        grep -q "create" "$d/calls" 2>/dev/null && echo "BinaryName used"
        echo "state: $(cd "$d/root" && find . -mindepth 1 -maxdepth 2 -type d | sed -e "s|$id|ID|; s|$CTR_NS|NS|" | sort | tr '\n' ' ')"
        docker_ exec "$ID" sh -c 'exit 3'
        echo "exec rc: $?"
        docker_ rm -f "$ID" >/dev/null
        poll_until 20 traces_of "$id"
        traces_of "$id"
        echo "state left: $(find "$d/root" -name "$id" | wc -l)"
}
run_both daemon.json-options options_case
# runc's keys written directly under "options" of a non-runc runtimeType: dockerd sends
# runtimeoptions.v1.Options, which has no such field, and drops them (docs/docker.md).
dropped_case() {
        RT=nanoshim-runc-keys ID=runc-keys
        docker_ run --rm --net none --runtime "$RT" "$IMAGE" true || return 1
        [ ! -e "$WORK/opts-dropped/calls" ] || { echo "BinaryName reached the shim"; return 1; }
}
expect "daemon.json-runc-keys-dropped" dropped_case
named_case() {
        RT=nanoshim ID=named-nanoshim
        run_ --rm "$IMAGE" sh -c 'exit 9'
        [ $? = 9 ] || return 1
        start_ "$IMAGE" sleep 1000 || return 1
        ctr_ containers info "$(full_id "$ID")" | grep -q "\"Name\": \"$NANO\"" || return 1
        docker_ rm -f "$ID" >/dev/null
}
expect "daemon.json-runtimeType" named_case

# ---- dockerd restarted under live-restore with running containers ----
live_restore_case() {
        start_ "$IMAGE" sh -c 'echo before; trap "echo usr1" USR1; trap "echo usr2 >&2" USR2; trap "echo term; exit 7" TERM; while :; do sleep 0.05; done' || return 1
        local pid
        pid=$(state "$ID" Pid)
        dockerd_stop
        kill -0 "$pid" && echo "alive while dockerd is down"
        # output written while nobody reads it: kept in the FIFO for the restored dockerd
        kill -USR2 "$pid"
        dockerd_start "$DOCKER_DIR" "$LIVE" || return 1
        poll_until 30 is_running "$ID"
        echo "after restart: $(state "$ID" Status) same pid: $([ "$(state "$ID" Pid)" = "$pid" ] && echo yes)"
        docker_ exec "$ID" sh -c 'echo exec-after; exit 4'
        echo "exec rc: $?"
        docker_ kill -s USR1 "$ID" >/dev/null
        poll_until 20 sh -c "docker --host unix://$DOCKER_SOCK logs $ID | grep -q usr1"
        docker_ stop -t 10 "$ID" >/dev/null
        echo "exit: $(state "$ID" ExitCode)"
        echo "stdout: $(docker_ logs "$ID" 2>/dev/null | tr '\n' '|')"
        echo "stderr: $(docker_ logs "$ID" 2>&1 >/dev/null | tr '\n' '|')"
        docker_ rm "$ID" >/dev/null
}
run_both dockerd-live-restore live_restore_case

# ---- containerd restarted under dockerd ----
ctrd_restart_case() {
        start_ "$IMAGE" sh -c 'echo before; trap "echo term; exit 8" TERM; while :; do sleep 0.05; done' || return 1
        ctrd_stop
        ctrd_start "$CTRD_DIR" "$SHIM" || return 1
        # dockerd reconnects on its own; a call that needs containerd succeeds once it has.
        poll_until 60 sh -c "docker --host unix://$DOCKER_SOCK exec $ID true" || echo "exec never worked again"
        echo "after restart: $(state "$ID" Status)"
        docker_ exec "$ID" sh -c 'exit 5'
        echo "exec rc: $?"
        docker_ stop -t 10 "$ID" >/dev/null
        echo "exit: $(state "$ID" ExitCode) logs: $(docker_ logs "$ID" 2>&1 | tr '\n' '|')"
        docker_ rm "$ID" >/dev/null
}
run_both containerd-restart ctrd_restart_case

# ---- default-runtime ----
default_runtime_case() {
        dockerd_stop
        # Without live-restore: its shutdown at the end unmounts what it mounted.
        dockerd_start "$DOCKER_DIR" ',"default-runtime": "nanoshim"' || return 1
        RT=nanoshim ID=default-rt
        docker_ run -d --net none --name "$ID" "$IMAGE" sleep 1000 >/dev/null || return 1
        poll_until 30 is_running "$ID" || return 1
        echo "docker says: $(docker_ inspect -f '{{.HostConfig.Runtime}}' "$ID")"
        ctr_ containers info "$(full_id "$ID")" | grep -q "\"Name\": \"$NANO\"" || { echo "containerd's runtime is not nanoshim"; return 1; }
        [ "$(docker_ info -f '{{.DefaultRuntime}}')" = nanoshim ] || return 1
        docker_ rm -f "$ID" >/dev/null
}
expect "default-runtime" default_runtime_case

# ---- nothing left: no container, task, shim, mount, netns, runc state ----
leftovers() {
        local n
        n=$(docker_ ps -aq | wc -l)
        [ "$n" = 0 ] || { echo "docker containers left: $n"; return 1; }
        n=$(ctr_ containers ls -q | wc -l)
        [ "$n" = 0 ] || { echo "containerd containers left: $n"; return 1; }
        n=$(ps -eo args | grep -c "^[^ ]*containerd-shim-[a-z]*-v2 .*-address $CTRD_SOCK")
        [ "$n" = 0 ] || { echo "shims left: $n"; return 1; }
        n=$(ls "$DOCKER_DIR/exec/netns" 2>/dev/null | wc -l)
        [ "$n" = 0 ] || { echo "netns left: $n"; return 1; }
        n=$(find "$DOCKER_DIR/exec/runtime-runc/$CTR_NS" "/run/containerd/runc/$CTR_NS" -mindepth 1 2>/dev/null | wc -l)
        [ "$n" = 0 ] || { echo "runc state left: $n"; return 1; }
        n=$(find /sys/fs/cgroup/*/"$CTR_NS" /sys/fs/cgroup/"$CTR_NS" -mindepth 1 -type d 2>/dev/null | wc -l)
        [ "$n" = 0 ] || { echo "cgroups left: $n"; return 1; }
        ! grep -q "$WORK/ctrd" /proc/self/mounts || { echo "containerd mounts left"; return 1; }
        ! grep -q "$DOCKER_DIR/data/overlay2/[^ ]*/merged" /proc/self/mounts || { echo "container rootfs left mounted"; return 1; }
}
settled() { poll_until 30 leftovers || leftovers; }
expect "nothing-left-in-the-daemons" settled

# ---- both daemons stopped by PID: no process, mount, cgroup, runc root left ----
teardown_case() {
        dockerd_stop
        ctrd_stop
        local left=0
        # dockerd bind-mounts its data-root onto itself (private propagation) and leaves
        # that mount when it shut down under live-restore with containers running (as
        # here, earlier); whatever the runtime. Only that one mount is dockerd's to leave.
        grep -q " $DOCKER_DIR/data " /proc/self/mounts && umount "$DOCKER_DIR/data"
        ps -eo pid,args | grep -v grep | grep -E "$WORK|-address $CTRD_SOCK" && left=1
        grep "$WORK" /proc/self/mounts && left=1
        ls -d /sys/fs/cgroup/*/"$CTR_NS" /sys/fs/cgroup/"$CTR_NS" /run/containerd/runc/"$CTR_NS" 2>/dev/null && left=1
        return $left
}
expect "nothing-left-after-stop" teardown_case

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
