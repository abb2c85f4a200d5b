package redisenv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// Masters is the number of masters (shards) in a Cluster; each has one
	// replica.
	Masters = 3

	// clusterSize is the number of nodes: masters first, then replicas;
	// node Masters+i replicates node i.
	clusterSize = 2 * Masters

	// clusterSlots is the fixed number of hash slots in Redis Cluster.
	clusterSlots = 16384

	// clusterUpTimeout bounds forming the cluster, clusterDownTimeout the
	// engine operations of a fault injection.
	clusterUpTimeout   = 90 * time.Second
	clusterDownTimeout = 30 * time.Second
)

// clusterArgs configure each node for fast, deterministic tests:
//   - cluster-node-timeout 1000 ms: a dead master is detected in about a
//     second, so failover completes in a few seconds instead of ~20;
//   - cluster-replica-validity-factor 0: a replica may always take over, even
//     if its link to the master was down for a while before the failure;
//   - repl-diskless-sync-delay 0: replicas sync at once (the default waits 5s
//     for more replicas to batch them);
//   - nothing persisted; nodes.conf goes to the container's /data.
var clusterArgs = []string{
	"--port", "6379",
	"--protected-mode", "no",
	"--save", "",
	"--appendonly", "no",
	"--cluster-enabled", "yes",
	"--cluster-config-file", "nodes.conf",
	"--cluster-node-timeout", "1000",
	"--cluster-replica-validity-factor", "0",
	"--repl-diskless-sync", "yes",
	"--repl-diskless-sync-delay", "0",
}

// Cluster is a Redis Cluster of 3 masters and 3 replicas, in containers on a
// private network. Its methods fail the test on error (except WaitFailover,
// which returns it) and must be called from the test's goroutine.
type Cluster struct {
	t       testing.TB
	pool    *Pool
	nodes   []*clusterNode
	version string

	mu sync.Mutex // guards clusterNode.down
}

// clusterNode is one node of a Cluster.
type clusterNode struct {
	*server
	nodeID string        // cluster node id (CLUSTER MYID)
	admin  *redis.Client // direct connection, for the harness's commands
	down   bool          // killed by the harness
}

// StartCluster connects to Docker (see NewPool) and starts a Redis Cluster,
// removed when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return NewPool(t).StartCluster(t)
}

// StartCluster starts 6 nodes, forms a cluster of 3 masters owning the 16384
// slots in three equal ranges, each with one replica, and waits until every
// node reports cluster_state:ok and every replica is in sync.
func (p *Pool) StartCluster(t testing.TB) *Cluster {
	t.Helper()
	repo, tag := p.requireImage(t)
	n := p.newNetwork(t)

	// Containers start in parallel: most of the bring-up is engine latency.
	servers := make([]*server, clusterSize)
	errs := make([]error, clusterSize)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() {
			servers[i], errs[i] = p.runRedis(t, n, repo, tag, "node"+strconv.Itoa(i), clusterArgs)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("redisenv: %v", err)
	}

	c := &Cluster{t: t, pool: p}
	for _, s := range servers {
		node := &clusterNode{server: s, admin: adminClient(s.addr)}
		t.Cleanup(func() { _ = node.admin.Close() })
		c.nodes = append(c.nodes, node)
	}

	ctx, cancel := context.WithTimeout(t.Context(), clusterUpTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		t.Fatalf("redisenv: form cluster: %v", err)
	}
	v, err := serverVersion(ctx, c.nodes[0].admin)
	if err != nil {
		t.Fatalf("redisenv: INFO server: %v", err)
	}
	c.version = v
	return c
}

