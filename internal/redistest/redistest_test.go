package redistest

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStart_restartLosesState(t *testing.T) {
	s := Start(t)
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	n, err := c.Exists(ctx, "k").Result()
	if err != nil {
		t.Fatalf("after restart the client should reconnect: %v", err)
	}
	if n != 0 {
		t.Fatalf("key survived a restart of a server without persistence")
	}
}

func TestStart_stopRefusesConnections(t *testing.T) {
	s := Start(t)
	c := s.Client()
	s.Stop()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("PING answered while the server was stopped")
	}
	s.Restart()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
}

func TestCluster_spreadsKeysOverNodes(t *testing.T) {
	c := Cluster(t)
	ctx := context.Background()
	var mu sync.Mutex
	nodes := map[string]bool{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		if n > 0 {
			mu.Lock()
			nodes[m.Options().Addr] = true
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) < 2 {
		t.Fatalf("8 keys landed on %d node(s); want them spread", len(nodes))
	}
}
