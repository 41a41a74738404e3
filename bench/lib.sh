#!/bin/bash
# Helpers for bench/run.sh: timing, statistics, /proc sampling, process tracking and
# cleanup. Sourced after tests/integration/ctrd-lib.sh (poll_until, ctrd_*, ctr_).

BENCH_PIDS=()
BENCH_CGROUPS=()

# bench_install_packages PKG...: install the Debian packages not installed yet (the
# benchmark's own: conmon, gnuplot-nox), updating the lists once if needed.
bench_install_packages() {
        local p extra=""
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || extra="$extra $p"
        done
        [ -n "$extra" ] || return 0
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $extra >/dev/null ||
                { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                        --no-install-recommends $extra >/dev/null; }
}

# Microseconds since the epoch, without a fork.
now_us() {
        local t=$EPOCHREALTIME
        echo "${t/./}"
}

# A sleep without a fork (read on a FIFO nobody writes times out); see bench_setup.
msleep() {
        read -r -t "$1" -u "$BENCH_SLEEP_FD" _ 2>/dev/null
        return 0
}

# poll_fast SECONDS CMD...: like poll_until, at 1 ms steps with forkless sleeps.
poll_fast() {
        local deadline=$(($(now_us) + ${1} * 1000000))
        shift
        while ! "$@" >/dev/null 2>&1; do
                [ "$(now_us)" -lt "$deadline" ] || return 1
                msleep 0.001
        done
}

log() {
        printf '[%s] %s\n' "$(date +%T)" "$*" >&2
}

# Remember a background process so that the cleanup can stop it by its PID.
track() {
        BENCH_PIDS+=("$1")
}

