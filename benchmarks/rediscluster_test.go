package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// benchCluster is the Redis Cluster a cluster cell runs against:
// internal/redistest's local cluster of three masters, each the master of an
// equal share of the 16384 slots, without replicas (the cells measure
// sharding, not failover).
type benchCluster struct {
	client *redis.ClusterClient
	pids   []int // the masters'
}

// startCluster gives b a local Redis Cluster until b ends (see
// redistest.StartCluster, which skips b when there is no redis-server), and
// a client of it: go-redis's ClusterClient with its defaults (a pool of ten
// connections per GOMAXPROCS to each node) and ContextTimeoutEnabled, as
// redisstore's documentation asks.
func startCluster(b *testing.B) *benchCluster {
	b.Helper()
	lc := redistest.StartCluster(b)
	c := &benchCluster{pids: lc.PIDs}
	c.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: lc.Client.Options().Addrs, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.client.Close() })
	// The client learns the slot map on its first command; learn it now,
	// and check that every master answers through it, so that no cell pays
	// for it or fails on a node still joining.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	}); err != nil {
		b.Fatalf("cluster client: %v", err)
	}
	return c
}

// flush empties every master, so that a cell starts from no state.
func (c *benchCluster) flush(b *testing.B) {
	b.Helper()
	err := c.client.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		return m.FlushDB(ctx).Err()
	})
	if err != nil {
		b.Fatalf("FLUSHDB: %v", err)
	}
}

// serverCPU is the CPU time all the masters have used so far, or -1 when
// it cannot be read.
func (c *benchCluster) serverCPU() time.Duration {
	var sum time.Duration
	for _, pid := range c.pids {
		t := processCPU(pid)
		if t < 0 {
			return -1
		}
		sum += t
	}
	return sum
}
