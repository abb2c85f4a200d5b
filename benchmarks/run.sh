#!/usr/bin/env bash
# Runs the comparison benchmarks and prints them as benchstat tables, one per
# cell (benchmark family × key count × mode, and × limit for HTTP), with
# every library as a row, followed by each family's summary against its
# targets.
#
# The families, each run with its own -benchtime:
#   Memory   in-process stores, one decision            (BENCHTIME_MEMORY, 200ms)
#   HTTP     whole requests through Gin, Echo and chi   (BENCHTIME_HTTP, 200ms)
#   Redis    decisions against a local redis-server,    (BENCHTIME_REDIS, 500ms)
#            RedisDeny, denials from the deny cache, and
#            RedisCallers, by the number of callers
#   Cluster  RedisCluster: the Redis cell on a local    (BENCHTIME_CLUSTER, 500ms)
#            three-master Redis Cluster, with latencies
#
#   ./run.sh                      # every family, results in results/bench.txt
#   ./run.sh BenchmarkMemory      # only the cells matching a -bench pattern
#   ./run.sh 'BenchmarkHTTP|BenchmarkRedis'
#   BENCHTIME=500ms COUNT=3 ./run.sh BenchmarkRedisCluster  # only the Cluster family
#   OUT=/tmp/new.txt ./run.sh     # write the raw results elsewhere
#   COUNT=10 BENCHTIME=1s ./run.sh  # BENCHTIME overrides every family's
#   ./run.sh -report old.txt      # print the tables of an earlier run
#   LIMITKIT_REV=HEAD ./run.sh    # measure a committed limitkit, not the working tree
#
# LIMITKIT_REV builds against a git archive of that revision (through a
# temporary -modfile), so that edits in progress elsewhere in the checkout
# neither break nor colour the run, and so that two revisions can be compared
# with benchstat old.txt new.txt.
#
# The Redis cells start their own redis-server (/usr/bin/redis-server or on
# PATH) on a free port of 127.0.0.1, without persistence, and kill it at the
# end; REDIS_URL=redis://... points them at a disposable database instead
# (flushed before every cell). Without either they are skipped. The Cluster
# cells start three cluster-enabled redis-servers the same way (REDIS_URL
# plays no part there) and skip without redis-server.
#
# With the defaults (6 rounds) the whole run takes about fifteen minutes on
# two cores: memory about four, HTTP about three and a half (two limits: 12
# cells of 4 or 5 rows), Redis about four, Cluster about three.
# ns/op is wall time: run on a quiet machine if you can. Every cell also
# reports cpu-ns/op (the process's CPU time per call), which other work on
# the machine disturbs much less. The load average before and after is
# written into the results file, and a warning is printed when the machine
# was busy.
set -euo pipefail
cd "$(dirname "$0")"

# benchstat has no tagged releases; this is a fixed pseudo-version of it
# (go list -m golang.org/x/perf@latest) so that the tables do not change
# format under us. It is run with go run to keep x/perf's many dependencies
# out of this module's go.mod.
BENCHSTAT=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

COUNT=${COUNT:-6}
BENCHTIME_MEMORY=${BENCHTIME:-${BENCHTIME_MEMORY:-200ms}}
BENCHTIME_HTTP=${BENCHTIME:-${BENCHTIME_HTTP:-200ms}}
BENCHTIME_REDIS=${BENCHTIME:-${BENCHTIME_REDIS:-500ms}}
BENCHTIME_CLUSTER=${BENCHTIME:-${BENCHTIME_CLUSTER:-500ms}}
OUT=${OUT:-results/bench.txt}

report() {
	local file=$1
	echo "== benchstat: $file"
	echo
	"${BENCHSTAT[@]}" -table .name,/keys,/limit,/mode -row /lib "$file"
	echo
	echo "== memory, side by side: medians per cell. x-peer = ns/op over the fastest library that"
	echo "   is not limitkit; x-cpu = the same for cpu-ns/op (CPU time per call, steadier"
	echo "   than wall time when other work shares the machine)"
	echo
	"${BENCHSTAT[@]}" -filter .name:Memory -format csv -table .name,/keys,/mode -row /lib "$file" 2>/dev/null | summarize
	echo "== HTTP and Redis against their targets, and Redis Cluster: medians per cell (see internal/benchsum)"
	echo
	go run ./internal/benchsum "$file"
}

