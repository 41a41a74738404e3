#!/bin/bash
# The shim daemon driven by shimctl with real runc on busybox bundles.
#   test-shim.sh SHIM_BINARY SHIMCTL SOURCE_ROOT
# Runs under tests/helpers/subreaper (see tests/meson.build). Needs root (exit 77
# otherwise). Each scenario starts its own shim; the last line is "N passed, M failed".
set -u
[ $# -eq 3 ] || { echo "usage: $0 SHIM_BINARY SHIMCTL SOURCE_ROOT" >&2; exit 2; }
. "$(dirname "$(readlink -f "$0")")/lib.sh"
it_setup "$1" "$2" "$3"

# Runs ID from BUNDLE to its end; prints what `wait` printed, then deletes it.
run_to_end() {
        local id=$1 b=$2 out err
        shift 2
        # A failure prints shimctl's message instead of the status (it shows in the FAIL).
        err=$(ctl create "$id" --bundle "$b" "$@" 2>&1 >/dev/null) || { echo "create: $err"; return 1; }
        err=$(ctl start "$id" 2>&1 >/dev/null) || { echo "start: $err"; return 1; }
        out=$(ctl --timeout 30 wait "$id")
        err=$(ctl delete "$id" 2>&1 >/dev/null) || { echo "delete: $err"; return 1; }
        echo "$out"
}

t_exit_codes() {
        shim_start exit-codes || return
        local n b got st
        for n in 0 1 42 255; do
                b=$(bundle "exit$n" sh -c "exit $n")
                ctl create "exit$n" --bundle "$b" >/dev/null && ctl start "exit$n" >/dev/null
                got=$(ctl --timeout 30 wait "exit$n")
                st=$?
                expect_eq "exit code $n: wait prints it" "$got" "$n"
                expect_eq "exit code $n: wait exits with it" "$st" "$n"
                got=$(ctl state "exit$n" | grep -o '"status":"[a-z]*","[^}]*"exit_status":[0-9]*' |
                        sed -e 's/"status":"\([a-z]*\)".*"exit_status":\([0-9]*\)/\1 \2/')
                expect_eq "exit code $n: state" "$got" "stopped $n"
                got=$(ctl delete "exit$n" | grep -o '"exit_status":[0-9]*')
                expect_eq "exit code $n: delete" "$got" "\"exit_status\":$n"
        done
        shim_stop
}

t_sigkill() {
        shim_start sigkill || return
        local b got
        b=$(bundle sigkill sleep 1000)
        ctl create k1 --bundle "$b" >/dev/null && ctl start k1 >/dev/null
        ctl kill k1 --signal KILL
        got=$(ctl --timeout 30 wait k1)
        expect_eq "SIGKILL -> 137" "$got" 137
        ctl delete k1 >/dev/null
        # The same through one chained shimctl: kill + wait + delete.
        ctl create k2 --bundle "$b" >/dev/null && ctl start k2 >/dev/null
        got=$(ctl --timeout 30 kill k2 --signal KILL + wait k2 + delete k2 | tr '\n' ' ')
        expect_eq "chained kill + wait + delete" "$(echo "$got" | grep -o '^137 {"pid":[0-9]*,"exit_status":137' |
                sed 's/"pid":[0-9]*/"pid":P/')" '137 {"pid":P,"exit_status":137'
        # A failing command ends the chain: the shutdown after it is not sent.
        ctl state nosuch + shutdown x >/dev/null 2>&1
        local st=$?
        if [ "$st" = 1 ] && ! pid_done "$SHIM_PID"; then pass "a failed command ends the chain (status 1)"; else
                fail "chain after a failure: status $st"
        fi
        shim_stop
}

# An init that handles TERM: it says "ready" once the trap is set, so the kill cannot
# arrive before (PID 1 without a handler ignores TERM).
t_sigterm_trap() {
        shim_start sigterm-trap || return
        local b got
        b=$(bundle sigterm-trap sh -c 'trap "exit 143" TERM; echo ready; while :; do sleep 0.05; done')
        fifo_reader "$SHIM_DIR/out" "$SHIM_DIR/out.txt"
        ctl create t1 --bundle "$b" --stdout "$SHIM_DIR/out" >/dev/null && ctl start t1 >/dev/null
        poll_until 10 grep -q ready "$SHIM_DIR/out.txt" || fail "SIGTERM trap: init never said ready"
        ctl kill t1 --signal TERM
        got=$(ctl --timeout 20 wait t1)
        expect_eq "SIGTERM with a trap -> 143" "$got" 143
        ctl delete t1 >/dev/null
        wait_pid "$READER_PID"
        shim_stop
}

t_sigterm_ignored() {
        shim_start sigterm-ignored || return
        local b got
        b=$(bundle sigterm-ignored sleep 1000)
        ctl create t2 --bundle "$b" >/dev/null && ctl start t2 >/dev/null
        if ctl kill t2 --signal TERM; then pass "SIGTERM to sleep as PID 1: kill returned"; else fail "kill TERM failed"; fi
        # A negative: give a wrongly delivered TERM a moment to show, then look.
        if poll_until 1 sh -c "'$SHIMCTL' -a '$SOCK' state t2 | grep -q '\"status\":\"stopped\"'"; then
                fail "SIGTERM to sleep as PID 1: it stopped"
        else
                ctl state t2 | grep -q '"status":"running"' && pass "SIGTERM to sleep as PID 1: still running" ||
                        fail "SIGTERM to sleep as PID 1: state is not running"
        fi
        ctl kill t2 --signal SIGKILL
        got=$(ctl --timeout 30 wait t2)
        expect_eq "then SIGKILL -> 137" "$got" 137
        ctl delete t2 >/dev/null
        shim_stop
}