// form turns six empty cluster-enabled nodes into a cluster, with the same
// steps as redis-cli --cluster create, issued through go-redis.
func (c *Cluster) form(ctx context.Context) error {
	for _, n := range c.nodes {
		if err := waitPing(ctx, n.addr); err != nil {
			return err
		}
		id, err := n.admin.ClusterMyID(ctx).Result()
		if err != nil {
			return fmt.Errorf("CLUSTER MYID on %s: %w", n.addr, err)
		}
		n.nodeID = id
	}
	for i, n := range c.nodes {
		// Distinct config epochs up front; otherwise every master starts at
		// epoch 0 and the nodes spend gossip rounds resolving the collision.
		if err := n.admin.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH on %s: %w", n.addr, err)
		}
	}
	for i := range Masters {
		lo, hi := shardRange(i)
		if err := c.nodes[i].admin.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE %d %d on %s: %w", lo, hi, c.nodes[i].addr, err)
		}
	}
	// One node meets all others; gossip introduces the rest to each other.
	for _, n := range c.nodes[1:] {
		if err := c.nodes[0].admin.ClusterMeet(ctx, n.ip, strconv.Itoa(redisPort)).Err(); err != nil {
			return fmt.Errorf("CLUSTER MEET %s: %w", n.addr, err)
		}
	}
	// A node can only replicate a master it knows.
	if err := waitFor(ctx, "all nodes to know each other", c.allKnown); err != nil {
		return err
	}
	for i := range Masters {
		r, m := c.nodes[Masters+i], c.nodes[i]
		if err := r.admin.ClusterReplicate(ctx, m.nodeID).Err(); err != nil {
			return fmt.Errorf("CLUSTER REPLICATE on %s: %w", r.addr, err)
		}
	}
	return waitFor(ctx, "the cluster to be ready", c.ready)
}

// shardRange returns the slots of shard i: three nearly equal ranges, like
// redis-cli assigns them (0-5460, 5461-10922, 10923-16383).
func shardRange(i int) (lo, hi int) {
	lo = i * clusterSlots / Masters
	hi = (i+1)*clusterSlots/Masters - 1
	return lo, hi
}

// Addrs returns the host:port of all six nodes, reachable from the test
// process, including nodes the harness stopped. Any of them works as a seed.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Version returns the nodes' redis_version (from INFO server).
func (c *Cluster) Version() string { return c.version }

// NewClient returns a cluster client seeded with Addrs, closed when the test
// ends. Timeouts are short (1s) and a failed dial is not retried, so a
// command routed to a dead master fails within a second instead of five;
// opts may change any option.
//
// Beware: go-redis v9.23 does not refresh its slot map when a master stops
// answering, only on MOVED/ASK/READONLY replies or every
// ClusterStateReloadInterval (default 60s; redis/go-redis#3979). After a
// failover, commands for the dead master's slots keep failing until then,
// unless the caller invokes ReloadState on connection errors.
func (c *Cluster) NewClient(opts ...func(*redis.ClusterOptions)) *redis.ClusterClient {
	o := &redis.ClusterOptions{
		Addrs:         c.Addrs(),
		DialTimeout:   time.Second,
		DialerRetries: 1,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
	}
	for _, f := range opts {
		f(o)
	}
	cc := redis.NewClusterClient(o)
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// StopMaster kills (SIGKILL) the node that is currently master of shard i
// (0 ≤ i < Masters; shard i holds the slots initially given to node i, so
// after a failover it is that node's former replica). Its replica takes over
// after cluster-node-timeout; see WaitFailover. It returns the killed node's
// address.
func (c *Cluster) StopMaster(i int) string {
	c.t.Helper()
	if i < 0 || i >= Masters {
		c.t.Fatalf("redisenv: StopMaster(%d): shard out of range [0,%d)", i, Masters)
	}
	lo, _ := shardRange(i)
	return c.killSlotOwner(lo)
}

// KillMasterOwningKey kills (SIGKILL) the master currently serving key and
// returns its address. Its replica takes over; see WaitFailover.
func (c *Cluster) KillMasterOwningKey(key string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), clusterDownTimeout)
	defer cancel()
	slot, err := c.liveNode().admin.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatalf("redisenv: CLUSTER KEYSLOT %q: %v", key, err)
	}
	return c.killSlotOwner(int(slot))
}

// killSlotOwner kills the master that serves slot, as the cluster sees it.
func (c *Cluster) killSlotOwner(slot int) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), clusterDownTimeout)
	defer cancel()
	victim, err := c.slotOwner(ctx, slot)
	if err != nil {
		c.t.Fatalf("redisenv: %v", err)
	}
	if err := c.pool.kill(ctx, victim.server); err != nil {
		c.t.Fatalf("redisenv: kill %s: %v", victim.name, err)
	}
	c.mu.Lock()
	victim.down = true
	c.mu.Unlock()
	return victim.addr
}

