#!/bin/bash
# The report of bench/scale.sh: reads RUN/<version>/ (raw samples), writes
# $OUT/<date>-<host>-scale.md, one .png per containerd version, and copies the raw
# samples (with a summary.tsv per version, what the plots read) to $OUT/<date>-<host>-scale/.
# Sourced by scale.sh (uses its variables and bench/lib.sh).

# shellcheck disable=SC2034 # read through subj_name's indirection
SUBJ_NAME_nano="nanoshim, a shim per container"
# shellcheck disable=SC2034
SUBJ_NAME_pod="nanoshim, pods of 10 (one shim per pod)"
# shellcheck disable=SC2034
SUBJ_NAME_runc="containerd-shim-runc-v2, a shim per container"
# shellcheck disable=SC2034
SUBJ_NAME_conmon="conmon + runc, standalone"

subj_name() {
        local v="SUBJ_NAME_$1"
        echo "${!v}"
}

# group_file DIR PREFIX N SUBJECT: the file PREFIX.N.<group> whose group holds SUBJECT.
group_file() {
        local f g
        for f in "$1/$2.$3".*; do
                [ -e "$f" ] || continue
                g=${f##*.}
                [[ "+$g+" == *"+$4+"* ]] && { echo "$f"; return; }
        done
        echo /dev/null
}

# checkpoints DIR SUBJECT: the N sampled for SUBJECT, ascending.
checkpoints() {
        local f
        for f in "$1"/sup."$2".*; do
                [ -e "$f" ] && echo "${f##*.}"
        done | sort -n
}

# summary DIR: one line per subject and checkpoint (see the header), into DIR/summary.tsv.
summary() {
        local d=$1 s n
        echo "subject N supervisors pss_kb_per_ctr rss_kb_per_ctr uss_kb_per_ctr pss_mb_total threads fds inotify" \
                "rest_cpu_ms rest_wakeups_per_s ctrd_rss_mb ctrd_fds ctrd_rest_cpu_ms ctrd_tasks sys_tasks" \
                "lat_nth_ms seq_per_s par_per_s t_seq_s t_par_s kill_ms rm_s inits_pss_kb_per_ctr" >"$d/summary.tsv"
        for s in $SUBJECTS; do
                for n in $(checkpoints "$d" "$s"); do
                        touch "$d/kill.$s" "$d/rm.$s" "$d/fill.$s" "$d/lat.$s"
                        awk -v s="$s" -v n="$n" '
                                FILENAME ~ /\/fill\./ { if ($2 == n) { pop = $1; from = $3; seqr = $5 > 0 ? $4 / $5 : 0; parr = $7 > 0 ? $6 / $7 : 0 }
                                        fp[FNR] = $1; fn[FNR] = $2; ff[FNR] = $3; fs[FNR] = $5 > 0 ? $4 / $5 : 0; fpar[FNR] = $7 > 0 ? $6 / $7 : 0; nf = FNR; next }
                                FILENAME ~ /\/lat\./ { lp[FNR] = $4; li[FNR] = $1; lk[FNR] = $3; lm[FNR] = $2; nl = FNR; next }
                                FILENAME ~ /\/kill\./ { kill[$3] = $2; next }
                                FILENAME ~ /\/rm\./ { rm[$3] = $2; next }
                                FILENAME ~ /\/sup\./ { b_ns[$1] = $8; b_wk[$1] = $9; np++; pss += $2; rss += $3; uss += $4; thr += $5; fds += $6; ino += $7; next }
                                FILENAME ~ /\/init\./ { nc++; ipss += $2; next }
                                FILENAME ~ /\/rest\./ { rest_ns = $2; rest_wk = $3; rest_s = $4; next }
                                # the window from the raw samples before and after it (exact)
                                FILENAME ~ /\/after\./ { if ($1 in b_ns) { ans += $8 - b_ns[$1]; awk_ += $9 - b_wk[$1]; raw = 1 }; next }
                                FILENAME ~ /\/ctrd\./ { crss = $3; cfds = $6; next }
                                FILENAME ~ /\/restctrd\./ { crest = $2; next }
                                FILENAME ~ /\/sys\./ { for (i = 1; i < NF; i += 2) sys[$i] = $(i + 1); if ($1 == "containerd_tasks") ctasks = $2; next }
                                END {
                                        if (raw) { rest_ns = ans; rest_wk = awk_ }
                                        if (nc == 0) nc = n
                                        # the N-th: median of the last starts of the fill ending at N
                                        k = 0
                                        for (i = 1; i <= nl; i++) if (lp[i] == pop && lk[i] == "last" && li[i] >= from && li[i] <= n) v[++k] = lm[i]
                                        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
                                        lat = k ? sprintf("%.1f", (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2) : "-"
                                        # time to start N: every fill of the population up to N, at its own rates
                                        tseq = 0; tpar = 0
                                        # (a fill from 1 started the population again: the top, each subject alone)
                                        for (i = 1; i <= nf; i++) if (fp[i] == pop && fn[i] + 0 <= n + 0) {
                                                if (ff[i] == 1) { tseq = 0; tpar = 0 }
                                                inc = fn[i] - ff[i] + 1
                                                tseq = (fs[i] > 0 && tseq != "-") ? tseq + inc / fs[i] : "-"
                                                tpar = (fpar[i] > 0 && tpar != "-") ? tpar + inc / fpar[i] : "-"
                                        }
                                        # kill and removal: at the top of the population (fewer when some died before)
                                        km = (n == pop && (pop in kill)) ? kill[pop] : "-"
                                        rs = (n == pop && (pop in rm)) ? sprintf("%.2f", rm[pop] / 1000) : "-"
                                        printf "%s %d %d %.0f %.0f %.0f %.1f %d %d %d %.2f %.2f %.1f %d %.1f %d %d %s %s %s %s %s %s %s %.0f\n",
                                                s, n, np, pss / nc, rss / nc, uss / nc, pss / 1024, thr, fds, ino,
                                                rest_ns / 1e6, (rest_s > 0 ? rest_wk / rest_s : 0), crss / 1024, cfds, crest / 1e6, ctasks, sys["tasks"],
                                                lat, (seqr > 0 ? sprintf("%.2f", seqr) : "-"), (parr > 0 ? sprintf("%.2f", parr) : "-"),
                                                (tseq != "-" && tseq > 0 ? sprintf("%.1f", tseq) : "-"), (tpar != "-" && tpar > 0 ? sprintf("%.1f", tpar) : "-"),
                                                km, rs, ipss / nc
                                }' "$d/fill.$s" "$d/lat.$s" "$d/kill.$s" "$d/rm.$s" "$d/sup.$s.$n" "$d/init.$s.$n" "$d/rest.$s.$n" "$d/after.$s.$n" \
                                "$(group_file "$d" ctrd "$n" "$s")" "$(group_file "$d" restctrd "$n" "$s")" "$(group_file "$d" sys "$n" "$s")"
                done
        done >>"$d/summary.tsv"
}

# col DIR SUBJECT N COLUMN: one figure of summary.tsv.
col() {
        awk -v s="$2" -v n="$3" -v c="$4" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                $1 == s && $2 == n { print $(h[c]); found = 1 } END { if (!found) print "-" }' "$1/summary.tsv"
}

# plot_version DIR VERSION PNG: every curve of summary.tsv (one file per subject for
# gnuplot, columns by name), and every one-at-a-time start against the count running.
plot_version() {
        local d=$1 v=$2 png=$3 s c title logy
        command -v gnuplot >/dev/null || return 0
        for s in $SUBJECTS; do
                awk -v s="$s" 'NR == 1 || $1 == s' "$d/summary.tsv" | cut -d' ' -f2- >"$d/curve.$s"
        done
        {
                echo "set terminal pngcairo size 1800,1400 font ',9'"
                echo "set output '$png'"
                echo "set datafile missing '-'"
                echo "set multiplot layout 4,4 title 'nanoshim at scale, containerd $v (x: containers of each subject, log scale)'"
                echo "set logscale x; set grid; set key top left; set xlabel 'N'"
                while IFS='|' read -r c title logy; do
                        echo "set title \"$title\""
                        if [ -n "$logy" ]; then echo "set logscale y"; else echo "unset logscale y"; fi
                        local p="plot" sep=" "
                        for s in $SUBJECTS; do
                                p+="$sep'$d/curve.$s' using 1:\"$c\" with linespoints lw 2 pt 7 lc rgb '$(subj_color "$s")' title '$s'"
                                sep=", "
                        done
                        echo "$p"
                done <<'SPECS'
pss_kb_per_ctr|supervisors' PSS per container (KB)|log
pss_mb_total|supervisors' PSS, total (MB)|log
rss_kb_per_ctr|supervisors' RSS per container (KB)|log
uss_kb_per_ctr|supervisors' USS per container (KB)|log
threads|supervisors' threads, total|log
fds|supervisors' open fds, total|log
ctrd_rss_mb|containerd RSS (MB)|
rest_cpu_ms|supervisors' CPU at rest (ms per window)|
rest_wakeups_per_s|supervisors' wake-ups per second at rest|
lat_nth_ms|start of the N-th container (ms)|
seq_per_s|starts per second, one at a time|
par_per_s|starts per second, 8 in flight|
t_seq_s|time to start N, one at a time (s)|log
kill_ms|kill all N inits -> last exit (ms)|log
rm_s|remove all N (s)|log
SPECS
                echo "set title \"each start one at a time (ms) vs containers of the subject running\""
                echo "unset logscale y"
                local p="plot" sep=" "
                for s in $SUBJECTS; do
                        [ -s "$d/lat.$s" ] || continue
                        p+="$sep'$d/lat.$s' using 1:2 with points pt 7 ps 0.4 lc rgb '$(subj_color "$s")' title '$s'"
                        sep=", "
                done
                echo "$p"
                echo "unset multiplot"
        } >"$d/plot.gp"
        gnuplot "$d/plot.gp" 2>"$d/plot.err" || log "gnuplot failed: $(head -3 "$d/plot.err")"
}

subj_color() {
        case $1 in
        nano) echo "#1f77b4" ;;
        pod) echo "#2ca02c" ;;
        runc) echo "#d62728" ;;
        *) echo "#9467bd" ;;
        esac
}