t_kill_all() {
        shim_start kill-all || return
        local b got pids p alive=0
        b=$(bundle kill-all sh -c 'sleep 1000 & sleep 1000 & echo ready; wait')
        fifo_reader "$SHIM_DIR/out" "$SHIM_DIR/out.txt"
        ctl create ka --bundle "$b" --stdout "$SHIM_DIR/out" >/dev/null && ctl start ka >/dev/null
        poll_until 10 grep -q ready "$SHIM_DIR/out.txt"
        pids=$(ctl pids ka | grep -o '"pid":[0-9]*' | cut -d: -f2)
        expect_eq "kill --all: 3 processes before" "$(echo "$pids" | wc -w)" 3
        ctl kill ka --all --signal KILL
        got=$(ctl --timeout 30 wait ka)
        expect_eq "kill --all: init status" "$got" 137
        for p in $pids; do
                poll_until 10 pid_done "$p" || alive=$((alive + 1))
        done
        expect_eq "kill --all: processes left" "$alive" 0
        ctl delete ka >/dev/null
        wait_pid "$READER_PID"
        shim_stop
}

t_exec() {
        shim_start exec || return
        local b got
        b=$(bundle exec-init sleep 1000)
        ctl create ex --bundle "$b" >/dev/null && ctl start ex >/dev/null
        ctl exec ex e5 -- sh -c 'exit 5' && ctl start ex --exec e5 >/dev/null
        got=$(ctl --timeout 30 wait ex --exec e5)
        expect_eq "exec: wait prints its own status" "$got" 5
        got=$(ctl delete ex --exec e5 | grep -o '"exit_status":[0-9]*')
        expect_eq "exec: delete" "$got" '"exit_status":5'
        ctl state ex | grep -q '"status":"running"' && pass "exec: the init still runs" || fail "exec: init not running"
        ctl kill ex --signal KILL
        got=$(ctl --timeout 30 wait ex)
        expect_eq "exec: init status after" "$got" 137
        ctl delete ex >/dev/null
        shim_stop
}

t_concurrent_wait() {
        shim_start concurrent-wait || return
        local b i pids=() ok=0
        b=$(bundle cwait sleep 1000)
        ctl create cw --bundle "$b" >/dev/null && ctl start cw >/dev/null
        for i in 1 2 3 4 5 6; do
                ctl wait cw >"$SHIM_DIR/wait$i" 2>&1 &
                pids+=($!)
                it_track "$!"
        done
        ctl kill cw --signal KILL
        for i in 1 2 3 4 5 6; do
                wait_pid "${pids[$((i - 1))]}"
                [ "$WAITED" = 137 ] && [ "$(cat "$SHIM_DIR/wait$i")" = 137 ] && ok=$((ok + 1))
        done
        expect_eq "6 concurrent waits all get 137" "$ok" 6
        ctl delete cw >/dev/null
        shim_stop
}

# topics of the events printed by the receiver, one line: "create start ..."
topics_of() {
        grep -o '"topic":"/tasks/[a-z-]*"' "$1" | sed -e 's|"topic":"/tasks/||' -e 's/"$//' | tr '\n' ' ' | sed 's/ $//'
}

# Create, start, an exec that exits (its exit comes before the init's), an exec still
# running when the init is killed (its exit must still come first), delete.
t_events_order() {
        local ev=$IT_TMP/ev-order/ev.sock got b
        "$SHIMCTL" events --listen "$ev" --count 10 >"$IT_TMP/ev-order.out" 2>"$IT_TMP/ev-order.err" &
        local rpid=$!
        it_track "$rpid"
        poll_until 10 test -S "$ev"
        shim_start events-order "$ev" || return
        b=$(bundle ev-order sleep 1000)
        ctl create eo --bundle "$b" >/dev/null && ctl start eo >/dev/null
        ctl exec eo ee -- sh -c 'exit 3' && ctl start eo --exec ee >/dev/null
        ctl --timeout 20 wait eo --exec ee >/dev/null
        ctl exec eo er -- sleep 1000 && ctl start eo --exec er >/dev/null
        ctl kill eo --signal KILL
        ctl --timeout 20 wait eo >/dev/null
        ctl delete eo >/dev/null
        wait_pid "$rpid" 20 || fail "events receiver did not get 10 events"
        expect_eq "event order" "$(topics_of "$IT_TMP/ev-order.out")" \
                "create start exec-added exec-started exit exec-added exec-started exit exit delete"
        got=$(grep '/tasks/exit' "$IT_TMP/ev-order.out" | grep -o '"id":"[a-z]*","pid":[0-9]*,"exit_status":[0-9]*' |
                sed -e 's/"id":"\([a-z]*\)".*"exit_status":\([0-9]*\)/\1=\2/' | tr '\n' ' ')
        expect_eq "execs' exits before the init's" "$got" "ee=3 er=137 eo=137 "
        grep -q '"namespace":"nanoshim-it"' "$IT_TMP/ev-order.out" && pass "events carry the namespace" ||
                fail "events: no namespace"
        shim_stop
}

