package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// conformance runs the suite with a timeout far above the default: the
// suite counts any error as a failure, and 100 concurrent callers on a
// loaded CI machine under -race can take longer than 100ms. Deadlines have
// tests of their own.
func conformance(t *testing.T, c redis.UniversalClient, opts ...Option) {
	storetest.Run(t, func(t *testing.T, clock core.Clock) core.Store {
		return inspected{New(c, append([]Option{WithClock(clock), WithTimeout(testTimeout)}, opts...)...), c}
	})
}

// inspected is a store whose Redis the suite may look into: it lists keys
// without a TTL and plants foreign data under a key's state.
type inspected struct {
	*Store
	c redis.UniversalClient
}

// Unexpiring implements storetest.Expirer: every key under the store's
// prefix without a TTL, on every master of a cluster.
func (s inspected) Unexpiring(ctx context.Context) ([]string, error) {
	var (
		mu  sync.Mutex
		out []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			ttl, err := c.PTTL(ctx, it.Val()).Result()
			if err != nil {
				return err
			}
			if ttl < 0 && ttl != -2*time.Nanosecond { // -2: gone since the scan
				mu.Lock()
				out = append(out, it.Val())
				mu.Unlock()
			}
		}
		return it.Err()
	}
	var err error
	switch c := s.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	}
	return out, err
}

// Corrupt implements storetest.Corrupter: a hash where the state of the
// rule's first limit lives.
func (s inspected) Corrupt(ctx context.Context, key string, rule core.Rule) error {
	k := s.keys(nil, key, rule.Shape(), len(rule.Limits))[0]
	if err := s.c.Del(ctx, k).Err(); err != nil {
		return err
	}
	return s.c.HSet(ctx, k, "foreign", 1).Err()
}

func TestConformance_standalone(t *testing.T) {
	conformance(t, redistest.Server(t))
}

func TestConformance_cluster(t *testing.T) {
	conformance(t, redistest.Cluster(t))
}

func TestConformance_batching(t *testing.T) {
	conformance(t, redistest.Server(t), WithBatching(100*time.Microsecond, 0))
}
