package redisenv

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// nodeView is one line of CLUSTER NODES: how one node sees another.
type nodeView struct {
	id       string
	addr     string   // ip:port, without the cluster bus port
	flags    []string // myself, master, slave, fail?, fail, handshake, noaddr, ...
	masterID string   // for replicas, "-" for masters
	slots    int      // number of slots it serves
}

func (v nodeView) has(flag string) bool { return slices.Contains(v.flags, flag) }

// unhealthy reports whether the viewer considers the node failing or not
// (yet) a full member.
func (v nodeView) unhealthy() bool {
	return v.has("fail") || v.has("fail?") || v.has("handshake") || v.has("noaddr")
}

// clusterView returns n's view of the cluster, keyed by node id.
func clusterView(ctx context.Context, n *clusterNode) (map[string]nodeView, error) {
	text, err := n.admin.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", n.addr, err)
	}
	views := map[string]nodeView{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES on %s: bad line %q", n.addr, line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		v := nodeView{id: f[0], addr: addr, flags: strings.Split(f[2], ","), masterID: f[3]}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being migrated or imported
				continue
			}
			lo, hi, isRange := strings.Cut(s, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("CLUSTER NODES on %s: bad slots %q", n.addr, s)
			}
			v.slots += b - a + 1
		}
		views[v.id] = v
	}
	return views, nil
}

// okView returns n's view of the cluster, as clusterView, once n's CLUSTER
// INFO reports cluster_state:ok, and an error while it does not.
func okView(ctx context.Context, n *clusterNode) (map[string]nodeView, error) {
	info, err := n.admin.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER INFO on %s: %w", n.addr, err)
	}
	state, err := infoField(info, "cluster_state")
	if err != nil {
		return nil, err
	}
	if state != "ok" {
		return nil, fmt.Errorf("%s: cluster_state:%s", n.addr, state)
	}
	return clusterView(ctx, n)
}

// allKnown checks that every node has met every other node.
func (c *Cluster) allKnown(ctx context.Context) error {
	for _, n := range c.nodes {
		views, err := clusterView(ctx, n)
		if err != nil {
			return err
		}
		for _, m := range c.nodes {
			v, ok := views[m.nodeID]
			if !ok || v.has("handshake") || v.has("noaddr") {
				return fmt.Errorf("%s does not know %s yet", n.addr, m.addr)
			}
		}
	}
	return nil
}

// ready checks the freshly formed cluster: every node reports
// cluster_state:ok and agrees on the intended topology (addresses, roles,
// slot owners), and every replica has finished its initial sync. Checking
// all of it means a failover test starts from a cluster that can fail over:
// masters know which replicas may be promoted, replicas hold the data.
func (c *Cluster) ready(ctx context.Context) error {
	for _, n := range c.nodes {
		views, err := okView(ctx, n)
		if err != nil {
			return err
		}
		for j, m := range c.nodes {
			v, ok := views[m.nodeID]
			switch {
			case !ok:
				return fmt.Errorf("%s does not know %s", n.addr, m.addr)
			case v.addr != m.addr:
				return fmt.Errorf("%s sees %s at %s", n.addr, m.addr, v.addr)
			case v.unhealthy():
				return fmt.Errorf("%s sees %s as %v", n.addr, m.addr, v.flags)
			case j < Masters && (!v.has("master") || v.slots == 0):
				return fmt.Errorf("%s does not see %s as a master with slots yet", n.addr, m.addr)
			case j >= Masters && (!v.has("slave") || v.masterID != c.nodes[j-Masters].nodeID):
				return fmt.Errorf("%s does not see %s as replica of %s yet", n.addr, m.addr, c.nodes[j-Masters].addr)
			}
		}
	}
	for i := range Masters {
		if err := c.inSync(ctx, c.nodes[i], c.nodes[Masters+i]); err != nil {
			return err
		}
	}
	return nil
}

// inSync checks that replica r completed its sync from master m and that m
// counts it as an online replica.
func (c *Cluster) inSync(ctx context.Context, m, r *clusterNode) error {
	info, err := r.admin.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication on %s: %w", r.addr, err)
	}
	link, _ := infoField(info, "master_link_status")
	syncing, _ := infoField(info, "master_sync_in_progress")
	if link != "up" || syncing != "0" {
		return fmt.Errorf("replica %s: master_link_status:%s master_sync_in_progress:%s", r.addr, link, syncing)
	}
	info, err = m.admin.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication on %s: %w", m.addr, err)
	}
	// slave0:ip=...,port=6379,state=online,offset=...,lag=0
	slave, _ := infoField(info, "slave0")
	if !strings.Contains(slave, "ip="+r.ip+",") || !strings.Contains(slave, "state=online") {
		return fmt.Errorf("master %s: replica not online yet (slave0:%s)", m.addr, slave)
	}
	return nil
}

// recovered checks that every live node reports cluster_state:ok and sees
// all slots served by healthy masters the harness has not killed.
func (c *Cluster) recovered(ctx context.Context) error {
	live := c.liveNodes()
	alive := map[string]bool{}
	for _, n := range live {
		alive[n.nodeID] = true
	}
	for _, n := range live {
		views, err := okView(ctx, n)
		if err != nil {
			return err
		}
		served := 0
		for _, v := range views {
			if v.slots == 0 {
				continue
			}
			if !alive[v.id] || v.unhealthy() {
				return fmt.Errorf("%s still sees %d slots on %s %v", n.addr, v.slots, v.addr, v.flags)
			}
			served += v.slots
		}
		if served != clusterSlots {
			return fmt.Errorf("%s sees %d of %d slots served", n.addr, served, clusterSlots)
		}
	}
	return nil
}
