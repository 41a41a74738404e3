set terminal pngcairo size 1200,450 font ',9'
set output '/tmp/exp/scale-full/2026-12-02-vm-scale-cri.png'
set multiplot layout 1,2 title 'pods of 2 containers through the CRI plugin'
set grid; set key top left; set xlabel 'pods of the handler running'
set title "pod start (sandbox + 2 containers), ms"
plot '/tmp/nss.ahKc8z/cri/pods.nanoshim' using 1:($2*1000) with points pt 7 ps 0.5 lc rgb '#1f77b4' title 'nanoshim', '/tmp/nss.ahKc8z/cri/pods.runc' using 1:($2*1000) with points pt 7 ps 0.5 lc rgb '#d62728' title 'runc-v2'
set title "shims' PSS per pod, KB"; set logscale y
plot '/tmp/nss.ahKc8z/cri/pss.nanoshim' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'nanoshim', '/tmp/nss.ahKc8z/cri/pss.runc' using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'runc-v2'
unset multiplot