# Four containers of one shim: their events reach the receiver together, one
# container's never two at once. The receiver holds its answers until 4 Forwards wait
# (--batch 4); a shim that sends one event after the other never gets there (each
# batch times out after 2 s, said on the receiver's stderr).
t_events_concurrent() {
        local ev=$IT_TMP/ev-conc/ev.sock b i got
        "$SHIMCTL" events --listen "$ev" --count 16 --batch 4 >"$IT_TMP/ev-conc.out" 2>"$IT_TMP/ev-conc.err" &
        local rpid=$!
        it_track "$rpid"
        poll_until 10 test -S "$ev"
        shim_start events-conc "$ev" || return
        b=$(bundle ev-conc sleep 1000)
        # (each start's event waits behind its container's create, still unanswered)
        for i in 1 2 3 4; do ctl create "ec$i" --bundle "$b" >/dev/null && ctl start "ec$i" >/dev/null; done
        for i in 1 2 3 4; do ctl kill "ec$i" --signal KILL; done
        for i in 1 2 3 4; do ctl --timeout 20 wait "ec$i" >/dev/null; done
        for i in 1 2 3 4; do ctl delete "ec$i" >/dev/null; done
        wait_pid "$rpid" 30 || fail "concurrent events: the receiver did not get 16 events"
        got=$(grep -c . "$IT_TMP/ev-conc.err")
        expect_eq "concurrent events: every batch of 4 filled, no container twice at once" "$got" 0
        [ "$got" = 0 ] || sed 's/^/    /' "$IT_TMP/ev-conc.err"
        for i in 1 2 3 4; do
                grep "\"container_id\":\"ec$i\"" "$IT_TMP/ev-conc.out" >"$IT_TMP/ev-conc.$i"
                expect_eq "concurrent events: ec$i's in order" "$(topics_of "$IT_TMP/ev-conc.$i")" \
                        "create start exit delete"
        done
        shim_stop
}

# The receiver is down while the events happen, then comes up: all of them, in order.
t_events_late() {
        local ev=$IT_TMP/ev-late/ev.sock got
        mkdir -p "$IT_TMP/ev-late" && chmod 700 "$IT_TMP/ev-late"
        shim_start events-late "$ev" || return
        got=$(run_to_end late "$(bundle ev-late sh -c 'exit 9')")
        expect_eq "late receiver: run" "$got" 9
        "$SHIMCTL" events --listen "$ev" --count 4 >"$IT_TMP/ev-late.out" 2>&1 &
        local rpid=$!
        it_track "$rpid"
        wait_pid "$rpid" 30 || fail "late receiver: not all events arrived"
        expect_eq "late receiver: all events, in order" "$(topics_of "$IT_TMP/ev-late.out")" "create start exit delete"
        shim_stop
}

t_events_fail_first() {
        local ev=$IT_TMP/ev-fail/ev.sock got
        "$SHIMCTL" events --listen "$ev" --count 4 --fail-first 3 >"$IT_TMP/ev-fail.out" 2>&1 &
        local rpid=$!
        it_track "$rpid"
        poll_until 10 test -S "$ev"
        shim_start events-fail "$ev" || return
        got=$(run_to_end failing "$(bundle ev-fail sh -c 'exit 4')")
        expect_eq "receiver failing 3 Forwards: run" "$got" 4
        wait_pid "$rpid" 30 || fail "receiver failing 3 Forwards: not all events arrived"
        expect_eq "receiver failing 3 Forwards: all events once, in order" "$(topics_of "$IT_TMP/ev-fail.out")" \
                "create start exit delete"
        shim_stop
}

# 200 fast-exiting containers, each one's whole output through a FIFO read by a
# reader started before create; the last line has no newline.
t_stdout_fifo() {
        shim_start stdout-fifo || return
        local b i ok=0 bad=
        b=$(bundle fifo printf 'a\nb\nlast')
        printf 'a\nb\nlast' >"$SHIM_DIR/want"
        for i in $(seq 200); do
                fifo_reader "$SHIM_DIR/f$i" "$SHIM_DIR/o$i"
                run_to_end "f$i" "$b" --stdout "$SHIM_DIR/f$i" >/dev/null
                wait_pid "$READER_PID" 10
                if cmp -s "$SHIM_DIR/want" "$SHIM_DIR/o$i"; then
                        ok=$((ok + 1))
                else
                        [ -n "$bad" ] || bad=$i
                fi
                rm -f "$SHIM_DIR/f$i" "$SHIM_DIR/o$i"
        done
        expect_eq "stdout through a FIFO: full output in 200 runs${bad:+ (first bad: run $bad)}" "$ok" 200
        shim_stop
}

t_stdin() {
        shim_start stdin || return
        local b got w
        b=$(bundle stdin cat)
        mkfifo "$SHIM_DIR/in"
        printf 'hello\nstdin\nno newline' >"$SHIM_DIR/want"
        cat "$SHIM_DIR/want" >"$SHIM_DIR/in" &
        w=$!
        it_track "$w"
        fifo_reader "$SHIM_DIR/out" "$SHIM_DIR/out.txt"
        ctl create si --bundle "$b" --stdin "$SHIM_DIR/in" --stdout "$SHIM_DIR/out" >/dev/null &&
                ctl start si >/dev/null
        wait_pid "$w" 10 || fail "stdin: the writer never finished"
        # All of it is in the container once its output shows it; then say EOF.
        poll_until 10 cmp -s "$SHIM_DIR/want" "$SHIM_DIR/out.txt"
        ctl close-io si
        got=$(ctl --timeout 20 wait si)
        expect_eq "stdin: cat exits 0 after close-io" "$got" 0
        ctl delete si >/dev/null
        wait_pid "$READER_PID" 10
        cmp -s "$SHIM_DIR/want" "$SHIM_DIR/out.txt" && pass "stdin: round trip" ||
                fail "stdin: round trip: got '$(cat "$SHIM_DIR/out.txt")'"
        shim_stop
}

t_tty() {
        shim_start tty || return
        local b got
        b=$(bundle tty sh -c 'echo ready; while [ ! -e /tmp/go ]; do sleep 0.05; done; stty size; exit 7')
        bundle_edit "$b" 's/"terminal": false/"terminal": true/'
        fifo_reader "$SHIM_DIR/out" "$SHIM_DIR/out.txt"
        ctl create tt --bundle "$b" --terminal --stdout "$SHIM_DIR/out" >/dev/null && ctl start tt >/dev/null
        poll_until 10 grep -q ready "$SHIM_DIR/out.txt" || fail "tty: no output"
        ctl resize tt 100 40
        ctl exec tt go -- touch /tmp/go && ctl start tt --exec go >/dev/null && ctl --timeout 20 wait tt --exec go >/dev/null
        ctl delete tt --exec go >/dev/null
        got=$(ctl --timeout 20 wait tt)
        expect_eq "tty: exit status" "$got" 7
        ctl delete tt >/dev/null
        wait_pid "$READER_PID" 10
        got=$(tr -d '\r' <"$SHIM_DIR/out.txt" | tr '\n' ' ')
        expect_eq "tty: output and stty size after resize" "$got" "ready 40 100 "
        shim_stop
}

