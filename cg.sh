#!/bin/bash
# cg.sh file.lua args: instructions inside EVALSHA per call (callgrind, deterministic)
f=$1; shift
P="redis-cli -p 6398"
sha=$($P script load "$(cat $f)")
$P flushall >/dev/null
redis-benchmark -p 6398 -c 1 -P 50 -n 2000 -r 1000 -q evalsha $sha "$@" >/dev/null 2>&1
callgrind_control -z $(pgrep -f "valgrind.*6398") >/dev/null
redis-benchmark -p 6398 -c 1 -P 50 -n ${N:-5000} -r 1000 -q evalsha $sha "$@" >/dev/null 2>&1
callgrind_control -d $(pgrep -f "valgrind.*6398") >/dev/null
last=$(ls -t /tmp/lx/cg.* | head -1)
ir=$(grep -a "^summary:\|^totals:" $last | head -1 | awk '{print $2}')
printf "%-14s %8.0f Ir/call\n" "$(basename $f .lua)" $(echo "$ir / ${N:-5000}" | bc -l)
rm -f $last
