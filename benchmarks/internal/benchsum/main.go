// Command benchsum reads the raw output of the benchmarks (run.sh's results
// file) and prints what the HTTP and Redis families are judged by, with
// each target met or missed:
//
//   - HTTP: per framework, limit and mode, the time, CPU time and
//     allocations each limiter adds to a request over the bare framework,
//     and limitkit's added time over the cheapest peer's (targets: at most
//     0.5 of it on Gin and chi, at most 1 on Echo, whose own middleware
//     sends no headers; every limitkit row, the IETF fields' and Echo's
//     header-less one too, at most 2 allocations added);
//   - Redis: decisions/s of every row over the floor's and over the fastest
//     peer's (targets: unbatched, fixed window and token bucket at least
//     the fastest peer, wall and per CPU-second, every algorithm at least
//     0.9 of it, and Redis CPU per decision at most the thriftiest peer's;
//     coalesced at least 1.5 times the fastest peer's wall and twice its
//     decisions per CPU-second);
//   - Redis callers: per caller count, throughput, CPU and p50/p99 latency
//     of each way to send decisions, and whether coalescing beats sending
//     each alone (within 3%, the spread of a quiet run);
//   - Redis deny: how many times faster the deny cache answers a denial
//     than a round trip (target: at least 10);
//   - Redis Cluster: every row's decisions/s, CPU and p50/p99 latency on a
//     three-master Cluster, and limitkit's over the best peer's on each
//     (no targets: it shows how the Redis family's standing carries over).
//
// Figures are medians over every sample of a row. The memory family's
// summary is run.sh's own.
//
//	go run ./internal/benchsum results/bench.txt
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// row is every sample of one benchmark, by unit.
type row struct {
	family, keys, limit, mode, lib string
	samples                        map[string][]float64
}

