#!/bin/bash
# Helpers for the real-runc integration tests: a private temp dir and runc root, shims
# started in the foreground (standalone mode) and stopped by PID, polling with
# deadlines, PASS/FAIL bookkeeping and a cleanup trap that leaves nothing behind.
#   it_setup SHIM SHIMCTL SOURCE_ROOT      once, first
#   shim_start NAME [EVENTS_SOCKET]        sets SOCK, SHIM_PID, SHIM_DIR
#   shim_stop                              Shutdown, then wait for the exit (KILL at the deadline)
#   ctl ARGS...                            shimctl against $SOCK
#   bundle NAME CMD...                     $IT_TMP/bundles/NAME from tools/mkbundle.sh (prints it)
#   poll_until SECONDS CMD...              retry CMD until it succeeds or the deadline passes
#   pass MSG / fail MSG / expect_eq MSG GOT WANT
#   it_summary                             the last line: "N passed, M failed"; exit status

N_PASS=0
N_FAIL=0
IT_TMP=
IT_PIDS=()
IT_NS=nanoshim-it

now_ms() {
        echo $(($(date +%s%N) / 1000000))
}

poll_until() {
        local deadline=$(($(now_ms) + ${1} * 1000))
        shift
        while ! "$@" >/dev/null 2>&1; do
                [ "$(now_ms)" -lt "$deadline" ] || return 1
                sleep 0.02
        done
}

pass() {
        echo "PASS: $*"
        N_PASS=$((N_PASS + 1))
}

fail() {
        echo "FAIL: $*"
        N_FAIL=$((N_FAIL + 1))
}

expect_eq() {
        if [ "$2" = "$3" ]; then
                pass "$1"
        else
                fail "$1: got '$2', want '$3'"
        fi
}

# Remember a background process so that the cleanup can kill it by its PID.
it_track() {
        IT_PIDS+=("$1")
}

# True when PID has exited (gone, or a zombie not yet reaped by its parent).
pid_done() {
        [ ! -e "/proc/$1" ] && return 0
        local state
        state=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
        [ -z "$state" ] || [ "$state" = Z ]
}

# Zombies whose parent is PID.
count_zombies_of() {
        local ppid=$1 n=0 f rest
        for f in /proc/[0-9]*/stat; do
                rest=$(sed -e 's/^.*) //' "$f" 2>/dev/null) || continue
                set -- $rest
                [ "${1:-}" = Z ] && [ "${2:-}" = "$ppid" ] && n=$((n + 1))
        done
        echo "$n"
}

it_cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        if [ -n "$IT_TMP" ] && [ -d "$IT_TMP" ]; then
                local id
                local root
                # -runtime-root as given; a Root in runtime options gets /<namespace>
                for root in "$IT_TMP/runc" "$IT_TMP/runc/$IT_NS"; do
                        for id in $(runc --root "$root" list -q 2>/dev/null); do
                                runc --root "$root" delete --force "$id" >/dev/null 2>&1
                        done
                done
        fi
        local p
        for p in "${IT_PIDS[@]}"; do
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        if [ -n "$IT_TMP" ] && [ -d "$IT_TMP" ]; then
                local m
                for m in $(awk -v d="$IT_TMP" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
                        umount -l "$m" 2>/dev/null
                done
                rm -rf "$IT_TMP"
        fi
        exit "$rc"
}

it_setup() {
        SHIM=$(readlink -f "$1")
        SHIMCTL=$(readlink -f "$2")
        SRC=$(readlink -f "$3")
        if [ "$(id -u)" -ne 0 ]; then
                echo "SKIP: needs root (runc creates namespaces and cgroups)"
                exit 77
        fi
        if ! command -v runc >/dev/null || [ ! -x /bin/busybox ]; then
                echo "SKIP: needs runc and busybox-static"
                exit 77
        fi
        # Short: unix socket paths are limited to 107 bytes.
        IT_TMP=$(mktemp -d /tmp/nsit.XXXXXX)
        chmod 700 "$IT_TMP"
        mkdir -p "$IT_TMP/runc" "$IT_TMP/bundles"
        trap it_cleanup EXIT
        trap 'exit 130' INT TERM
}

