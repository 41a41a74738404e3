set terminal pngcairo size 1800,1400 font ',9'
set output '/tmp/exp/scale-full/2026-12-02-vm-scale-1.6.png'
set datafile missing '-'
set multiplot layout 4,4 title 'nanoshim at scale, containerd 1.6 (x: containers of each subject, log scale)'
set logscale x; set grid; set key top left; set xlabel 'N'
set title "supervisors' PSS per container (KB)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"pss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"pss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"pss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"pss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' PSS, total (MB)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"pss_mb_total" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"pss_mb_total" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"pss_mb_total" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"pss_mb_total" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' RSS per container (KB)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"rss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"rss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"rss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"rss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' USS per container (KB)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"uss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"uss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"uss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"uss_kb_per_ctr" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' threads, total"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"threads" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"threads" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"threads" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"threads" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' open fds, total"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"fds" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"fds" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"fds" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"fds" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "containerd RSS (MB)"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"ctrd_rss_mb" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"ctrd_rss_mb" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"ctrd_rss_mb" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"ctrd_rss_mb" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' CPU at rest (ms per window)"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"rest_cpu_ms" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"rest_cpu_ms" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"rest_cpu_ms" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"rest_cpu_ms" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "supervisors' wake-ups per second at rest"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"rest_wakeups_per_s" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"rest_wakeups_per_s" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"rest_wakeups_per_s" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"rest_wakeups_per_s" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "start of the N-th container (ms)"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"lat_nth_ms" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"lat_nth_ms" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"lat_nth_ms" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"lat_nth_ms" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "starts per second, one at a time"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"seq_per_s" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"seq_per_s" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"seq_per_s" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"seq_per_s" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "starts per second, 8 in flight"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"par_per_s" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"par_per_s" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"par_per_s" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"par_per_s" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "time to start N, one at a time (s)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"t_seq_s" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"t_seq_s" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"t_seq_s" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"t_seq_s" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "kill all N inits -> last exit (ms)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"kill_ms" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"kill_ms" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"kill_ms" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"kill_ms" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "remove all N (s)"
set logscale y
plot '/tmp/nss.ahKc8z/1.6/curve.nano' using 1:"rm_s" with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/curve.pod' using 1:"rm_s" with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/curve.runc' using 1:"rm_s" with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/curve.conmon' using 1:"rm_s" with linespoints lw 2 pt 7 lc rgb '#9467bd' title 'conmon'
set title "each start one at a time (ms) vs containers of the subject running"
unset logscale y
plot '/tmp/nss.ahKc8z/1.6/lat.nano' using 1:2 with points pt 7 ps 0.4 lc rgb '#1f77b4' title 'nano', '/tmp/nss.ahKc8z/1.6/lat.pod' using 1:2 with points pt 7 ps 0.4 lc rgb '#2ca02c' title 'pod', '/tmp/nss.ahKc8z/1.6/lat.runc' using 1:2 with points pt 7 ps 0.4 lc rgb '#d62728' title 'runc', '/tmp/nss.ahKc8z/1.6/lat.conmon' using 1:2 with points pt 7 ps 0.4 lc rgb '#9467bd' title 'conmon'
unset multiplot