// slotOwner asks a live node which node is master of slot.
func (c *Cluster) slotOwner(ctx context.Context, slot int) (*clusterNode, error) {
	shards, err := c.liveNode().admin.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	for _, sh := range shards {
		in := false
		for _, r := range sh.Slots {
			in = in || (int64(slot) >= r.Start && int64(slot) <= r.End)
		}
		if !in {
			continue
		}
		for _, m := range sh.Nodes {
			// A killed master stays listed, as a master that failed, beside
			// the replica that took its place.
			if m.Role != "master" || m.Health != "online" {
				continue
			}
			for _, n := range c.nodes {
				if n.nodeID == m.ID {
					return n, nil
				}
			}
			return nil, fmt.Errorf("slot %d is served by unknown node %s", slot, m.ID)
		}
	}
	return nil, fmt.Errorf("slot %d is not served", slot)
}

// WaitFailover waits until the cluster has recovered from the masters the
// harness killed: every surviving node reports cluster_state:ok and sees
// every slot served by a surviving master. Right after a kill the nodes still
// report ok (they have not noticed yet), so the second condition matters.
func (c *Cluster) WaitFailover(ctx context.Context) error {
	return waitFor(ctx, "the cluster to fail over", c.recovered)
}

// liveNodes returns the nodes the harness has not killed.
func (c *Cluster) liveNodes() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*clusterNode
	for _, n := range c.nodes {
		if !n.down {
			live = append(live, n)
		}
	}
	return live
}

// liveNode returns a node the harness has not killed.
func (c *Cluster) liveNode() *clusterNode {
	live := c.liveNodes()
	if len(live) == 0 {
		c.t.Fatal("redisenv: every cluster node is down")
	}
	return live[0]
}

// WaitReplicated waits until the replica of shard i (0 ≤ i < Masters) has
// applied every write its master had made when called, so that killing the
// master then loses nothing written before. It asks the replica for its own
// offset rather than the master for the replica's acknowledged one, which
// the replica reports only once a second.
func (c *Cluster) WaitReplicated(ctx context.Context, i int) error {
	lo, _ := shardRange(i)
	m, r, err := c.shardNodes(ctx, lo)
	if err != nil {
		return err
	}
	info, err := m.admin.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication on %s: %w", m.addr, err)
	}
	v, err := infoField(info, "master_repl_offset")
	if err != nil {
		return fmt.Errorf("master %s: %w", m.addr, err)
	}
	want, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("master %s: master_repl_offset %q: %w", m.addr, v, err)
	}
	return waitFor(ctx, fmt.Sprintf("replica %s to reach offset %d of %s", r.addr, want, m.addr), func(ctx context.Context) error {
		info, err := r.admin.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("INFO replication on %s: %w", r.addr, err)
		}
		v, _ := infoField(info, "slave_repl_offset")
		if got, err := strconv.ParseInt(v, 10, 64); err != nil || got < want {
			return fmt.Errorf("replica %s at slave_repl_offset %q", r.addr, v)
		}
		return nil
	})
}

// shardNodes returns the online master and an online replica of the shard
// serving slot.
func (c *Cluster) shardNodes(ctx context.Context, slot int) (master, replica *clusterNode, err error) {
	shards, err := c.liveNode().admin.ClusterShards(ctx).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	byID := map[string]*clusterNode{}
	for _, n := range c.nodes {
		byID[n.nodeID] = n
	}
	for _, sh := range shards {
		in := false
		for _, r := range sh.Slots {
			in = in || (int64(slot) >= r.Start && int64(slot) <= r.End)
		}
		if !in {
			continue
		}
		for _, n := range sh.Nodes {
			if n.Health != "online" || byID[n.ID] == nil {
				continue
			}
			switch n.Role {
			case "master":
				master = byID[n.ID]
			case "replica":
				replica = byID[n.ID]
			}
		}
	}
	if master == nil || replica == nil {
		return nil, nil, fmt.Errorf("slot %d: no online master and replica (master %v, replica %v)", slot, master != nil, replica != nil)
	}
	return master, replica, nil
}