# summarize turns benchstat's CSV (one block per cell and unit) into one table
# per cell with a column per unit and the ratio to the fastest peer.
summarize() {
	awk -F, '
	function fastestPeer(unit,   i, lib, best) {
		best = 0
		for (i = 1; i <= nlib; i++) {
			lib = libs[i]
			if (lib !~ /^limitkit/ && (lib SUBSEP unit) in val && (best == 0 || val[lib, unit] < best))
				best = val[lib, unit]
		}
		return best
	}
	function ratio(lib, unit, best) {
		return (best > 0 && (lib SUBSEP unit) in val) ? sprintf("%.2f", val[lib, unit] / best) : "-"
	}
	function ns(lib, unit) {
		return ((lib SUBSEP unit) in val) ? sprintf("%.1f", val[lib, unit] * 1e9) : "-"
	}
	function flush(   i, lib, wall, cpu) {
		if (ncell == 0) return
		wall = fastestPeer("sec/op"); cpu = fastestPeer("cpu-sec/op")
		printf "%s\n", title
		printf "  %-32s %9s %5s %9s %5s %6s %9s %7s %7s\n", "lib", "ns/op", "±", "cpu-ns/op", "±", "B/op", "allocs/op", "x-peer", "x-cpu"
		for (i = 1; i <= nlib; i++) {
			lib = libs[i]
			printf "  %-32s %9s %5s %9s %5s %6s %9s %7s %7s\n", lib,
				ns(lib, "sec/op"), ci[lib, "sec/op"], ns(lib, "cpu-sec/op"), ci[lib, "cpu-sec/op"],
				val[lib, "B/op"], val[lib, "allocs/op"], ratio(lib, "sec/op", wall), ratio(lib, "cpu-sec/op", cpu)
		}
		print ""
		delete val; delete ci; delete seen; nlib = 0; ncell = 0
	}
	/^\.name: / || /^\/keys: / || /^\/mode: / {
		# a new cell starts with the first key that changes: benchstat
		# prints only those, so keep the others.
		flush()
		if ($0 ~ /^\.name: /) { name = $0; keys = ""; mode = "" }
		else if ($0 ~ /^\/keys: /) { keys = $0 }
		else { mode = $0 }
		sub(/^\.name: /, "", name); sub(/^\/keys: /, "", keys); sub(/^\/mode: /, "", mode)
		title = name " keys=" keys " mode=" mode
		next
	}
	$1 == "" && $2 != "" && $3 == "CI" { unit = $2; next }
	$1 == "" || $1 == "geomean" { next }
	{
		if (!($1 in seen)) { seen[$1] = 1; libs[++nlib] = $1 }
		val[$1, unit] = $2; ci[$1, unit] = $3; ncell = 1
	}
	END { flush() }
	'
}

if [[ ${1:-} == -report ]]; then
	report "${2:?usage: run.sh -report FILE}"
	exit 0
fi

# Each run is a -bench pattern and its -benchtime: the families, or the
# pattern given.
if [[ -n ${1:-} ]]; then
	RUNS=("$1=${BENCHTIME:-200ms}")
else
	RUNS=(
		"^BenchmarkMemory\$=$BENCHTIME_MEMORY"
		"^BenchmarkHTTP=$BENCHTIME_HTTP"
		# The Redis family names its benchmarks, so that it does not run the
		# Cluster family's too: a new BenchmarkRedis... goes in this list.
		"^BenchmarkRedis(Deny|Callers)?\$=$BENCHTIME_REDIS"
		"^BenchmarkRedisCluster\$=$BENCHTIME_CLUSTER"
	)
fi
GOFLAGS_MOD=()
if [[ -n ${LIMITKIT_REV:-} ]]; then
	rev=$(git -C .. rev-parse --short "$LIMITKIT_REV")
	snap=$(mktemp -d)
	mkdir -p "$snap/src"
	git -C .. archive "$rev" | tar -x -C "$snap/src"
	sed -E "s#^(replace github.com/limitkit/limitkit =>) \.\./?\$#\1 $snap/src#" go.mod >"$snap/go.mod"
	grep -q "=> $snap/src" "$snap/go.mod" || { echo "run.sh: no replace of limitkit in go.mod" >&2; exit 1; }
	cp go.sum "$snap/go.sum"
	GOFLAGS_MOD=(-modfile "$snap/go.mod")
	limitkit="$rev"
else
	limitkit="working-tree@$(git -C .. rev-parse --short HEAD)"
	[[ -z $(git -C .. status --porcelain -- . ':!benchmarks') ]] || limitkit+="+uncommitted"
fi
mkdir -p "$(dirname "$OUT")"
load() { cut -d' ' -f1-3 /proc/loadavg; }
before=$(load)
{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(go version) nproc=$(nproc) load-before=$before limitkit=$limitkit"
	for run in "${RUNS[@]}"; do
		echo "# $COUNT rounds of: benchmarks.test -test.run '^\$' -test.bench '${run%=*}' -test.count 1 -test.benchtime ${run##*=}"
	done
} >"$OUT"
# Build once, then run the whole set COUNT times with -count 1 rather than
# once with -count COUNT: a burst of other work on the machine then lands on
# one sample of many benchmarks, which the median shrugs off, instead of on
# every sample of one benchmark.
bin=$(mktemp -d)
trap 'rm -rf "$bin" ${snap:+"$snap"}' EXIT
go test "${GOFLAGS_MOD[@]}" -c -o "$bin/benchmarks.test" .
# A round runs each family in turn, one process per family, so that a family's
# redis-server or goroutines never overlap another's cells.
for ((i = 1; i <= COUNT; i++)); do
	for run in "${RUNS[@]}"; do
		echo "# round $i of $COUNT: ${run%=*}" >&2
		"$bin/benchmarks.test" -test.run '^$' -test.bench "${run%=*}" -test.count 1 -test.benchtime "${run##*=}" |
			grep -v '^PASS$' | tee -a "$OUT"
	done
done
after=$(load)
echo "# load-after=$after" >>"$OUT"
echo
report "$OUT"
# The load after includes the benchmarks' own, so only the load before can
# tell that something else was running.
busy=$(awk -v n="$(nproc)" -v a="${before%% *}" 'BEGIN { print (a > n / 4) ? 1 : 0 }')
if [[ $busy == 1 ]]; then
	echo "warning: the machine was busy before the run (load $before on $(nproc) cores): the numbers may be noisy" >&2
fi