t_init_fds() {
        shim_start init-fds || return
        local b pid got
        b=$(bundle fds sleep 1000)
        fifo_reader "$SHIM_DIR/out" "$SHIM_DIR/out.txt"
        pid=$(ctl create fd --bundle "$b" --stdout "$SHIM_DIR/out" --stderr "$SHIM_DIR/out") && ctl start fd >/dev/null
        # Start returns once runc has released the init, which then execs: until it has,
        # it is still runc's init with runc's own (close-on-exec) fds.
        poll_until 10 sh -c "tr '\\0' ' ' </proc/$pid/cmdline | grep -q '^sleep 1000'" ||
                fail "init fds: the init never exec'd sleep"
        got=$(ls "/proc/$pid/fd" | sort -n | tr '\n' ' ')
        expect_eq "the container's init holds exactly fds 0 1 2" "$got" "0 1 2 "
        # The shim at rest with one container (stdout+stderr on a FIFO): at most 12 fds
        # (valgrind's own, when the shim runs under it, sit near the fd limit: not counted).
        got=$(ls "/proc/$SHIM_PID/fd" | awk '$1 < 1024' | wc -l)
        if [ "$got" -le 12 ]; then pass "the shim holds $got fds at rest (<= 12)"; else
                fail "the shim holds $got fds at rest: $(ls -l "/proc/$SHIM_PID/fd" | awk 'NR > 1 {print $9 $10 $11}' | tr '\n' ' ')"
        fi
        ctl kill fd --signal KILL
        ctl --timeout 20 wait fd >/dev/null # exits with the status (137)
        ctl delete fd >/dev/null
        wait_pid "$READER_PID" 10
        shim_stop
}

# A manager other than containerd: the shim creates and starts the container itself from
# the bundle's process.json, then is driven over its socket.
t_standalone_launch() {
        local name=standalone b ev out got st
        SHIM_DIR=$IT_TMP/$name
        mkdir -p "$SHIM_DIR"
        SOCK=$SHIM_DIR/s/shim.sock
        ev=$SHIM_DIR/ev.sock
        out=$SHIM_DIR/out
        mkfifo "$out"
        "$SHIMCTL" events --listen "$ev" --count 4 >"$SHIM_DIR/ev.out" 2>"$SHIM_DIR/ev.err" &
        local rpid=$!
        it_track "$rpid"
        poll_until 10 test -S "$ev"
        fifo_reader "$out" "$SHIM_DIR/out.txt"
        b=$(bundle launched sh -c 'echo launched by the shim; exit 5')
        printf '{"id":"la","stdout":"%s","stderr":"%s","runtime":"runc","runtime_root":"%s","events_address":"%s"}' \
                "$out" "$out" "$IT_TMP/runc" "$ev" >"$b/process.json"
        "$SHIM" -namespace "$IT_NS" -socket "$SOCK" -bundle "$b" -launch -debug >"$SHIM_DIR/shim.log" 2>&1 &
        SHIM_PID=$!
        it_track "$SHIM_PID"
        poll_until 10 test -S "$SOCK" || fail "launch: no socket"
        got=$(ctl --timeout 20 wait la)
        expect_eq "launch: the container ran and its status comes through wait" "$got" 5
        ctl delete la >/dev/null
        wait_pid "$READER_PID" 10
        expect_eq "launch: its output" "$(cat "$SHIM_DIR/out.txt")" "launched by the shim"
        wait_pid "$rpid" 20 || fail "launch: events receiver did not get 4 events"
        expect_eq "launch: events" "$(topics_of "$SHIM_DIR/ev.out")" "create start exit delete"
        grep -q 'runtime: runc run ' "$SHIM_DIR/shim.log" && ! grep -q 'runtime: runc start ' "$SHIM_DIR/shim.log" &&
                pass "launch: created and started by one runtime execution (run --detach)" ||
                fail "launch: runtime calls: $(grep -o 'runtime: runc [a-z]*' "$SHIM_DIR/shim.log" | tr '\n' ' ')"
        shim_stop

        # A launch whose create fails: the shim exits non-zero with runc's message in its log.
        b=$(bundle launch-bad /bin/nonexistent)
        printf '{"id":"lb","runtime_root":"%s"}' "$IT_TMP/runc" >"$b/process.json"
        "$SHIM" -namespace "$IT_NS" -socket "$SHIM_DIR/s/bad.sock" -bundle "$b" -launch >"$SHIM_DIR/bad.log" 2>&1 &
        local bad=$!
        it_track "$bad"
        wait_pid "$bad" 20
        st=$WAITED
        [ "$st" != 0 ] && [ "$st" != timeout ] && pass "launch: a failed create ends the shim ($st)" ||
                fail "launch: failed create: shim status $st"
        grep -qF 'exec: \"/bin/nonexistent\": stat /bin/nonexistent: no such file or directory' "$SHIM_DIR/bad.log" &&
                pass "launch: runc's message in the shim log" || fail "launch: runc's message missing: $(tail -3 "$SHIM_DIR/bad.log")"
        [ ! -e "$SHIM_DIR/s/bad.sock" ] && [ ! -e "$SHIM_DIR/s/bad.sock.launching" ] && pass "launch: its socket is removed" || fail "launch: socket left"

        # A process.json with a typo is refused before anything starts.
        printf '{"id":"lc","stdout":"x","termnal":true}' >"$b/process.json"
        "$SHIM" -namespace "$IT_NS" -socket "$SHIM_DIR/s/typo.sock" -bundle "$b" -launch >"$SHIM_DIR/typo.log" 2>&1
        st=$?
        [ "$st" != 0 ] && grep -qF 'unknown key \"termnal\"' "$SHIM_DIR/typo.log" && pass "launch: unknown key refused" ||
                fail "launch: typo accepted (status $st): $(cat "$SHIM_DIR/typo.log")"
}

