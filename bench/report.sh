#!/bin/bash
# The report of bench/run.sh: reads $DATA, writes $OUT/<date>-<host>.{md,tsv,png}.
# Sourced by run.sh (uses its variables and bench/lib.sh).

CLK_TCK=$(getconf CLK_TCK)

# mem_row LABEL NAME: one row of the memory table; sets MEM_<LABEL>_PSS (KB/container).
mem_row() {
        local label=$1 name=$2 nctr nshim
        read -r nctr nshim <"$DATA/count.$label"
        local line
        line=$(awk -v n="$nctr" -v hz="$CLK_TCK" '
                { pss += $1; rss += $2; uss += $3; cpu += $7
                  if ($4 > thr) thr = $4; if ($5 > fds) fds = $5
                  if (NR == 1 || $5 < fmin) fmin = $5 }
                END { printf "%.0f %.0f %.0f %d %d %d %.1f", pss / n, rss / n, uss / n, thr, fmin, fds, cpu / 1e6 / n }' \
                "$DATA/shims.$label")
        local pss rss uss thr fmin fmax cpu idle="-"
        read -r pss rss uss thr fmin fmax cpu <<<"$line"
        [ -s "$DATA/idle.$label" ] && idle=$(awk '{ s += $1; ns += $2 } END { printf "%d (%.2f ms)", s, ns / 1e6 }' "$DATA/idle.$label")
        local fdtxt=$fmax
        [ "$fmin" = "$fmax" ] || fdtxt="$fmin–$fmax"
        echo "| $name | $nctr | $nshim | $pss | $rss | $uss | $thr | $fdtxt | $cpu | $idle |"
        printf -v "MEM_${label}_PSS" '%s' "$pss"
        printf -v "MEM_${label}_THR" '%s' "$thr"
        printf -v "MEM_${label}_FDS" '%s' "$fmax"
        printf -v "MEM_${label}_IDLE" '%s' "$idle"
        echo "mem_pss_$label $pss" >>"$TSV"
}

# lat_row NAME A B: median/p90 of $DATA/A and $DATA/B and the paired ratio A/B.
lat_row() {
        local name=$1 a=$2 b=$3 ma pa mb pb mr pr
        read -r ma pa _ < <(stats "$DATA/$a")
        read -r mb pb _ < <(stats "$DATA/$b")
        ratio_file "$DATA/$a" "$DATA/$b" "$DATA/ratio.$a.$b"
        read -r mr pr _ < <(stats "$DATA/ratio.$a.$b")
        echo "| $name | $(fmt "$ma") | $(fmt "$pa") | $(fmt "$mb") | $(fmt "$pb") | $(fmt "$mr" %.3f) | $(fmt "$pr" %.3f) |"
        echo "ratio_$a.$b $mr" >>"$TSV"
        LAST_RATIO=$mr
}

# verdict OK_EXPRESSION: "met" or "**missed**" from an awk condition.
verdict() {
        if awk "BEGIN { exit !($1) }" 2>/dev/null; then echo met; else echo "**missed**"; fi
}

write_report() {
        local date host base
        date=$(date +%F)
        host=$(hostname -s)
        mkdir -p "$OUT"
        base=$OUT/$date-$host
        TSV=$base.tsv
        : >"$TSV"
        local md=$base.md
        local cpu_model
        cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
        {
                echo "# nanoshim benchmark, $date on $host"
                echo
                echo "Made by \`bench/run.sh -n $N -r $RUNS -t $TP_RUNS\` in $(((T_END - T_START) / 1000000)) s" \
                        "(see docs/performance.md for what each figure means)."
                echo
                echo "| | |"
                echo "|---|---|"
                echo "| date | $(date -u '+%F %T UTC') |"
                echo "| kernel | $(uname -r) |"
                echo "| CPU | $cpu_model ($(nproc) cores) |"
                echo "| load average (1, 5, 15 min) at start / end | $LOAD_START / $LOAD_END |"
                echo "| memory | $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
                echo "| cgroups | $(if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi) |"
                echo "| containerd | $(containerd --version | awk '{ print $3 }') |"
                echo "| containerd-shim-runc-v2 | the one of containerd $CTRD_VERSION ($CTRD_BIN) |"
                echo "| runc | $("$RUNC" --version | awk 'NR == 1 { print $3 }') |"
                echo "| conmon | $(conmon --version | awk 'NR == 1 { print $3 }') |"
                echo "| nanoshim | $("$SHIM" -v 2>/dev/null | head -n 1 || true) $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null) |"
                echo
                echo "## Memory and CPU at rest ($N \`sleep\` containers per subject)"
                echo
                echo "Per container: the sum over the subject's supervisor processes divided by the containers." \
                        "Threads and fds: per process (max; range when they differ). Start-up CPU: utime+stime of the" \
                        "supervisor process from its start until the container runs (time on a CPU from" \
                        "/proc/PID/schedstat), per container; for runc-v2 only the daemon, not its short-lived" \
                        "\`start\` parent (the same holds for nanoshim). Idle: utime+stime clock ticks (1/$CLK_TCK s)" \
                        "used by all of the subject's processes together over ${IDLE_S} s at rest (and the" \
                        "schedstat time)."
                echo
                echo "| subject | containers | processes | PSS KB/ctr | RSS KB/ctr | USS KB/ctr | threads | fds | start-up CPU ms/ctr | idle ticks in ${IDLE_S} s |"
                echo "|---|---|---|---|---|---|---|---|---|---|"
                mem_row nano "nanoshim, one shim per container"
                mem_row runc "containerd-shim-runc-v2, one per container"
                mem_row group "nanoshim, all in one pod group"
                mem_row conmon "conmon (+runc), one per container"
                echo
                echo "## Lifecycle latency (ms, $RUNS runs each, subjects alternating)"
                echo
                echo "Ratio: median (and p90) of the per-run ratios of paired, adjacent runs."
                echo
                echo "| measurement | nanoshim median | p90 | other median | p90 | ratio median | ratio p90 |"
                echo "|---|---|---|---|---|---|---|"
                lat_row "\`ctr run --rm IMAGE id /bin/true\` (other: runc-v2)" run_rm.nano run_rm.runc
                R_RUNRM=$LAST_RATIO
                lat_row "detached: run -d, task kill, exit event, task rm, containers rm (other: runc-v2)" cycle.nano cycle.runc
                R_CYCLE=$LAST_RATIO
                [ -s "$DATA/cpu_run_rm.nano" ] && lat_row "CPU ms of containerd, shims and runtime calls per \`ctr run --rm\` (other: runc-v2)" cpu_run_rm.nano cpu_run_rm.runc
                [ -s "$DATA/cpu_cycle.nano" ] && lat_row "CPU ms of containerd, shims and runtime calls per detached cycle (other: runc-v2)" cpu_cycle.nano cpu_cycle.runc
                lat_row "standalone launch (create+start)→kill→wait→delete, shim process included (other: conmon+runc)" sa.nano sa.conmon
                R_SA_CONMON=$LAST_RATIO
                lat_row "standalone, same (other: bare \`runc run -d\`, kill, delete)" sa.nano sa.bare
                R_SA_BARE=$LAST_RATIO
                lat_row "standalone, conmon+runc (other: bare runc)" sa.conmon sa.bare
                echo
                echo "## stdout throughput (1 GiB from \`dd bs=1M\` inside the container, $TP_RUNS runs)"
                echo
                echo "| path | median s | MiB/s | vs host \`dd \\| cat\` |"
                echo "|---|---|---|---|"
                local m_host s
                m_host=$(median "$DATA/tp.host")
                for s in host sa nano runc; do
                        local m name
                        m=$(median "$DATA/tp.$s")
                        case $s in
                        host) name="host: busybox dd \\| cat >/dev/null" ;;
                        sa) name="nanoshim standalone → FIFO → cat (from Start to EOF)" ;;
                        nano) name="ctr run --rm, nanoshim (whole run, incl. ~1 lifecycle)" ;;
                        runc) name="ctr run --rm, runc-v2 (whole run, incl. ~1 lifecycle)" ;;
                        esac
                        echo "| $name | $(fmt "$m" %.3f) | $(fdiv 1024 "$m" %.0f) | $(fdiv "$m_host" "$m") |"
                        echo "tp_$s $(fdiv "$m_host" "$m")" >>"$TSV"
                done
                TP_SA=$(fdiv "$m_host" "$(median "$DATA/tp.sa")")
                TP_CTR=$(fdiv "$(median "$DATA/tp.runc")" "$(median "$DATA/tp.nano")")
                echo
                echo "Under ctr, nanoshim vs runc-v2 (time ratio runc/nano, >1 = nanoshim faster): $TP_CTR."
                echo
                echo "## kill → exit event (ms), orphan reaping"
                echo
                echo "The interval ends at the timestamp that the shim puts on the /tasks/exit event (containerd's" \
                        "\`ctr events\`, or \`shimctl events --listen\` standalone). It starts when the Kill request" \
                        "(SIGKILL) is sent to the shim's socket by the same client for both shims (\`shimctl -T\`):" \
                        "the shim's whole kill path; or when \`ctr task kill -s KILL\` starts (ctr's start-up and" \
                        "containerd included); or when the host sends SIGKILL to the init itself (the exit path" \
                        "only: the kernel's teardown of the container, reaping, publishing). Orphans: 1000 orphans" \
                        "of a host-PID-namespace container, blocked on a FIFO, released at once; time until the" \
                        "shim has reaped the last."
                echo
                echo "| measurement | nanoshim median | p90 | other median | p90 | ratio median | ratio p90 |"
                echo "|---|---|---|---|---|---|---|"
                lat_row "Kill request to the shim → exit event, under containerd (other: runc-v2)" evk.nano evk.runc
                R_EV=$LAST_RATIO
                lat_row "\`ctr task kill -s KILL\` → exit event (other: runc-v2)" evc.nano evc.runc
                lat_row "SIGKILL from the host → exit event under containerd (other: runc-v2)" ev.nano ev.runc
                lat_row "SIGKILL from the host → exit event, nanoshim standalone (other: nanoshim under containerd)" ev.sa ev.nano
                lat_row "reap 1000 simultaneous orphans, ms (other: runc-v2)" orph.nano orph.runc
                echo
                echo "## Targets"
                echo
                echo "| target | measured | verdict |"
                echo "|---|---|---|"
                echo "| PSS per container ≤ 250 KB (one shim per container) | $MEM_nano_PSS KB | $(verdict "$MEM_nano_PSS <= 250") |"
                echo "| PSS per container ≤ 250 KB (pod group of $N) | $MEM_group_PSS KB | $(verdict "$MEM_group_PSS <= 250") |"
                echo "| PSS ≤ 1/10 of runc-v2's | $MEM_nano_PSS vs $MEM_runc_PSS KB ($(fdiv "$MEM_nano_PSS" "$MEM_runc_PSS")x) | $(verdict "$MEM_nano_PSS * 10 <= $MEM_runc_PSS") |"
                echo "| PSS below conmon's | $MEM_nano_PSS vs $MEM_conmon_PSS KB | $(verdict "$MEM_nano_PSS < $MEM_conmon_PSS") |"
                echo "| 1 thread | $MEM_nano_THR | $(verdict "$MEM_nano_THR == 1") |"
                echo "| ≤ 12 fds per shim at rest | $MEM_nano_FDS | $(verdict "$MEM_nano_FDS <= 12") |"
                echo "| ctr run --rm ≤ 0.78x runc-v2 | $(fmt "$R_RUNRM" %.3f)x | $(verdict "$R_RUNRM <= 0.78") |"
                echo "| detached cycle ≤ 0.78x runc-v2 | $(fmt "$R_CYCLE" %.3f)x | $(verdict "$R_CYCLE <= 0.78") |"
                echo "| standalone no slower than conmon | $(fmt "$R_SA_CONMON" %.3f)x | $(verdict "$R_SA_CONMON <= 1.0") |"
                echo "| standalone within 10% of bare runc | $(fmt "$R_SA_BARE" %.3f)x | $(verdict "$R_SA_BARE <= 1.10") |"
                echo "| stdout throughput ≥ 0.8x host pipeline (standalone) | ${TP_SA}x | $(verdict "$TP_SA >= 0.8") |"
                echo "| kill → exit event ≤ 0.5x runc-v2 (from the Kill request) | $(fmt "$R_EV" %.3f)x | $(verdict "$R_EV <= 0.5") |"
                echo "| idle CPU 0 | $MEM_nano_IDLE ticks ($N shims), group $MEM_group_IDLE | $(verdict "${MEM_nano_IDLE%% *} == 0 && ${MEM_group_IDLE%% *} == 0") |"
                echo
                echo "![ratios]($date-$host.png)"
                echo
                echo "Raw samples (one per run, in the order taken) are in \`$date-$host.tsv\`."
        } >"$md"
        # raw samples
        local f
        for f in "$DATA"/*; do
                case ${f##*/} in
                run_rm.* | cycle.* | cpu_run_rm.* | cpu_cycle.* | sa.* | tp.* | ev.* | evk.* | evc.* | orph.*)
                        echo "raw_${f##*/} $(tr '\n' ' ' <"$f")" >>"$TSV" ;;
                esac
        done
        write_chart "$base"
        log "report: $md"
        cat "$md"
}