# True when PID has exited (gone, or a zombie not yet reaped). Without a fork: it is
# polled inside timed intervals.
pid_done() {
        local line
        read -r line 2>/dev/null <"/proc/$1/stat" || return 0
        line=${line##*) } # the state follows the command name's ")"
        [ -z "$line" ] || [ "${line:0:1}" = Z ]
}

# record NAME VALUE: append one sample to $DATA/NAME.
record() {
        echo "$2" >>"$DATA/$1"
}

# stats FILE: "median p90 n" of the numbers in FILE (nearest rank); "- - 0" if none.
stats() {
        [ -s "$1" ] || { echo "- - 0"; return; }
        sort -g "$1" | awk '{ v[NR] = $1 }
                END {
                        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                        r = int(0.9 * NR); if (r < 0.9 * NR) r++; if (r < 1) r = 1
                        printf "%.6g %.6g %d\n", m, v[r], NR
                }'
}

median() {
        stats "$1" | cut -d' ' -f1
}

# median_ci FILE: "LO HI", a 95% confidence interval for the median of the values in
# FILE, from order statistics alone (no assumption on their distribution): the k-th
# smallest and the k-th largest, k = n/2 - 0.98 sqrt(n) rounded down (the normal
# approximation of the binomial; n >= 10). "- -" when there are fewer values.
median_ci() {
        sort -g "$1" | awk '{ v[NR] = $1 }
                END {
                        if (NR < 10) { print "- -"; exit }
                        k = int(NR / 2 - 0.98 * sqrt(NR)); if (k < 1) k = 1
                        printf "%.6g %.6g\n", v[k], v[NR - k + 1]
                }'
}

# ratio_file A B OUT: OUT gets A[i]/B[i] line by line (paired runs).
ratio_file() {
        paste "$1" "$2" | awk 'NF == 2 && $2 > 0 { printf "%.6g\n", $1 / $2 }' >"$3"
}

# fdiv A B [FORMAT]: A/B, or "-" when either is missing.
fdiv() {
        awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN {
                if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"; else printf f "\n", a / b }'
}

# fmt NUMBER [FORMAT]
fmt() {
        awk -v a="$1" -v f="${2:-%.1f}" 'BEGIN { if (a == "-" || a == "") print "-"; else printf f "\n", a }'
}

# The parent PID of PID.
ppid_of() {
        awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# proc_sample PID: "pss_kb rss_kb uss_kb threads fds cpu_ticks cpu_ns" of a live
# process (cpu_ns: time on a CPU from /proc/PID/schedstat, finer than the ticks).
proc_sample() {
        local pid=$1 fds cpu ns
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        cpu=$(cpu_ticks "$pid")
        ns=$(cpu_ns "$pid")
        awk -v fds="$fds" -v cpu="$cpu" -v ns="$ns" '
                FILENAME ~ /smaps_rollup$/ && $1 == "Pss:" { pss = $2 }
                FILENAME ~ /smaps_rollup$/ && $1 == "Rss:" { rss = $2 }
                FILENAME ~ /smaps_rollup$/ && ($1 == "Private_Clean:" || $1 == "Private_Dirty:") { uss += $2 }
                FILENAME ~ /status$/ && $1 == "Threads:" { thr = $2 }
                END { print pss + 0, rss + 0, uss + 0, thr + 0, fds, cpu, ns }' \
                "/proc/$pid/smaps_rollup" "/proc/$pid/status"
}

# cpu_ticks PID: utime+stime in clock ticks.
cpu_ticks() {
        sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

# cpu_ns PID: nanoseconds on a CPU, summed over all threads (schedstat is per thread).
cpu_ns() {
        local f run sum=0 _
        for f in /proc/"$1"/task/*/schedstat; do
                read -r run _ <"$f" 2>/dev/null || continue
                sum=$((sum + run))
        done
        echo "$sum"
}

# children_count PID: number of children (zombies included) of every thread of PID,
# read without a fork.
children_count() {
        local f n=0 kids
        for f in /proc/"$1"/task/*/children; do
                read -r -a kids <"$f" 2>/dev/null || true
                n=$((n + ${#kids[@]}))
        done
        echo "$n"
}

# sample_procs PID...: "pid pss_kb rss_kb uss_kb threads fds inotify cpu_ns wakeups" per
# process: one awk for all the smaps, fds and the threads' schedstat (on-CPU ns and
# times scheduled in) read without a fork; two scratch files in $WORK.
sample_procs() {
        local p f fds run cnt sum wk _
        [ $# -gt 0 ] || return 0
        for p in "$@"; do
                [ -d "/proc/$p" ] || continue # gone (one less sample, not an empty one)
                fds=0
                for f in /proc/"$p"/fd/*; do
                        [ -e "$f" ] || [ -L "$f" ] || continue
                        fds=$((fds + 1))
                done
                sum=0 wk=0
                for f in /proc/"$p"/task/*/schedstat; do
                        read -r run _ cnt <"$f" 2>/dev/null || continue
                        sum=$((sum + run)) wk=$((wk + cnt))
                done
                echo "$p $fds $sum $wk"
        done >"$WORK/.pf"
        # inotify instances: links to anon_inode:inotify
        find $(printf '/proc/%s/fd ' "$@") -lname 'anon_inode:inotify' 2>/dev/null |
                awk -F/ '{ n[$3]++ } END { for (p in n) print p, n[p] }' >"$WORK/.pino"
        # the /proc files are read with getline: one that vanished meanwhile skips its process
        awk 'FILENAME ~ /\.pino$/ { ino[$1] = $2; next }
                {
                        p = $1; pss = rss = uss = thr = 0; ok = 0
                        f = "/proc/" p "/smaps_rollup"
                        while ((getline l < f) > 0) {
                                ok = 1; split(l, a, " ")
                                if (a[1] == "Pss:") pss = a[2]
                                if (a[1] == "Rss:") rss = a[2]
                                if (a[1] == "Private_Clean:" || a[1] == "Private_Dirty:") uss += a[2]
                        }
                        close(f)
                        f = "/proc/" p "/status"
                        while ((getline l < f) > 0) { split(l, a, " "); if (a[1] == "Threads:") thr = a[2] }
                        close(f)
                        if (ok) printf "%s %d %d %d %d %d %d %s %s\n", p, pss, rss, uss, thr, $2, ino[p] + 0, $3, $4
                }' "$WORK/.pino" "$WORK/.pf"
}

# rest_delta BEFORE AFTER US: "processes cpu_ns wakeups seconds" over the window
# (processes alive at both ends).
rest_delta() {
        awk -v us="$3" 'NR == FNR { ns[$1] = $8; wk[$1] = $9; next }
                ($1 in ns) { n++; dns += $8 - ns[$1]; dwk += $9 - wk[$1] }
                END { printf "%d %.0f %.0f %.3f\n", n, dns, dwk, us / 1e6 }' "$1" "$2"
}

# ISO or ctr-style timestamp -> microseconds since the epoch.
ts_to_us() {
        date -u -d "$1" +%s%6N
}

# Stop everything this benchmark started: containerd's tasks and containers, the
# private containerd, tracked processes, runc containers in our roots, mounts, files.
bench_cleanup() {
        local rc=$? p id m c
        trap - EXIT INT TERM
        if [ -n "${CTRD_SOCK:-}" ] && [ -n "${CTRD_DIR:-}" ] && [ -e "$CTRD_DIR/containerd.pid" ]; then
                for id in $(ctr_ task ls -q 2>/dev/null); do
                        ctr_ task rm -f "$id" >/dev/null 2>&1
                done
                for id in $(ctr_ containers ls -q 2>/dev/null); do
                        ctr_ containers rm "$id" >/dev/null 2>&1
                done
                ctrd_stop
        fi
        # cgroups of ours: whatever is left in one goes back to its parent first
        for c in "${BENCH_CGROUPS[@]}"; do
                [ -d "$c" ] || continue
                while read -r p; do echo "$p" >"${c%/*}/cgroup.procs"; done <"$c/cgroup.procs" 2>/dev/null
                rmdir "$c" 2>/dev/null || echo "bench: cannot remove cgroup $c" >&2
        done
        for p in "${BENCH_PIDS[@]}"; do
                if ! pid_done "$p"; then
                        kill -KILL "$p" 2>/dev/null
                fi
                wait "$p" 2>/dev/null
        done
        if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
                local root
                for root in "$WORK"/runc-*; do
                        [ -d "$root" ] || continue
                        for id in $(runc --root "$root" list -q 2>/dev/null); do
                                runc --root "$root" delete --force "$id" >/dev/null 2>&1
                        done
                done
                for m in $(awk -v d="$WORK" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
                        umount -l "$m" 2>/dev/null
                done
                rm -rf "$WORK"
        fi
        [ -z "${BENCH_SLEEP_FIFO:-}" ] || rm -f "$BENCH_SLEEP_FIFO"
        exit "$rc"
}

# bench_under_subreaper SCRIPT ARGS...: unless already done, build build/ (setting it
# up if needed) and run SCRIPT again with ARGS under build/tests/subreaper, so that
# every orphan (shims daemonised by containerd, conmon, bare runc's containers) is
# reaped by us. Call after installing the packages SCRIPT needs; returns only when
# already under the subreaper.
bench_under_subreaper() {
        [ -z "${NSB_UNDER_SUBREAPER:-}" ] || return 0
        local script=$1
        shift
        [ -f "$SRC/build/build.ninja" ] || meson setup "$SRC/build" "$SRC" >/dev/null || exit 1
        ninja -C "$SRC/build" >/dev/null || exit 1
        export NSB_UNDER_SUBREAPER=1
        exec "$SRC/build/tests/subreaper" bash "$script" "$@"
}

# PERF_SCHED_EVENTS: what perf records for perf_sched_events and cut_phases.
PERF_SCHED_EVENTS=sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit,sched:sched_switch

# perf_sched_events PERF_DATA: one line per scheduler event recorded by `perf record -e
# $PERF_SCHED_EVENTS`, in time order: TIME KIND TGID DETAIL (the exec'd file, the
# forked child, "dead" for the exit of a whole process, the CPU of a context switch:
# TGID is then the process whose thread leaves that CPU).
perf_sched_events() {
        perf script -i "$1" -F pid,cpu,time,event,trace 2>/dev/null | awk '
                {
                        for (i = 1; i <= NF; i++) if ($i ~ /^sched:/) break
                        t = $(i - 1); sub(/:$/, "", t); cpu = $(i - 2); gsub(/[][]/, "", cpu); tgid = $(i - 3)
                        if ($i ~ /exec/) { for (j = i; j <= NF; j++) if ($j ~ /^filename=/) { sub(/^filename=/, "", $j); print t, "exec", tgid, $j } }
                        else if ($i ~ /fork/) { for (j = i; j <= NF; j++) if ($j ~ /^child_pid=/) { sub(/^child_pid=/, "", $j); print t, "fork", tgid, $j } }
                        else if ($i ~ /exit/ && $0 ~ /group_dead=true/) print t, "exit", tgid, "dead"
                        else if ($i ~ /switch/) print t, "switch", tgid, cpu + 0
                }'
}

# cut_phases CLIENT PARENT_PID CONTAINERD_PID: the events (perf_sched_events) on stdin,
# one run of the client binary CLIENT (ctr, docker) started by PARENT_PID after the
# other, each cut at the same points for both shims: the client starts, the shim's
# `start` action is exec'd, `runc create` runs, the container's `true` is exec'd (by
# `runc start`, or once nanoshim read runc's exec fifo in place: then there is no
# `runc start` phase) and exits, the shim daemon exits, containerd's `delete` action
# ends, the client exits.
# With context switches in the events, also the CPU time of each run's shim processes
# (the `start` and `delete` actions, the daemon and whatever it forks but runc) and of
# its runc processes (create, start, delete, and runc init until it execs the
# container's process): what the shim spends itself and has runc spend, whether on the
# critical path or beside it.
# One line per run and phase: SHIM PHASE MS.
# Only the clients PARENT_PID started and processes descending from that containerd
# count: other agents' clients, shims and runc may run at the same time.
cut_phases() {
        awk -v client="$1" -v parent="$2" -v ctrd="$3" '
                function out(name, a, b) { if (a > 0 && b > 0) printf "%s %s %.3f\n", kind, name, (b - a) * 1000 }
                $2 == "fork" && $3 == parent { ours[$4] = 1 }
                $2 == "switch" { d = (($4 in last) ? $1 - last[$4] : 0); last[$4] = $1
                        if (run && ($3 in shimfam)) shim_cpu += d
                        if (run && ($3 in runcfam)) runc_cpu += d
                        next }
                $2 == "exec" && $4 == client && ($3 in ours) { run = 1; cl = $3; t0 = $1; kind = ""; nrunc = 0
                        shim_start = rc0 = rc1 = rs0 = rs1 = true_exec = true_exit = 0; last_shim = 0; split("", shim); split("", fam); fam[ctrd] = 1
                        split("", shimfam); split("", runcfam); shim_cpu = runc_cpu = 0 }
                !run { next }
                $2 == "fork" && ($3 in fam) { fam[$4] = 1 }
                $2 == "fork" && ($3 in shimfam) { shimfam[$4] = 1 }
                $2 == "fork" && ($3 in runcfam) { runcfam[$4] = 1 }
                $2 == "exec" && $4 ~ /containerd-shim-/ && ($3 in fam) {
                        if (!kind) { kind = ($4 ~ /containerd-shim-nanoshim-v2$/) ? "nanoshim" : "runc-v2"; shim_start = $1 }
                        shim[$3] = 0; last_shim = $3; shimfam[$3] = 1 }
                $2 == "exec" && $4 ~ /\/runc$/ && ($3 in fam) { nrunc++; if (nrunc == 1) { rc = $3; rc0 = $1 } else if (nrunc == 2) { rs = $3; rs0 = $1 }
                        delete shimfam[$3]; runcfam[$3] = 1 }
                $2 == "exec" && $4 ~ /\/true$/ && ($3 in fam) { tr = $3; true_exec = $1; delete runcfam[$3] }
                $2 == "exit" {
                        if ($3 == rc) rc1 = $1
                        if ($3 == rs) rs1 = $1
                        if ($3 == tr) true_exit = $1
                        if ($3 in shim) shim[$3] = $1
                        if ($3 == cl && kind) {
                                # the last shim process is the delete action of containerd; the
                                # daemon is the one of the others that exited last
                                del_end = shim[last_shim]; daemon_exit = 0
                                for (p in shim) if (p != last_shim && shim[p] > daemon_exit) daemon_exit = shim[p]
                                out("1_client_start->shim_start", t0, shim_start)
                                out("2_shim_start->runc_create", shim_start, rc0)
                                out("3_runc_create", rc0, rc1)
                                out("4_create_done->process_exec", rc1, true_exec)
                                out("5_of_which_runc_start", rs0, rs1)
                                out("6_init_exit->daemon_exit", true_exit, daemon_exit)
                                out("7_daemon_exit->delete_action_done", daemon_exit, del_end)
                                out("8_->client_exit", del_end, $1)
                                out("9_total", t0, $1)
                                if (length(last)) {
                                        printf "%s 9a_cpu_of_the_shim_processes %.3f\n", kind, shim_cpu * 1000
                                        printf "%s 9b_cpu_of_runc %.3f\n", kind, runc_cpu * 1000
                                }
                                run = 0
                        }
                }' | sort -k1,1 -k2,2 -k3g
}

# phase_medians PHASES_FILE: the markdown table of each phase's median per shim.
phase_medians() {
        echo "| phase | nanoshim | runc-v2 |"
        echo "|---|---|---|"
        local p
        for p in $(cut -d' ' -f2 "$1" | sort -u); do
                awk -v p="$p" '$2 == p { v[$1, ++n[$1]] = $3 }
                        function med(k,   c) { c = n[k]; if (!c) return "-"; return sprintf("%.2f", (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2) }
                        END { name = p; sub(/^[0-9][a-z]?_/, "", name); print "| " name " | " med("nanoshim") " | " med("runc-v2") " |" }' "$1"
        done
}