# The init dying before its pid is known: a fake runtime (real runc cannot do this on
# demand) whose create starts an "init" that exits 3 at once, orphaned to the shim, and
# returns only once the shim has reaped it -- then writes the pid file. The exit was
# reaped before anyone asked for that pid, and must still be the container's.
t_early_exit() {
        local fake=$IT_TMP/fake-runc b got
        cat >"$fake" <<'FAKE'
#!/bin/sh
cmd=""; pidfile=""
while [ $# -gt 0 ]; do
        case $1 in
        --root|--log|--log-format) shift ;;
        --pid-file) pidfile=$2; shift ;;
        create|start|state|kill|delete) [ -z "$cmd" ] && cmd=$1 ;;
        esac
        shift
done
case $cmd in
create)
        # The "init" exits only once orphaned to the shim, so that only the shim can
        # reap it (never the sh that started it).
        sh -c '"$0" $$ & echo $! >"$1"' "$(dirname "$0")/fake-init" "$pidfile.tmp"
        pid=$(cat "$pidfile.tmp")
        # A zombie still answers kill -0: wait until the shim has reaped it.
        n=0
        while kill -0 "$pid" 2>/dev/null; do n=$((n + 1)); [ $n -gt 1000 ] && exit 9; sleep 0.01; done
        mv "$pidfile.tmp" "$pidfile" ;;
state) echo '{"id":"x","pid":0,"status":"stopped"}' ;;
esac
exit 0
FAKE
        cat >"$IT_TMP/fake-init" <<'INIT'
#!/bin/sh
# $1: the pid of the process that started us; exit 3 once orphaned from it.
while [ "$(cut -d' ' -f4 /proc/$$/stat)" = "$1" ]; do sleep 0.01; done
exit 3
INIT
        chmod +x "$fake" "$IT_TMP/fake-init"
        shim_start early-exit || return
        b=$(bundle early true)
        ctl create early --bundle "$b" --runtime-binary "$fake" >/dev/null || fail "early exit: create failed"
        ctl start early >/dev/null
        got=$(ctl --timeout 10 wait early)
        expect_eq "early exit: the exit reaped before the pid was known is the init's" "$got" 3
        ctl delete early >/dev/null
        shim_stop
}

# The init's Start reads runc's exec fifo in place (no `runc start`): runc then says
# "running", and the container runs, execs and exits as ever. With a poststart hook
# (runc 1.2 runs those in `runc start`) the runtime's start runs, and so does the hook.
t_start_in_place() {
        shim_start start-in-place || return
        local b got pid
        b=$(bundle sip sh -c 'echo up; exec sleep 1000')
        ctl create sip --bundle "$b" >/dev/null
        got=$(runc --root "$IT_TMP/runc" state sip | grep -o '"status": *"[a-z]*"' | tr -d ' ')
        expect_eq "start in place: runc says created before Start" "$got" '"status":"created"'
        got=$(ctl start sip)
        pid=$(ctl state sip | grep -o '"pid":[0-9]*' | cut -d: -f2)
        expect_eq "start in place: Start answers the init's pid" "$got" "$pid"
        got=$(runc --root "$IT_TMP/runc" state sip | grep -o '"status": *"[a-z]*"' | tr -d ' ')
        expect_eq "start in place: runc says running after" "$got" '"status":"running"'
        [ ! -e "$IT_TMP/runc/sip/exec.fifo" ] && pass "start in place: runc's exec fifo is gone" ||
                fail "start in place: exec.fifo left"
        got=$(grep -c "runtime: .* start (pid" "$SHIM_DIR/shim.log")
        expect_eq "start in place: no runtime start was run" "$got" 0
        grep -q "sip: starting in place" "$SHIM_DIR/shim.log" && pass "start in place: the log says so" ||
                fail "start in place: not in the log"
        ctl exec sip e1 -- sh -c 'exit 6' && ctl start sip --exec e1 >/dev/null
        got=$(ctl --timeout 30 wait sip --exec e1)
        expect_eq "start in place: an exec runs afterwards" "$got" 6
        ctl delete sip --exec e1 >/dev/null
        ctl kill sip --signal KILL
        got=$(ctl --timeout 30 wait sip)
        expect_eq "start in place: the init's exit" "$got" 137
        ctl delete sip >/dev/null

        b=$(bundle siph sh -c 'exit 7')
        bundle_edit "$b" "s|^{|{\"hooks\": {\"poststart\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo ran >$IT_TMP/poststart\"]}]},|"
        got=$(run_to_end siph "$b")
        expect_eq "poststart hook: exit status" "$got" 7
        [ -s "$IT_TMP/poststart" ] && pass "poststart hook: it ran" || fail "poststart hook: it did not run"
        got=$(grep -c "runtime: .* start (pid" "$SHIM_DIR/shim.log")
        expect_eq "poststart hook: the runtime's start ran" "$got" 1
        grep -q "siph: running the runtime's start: poststart hooks" "$SHIM_DIR/shim.log" &&
                pass "poststart hook: the log says why" || fail "poststart hook: no reason in the log"

        # An init killed before its Start: the Start fails, the exit is the init's.
        b=$(bundle sipk sleep 1000)
        ctl create sipk --bundle "$b" >/dev/null
        pid=$(ctl state sipk | grep -o '"pid":[0-9]*' | cut -d: -f2)
        kill -KILL "$pid"
        if ctl start sipk >/dev/null 2>&1; then fail "dead init: Start succeeded"; else
                pass "dead init: Start fails"
        fi
        got=$(ctl --timeout 30 wait sipk)
        expect_eq "dead init: its exit" "$got" 137
        ctl delete sipk >/dev/null
        shim_stop
}