# A bar chart of nanoshim's ratios against the targets.
write_chart() {
        local base=$1 dat=$WORK/chart.dat
        {
                echo "\"PSS/ctr vs runc-v2\" $(fdiv "$MEM_nano_PSS" "$MEM_runc_PSS" %.4f) 0.1"
                echo "\"PSS/ctr (group) vs runc-v2\" $(fdiv "$MEM_group_PSS" "$MEM_runc_PSS" %.4f) 0.1"
                echo "\"PSS/ctr vs conmon\" $(fdiv "$MEM_nano_PSS" "$MEM_conmon_PSS" %.4f) 1"
                echo "\"ctr run --rm\" $R_RUNRM 0.78"
                echo "\"detached cycle\" $R_CYCLE 0.78"
                echo "\"standalone vs conmon\" $R_SA_CONMON 1"
                echo "\"standalone vs bare runc\" $R_SA_BARE 1.1"
                echo "\"host/stdout time\" $TP_SA 0.8"
                echo "\"kill->exit event\" $R_EV 0.5"
        } | sed -e 's/ - / 0 /g' >"$dat"
        gnuplot <<GP 2>/dev/null || log "gnuplot failed; no chart"
set terminal pngcairo size 1100,520 font "sans,10"
set output "$base.png"
set title "nanoshim vs the others: ratios (nanoshim / other; throughput: nanoshim / host) against the targets"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set ylabel "ratio"
set xtics rotate by -25 scale 0
set grid ytics
set key top left
plot "$dat" using 2:xtic(1) title "measured" lc rgb "#2b7bba", "" using 3 title "target" lc rgb "#bbbbbb"
GP
}

# For a run of some phases only (-p): the paired ratios of what was measured, on stdout.
partial_report() {
        TSV=/dev/null
        local f a b l
        if ls "$DATA"/shims.* >/dev/null 2>&1; then
                echo "| subject | containers | processes | PSS KB/ctr | RSS KB/ctr | USS KB/ctr | threads | fds | start-up CPU ms/ctr | idle ticks |"
                echo "|---|---|---|---|---|---|---|---|---|---|"
                for l in nano runc group conmon; do
                        [ -s "$DATA/shims.$l" ] && mem_row "$l" "$l"
                done
                echo
        fi
        echo "| measurement | nanoshim median | p90 | other median | p90 | ratio median | ratio p90 |"
        echo "|---|---|---|---|---|---|---|"
        for f in "$DATA"/*.nano "$DATA"/sa.conmon; do
                [ -s "$f" ] || continue
                a=${f##*/}
                case $a in count.* | idle.* | shims.* | cpu.*) continue ;; esac
                for b in "${a%.*}".runc "${a%.*}".conmon "${a%.*}".bare; do
                        [ "$a" != "$b" ] && [ -s "$DATA/$b" ] && lat_row "$a / $b" "$a" "$b"
                done
        done
}
