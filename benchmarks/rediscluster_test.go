package benchmarks

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchCluster is the Redis Cluster a cluster cell runs against: masters
// redis-server processes this file started for the benchmark, each the
// master of an equal share of the 16384 slots, without replicas (the cells
// measure sharding, not failover).
type benchCluster struct {
	client *redis.ClusterClient
	nodes  []*exec.Cmd
}

// clusterMasters is the number of masters: three is the smallest Redis
// Cluster that is not degenerate, and the one redis-cli --cluster create
// accepts.
const clusterMasters = 3

// clusterUpTimeout bounds forming the cluster; on two loaded cores it takes
// about a second.
const clusterUpTimeout = 30 * time.Second

// startCluster gives b a local Redis Cluster of clusterMasters masters until
// b ends: redis-server processes on free ports of 127.0.0.1 (each with its
// cluster bus port, the port + 10000, free too), without persistence, each
// in its own temporary directory, killed at the end (and, on Linux, if the
// benchmark binary dies). It skips b when there is no redis-server, as
// startRedis does.
//
// The client is go-redis's ClusterClient with its defaults (a pool of ten
// connections per GOMAXPROCS to each node) and ContextTimeoutEnabled, as
// redisstore's documentation asks.
func startCluster(b *testing.B) *benchCluster {
	b.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
			b.Skip("no redis-server")
		}
		bin = "/usr/bin/redis-server"
	}
	c := &benchCluster{}
	var addrs []string
	var admins []*redis.Client
	for range clusterMasters {
		cmd, admin := startClusterNode(b, bin)
		c.nodes = append(c.nodes, cmd)
		admins = append(admins, admin)
		addrs = append(addrs, admin.Options().Addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterUpTimeout)
	defer cancel()
	const slots = 16384
	for i, a := range admins {
		lo, hi := i*slots/clusterMasters, (i+1)*slots/clusterMasters-1
		if err := a.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			b.Fatalf("CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, addrs[i], err)
		}
	}
	for _, addr := range addrs[1:] {
		host, port, _ := net.SplitHostPort(addr)
		if err := admins[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			b.Fatalf("CLUSTER MEET %s: %v", addr, err)
		}
	}
	if err := waitClusterOK(ctx, admins); err != nil {
		b.Fatalf("the cluster on %v did not form: %v", addrs, err)
	}

	c.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	b.Cleanup(func() { c.client.Close() })
	// The client learns the slot map on its first command; learn it now,
	// and check that every master answers through it, so that no cell pays
	// for it or fails on a node still joining.
	if err := c.client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	}); err != nil {
		b.Fatalf("cluster client: %v", err)
	}
	return c
}

// startClusterNode starts one cluster-enabled redis-server on a free port
// pair and returns it and a client of that node alone. A port another
// process took first makes it try another.
func startClusterNode(b *testing.B, bin string) (*exec.Cmd, *redis.Client) {
	b.Helper()
	var last error
	for range 5 {
		port, err := freeClusterPort()
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", dir, "--loglevel", "warning",
			"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
			"--cluster-node-timeout", "5000")
		cmd.SysProcAttr = redisSysProcAttr()
		if err := cmd.Start(); err != nil {
			b.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		kill := func() { _ = cmd.Process.Kill(); <-exited }
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true})
		if last = waitReady(client, exited); last != nil {
			client.Close()
			kill()
			continue
		}
		b.Cleanup(func() { client.Close(); kill() })
		return cmd, client
	}
	b.Fatalf("redis-server (cluster node) would not start: %v", last)
	return nil, nil
}

// freeClusterPort returns a port of 127.0.0.1 that is free now and whose
// cluster bus port, port + 10000, is free too.
func freeClusterPort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair for a cluster node")
}

// waitClusterOK polls every node until it reports cluster_state:ok and knows
// all the others; gossip gives no event to wait on.
func waitClusterOK(ctx context.Context, admins []*redis.Client) error {
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
		case <-time.After(50 * time.Millisecond):
		}
	}
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
	for _, n := range c.nodes {
		t := processCPU(n.Process.Pid)
		if t < 0 {
			return -1
		}
		sum += t
	}
	return sum
}
