package main

import (
	"fmt"
	"strings"
)

// clusterCell prints the RedisCluster family's cell: every row's
// throughput, CPU and latency, and each limitkit row against the best peer
// on each of them. The cell has no targets of its own; it says how the
// Redis family's standing carries over to a Cluster client.
func clusterCell(title string, rs []*row) {
	med := func(r *row, unit string) float64 { v, _ := r.median(unit); return v }
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	// The best peer on each measure: the most decisions/s, the most
	// decisions per CPU second, the lowest p50 and p99.
	var wallPeer, cpuPeer, p50Peer, p99Peer *row
	for _, r := range rs {
		if r.lib == "floor" || strings.HasPrefix(r.lib, "limitkit") {
			continue
		}
		if wallPeer == nil || med(r, "decisions/s") > med(wallPeer, "decisions/s") {
			wallPeer = r
		}
		if cpuPeer == nil || perCPU(r) > perCPU(cpuPeer) {
			cpuPeer = r
		}
		if p50Peer == nil || med(r, "p50-µs") < med(p50Peer, "p50-µs") {
			p50Peer = r
		}
		if p99Peer == nil || med(r, "p99-µs") < med(p99Peer, "p99-µs") {
			p99Peer = r
		}
	}
	if wallPeer == nil {
		return
	}
	fmt.Printf("%s (medians of %d)\n", title, rs[0].n())
	fmt.Printf("  redis-cpu = the three masters' CPU per decision; dec/cpu-s = decisions per second of CPU (this process + masters);\n")
	fmt.Printf("  p50, p99 = one call's latency in µs, with %s callers at once\n", strings.TrimPrefix(rs[0].mode, "parallel"))
	fmt.Printf("  %-40s %11s %9s %9s %9s %9s %8s %8s %9s\n", "lib", "decisions/s", "ns/op", "cpu-ns/op", "redis-cpu", "dec/cpu-s", "p50-µs", "p99-µs", "allocs/op")
	for _, r := range rs {
		fmt.Printf("  %-40s %11.0f %9.0f %9.0f %9.0f %9.0f %8.0f %8.0f %9.0f\n", r.lib, med(r, "decisions/s"), med(r, "ns/op"),
			med(r, "cpu-ns/op"), med(r, "redis-cpu-ns/op"), perCPU(r), med(r, "p50-µs"), med(r, "p99-µs"), med(r, "allocs/op"))
	}
	fmt.Printf("  limitkit over the best peer (decisions/s: %s; per CPU: %s; p50: %s; p99: %s); above 1 is better for limitkit\n",
		wallPeer.lib, cpuPeer.lib, p50Peer.lib, p99Peer.lib)
	fmt.Printf("  %-40s %9s %9s %9s %9s\n", "lib", "x-dec/s", "x-cpu", "x-p50", "x-p99")
	for _, r := range rs {
		if !strings.HasPrefix(r.lib, "limitkit") {
			continue
		}
		// Latency ratios are the peer's over limitkit's, so that above 1
		// means limitkit is faster there too.
		fmt.Printf("  %-40s %9.2f %9.2f %9.2f %9.2f\n", r.lib,
			ratio(med(r, "decisions/s"), med(wallPeer, "decisions/s")), ratio(perCPU(r), perCPU(cpuPeer)),
			ratio(med(p50Peer, "p50-µs"), med(r, "p50-µs")), ratio(med(p99Peer, "p99-µs"), med(r, "p99-µs")))
	}
	fmt.Println()
}