# verdict OK_EXPRESSION: "met" or "**missed**" from an awk condition.
verdict() {
        if awk "BEGIN { exit !($1) }" 2>/dev/null; then echo met; else echo "**missed**"; fi
}

# ratio SUBJECT OTHER N COLUMN
ratio_at() {
        fdiv "$(col "$1" "$2" "$4" "$5")" "$(col "$1" "$3" "$4" "$5")"
}

# limits_text DIR N: where the N=1000 limits are and which binds first per subject.
limits_text() {
        local d=$1 top=$2 s
        local pid_max nofile ino_max
        pid_max=$(awk '$2 == "kernel.pid_max" { print $3 }' "$d/limits")
        ino_max=$(awk '$2 == "fs.inotify.max_user_instances" { print $3 }' "$d/limits")
        nofile=$(awk '$1 == "containerd_max_open_files" { print $2 }' "$d/limits")
        echo "| limit | value here |"
        echo "|---|---|"
        sed -e 's/^sysctl \([^ ]*\) \(.*\)$/| sysctl \1 | \2 |/' -e 's/^ulimit_n \(.*\)$/| ulimit -n (our shell, containerd inherits it) | \1 |/' \
                -e 's/^ulimit_u \(.*\)$/| ulimit -u | \1 |/' -e 's/^containerd_limit \(.*\)$/| containerd: \1 |/' \
                -e 's/^containerd_max_\([a-z_]*\) \(.*\)$/| containerd: max \1 (soft hard) | \2 |/' \
                -e 's/^cgroup \(.*\)$/| cgroups | \1 |/' -e '/^pids_cgroup/d' "$d/limits"
        echo
        echo "Per container at N=$top (measured), and the N at which each limit would bind (extrapolated" \
                "linearly from it; \"-\" when the subject does not use it):"
        echo
        echo "| subject | tasks (threads+init)/ctr | containerd fds per container (all subjects mixed) | supervisor fds/ctr | inotify/ctr | memory (supervisor+init PSS) KB/ctr | N at pid_max | N at containerd's fd limit | N at inotify instances | N at MemAvailable | binds first |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        for s in $SUBJECTS; do
                local line
                line=$(awk -v s="$s" -v n="$top" -v pm="$pid_max" -v nf="$nofile" -v im="$ino_max" '
                        NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                        $1 == s && $2 == n {
                                thr = $(h["threads"]); fds = $(h["fds"]); ino = $(h["inotify"]); sup = $(h["supervisors"])
                                tasks = (thr + n) / n
                                cf = $(h["ctrd_fds"]) / $(h["ctrd_tasks"] > 0 ? h["ctrd_tasks"] : 2)
                                mem = $(h["pss_kb_per_ctr"]) + $(h["inits_pss_kb_per_ctr"])
                                print tasks, cf, fds / n, ino / n, mem, $(h["sys_tasks"]) }' "$d/summary.tsv")
                [ -n "$line" ] || continue
                local tasks cf sf ino mem sys_tasks
                read -r tasks cf sf ino mem sys_tasks <<<"$line"
                # what the machine has beside this subject's: pids used by others at the checkpoint
                local others
                others=$(awk -v t="$sys_tasks" -v a="$tasks" -v n="$top" 'BEGIN { printf "%d", t - a * n }')
                local avail
                avail=$(awk '{ for (i = 1; i < NF; i++) if ($i == "mem_avail_kb") print $(i + 1) }' \
                        "$(group_file "$d" sys "$top" "$s")")
                awk -v s="$s" -v name="$(subj_name "$s")" -v tasks="$tasks" -v cf="$cf" -v sf="$sf" -v ino="$ino" -v mem="$mem" \
                        -v pm="$pid_max" -v nf="$nofile" -v im="$ino_max" -v others="$others" -v avail="$avail" -v n="$top" 'BEGIN {
                        np = (pm - others) / tasks
                        nfd = (s == "conmon") ? -1 : (cf > 0 ? nf / cf : -1)
                        nin = (ino > 0) ? im / ino : -1
                        # the memory now available plus what this subject already holds
                        nm = (avail + mem * n) / mem
                        best = "pid_max"; bv = np
                        if (nfd > 0 && nfd < bv) { best = "containerd fds"; bv = nfd }
                        if (nin > 0 && nin < bv) { best = "inotify instances"; bv = nin }
                        if (nm < bv) { best = "memory"; bv = nm }
                        printf "| %s | %.2f | %s | %.1f | %s | %.0f | %d | %s | %s | %d | %s at N≈%d |\n", name, tasks,
                                (s == "conmon" ? "-" : sprintf("%.2f", cf)), sf, (ino > 0 ? sprintf("%.2f", ino) : "0"), mem, np,
                                (nfd > 0 ? sprintf("%d", nfd) : "-"), (nin > 0 ? sprintf("%d", nin) : "-"), nm, best, bv }'
        done
}