# A container that allocates past its memory limit: /tasks/oom comes before its
# /tasks/exit, the status is 137 and the exit record carries the OOM flag.
t_oom() {
        local ev=$IT_TMP/oom/ev.sock b got
        "$SHIMCTL" events --listen "$ev" --count 5 >"$IT_TMP/oom.out" 2>"$IT_TMP/oom.err" &
        local rpid=$!
        it_track "$rpid"
        poll_until 10 test -S "$ev"
        shim_start oom "$ev" || return
        b=$(bundle oom sh -c 'x=0123456789abcdef; while :; do x=$x$x; done')
        bundle_edit "$b" 's|"resources": {|"resources": {"memory": {"limit": 16777216, "swap": 16777216}, |'
        ctl create oo --bundle "$b" >/dev/null && ctl start oo >/dev/null
        got=$(ctl --timeout 30 wait oo)
        expect_eq "oom: killed by the kernel" "$got" 137
        got=$(cut -d' ' -f1,4 "$b/init.exit" 2>/dev/null)
        expect_eq "oom: exit record (status, oom flag)" "$got" "137 1"
        ctl delete oo >/dev/null
        wait_pid "$rpid" 20 || fail "oom: events receiver did not get 5 events"
        expect_eq "oom: events" "$(topics_of "$IT_TMP/oom.out")" "create start oom exit delete"
        shim_stop
}

# A reader that stops: the container's writes stall, the shim's API does not, and its
# memory does not grow; once the reader goes on, every byte arrives.
t_backpressure() {
        shim_start backpressure || return
        local b got rss
        b=$(bundle bp head -c 33554432 /dev/zero) # the init is the writer
        fifo_reader "$SHIM_DIR/out" "$SHIM_DIR/out.bin"
        # The reader stops before the writer starts: stopped after `start`, a loaded
        # machine let the container write everything first.
        ctl create bp --bundle "$b" --stdout "$SHIM_DIR/out" >/dev/null
        kill -STOP "$READER_PID"
        ctl start bp >/dev/null
        # The container gets as far as the FIFO holds (64 KiB at least) and no further.
        local pid wrote
        pid=$(ctl state bp | grep -o '"pid":[0-9]*' | cut -d: -f2)
        poll_until 10 sh -c "[ \$(awk '/^wchar:/ {print \$2}' /proc/$pid/io) -ge 65536 ]" ||
                fail "back-pressure: the container never filled the FIFO"
        got=$(ctl --timeout 5 state bp | grep -o '"status":"[a-z]*"')
        expect_eq "back-pressure: the API answers while the reader is stopped" "$got" '"status":"running"'
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SHIM_PID/status")
        if [ -n "${IT_SHIM_WRAP:-}" ]; then
                echo "  (the shim runs under ${IT_SHIM_WRAP%% *}: its RSS (${rss} kB) is not the shim's alone, not checked)"
        elif grep -q libasan "/proc/$SHIM_PID/maps"; then
                echo "  (an ASan build of the shim: its RSS (${rss} kB) is mostly shadow memory, not checked)"
        elif [ "$rss" -lt 8192 ]; then pass "back-pressure: the shim's RSS stays small (${rss} kB)"; else
                fail "back-pressure: the shim's RSS is ${rss} kB"
        fi
        wrote=$(awk '/^wchar:/ {print $2}' "/proc/$pid/io")
        if [ "$wrote" -lt 16777216 ]; then pass "back-pressure: the container is held back ($wrote bytes out)"; else
                fail "back-pressure: the container wrote $wrote bytes with nobody reading"
        fi
        kill -CONT "$READER_PID"
        got=$(ctl --timeout 30 wait bp)
        expect_eq "back-pressure: the container finishes once the reader reads" "$got" 0
        ctl delete bp >/dev/null
        wait_pid "$READER_PID" 10
        expect_eq "back-pressure: every byte arrives" "$(stat -c %s "$SHIM_DIR/out.bin")" 33554432
        shim_stop
}

