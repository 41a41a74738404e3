#!/bin/bash
# Load: 100 containers under a private containerd with io.containerd.nanoshim.v2,
# started 10 at a time, all RUNNING, then killed and deleted 10 at a time. Afterwards
# nothing of them may be left: no shim process, no mount, no socket, no zombie.
#   test-load.sh SHIM_BINARY SOURCE_ROOT      (root; exit 77 = skipped)
# CTRD=1.6|1.7|2.1 picks the containerd (ctrd-lib.sh); each version has its own namespace.
# Prints the figures: time to start all, time to stop all, peak shim count.
set -u
SHIM=$(readlink -f "$1")
SRC=$(readlink -f "$2")
N=${LOAD_CONTAINERS:-100}
PAR=10
export CTR_NS=nanoshim-load
[ "${CTRD:-1.6}" = 1.6 ] || CTR_NS=nanoshim-load-ctrd${CTRD//./}
# shellcheck source=tests/integration/ctrd-lib.sh
. "$SRC/tests/integration/ctrd-lib.sh"
skip_unless_ready containerd ctr runc pgrep
[ -x /bin/busybox ] || { echo "SKIP: needs busybox-static"; exit 77; }
ctrd_select || { echo "SKIP: containerd $CTRD cannot be had (tools/containerd-version.sh $CTRD failed)"; exit 77; }

RT=io.containerd.nanoshim.v2
IMAGE=localhost/nanoshim-busybox:load
WORK=$(mktemp -d /tmp/nsload-XXXXXX)
SAMPLER=
passed=0
failed=0

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Our shims only (other tests may run theirs): started for this containerd's address.
count_shims() { pgrep -c -f "^[^ ]*containerd-shim-nanoshim-v2 -namespace $CTR_NS -id [^ ]+ -address $CTRD_SOCK " || true; }
no_shims() { [ "$(count_shims)" = 0 ]; }

# Zombies of this test: children of containerd or of this shell, or shims/runtimes.
count_zombies() {
        local f rest n=0
        for f in /proc/[0-9]*/stat; do
                rest=$(sed -e 's/^.*) //' "$f" 2>/dev/null) || continue
                # shellcheck disable=SC2086
                set -- $rest
                [ "${1:-}" = Z ] || continue
                if [ "${2:-}" = "${CTRD_PID:-x}" ] || [ "${2:-}" = "$$" ] ||
                        grep -q "^containerd-shim-nanoshim-v2 .*$CTRD_SOCK" "${f%stat}cmdline" 2>/dev/null; then
                        n=$((n + 1))
                fi
        done
        echo "$n"
}
no_zombies() { [ "$(count_zombies)" = 0 ]; }

running_count() { ctr_ task ls 2>/dev/null | awk '$3 == "RUNNING"' | grep -c '^load-' || true; }
all_running() { [ "$(running_count)" = "$N" ]; }

cleanup() {
        local id
        [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
        if [ -n "${CTRD_SOCK:-}" ]; then
                for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task rm -f "$id" >/dev/null 2>&1; done
                for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "$id" >/dev/null 2>&1; done
                ctrd_stop
        fi
        grep -o " ${WORK}[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One container's life: run detached / remove; failures go to $WORK/errors.
start_one() {
        ctr_ run -d --runtime "$RT" "$IMAGE" "load-$1" sleep 1000000 >/dev/null 2>>"$WORK/errors.$1" ||
                echo "start load-$1 failed" >>"$WORK/errors"
}
stop_one() {
        { ctr_ task rm -f "load-$1" >/dev/null && ctr_ containers rm "load-$1"; } 2>>"$WORK/errors.$1" ||
                echo "stop load-$1 failed" >>"$WORK/errors"
}
export -f ctr_ start_one stop_one
export CTRD_SOCK RT IMAGE WORK

mkdir -p "$WORK/ctrd"
"$SRC/tools/mkbundle.sh" "$WORK/img" true >/dev/null || { echo "FAIL: mkbundle"; exit 1; }
ctrd_start "$WORK/ctrd" "$SHIM" || { echo "FAIL: containerd did not start"; exit 1; }
export CTRD_SOCK
ctrd_import_image "$WORK/img/rootfs" "$IMAGE" || { echo "FAIL: image import"; exit 1; }

# The peak number of our shims, sampled while containers start and stop.
(
        peak=0
        while :; do
                n=$(count_shims)
                [ "$n" -gt "$peak" ] && peak=$n && echo "$peak" >"$WORK/peak"
                sleep 0.1
        done
) &
SAMPLER=$!

t0=$(now_ms)
seq 1 "$N" | xargs -P "$PAR" -I{} bash -c 'start_one {}'
poll_until 60 all_running
t_start=$(($(now_ms) - t0))
expect_running=$(running_count)
[ "$expect_running" = "$N" ] && pass "$N containers RUNNING (${t_start} ms to start all, $PAR at a time)" ||
        fail "$N containers RUNNING: only $expect_running after ${t_start} ms"

# The socket of every container, to check that none is left.
for i in $(seq 1 "$N"); do
        cat "$WORK/ctrd/state/io.containerd.runtime.v2.task/$CTR_NS/load-$i/address" 2>/dev/null
        echo
done | sed -e 's|^unix://||' -e '/^$/d' | sort -u >"$WORK/sockets"
echo "  shims now: $(count_shims), distinct sockets: $(wc -l <"$WORK/sockets")"

t0=$(now_ms)
seq 1 "$N" | xargs -P "$PAR" -I{} bash -c 'stop_one {}'
poll_until 30 no_shims
t_stop=$(($(now_ms) - t0))
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=
echo "  figures: start all ${t_start} ms, stop all ${t_stop} ms, peak shims $(cat "$WORK/peak" 2>/dev/null || echo 0)"

if [ -s "$WORK/errors" ]; then
        fail "errors: $(wc -l <"$WORK/errors") ($(head -3 "$WORK/errors" | tr '\n' ' '))"
        cat "$WORK"/errors.* 2>/dev/null | head -5
else
        pass "no error in $N starts and $N stops"
fi
left=$(ctr_ task ls -q | grep -c '^load-' || true)
[ "$left" = 0 ] && pass "no task left" || fail "tasks left: $left"
left=$(ctr_ containers ls -q | grep -c '^load-' || true)
[ "$left" = 0 ] && pass "no container left" || fail "containers left: $left"
no_shims && pass "0 nanoshim shim processes left (${t_stop} ms to stop all)" || fail "shims left: $(count_shims)"
mounts=$(grep -c " $WORK/" /proc/self/mounts || true)
[ "$mounts" = 0 ] && pass "no mount of the private root left" || fail "mounts left: $mounts"
socks=0
while read -r s; do [ -e "$s" ] && socks=$((socks + 1)); done <"$WORK/sockets"
[ "$socks" = 0 ] && pass "no shim socket left in /run/containerd/s ($(wc -l <"$WORK/sockets") checked)" ||
        fail "sockets left: $socks"
poll_until 10 no_zombies
z=$(count_zombies)
[ "$z" = 0 ] && pass "0 zombies" || fail "zombies: $z"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
