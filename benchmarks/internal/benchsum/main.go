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
//     peer's (targets: fixed window and token bucket at least 0.9 of the
//     floor; every algorithm at least the fastest peer; batched at least
//     twice the fastest peer);
//   - Redis deny: how many times faster the deny cache answers a denial
//     than a round trip (target: at least 10).
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
	perCPU := func(r *row) float64 {
		c, ok1 := r.median("cpu-ns/op")
		rc, ok2 := r.median("redis-cpu-ns/op")
		if !ok1 || !ok2 || c+rc <= 0 {
			return 0
		}
		return 1e9 / (c + rc)
	}
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
	for _, r := range rs {
		if !strings.HasPrefix(r.lib, "limitkit") {
			continue
		}
		alg := strings.TrimPrefix(strings.TrimPrefix(r.lib, "limitkit-"), "batched-")
		if strings.HasPrefix(r.lib, "limitkit-batched-") {
			target(r, "best peer", 2, bestPeer, bestCPUPeer)
			continue
		}
		if alg == "fixed-window" || alg == "token-bucket" {
			target(r, "floor", 0.9, floor, floor)
		}
		target(r, "best peer", 1, bestPeer, bestCPUPeer)
	}
	fmt.Println()
}

func denyCell(title string, rs []*row) {
	var cache, trip *row
	for _, r := range rs {
		switch r.lib {
		case "limitkit-denycache":
			cache = r
		case "limitkit-roundtrip":
			trip = r
		}
	}
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