scale_report() {
        local run=$1 date host base md v d
        # what the run was: written by scale.sh (a report made again from the raw
        # samples with --report keeps it)
        if [ -s "$run/meta" ]; then
                # shellcheck disable=SC1091
                . "$run/meta"
        else
                RUN_ARGS="${ORIG_ARGS[*]}" RUN_S=$(((T_END - T_START) / 1000000)) RUN_DATE=$(date -u '+%F %T UTC')
                printf 'RUN_ARGS=%q\nRUN_S=%q\nRUN_DATE=%q\nLOAD_START=%q\nLOAD_END=%q\nREST_S=%q\nPAR=%q\nVERSIONS=%q\nSUBJECTS=%q\n' \
                        "$RUN_ARGS" "$RUN_S" "$RUN_DATE" "$LOAD_START" "$LOAD_END" "$REST_S" "$PAR" "$VERSIONS" "$SUBJECTS" >"$run/meta"
        fi
        date=${RUN_DATE%% *}
        host=$(hostname -s)
        mkdir -p "$OUT"
        base=$OUT/$date-$host-scale
        md=$base.md
        rm -rf "$base"
        mkdir -p "$base"
        local cpu_model
        cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
        {
                echo "# nanoshim at scale, $date on $host"
                echo
                echo "Made by \`bench/scale.sh $RUN_ARGS\` in $RUN_S s (see" \
                        "docs/performance.md, \"At scale\", for what each figure means). Raw samples and" \
                        "each version's summary.tsv (what the plots read) in \`$(basename "$base")/\`."
                echo
                echo "| | |"
                echo "|---|---|"
                echo "| date | $RUN_DATE |"
                echo "| kernel | $(uname -r) |"
                echo "| CPU | $cpu_model ($(nproc) cores) |"
                echo "| memory | $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
                echo "| load average (1, 5, 15 min) at start / end | $LOAD_START / $LOAD_END (other agents share this machine) |"
                echo "| cgroups | $(if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1 \(hybrid\); fi) |"
                for v in $VERSIONS; do
                        [ -s "$run/$v/versions" ] || continue
                        echo "| with containerd $v | $(tr '\n' ' ' <"$run/$v/versions" | sed 's/ \([a-z]\)/, \1/g') |"
                done
                echo "| subjects | $(for s in $SUBJECTS; do printf '%s: %s; ' "$s" "$(subj_name "$s")"; done) |"
                echo "| rest window, starts in flight | ${REST_S} s, $PAR |"
        } >"$md"
        for v in $VERSIONS; do
                d=$run/$v
                [ -d "$d" ] || continue
                summary "$d"
                plot_version "$d" "$v" "$base-$v.png"
                version_section "$d" "$v" "$(basename "$base")-$v.png" >>"$md"
        done
        if [ -d "$run/cri" ]; then
                cri_section "$run/cri" "$base-cri.png" "$(basename "$base")-cri.png" >>"$md"
        else
                printf '\n## Pods through the CRI plugin\n\nNot measured in this run (-k 0).\n' >>"$md"
        fi
        cp -r "$run"/. "$base/"
        log "report: $md"
}

