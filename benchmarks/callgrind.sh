#!/usr/bin/env bash
# callgrind.sh SCRIPT.lua EVALSHA-ARGS...: the instructions redis-server
# runs inside EVALSHA for one call of SCRIPT (a composed script from
# redisstore/testdata), counted by callgrind: unlike a time, the count does
# not depend on what else the machine runs, so two versions of a script
# compare exactly. It starts its own redis-server under valgrind on a free
# port of 127.0.0.1, warms the script up, counts N calls (default 5000,
# keys drawn from 1000 by redis-benchmark's __rand_int__), prints the
# instructions per call and stops the server. Needs valgrind and
# redis-benchmark (apt-get install valgrind redis-tools).
#
#   cd benchmarks
#   ./callgrind.sh ../redisstore/testdata/token-bucket.lua \
#       1 'm:__rand_int__' '' 1 0 0 1000000000 3600000000 1000000000
#
# (one key, then the token bucket's arguments for a 1000000000/hour limit:
# see redisstore/lua/one.lua.)
set -euo pipefail
script=${1:?usage: callgrind.sh SCRIPT.lua EVALSHA-ARGS...}
shift
n=${N:-5000}
for tool in valgrind callgrind_control redis-server redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is not installed" >&2; exit 1; }
done

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --toggle-collect=evalShaCommand --callgrind-out-file="$dir/cg.out" \
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/log" 2>&1 &
vg=$!
trap 'kill $vg 2>/dev/null; wait $vg 2>/dev/null; rm -rf "$dir"' EXIT
cli=(redis-cli -p "$port")
for _ in $(seq 1 100); do "${cli[@]}" ping >/dev/null 2>&1 && break; sleep 0.2; done
"${cli[@]}" ping >/dev/null || { echo "callgrind.sh: redis-server under valgrind did not start:" >&2; cat "$dir/log" >&2; exit 1; }

sha=$("${cli[@]}" script load "$(cat "$script")")
bench_n() { local count=$1; shift; redis-benchmark -p "$port" -c 1 -P 50 -n "$count" -r 1000 -q evalsha "$sha" "$@" >/dev/null 2>&1; }
# A reply that is an error (a wrong argument list) costs far less than a
# decision: say so rather than print a plausible small number.
if reply=$("${cli[@]}" evalsha "$sha" "$@" 2>&1) && [[ $reply == *ERR* || $reply == *rror* ]]; then
	echo "callgrind.sh: the script answers these arguments with an error: $reply" >&2
	exit 1
fi
bench_n 2000 "$@" # warm-up: every key exists, the script is compiled
callgrind_control -z "$vg" >/dev/null 2>&1
bench_n "$n" "$@"
callgrind_control -d "$vg" >/dev/null 2>&1
out=$(ls -t "$dir"/cg.out* | head -1)
ir=$(grep -a -m1 -E '^(summary|totals):' "$out" | awk '{print $2}')
awk -v ir="$ir" -v n="$n" -v name="$(basename "$script" .lua)" 'BEGIN { printf "%-24s %8.0f instructions per call inside EVALSHA\n", name, ir / n }'
