# gnuplot abba8.gp: paired p99 ratio per round against the round's rate
set terminal pngcairo size 900,560 noenhanced
set output 'abba8_p99_ratio.png'
set title "baton / Asio (one shared io_context): fast p99 per paired round, 40 connections, 20 ABBA rounds"
set xlabel "baton round trips/s in that round (the machine's phase)"
set ylabel "fast p99, baton / Asio"
set logscale y
set yrange [0.4:4.5]
set ytics (0.5, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 4)
set grid
set key top right
plot 1 notitle lc rgb "black" dt 2, \
     'abba8_ratios.dat' index 0 using 4:5 with points pt 7 title "1 thread", \
     '' index 1 using 4:5 with points pt 5 title "2 threads on 1 core", \
     '' index 2 using 4:5 with points pt 9 title "4 threads", \
     '' index 3 using 4:5 with points pt 11 title "4 threads, 1 slow", \
     '' index 4 using 4:5 with points pt 13 title "4 threads, 2 slow"
