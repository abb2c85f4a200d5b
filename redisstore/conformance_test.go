package redisstore

import (
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
		return New(c, append([]Option{WithClock(clock), WithTimeout(testTimeout)}, opts...)...)
	})
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