version_section() {
        local d=$1 v=$2 png=$3 s n top
        top=$(awk 'NR > 1 { if ($2 > m) m = $2 } END { print m }' "$d/summary.tsv")
        echo
        echo "## containerd $v ($(awk '$1 == "containerd" { print $2 }' "$d/versions"))"
        echo
        echo "![curves, containerd $v]($png)"
        echo
        if [ "$(cat "$d/left" 2>/dev/null)" != 0 ]; then
                echo "**The cleanup after this version left something behind (see the run's log).**"
                echo
        fi
        local f
        for f in "$d"/fail.*; do
                [ -s "$f" ] || continue
                echo "Failures of ${f##*.}: $(wc -l <"$f") (first: \`$(head -n 1 "$f" | cut -c1-200)\`)"
                echo
        done
        echo "### Memory, threads, fds, CPU at rest"
        echo
        echo "Per container = the supervisors' total ÷ containers. CPU and wake-ups: all supervisors of the" \
                "subject over the rest window; containerd's figures are for the whole daemon at that checkpoint" \
                "(it holds every subject's containers started so far: \"ctrs in containerd\")."
        echo
        echo "| subject | N | supervisors | PSS KB/ctr | RSS KB/ctr | USS KB/ctr | PSS total MB | threads | fds | inotify | CPU at rest ms/${REST_S}s | wake-ups/s | containerd RSS MB | containerd fds | containerd CPU at rest ms | ctrs in containerd |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        awk 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $(h["supervisors"]),
                        $(h["pss_kb_per_ctr"]), $(h["rss_kb_per_ctr"]), $(h["uss_kb_per_ctr"]), $(h["pss_mb_total"]), $(h["threads"]),
                        $(h["fds"]), $(h["inotify"]), $(h["rest_cpu_ms"]), $(h["rest_wakeups_per_s"]), $(h["ctrd_rss_mb"]),
                        $(h["ctrd_fds"]), $(h["ctrd_rest_cpu_ms"]), $(h["ctrd_tasks"]) }' "$d/summary.tsv"
        echo
        echo "### Starting, killing, removing"
        echo
        echo "Start of the N-th: median of the last 5 starts up to N, one at a time. Starts/s: the fill ending" \
                "at N (about half of it one at a time, subjects interleaved; half with $PAR in flight, one subject" \
                "at a time). Time to start N: each fill's containers at that fill's measured rate (computed)." \
                "Kill: SIGKILL to every init at once → the last exit event's timestamp (stamped by the shim;" \
                "conmon: the exit file's mtime). Removal: \`ctr task rm\` + \`ctr containers rm\` of all N (one" \
                "call each; conmon: \`runc delete\` each). Kill and removal are measured once per population, at its top."
        echo
        echo "| subject | N | start of the N-th ms | starts/s one at a time | starts/s $PAR in flight | time to start N, one at a time s | time to start N, $PAR in flight s | kill all → last exit ms | removal of all s |"
        echo "|---|---|---|---|---|---|---|---|---|"
        awk 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $(h["lat_nth_ms"]), $(h["seq_per_s"]), $(h["par_per_s"]),
                        $(h["t_seq_s"]), $(h["t_par_s"]), $(h["kill_ms"]), $(h["rm_s"]) }' "$d/summary.tsv"
        echo
        echo "### Targets at N=$top (ratios to containerd-shim-runc-v2 in the same run)"
        echo
        echo "| target | nanoshim | runc-v2 | ratio | goal | verdict |"
        echo "|---|---|---|---|---|---|"
        local r
        target_row() { # NAME SUBJECT COLUMN GOAL_EXPR(r) GOAL_TEXT
                local a b
                a=$(col "$d" "$2" "$top" "$3")
                b=$(col "$d" runc "$top" "$3")
                r=$(fdiv "$a" "$b")
                echo "| $1 | $a | $b | $r | $5 | $(if [ "$r" = - ]; then echo "not measured"; else verdict "$r $4"; fi) |"
        }
        target_row "PSS per container, a shim per container (KB)" nano pss_kb_per_ctr "<= 0.07" "≤ 0.07×"
        target_row "PSS per container, pods of 10 (KB)" pod pss_kb_per_ctr "<= 0.02" "≤ 0.02×"
        target_row "start of the N-th container (ms)" nano lat_nth_ms "<= 0.8" "≤ 0.8×"
        target_row "starts/s with $PAR in flight" nano par_per_s ">= 1.3" "≥ 1.3×"
        target_row "kill all N → last exit (ms)" nano kill_ms "<= 0.5" "≤ 0.5×"
        target_row "kill all N → last exit, pods of 10 (ms)" pod kill_ms "<= 0.5" "≤ 0.5×"
        # CPU at rest: every N; wake-ups per supervisor per minute say what woke them
        local rest_n rest_r
        rest_n=$(awk 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                ($1 == "nano" || $1 == "pod") { n++; ms += $(h["rest_cpu_ms"]); w = $(h["rest_wakeups_per_s"]) * 60 / ($(h["supervisors"]) > 0 ? $(h["supervisors"]) : 1)
                        if (w > wm) wm = w; if ($(h["rest_cpu_ms"]) > mx) { mx = $(h["rest_cpu_ms"]); at = $1 " at N=" $2 } }
                END { if (mx == 0) print "0 at every N"; else printf "at most %.2f ms (%s), ≤ %.1f wake-ups per shim per minute\n", mx, at, wm }' "$d/summary.tsv")
        rest_r=$(awk 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
                $1 == "runc" { printf "%s ms at N=%s; ", $(h["rest_cpu_ms"]), $2 }' "$d/summary.tsv")
        echo "| CPU at rest at every N, ${REST_S} s windows (nanoshim, both) | $rest_n | $rest_r | | 0 | $(if [ "$rest_n" = "0 at every N" ]; then echo met; else echo "**missed**: see docs/performance.md (libev wakes an idle loop every 59.7 s)"; fi) |"
        echo
        echo "### Limits at N=$top"
        echo
        limits_text "$d" "$top"
}

# cri_section DIR PNG PNG_NAME: the pods through the CRI plugin.
cri_section() {
        local d=$1 png=$2 name=$3 h n
        echo
        echo "## Pods of 2 containers through the CRI plugin"
        echo
        if [ -s "$d/skipped" ]; then
                echo "Skipped: $(cat "$d/skipped")."
                return
        fi
        echo "containerd $(awk '{ print $2 }' "$d/versions" 2>/dev/null), handlers \`nanoshim\` and \`runc\`" \
                "(containerd-shim-runc-v2), batches of 10 pods alternating between them, one pod at a time" \
                "(RunPodSandbox with the CNI bridge, then CreateContainer + StartContainer twice, by" \
                "tests/cri/cri.py). Both handlers run one shim per pod (the sandbox's), holding the pause" \
                "container and the 2 sleepers."
        echo
        [ -s "$d/fail" ] && { echo "Failures: $(wc -l <"$d/fail") (first: \`$(head -n 1 "$d/fail" | cut -c1-200)\`)"; echo; }
        echo "| handler | pods | shims | PSS KB/pod | RSS KB/pod | USS KB/pod | PSS total MB | threads | fds | containerd RSS MB | pod start ms, median of the last 10 | p90 |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
        for n in $(ls "$d"/sup.nanoshim.* 2>/dev/null | sed 's/.*\.//' | sort -n); do
                for h in nanoshim runc; do
                        [ -e "$d/sup.$h.$n" ] || continue
                        local lat
                        lat=$(awk -v n="$n" '$1 > n - 10 && $1 <= n { print $2 * 1000 }' "$d/pods.$h" 2>/dev/null >"$d/.lat"; stats "$d/.lat")
                        awk -v h="$h" -v n="$n" -v lat="$lat" -v crss="$(awk '{ print $3 / 1024 }' "$d/ctrd.$n")" '
                                { np++; pss += $2; rss += $3; uss += $4; thr += $5; fds += $6 }
                                END { split(lat, l, " ")
                                        printf "| %s | %d | %d | %.0f | %.0f | %.0f | %.1f | %d | %d | %.1f | %.1f | %.1f |\n", h, n, np,
                                                pss / n, rss / n, uss / n, pss / 1024, thr, fds, crss, l[1], l[2] }' "$d/sup.$h.$n"
                done
        done
        rm -f "$d/.lat"
        echo
        local a b
        for h in nanoshim runc; do
                [ -s "$d/rm.$h" ] && echo "Removal of all $(cut -d' ' -f1 "$d/rm.$h") \`$h\` pods (StopPodSandbox + RemovePodSandbox each): $(cut -d' ' -f2 "$d/rm.$h") s."
        done
        echo
        local last
        last=$(ls "$d"/sup.nanoshim.* 2>/dev/null | sed 's/.*\.//' | sort -n | tail -n 1)
        if [ -n "$last" ] && [ -e "$d/sup.runc.$last" ]; then
                a=$(awk '{ s += $2 } END { print s }' "$d/sup.nanoshim.$last")
                b=$(awk '{ s += $2 } END { print s }' "$d/sup.runc.$last")
                echo "PSS of the shims at $last pods: nanoshim/runc-v2 = $(fdiv "$a" "$b")."
                echo
        fi
        if command -v gnuplot >/dev/null && [ -s "$d/pods.nanoshim" ]; then
                {
                        echo "set terminal pngcairo size 1200,450 font ',9'"
                        echo "set output '$png'"
                        echo "set multiplot layout 1,2 title 'pods of 2 containers through the CRI plugin'"
                        echo "set grid; set key top left; set xlabel 'pods of the handler running'"
                        echo "set title \"pod start (sandbox + 2 containers), ms\""
                        echo "plot '$d/pods.nanoshim' using 1:(\$2*1000) with points pt 7 ps 0.5 lc rgb '#1f77b4' title 'nanoshim', '$d/pods.runc' using 1:(\$2*1000) with points pt 7 ps 0.5 lc rgb '#d62728' title 'runc-v2'"
                        for h in nanoshim runc; do
                                for f in "$d"/sup."$h".*; do
                                        [ -e "$f" ] && awk -v n="${f##*.}" '{ s += $2 } END { print n, s / n }' "$f"
                                done | sort -n >"$d/pss.$h"
                        done
                        echo "set title \"shims' PSS per pod, KB\"; set logscale y"
                        echo "plot '$d/pss.nanoshim' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nanoshim', '$d/pss.runc' using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc-v2'"
                        echo "unset multiplot"
                } >"$d/plot.gp"
                gnuplot "$d/plot.gp" 2>"$d/plot.err" && { echo "![CRI pods]($name)"; echo; }
        fi
}