# The runtime's state goes as soon as the init's exit is reported (its own PID namespace,
# no poststop hooks), so that Delete answers at once; with a poststop hook, `runc
# delete` waits for Delete (OCI runs those hooks in the delete operation).
t_early_delete() {
        shim_start early-delete || return
        local b got order
        b=$(bundle ed sh -c 'exit 4')
        ctl create ed --bundle "$b" >/dev/null && ctl start ed >/dev/null
        got=$(ctl --timeout 30 wait ed)
        expect_eq "early delete: exit status" "$got" 4
        if poll_until 10 sh -c "! runc --root '$IT_TMP/runc' state ed >/dev/null 2>&1"; then
                pass "early delete: the runtime's state is gone before Delete"
        else
                fail "early delete: runc still knows ed before Delete"
        fi
        got=$(ctl delete ed | grep -o '"exit_status":[0-9]*')
        expect_eq "early delete: Delete still reports the status" "$got" '"exit_status":4'
        # runc's state and cgroups went in place, without running runc: no runtime
        # delete in the log before the next container's Create, no cgroup left.
        got=$(awk '/Task Create/ {n++} n == 1 && /runtime: .* delete/ {d++} END {print d + 0}' "$SHIM_DIR/shim.log")
        expect_eq "early delete: done in place (no runc delete run)" "$got" 0
        got=$(ls -d /sys/fs/cgroup/*/"$(basename "$IT_TMP")-ed" 2>/dev/null | wc -l)
        expect_eq "early delete: the container's cgroups are gone" "$got" 0

        b=$(bundle edh sh -c 'exit 5')
        bundle_edit "$b" 's|^{|{"hooks": {"poststop": [{"path": "/bin/true"}]},|'
        ctl create edh --bundle "$b" >/dev/null && ctl start edh >/dev/null
        got=$(ctl --timeout 30 wait edh)
        expect_eq "poststop hook: exit status" "$got" 5
        got=$(ctl delete edh | grep -o '"exit_status":[0-9]*')
        expect_eq "poststop hook: Delete reports the status" "$got" '"exit_status":5'
        # In the shim's log, after edh's Create: the Delete call comes before runc delete.
        order=$(awk '/Task Create/ {td = 0; rd = 0} /Task Delete/ && !td {td = NR}
                     /runtime: .*runc delete/ && !rd {rd = NR} END {print (td && rd && td < rd) ? "after" : "before"}' \
                "$SHIM_DIR/shim.log")
        expect_eq "poststop hook: runc delete waits for Delete" "$order" after
        shim_stop
}

# A container without its own PID namespace: after the init's exit the shim runs
# `runc kill --all` (the kernel would not end the rest), which freezes the cgroup while
# it works; the exit is reported only once it is done, so that a Delete never meets it
# (runc delete would find the container "paused"). The runc wrapper holds kill --all
# 1 s and notes when it let go.
t_kill_all_before_exit() {
        local wrap=$IT_TMP/runc-slow-killall b got done_at waited_at
        cat >"$wrap" <<WRAP
#!/bin/sh
case " \$* " in
*" kill --all "*) echo x >>"$IT_TMP/killall-calls"; sleep 1; runc "\$@"; st=\$?; date +%s%N >"$IT_TMP/killall-done"; exit \$st ;;
esac
exec runc "\$@"
WRAP
        chmod +x "$wrap"
        shim_start kill-all-exit || return
        b=$(bundle kae sh -c 'exit 6')
        bundle_edit "$b" 's/{"type": "pid"}, //'
        rm -f "$IT_TMP/killall-done" "$IT_TMP/killall-calls"
        ctl create kae --bundle "$b" --runtime-binary "$wrap" >/dev/null && ctl start kae >/dev/null
        got=$(ctl --timeout 30 wait kae)
        waited_at=$(date +%s%N)
        expect_eq "kill --all first: exit status" "$got" 6
        done_at=$(cat "$IT_TMP/killall-done" 2>/dev/null || echo none)
        if [ "$done_at" != none ] && [ "$done_at" -le "$waited_at" ]; then
                pass "kill --all first: the exit is reported after kill --all ended"
        else
                fail "kill --all first: Wait answered before kill --all ended (done: $done_at, wait: $waited_at)"
        fi
        # containerd kills --all every task it deletes: that kill --all ran already.
        got=$(ctl kill kae --all --signal KILL 2>&1)
        case $got in *"already finished"*) pass "kill --all after the exit: nothing left to kill" ;;
        *) fail "kill --all after the exit: $got" ;; esac
        expect_eq "kill --all after the exit: no second runtime kill --all" "$(wc -l <"$IT_TMP/killall-calls")" 1
        got=$(ctl delete kae | grep -o '"exit_status":[0-9]*')
        expect_eq "kill --all first: Delete" "$got" '"exit_status":6'
        shim_stop
}

# 1000 orphans; NAME, extra sed on the config (e.g. drop the pid namespace so the
# orphans come straight to the shim).
orphan_storm() {
        local name=$1 edit=$2 b got n
        shim_start "$name" || return
        b=$(bundle "$name" sh -c 'for i in $(seq 1000); do (sleep 0.01 &) ; done; sleep 2')
        [ -z "$edit" ] || bundle_edit "$b" "$edit"
        got=$(run_to_end storm "$b")
        expect_eq "$name: exit status" "$got" 0
        if poll_until 20 test "$(count_zombies_of "$SHIM_PID")" -eq 0; then
                pass "$name: no zombie left under the shim"
        else
                fail "$name: $(count_zombies_of "$SHIM_PID") zombies under the shim"
        fi
        shim_stop
}

t_orphan_storm() {
        orphan_storm orphans-pidns ""
        orphan_storm orphans-hostpid 's/{"type": "pid"}, //'
}

# An exec whose start fails (missing command, a file that cannot be executed) never ran:
# Start fails with runc's own text and no exit event is published for it (the init's
# exit stays the container's last; Docker takes 127/126 from the Start error, an exit
# event would override it). Wait, State, Kill and Delete of it answer as runc-v2's do:
# "created", pid 0, status 0, no exit time (tests/integration/test-containerd.sh
# compares the answers with runc-v2's).
t_exec_start_failed() {
        local ev=$IT_TMP/ev-xfail/ev.sock b err st got wpid
        "$SHIMCTL" events --listen "$ev" --count 7 >"$IT_TMP/ev-xfail.out" 2>"$IT_TMP/ev-xfail.err" &
        local rpid=$!
        it_track "$rpid"
        poll_until 10 test -S "$ev"
        shim_start exec-start-failed "$ev" || return
        b=$(bundle xfail sleep 1000)
        ctl create xf --bundle "$b" >/dev/null && ctl start xf >/dev/null
        ctl exec xf m1 -- /bin/missing
        err=$(ctl start xf --exec m1 2>&1)
        st=$?
        [ $st = 1 ] && echo "$err" | grep -q '^shimctl: OCI runtime exec failed: .*exec: "/bin/missing": stat /bin/missing: no such file or directory (UNKNOWN)$' &&
                pass "exec start failed: runc's own text" || fail "exec start failed: status $st, '$err'"
        got=$(ctl state xf --exec m1 | grep -o '"pid":.*"status":"[a-z]*"\|"exit_status":.*' | tr '\n' ' ')
        expect_eq "exec start failed: state" "$got" '"pid":0,"status":"created" "exit_status":0,"exited_at":null} '
        got=$(ctl --timeout 10 wait xf --exec m1)
        expect_eq "exec start failed: wait answers at once, status 0" "$got/$?" "0/0"
        err=$(ctl kill xf --exec m1 --signal KILL 2>&1)
        expect_eq "exec start failed: kill" "$err" "shimctl: process not created: failed precondition (FAILED_PRECONDITION)"
        err=$(ctl start xf --exec m1 2>&1)
        [ $? = 1 ] && pass "exec start failed: a second start is refused ($err)" || fail "second start: $err"
        got=$(ctl delete xf --exec m1)
        expect_eq "exec start failed: delete" "$got" '{"pid":0,"exit_status":0,"exited_at":null}'
        ctl exec xf m2 -- /etc/passwd
        err=$(ctl start xf --exec m2 2>&1)
        echo "$err" | grep -q 'exec: "/etc/passwd": permission denied' && pass "exec not executable: runc's text" ||
                fail "exec not executable: '$err'"
        # a Wait already waiting when the start fails is answered
        ctl exec xf m3 -- /bin/missing
        ctl --timeout 20 wait xf --exec m3 >"$SHIM_DIR/wait-m3" 2>&1 &
        wpid=$!
        it_track "$wpid"
        poll_until 10 sh -c "[ \$(grep -c 'Task Wait' '$SHIM_DIR/shim.log') -ge 2 ]" # m1's and m3's
        ctl start xf --exec m3 >/dev/null 2>&1
        wait_pid "$wpid" 20
        expect_eq "exec start failed: an outstanding wait returns 0" "$WAITED/$(cat "$SHIM_DIR/wait-m3")" "0/0"
        ctl kill xf --signal KILL
        got=$(ctl --timeout 30 wait xf)
        expect_eq "exec start failed: the init's status" "$got" 137
        ctl delete xf >/dev/null
        wait_pid "$rpid" 20 || fail "exec start failed: the receiver did not get 7 events"
        expect_eq "exec start failed: no exit event for the execs" "$(topics_of "$IT_TMP/ev-xfail.out")" \
                "create start exec-added exec-added exec-added exit delete"
        shim_stop
}

t_errors() {
        shim_start errors || return
        local b err st
        err=$(ctl state nosuch 2>&1)
        st=$?
        [ $st -eq 1 ] && echo "$err" | grep -q 'NOT_FOUND' && pass "unknown id: NOT_FOUND" ||
                fail "unknown id: status $st, '$err'"
        err=$(ctl state ../x 2>&1)
        st=$?
        [ $st -eq 2 ] && echo "$err" | grep -q 'invalid container id' && pass "invalid id: refused by shimctl" ||
                fail "invalid id (shimctl): status $st, '$err'"
        b=$(bundle badid sleep 1)
        err=$("$SHIMCTL" --no-id-check -a "$SOCK" create ../x --bundle "$b" 2>&1)
        st=$?
        [ $st -eq 1 ] && echo "$err" | grep -q 'INVALID_ARGUMENT' && pass "invalid id: refused by the shim" ||
                fail "invalid id (shim): status $st, '$err'"
        b=$(bundle nonexistent nonexistent)
        err=$(ctl create ne --bundle "$b" 2>&1)
        st=$?
        [ $st -eq 1 ] && echo "$err" | grep -q 'exec: "nonexistent"' && pass "runc's error reaches shimctl" ||
                fail "nonexistent command: status $st, '$err'"
        err=$(ctl state ne 2>&1)
        echo "$err" | grep -q NOT_FOUND && pass "a failed create leaves nothing" || fail "failed create left: $err"
        err=$("$SHIMCTL" -a "$IT_TMP/nowhere.sock" state x 2>&1)
        st=$?
        [ $st -eq 3 ] && echo "$err" | grep -q "$IT_TMP/nowhere.sock" && pass "no shim: exit 3 naming the socket" ||
                fail "no shim: status $st, '$err'"
        # ttrpc's same-user rule: uid 0 with another gid is not served (docs/reliability.md)
        err=$(setpriv --regid 4242 --clear-groups "$SHIMCTL" -a "$SOCK" state x 2>&1)
        st=$?
        [ $st -eq 3 ] && echo "$err" | grep -q 'closed' && pass "peer uid 0 with another gid: refused" ||
                fail "peer uid 0 with another gid: status $st, '$err'"
        shim_stop
}

t_shutdown() {
        shim_start shutdown || return
        local pid=$SHIM_PID
        ctl shutdown sd
        if poll_until 10 pid_done "$pid"; then pass "shutdown: the shim exits"; else fail "shutdown: still running"; fi
        [ ! -e "$SOCK" ] && pass "shutdown: socket removed" || fail "shutdown: socket left"
        wait "$pid" 2>/dev/null
        SHIM_PID=
}

for t in t_exit_codes t_sigkill t_sigterm_trap t_sigterm_ignored t_kill_all t_kill_all_before_exit t_exec t_exec_start_failed t_concurrent_wait \
        t_events_order t_events_concurrent t_events_late t_events_fail_first t_stdout_fifo t_backpressure t_stdin t_tty t_init_fds t_oom t_early_exit t_early_delete t_start_in_place t_standalone_launch t_orphan_storm \
        t_errors t_shutdown; do
        if [ -n "${IT_ONLY:-}" ] && ! echo " $IT_ONLY " | grep -q " $t "; then
                continue
        fi
        echo "# $t"
        "$t"
done
it_summary