func (r *row) median(unit string) (float64, bool) {
	s := slices.Clone(r.samples[unit])
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

func (r *row) n() int { return len(r.samples["ns/op"]) }

var procSuffix = regexp.MustCompile(`-\d+$`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchsum FILE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()

	rows := map[string]*row{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(fields[0], "")
		r, ok := rows[name]
		if !ok {
			r = &row{samples: map[string][]float64{}}
			parts := strings.Split(name, "/")
			r.family = strings.TrimPrefix(parts[0], "Benchmark")
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(p, "=")
				switch k {
				case "keys":
					r.keys = v
				case "limit":
					r.limit = v
				case "mode":
					r.mode = v
				case "lib":
					r.lib = v
				}
			}
			rows[name] = r
			order = append(order, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			r.samples[fields[i+1]] = append(r.samples[fields[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	// Cells in the order they first appear: family, keys, limit, mode.
	type cellKey struct{ family, keys, limit, mode string }
	cells := map[cellKey][]*row{}
	var cellOrder []cellKey
	for _, name := range order {
		r := rows[name]
		k := cellKey{r.family, r.keys, r.limit, r.mode}
		if _, ok := cells[k]; !ok {
			cellOrder = append(cellOrder, k)
		}
		cells[k] = append(cells[k], r)
	}
	for _, k := range cellOrder {
		title := fmt.Sprintf("%s keys=%s mode=%s", k.family, k.keys, k.mode)
		if k.limit != "" {
			title = fmt.Sprintf("%s keys=%s limit=%s mode=%s", k.family, k.keys, k.limit, k.mode)
		}
		switch {
		case strings.HasPrefix(k.family, "HTTP"):
			httpCell(k.family, title, cells[k])
		case k.family == "Redis":
			redisCell(title, cells[k])
		case k.family == "RedisDeny":
			denyCell(title, cells[k])
		case k.family == "RedisCallers":
			callersCell(title, cells[k])
		case k.family == "RedisCluster":
			clusterCell(title, cells[k])
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func f1(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func signed(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func httpCell(family, title string, rs []*row) {
	var bare *row
	for _, r := range rs {
		if r.lib == "bare" {
			bare = r
		}
	}
	if bare == nil {
		return
	}
	bns, _ := bare.median("ns/op")
	bcpu, hasCPU := bare.median("cpu-ns/op")
	ballocs, _ := bare.median("allocs/op")
	fmt.Printf("%s (medians of %d; + = added over bare)\n", title, bare.n())
	fmt.Printf("  %-18s %9s %9s %9s %8s %8s %10s %8s\n", "lib", "ns/op", "cpu-ns/op", "allocs/op", "B/op", "+ns/op", "+cpu-ns/op", "+allocs")
	var lk *row
	var others []*row // limitkit's other configurations, compared for information
	bestPeer, bestPeerCPU, bestName := -1.0, -1.0, ""
	for _, r := range rs {
		ns, _ := r.median("ns/op")
		cpu, okc := r.median("cpu-ns/op")
		al, _ := r.median("allocs/op")
		by, _ := r.median("B/op")
		fmt.Printf("  %-18s %9.1f %9s %9.0f %8.0f %8s %10s %8.0f\n", r.lib, ns, f1(cpu, okc), al, by,
			signed(ns-bns), f1(cpu-bcpu, okc && hasCPU), al-ballocs)
		switch {
		case r.lib == "limitkit":
			lk = r
		case strings.HasPrefix(r.lib, "limitkit"):
			others = append(others, r)
		case r.lib != "bare":
			if bestPeer < 0 || ns-bns < bestPeer {
				bestPeer, bestName = ns-bns, r.lib
				bestPeerCPU = cpu - bcpu
			}
		}
	}
	if lk != nil && bestPeer >= 0 {
		factor := httpTimeTarget(family)
		ns, _ := lk.median("ns/op")
		cpu, _ := lk.median("cpu-ns/op")
		add := ns - bns
		addCPU := cpu - bcpu
		fmt.Printf("  target: limitkit adds %.1f ns/op, %s adds %.1f: %.2fx (at most %.1fx) -> %s; cpu: %.1f vs %.1f, %.2fx -> %s\n",
			add, bestName, bestPeer, add/bestPeer, factor, verdict(add <= factor*bestPeer),
			addCPU, bestPeerCPU, addCPU/bestPeerCPU, verdict(addCPU <= factor*bestPeerCPU))
		for _, o := range others {
			ns, _ := o.median("ns/op")
			cpu, _ := o.median("cpu-ns/op")
			fmt.Printf("  (%s adds %.1f ns/op: %.2fx %s's; cpu %.2fx)\n", o.lib, ns-bns, (ns-bns)/bestPeer, bestName, (cpu-bcpu)/bestPeerCPU)
		}
	}
	for _, r := range append([]*row{lk}, others...) {
		if r == nil {
			continue
		}
		al, _ := r.median("allocs/op")
		fmt.Printf("  target: %s adds %.0f allocs/op (at most %d) -> %s\n", r.lib, al-ballocs, httpAllocTarget, verdict(al-ballocs <= httpAllocTarget))
	}
	fmt.Println()
}

// httpAllocTarget is the most allocations a limitkit row may add to a
// request.
const httpAllocTarget = 2

// httpTimeTarget is the most time limitkit may add to a request in a cell
// of family, as a share of what the cheapest peer adds: half on Gin and
// chi, whose peers send headers as limitkit does; as much on Echo, whose
// own middleware sends none.
func httpTimeTarget(family string) float64 {
	if family == "HTTPEcho" {
		return 1
	}
	return 0.5
}

func redisCell(title string, rs []*row) {
	// Each row's decisions/s, and the same judged by CPU: decisions per
	// second of CPU, this process's and redis-server's together. On a
	// machine other work shares, the wall figure follows the load; the CPU
	// figure much less.
	wall := func(r *row) float64 { d, _ := r.median("decisions/s"); return d }
	var floor *row
	bestPeer, bestCPUPeer := (*row)(nil), (*row)(nil)
	for _, r := range rs {
		switch {
		case r.lib == "floor":
			floor = r
		case !strings.HasPrefix(r.lib, "limitkit"):
			if bestPeer == nil || wall(r) > wall(bestPeer) {
				bestPeer = r
			}
			if bestCPUPeer == nil || perCPU(r) > perCPU(bestCPUPeer) {
				bestCPUPeer = r
			}
		}
	}
	if floor == nil || bestPeer == nil {
		return
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	fmt.Printf("%s (medians of %d)\n", title, rs[0].n())
	fmt.Printf("  wall: x-floor, x-peer = decisions/s over the floor's, over the fastest peer's (%s)\n", bestPeer.lib)
	fmt.Printf("  cpu:  dec/cpu-s = decisions per second of CPU (this process + redis-server); same ratios (fastest peer: %s)\n", bestCPUPeer.lib)
	fmt.Printf("  %-40s %11s %9s %9s %9s %9s | %7s %7s | %9s %7s %7s\n", "lib", "decisions/s", "ns/op", "cpu-ns/op", "redis-cpu", "allocs/op",
		"x-floor", "x-peer", "dec/cpu-s", "x-floor", "x-peer")
	for _, r := range rs {
		ns, _ := r.median("ns/op")
		cpu, okc := r.median("cpu-ns/op")
		rcpu, okr := r.median("redis-cpu-ns/op")
		al, _ := r.median("allocs/op")
		fmt.Printf("  %-40s %11.0f %9.0f %9s %9s %9.0f | %7.2f %7.2f | %9.0f %7.2f %7.2f\n", r.lib, wall(r), ns, f1(cpu, okc), f1(rcpu, okr), al,
			ratio(wall(r), wall(floor)), ratio(wall(r), wall(bestPeer)),
			perCPU(r), ratio(perCPU(r), perCPU(floor)), ratio(perCPU(r), perCPU(bestCPUPeer)))
	}
	target := func(r *row, what string, want float64, of *row, ofCPU *row) {
		w, c := ratio(wall(r), wall(of)), ratio(perCPU(r), perCPU(ofCPU))
		fmt.Printf("  target: %-40s >= %.1fx %-11s wall %.2fx -> %-6s cpu %.2fx -> %s\n", r.lib, want, what, w, verdict(w >= want), c, verdict(c >= want))
	}
	// Issue 12's targets: unbatched, the token bucket and the fixed window
	// at least the fastest peer, every algorithm at least 0.9 of it, and
	// Redis's CPU per decision at most the thriftiest peer's; coalesced, at
	// least twice the fastest peer per CPU-second and 1.5 times its wall.
	var thriftiest *row
	for _, r := range rs {
		if rc, ok := r.median("redis-cpu-ns/op"); ok && r != floor && !strings.HasPrefix(r.lib, "limitkit") {
			if t, _ := thriftiest.medianOr("redis-cpu-ns/op"); thriftiest == nil || rc < t {
				thriftiest = r
			}
		}
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.lib, "limitkit") {
			continue
		}
		switch alg := strings.TrimPrefix(r.lib, "limitkit-"); {
		case strings.HasPrefix(alg, "coalesced-"):
			w, c := ratio(wall(r), wall(bestPeer)), ratio(perCPU(r), perCPU(bestCPUPeer))
			fmt.Printf("  target: %-40s >= 1.5x best peer wall %.2fx -> %-6s >= 2.0x best peer cpu %.2fx -> %s\n", r.lib, w, verdict(w >= 1.5), c, verdict(c >= 2))
		case strings.HasPrefix(alg, "window-"):
		default:
			want := 0.9
			if alg == "fixed-window" || alg == "token-bucket" {
				want = 1
			}
			target(r, "best peer", want, bestPeer, bestCPUPeer)
			if thriftiest != nil {
				rc, _ := r.median("redis-cpu-ns/op")
				t, _ := thriftiest.median("redis-cpu-ns/op")
				fmt.Printf("  target: %-40s redis-cpu <= %s's: %.0f vs %.0f ns (%.2fx) -> %s\n", r.lib, thriftiest.lib, rc, t, ratio(rc, t), verdict(rc <= t))
			}
		}
	}
	fmt.Println()
}

// perCPU is a row's decisions per second of CPU, this process's and
// redis-server's (or the masters') together: the figure that other work on
// a shared machine disturbs least.
func perCPU(r *row) float64 {
	c, ok1 := r.median("cpu-ns/op")
	rc, ok2 := r.median("redis-cpu-ns/op")
	if !ok1 || !ok2 || c+rc <= 0 {
		return 0
	}
	return 1e9 / (c + rc)
}

// medianOr is median on a row that may be nil.
func (r *row) medianOr(unit string) (float64, bool) {
	if r == nil {
		return 0, false
	}
	return r.median(unit)
}

// callersCell prints, for one caller count, each row's throughput, CPU and
// latency, and whether coalescing beats sending each decision alone (issue
// 12: it is the default only if it wins at 1, 8, 64 and 256 callers).
func callersCell(title string, rs []*row) {
	fmt.Printf("%s (medians of %d)\n", title, rs[0].n())
	fmt.Printf("  %-24s %11s %9s %9s %9s %9s %9s\n", "lib", "decisions/s", "dec/cpu-s", "cpu-ns/op", "redis-cpu", "p50-µs", "p99-µs")
	alone, coalesced := rowOf(rs, "limitkit"), rowOf(rs, "limitkit-coalesce")
	for _, r := range rs {
		d, _ := r.median("decisions/s")
		c, okc := r.median("cpu-ns/op")
		rc, okr := r.median("redis-cpu-ns/op")
		p50, _ := r.median("p50-µs")
		p99, _ := r.median("p99-µs")
		fmt.Printf("  %-24s %11.0f %9.0f %9s %9s %9.1f %9.1f\n", r.lib, d, perCPU(r), f1(c, okc), f1(rc, okr), p50, p99)
	}
	if alone != nil && coalesced != nil {
		da, _ := alone.median("decisions/s")
		dc, _ := coalesced.median("decisions/s")
		fmt.Printf("  coalescing over unbatched: wall %.2fx, cpu %.2fx -> %s\n", dc/da, perCPU(coalesced)/perCPU(alone), verdict(dc >= da*0.97 && perCPU(coalesced) >= perCPU(alone)*0.97))
	}
	fmt.Println()
}

// rowOf is the row of lib in rs, or nil.
func rowOf(rs []*row, lib string) *row {
	for _, r := range rs {
		if r.lib == lib {
			return r
		}
	}
	return nil
}

func denyCell(title string, rs []*row) {
	cache, trip := rowOf(rs, "limitkit-denycache"), rowOf(rs, "limitkit-roundtrip")
	if cache == nil || trip == nil {
		return
	}
	c, _ := cache.median("ns/op")
	t, _ := trip.median("ns/op")
	ca, _ := cache.median("allocs/op")
	ta, _ := trip.median("allocs/op")
	fmt.Printf("%s (medians of %d)\n", title, cache.n())
	fmt.Printf("  deny cache %.1f ns/op (%.0f allocs), round trip %.1f ns/op (%.0f allocs): %.0fx faster (target >= 10x) -> %s\n\n",
		c, ca, t, ta, t/c, verdict(t >= 10*c))
}
