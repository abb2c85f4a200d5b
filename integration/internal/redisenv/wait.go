package redisenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// pollInterval is how often waitFor re-checks a condition.
const pollInterval = 50 * time.Millisecond

// waitFor calls check until it returns nil, and fails with check's last error
// when ctx ends first. Containers and clusters converge at their own pace, so
// the harness polls for the state it needs instead of sleeping.
func waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last check: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// adminClient is a plain client to one server, for the harness's own
// commands. No retries, so a failure is reported at once; a reply may take
// 5s (a loaded machine misses 1s with nothing wrong, and many of the
// harness's commands are tried once), and no longer than the caller's
// context, so that a wait loop's deadline still holds.
func adminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           time.Second,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              2,
	})
}

// waitPing waits until the server at addr answers PING.
func waitPing(ctx context.Context, addr string) error {
	c := adminClient(addr)
	defer c.Close()
	return waitFor(ctx, "redis at "+addr+" to answer PING", func(ctx context.Context) error {
		return c.Ping(ctx).Err()
	})
}

// infoField returns field from the text of INFO or CLUSTER INFO
// ("name:value" lines).
func infoField(info, field string) (string, error) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", errors.New("no " + field + " in INFO output")
}

// serverVersion returns redis_version from INFO server.
func serverVersion(ctx context.Context, c *redis.Client) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	return infoField(info, "redis_version")
}