# bundle NAME CMD...: a busybox bundle running CMD (prints its directory).
bundle() {
        local name=$1
        shift
        "$SRC/tools/mkbundle.sh" "$IT_TMP/bundles/$name" "$@" >/dev/null || return 1
        # A cgroup of its own: runc's default path is /<id>, and two runs of the suite
        # using the same ids would share (and kill) each other's containers.
        sed -i -e "s|\"linux\": {|\"linux\": {\"cgroupsPath\": \"/$(basename "$IT_TMP")-$name\", |" \
                "$IT_TMP/bundles/$name/config.json"
        echo "$IT_TMP/bundles/$name"
}

# Edit a bundle's config.json in place with a sed expression.
bundle_edit() {
        sed -i -e "$2" "$1/config.json"
}

shim_start() {
        local name=$1 events=${2:-}
        SHIM_DIR=$IT_TMP/$name
        mkdir -p "$SHIM_DIR"
        SOCK=$SHIM_DIR/s/shim.sock
        # IT_SHIM_WRAP: a command the shim runs under (e.g. valgrind), its log in the scenario dir
        local -a wrap=()
        if [ -n "${IT_SHIM_WRAP:-}" ]; then
                # shellcheck disable=SC2206
                wrap=(${IT_SHIM_WRAP//@DIR@/$SHIM_DIR})
        fi
        if [ -n "$events" ]; then
                "${wrap[@]}" "$SHIM" -namespace "$IT_NS" -socket "$SOCK" -runtime-root "$IT_TMP/runc" -events-address "$events" \
                        -debug >"$SHIM_DIR/shim.log" 2>&1 &
        else
                "${wrap[@]}" "$SHIM" -namespace "$IT_NS" -socket "$SOCK" -runtime-root "$IT_TMP/runc" -debug \
                        >"$SHIM_DIR/shim.log" 2>&1 &
        fi
        SHIM_PID=$!
        it_track "$SHIM_PID"
        if ! poll_until 10 test -S "$SOCK"; then
                fail "$name: the shim did not come up; its log:"
                tail -n 20 "$SHIM_DIR/shim.log"
                return 1
        fi
}

# Asks the shim to go (it only does with no container left), then makes sure it did.
shim_stop() {
        [ -n "${SHIM_PID:-}" ] || return 0
        ctl shutdown x >/dev/null 2>&1
        if ! poll_until 10 pid_done "$SHIM_PID"; then
                fail "shim $SHIM_PID still running after Shutdown; its log:"
                tail -n 20 "$SHIM_DIR/shim.log"
                kill -KILL "$SHIM_PID" 2>/dev/null
        fi
        wait "$SHIM_PID" 2>/dev/null
        local st=$?
        [ "$st" = 0 ] || fail "the shim exited with status $st after Shutdown$(
                [ -s "$SHIM_DIR/valgrind.log" ] && printf '; valgrind:\n%s' "$(head -40 "$SHIM_DIR/valgrind.log")")"
        SHIM_PID=
}

ctl() {
        "$SHIMCTL" -a "$SOCK" "$@"
}

# Start a reader that copies FIFO to FILE (sets READER_PID).
fifo_reader() {
        local fifo=$1 file=$2
        [ -p "$fifo" ] || mkfifo "$fifo"
        cat "$fifo" >"$file" &
        READER_PID=$!
        it_track "$READER_PID"
        # The reader must be at the FIFO before the caller goes on, as a client's is
        # before Create: a `cat` still being exec'd when the shim had already closed
        # its end found an empty FIFO and the output gone (once in 200 runs, loaded).
        poll_until 10 reader_at_fifo "$READER_PID" "$fifo"
}

# reader_at_fifo PID FIFO: PID waits in its open of FIFO for a writer, or has it open.
reader_at_fifo() {
        local f
        [ "$(cat "/proc/$1/wchan" 2>/dev/null)" = wait_for_partner ] && return 0
        for f in /proc/"$1"/fd/*; do
                [ "$(readlink "$f")" = "$(readlink -f "$2")" ] && return 0
        done
        return 1
}

# Wait for a background process of this shell with a deadline; its status in WAITED.
wait_pid() {
        local pid=$1 secs=${2:-20}
        if ! poll_until "$secs" pid_done "$pid"; then
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                WAITED=timeout
                return 1
        fi
        wait "$pid" 2>/dev/null
        WAITED=$?
}

it_summary() {
        echo "$N_PASS passed, $N_FAIL failed"
        [ "$N_FAIL" -eq 0 ]
}
