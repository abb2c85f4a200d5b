package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterMasters is the number of local nodes of a Cluster, each a master
// of an equal share of the slots. Three is the smallest Redis Cluster that
// is not degenerate; tests here need sharding, not failover, so there are no
// replicas.
const clusterMasters = 3

// clusterUpTimeout bounds forming the cluster; it takes well under a second.
const clusterUpTimeout = 20 * time.Second

// Cluster starts a local Redis Cluster of three masters on 127.0.0.1 and
// returns a client of it, closed and the nodes killed when the test ends.
// It skips or fails the test, as the package doc says, when redis-server is
// not available; REDIS_URL plays no part.
func Cluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	return StartCluster(t).Client
}

// LocalCluster is a Cluster this package started: a client of it, and the
// process ids of its masters, whose CPU time a benchmark reads.
type LocalCluster struct {
	Client *redis.ClusterClient
	PIDs   []int
}

// StartCluster is Cluster, with the masters' process ids.
func StartCluster(t testing.TB) *LocalCluster {
	t.Helper()
	bin, err := binary()
	if err != nil {
		unavailable(t, err.Error())
	}
	addrs := make([]string, clusterMasters)
	admins := make([]*redis.Client, clusterMasters)
	pids := make([]int, clusterMasters)
	for i := range clusterMasters {
		dir := t.TempDir()
		// A node that misses pings for the node timeout is taken for
		// failed, and with no replicas the whole cluster then refuses
		// queries: 5s, so that a benchmark saturating two cores is not.
		p, err := start(bin, dir, true,
			"--cluster-enabled", "yes",
			"--cluster-config-file", dir+"/nodes.conf",
			"--cluster-node-timeout", "5000",
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.kill)
		pids[i] = p.cmd.Process.Pid
		addrs[i] = p.addr()
		admins[i] = redis.NewClient(&redis.Options{Addr: p.addr()})
		t.Cleanup(func() { _ = admins[i].Close() })
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterUpTimeout)
	defer cancel()
	const slots = 16384
	for i, a := range admins {
		lo, hi := i*slots/clusterMasters, (i+1)*slots/clusterMasters-1
		if err := a.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, addrs[i], err)
		}
	}
	for _, addr := range addrs[1:] {
		host, port, _ := net.SplitHostPort(addr)
		if err := admins[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER MEET %s: %v", addr, err)
		}
	}
	if err := waitClusterOK(ctx, admins); err != nil {
		t.Fatalf("redistest: cluster on %v did not form: %v", addrs, err)
	}

	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return &LocalCluster{Client: c, PIDs: pids}
}

// waitClusterOK polls every node until it reports cluster_state:ok and knows
// all the others; gossip gives no event to wait on.
func waitClusterOK(ctx context.Context, admins []*redis.Client) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var notYet error
		for _, a := range admins {
			info, err := a.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			switch {
			case !strings.Contains(info, "cluster_state:ok"):
				notYet = fmt.Errorf("%s: cluster_state is not ok", a.Options().Addr)
			case !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(admins))):
				notYet = fmt.Errorf("%s: does not know all %d nodes yet", a.Options().Addr, len(admins))
			}
		}
		if notYet == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), notYet)
		case <-tick.C:
		}
	}
}

// portOf returns the port of host:port, or 0.
func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
