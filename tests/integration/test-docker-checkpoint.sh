#!/bin/bash
# Docker's checkpoint and restore (dockerd in experimental mode: `docker checkpoint
# create`, `docker start --checkpoint`) on a private containerd 2.1, with
# `--runtime io.containerd.nanoshim.v2` and with Docker's runc side by side: a counter
# checkpointed (and stopped) goes on counting from where it was once started from the
# checkpoint; nothing is left once it is removed.
#   test-docker-checkpoint.sh SHIM_BINARY SOURCE_ROOT
# Needs root, the Debian archive (or a filled cache) and a CRIU that works on this
# kernel (tools/build-criu.sh); exit 77 (skipped) with the reason otherwise.
set -u
SHIM=$(readlink -f "$1")
SRC=$(readlink -f "$2")
export CTR_NS=${CTR_NS:-nanoshim-docker-ckpt}
export CTRD=${CTRD:-2.1}
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
# shellcheck source=tests/integration/docker-lib.sh
. "$SRC/tests/integration/docker-lib.sh"
skip_unless_ready runc

NANO=io.containerd.nanoshim.v2
IMAGE=nanoshim-docker/busybox:ckpt
WORK=$(mktemp -d /tmp/nanoshim-dckpt-XXXXXX)
passed=0
failed=0

cleanup() {
        trap - EXIT
        docker_teardown "$WORK"
}
trap cleanup EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }

# A CRIU that works on this kernel, first on PATH: containerd, the shims and runc inherit it.
criu_select "$WORK" || { echo "SKIP: $CRIU_WHY"; exit 77; }
if ! docker_select "$WORK"; then
        echo "SKIP: Docker (docker.io, docker-cli, tini-static from Debian $DOCKER_SUITE) cannot be had"
        exit 77
fi
if ! ctrd_select; then
        echo "SKIP: containerd $CTRD (Debian sid) cannot be had"
        exit 77
fi
echo "# criu $CRIU_DIR/criu, dockerd $DOCKER_VERSION (experimental), containerd $CTRD_VERSION, namespace $CTR_NS"
"$SRC/tools/mkbundle.sh" "$WORK/bundle" >/dev/null || { echo "FAIL: cannot build the busybox rootfs"; exit 1; }
ctrd_start "$WORK/ctrd" "$SHIM" || exit 1
dockerd_start "$WORK/docker" ',"experimental": true' || exit 1
docker_import_image "$WORK/bundle/rootfs" "$IMAGE" || { echo "FAIL: cannot import the busybox image"; exit 1; }

state() { docker_ inspect -f "{{.State.$2}}" "$1" 2>/dev/null; }
is_running() { [ "$(state "$1" Status)" = running ]; }
is_exited() { [ "$(state "$1" Status)" = exited ]; }
# The container's log holds N lines or more.
log_lines_at_least() { [ "$(docker_ logs "$1" 2>/dev/null | wc -l)" -ge "$2" ]; }

COUNTER='i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done'

# What the host holds for one container: cgroups, runc state, mounts, shim.
traces_of() {
        local id=$1 d
        for d in /sys/fs/cgroup/*/"$CTR_NS/$id" /sys/fs/cgroup/"$CTR_NS/$id"; do
                [ -d "$d" ] && echo -n "cgroup "
        done
        for d in "/run/containerd/runc/$CTR_NS/$id" "$CTRD_DIR/state/io.containerd.runtime.v2.task/$CTR_NS/$id"; do
                [ -e "$d" ] && echo -n "state "
        done
        grep -q "$id" /proc/self/mounts && echo -n "mounts "
        ps -eo args | grep -v grep | grep -q -- "-id $id" && echo -n "shim "
}
no_traces() { [ -z "$(traces_of "$1")" ]; }

# scenario RT TAG: run the counter, let it count to 5, checkpoint it leaving it running
# (--leave-running: Docker hands its "exit" to runc-v2's options only, so without it a
# runtime of another type would keep running where runc stops), kill it, start it from
# the checkpoint, let it count 5 more; prints what must be the same for both runtimes.
scenario() {
        local rt=$1 name=dckpt-$2 out
        docker_ run -d --net host --runtime "$rt" --name "$name" "$IMAGE" sh -c "$COUNTER" >/dev/null ||
                { echo "run-failed"; return; }
        poll_until 60 log_lines_at_least "$name" 5 || { echo "no-output"; return; }
        if ! out=$(docker_ checkpoint create --leave-running "$name" cp1 2>&1); then
                echo "checkpoint-failed: $(echo $out)"
                docker_ rm -f "$name" >/dev/null 2>&1
                return
        fi
        local after listed last before
        after=$(state "$name" Status)
        docker_ kill "$name" >/dev/null
        poll_until 30 is_exited "$name" || { echo "still-running-after-kill"; return; }
        listed=$(docker_ checkpoint ls "$name" 2>&1 | tail -n +2 | tr '\n' ' ')
        last=$(docker_ logs "$name" 2>/dev/null | tail -n1)
        before=$(docker_ logs "$name" 2>/dev/null | wc -l)
        if ! out=$(docker_ start --checkpoint cp1 "$name" 2>&1); then
                echo "restore-failed: $(echo $out)"
                docker_ rm -f "$name" >/dev/null 2>&1
                return
        fi
        poll_until 60 log_lines_at_least "$name" $((before + 5)) || { echo "no-output-after-restore"; return; }
        local first verdict=continues
        first=$(docker_ logs "$name" 2>/dev/null | sed -n "$((before + 1))p")
        # Goes on from where the checkpoint was: past the 5 seen before it, not past the
        # last one logged before the kill (the counter went on after the checkpoint).
        if ! [ "$first" -gt 5 ] || ! [ "$first" -le "$last" ]; then
                verdict="starts-at:$first(last-before:$last)"
        fi
        docker_ logs "$name" 2>/dev/null | tail -n +$((before + 1)) |
                awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }' ||
                verdict="$verdict,not-consecutive"
        docker_ rm -f "$name" >/dev/null 2>&1
        poll_until 30 no_traces "$name"
        echo "$verdict after-checkpoint:$after checkpoints:[$listed] left:[$(traces_of "$name")]"
}

n=$(scenario "$NANO" nano)
r=$(scenario runc runc)
echo "# nanoshim: $n"
echo "# runc:     $r"
if [ "$n" = "$r" ] && [ "$n" = "continues after-checkpoint:running checkpoints:[cp1 ] left:[]" ]; then
        pass "docker checkpoint create / start --checkpoint: $n"
else
        fail "docker checkpoint create / start --checkpoint" "nanoshim: $n" "runc:     $r"
fi

# Nothing left of the checkpoints once removed, nor of the containers.
left=$(find "$WORK/docker/data/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
if [ "$left" = 0 ] && [ -z "$(find /run/containerd/runc/"$CTR_NS" -mindepth 1 2>/dev/null)" ]; then
        pass "nothing left in the daemons"
else
        fail "nothing left in the daemons" "containers dirs: $left" "$(find /run/containerd/runc/"$CTR_NS" -mindepth 1 2>/dev/null)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
