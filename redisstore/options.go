package redisstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/limitkit/limitkit/core"
)

// Option configures a Store.
type Option func(*config)

type config struct {
	prefix      string
	timeout     time.Duration
	clock       core.Clock
	denyMaxKeys int
	batch       bool
	batchWindow time.Duration
	batchMax    int
	coalesce    bool
	inFlight    int
	sending     bool // an option chose how decisions travel
}

// DefaultPrefix starts every key the store writes, unless WithPrefix says
// otherwise.
const DefaultPrefix = "limitkit:"

// DefaultTimeout bounds a decision whose context has no deadline.
const DefaultTimeout = 100 * time.Millisecond

// DefaultBatchMax is the largest batch WithBatching sends when its max is 0.
const DefaultBatchMax = 128

// WithPrefix starts every key the store writes with prefix (default
// DefaultPrefix), so that several applications can share one Redis. The
// prefix must not contain "{" or "}", which would break the hash tag that
// keeps a decision's keys in one Cluster slot.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithTimeout bounds each call whose context has no deadline (default
// DefaultTimeout), so that a hung Redis never hangs a request. A context
// deadline, when there is one, wins.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithClock makes the scripts take time from clock instead of Redis's TIME.
// It exists for the conformance suite, which drives time; in production the
// time must come from Redis, so that instances with skewed clocks agree.
// Keys then live a minute longer than their windows in Redis time, since
// Redis cannot see the driven clock.
func WithClock(clock core.Clock) Option {
	return func(c *config) { c.clock = clock }
}

// WithDenyCache answers repeated denied requests in process, without a round
// trip, remembering denials for up to maxKeys keys (0 turns it off, the
// default). See the package documentation for what it guarantees and why it
// is off by default.
func WithDenyCache(maxKeys int) Option {
	return func(c *config) { c.denyMaxKeys = maxKeys }
}

// WithBatching coalesces concurrent decisions into one round trip, sent when
// the first of them has waited window or when max of them are waiting (0
// means DefaultBatchMax): on a plain client, one script call per algorithm
// in the batch; on a Cluster client or Ring, one pipeline of EVALSHAs,
// which spans masters, so that a failing master holds up the whole batch
// (WithCoalescing, the default, batches each master apart). Each caller
// still gets its own decision and error. It trades up to window of latency
// for fewer round trips and far less work in Redis per decision; see the
// package documentation.
func WithBatching(window time.Duration, max int) Option {
	return func(c *config) {
		c.batch, c.coalesce, c.batchWindow, c.batchMax, c.sending = true, false, window, max, true
	}
}

// WithCoalescing sends each decision at once while fewer than inFlight
// batches are in flight (0 means DefaultCoalesceInFlight), and coalesces
// the decisions that arrive meanwhile into the next batch, up to max of them
// (0 means DefaultBatchMax). Batches travel as under WithBatching. Unlike
// WithBatching it never waits for a window: an idle store sends a decision
// as soon as it is asked, and under load a batch holds what arrived during
// the previous round trip. It is the default, as WithCoalescing(0, 0), on
// a *redis.Client (standalone or Sentinel) and on a *redis.ClusterClient,
// which coalesces per master (inFlight batches for each), so that a batch
// is a pipeline to one master and a failing master holds up no decision on
// a healthy one. A Ring sends each decision alone unless asked: there a
// batch is one pipeline over its shards. See the package documentation.
func WithCoalescing(max, inFlight int) Option {
	return func(c *config) {
		c.batch, c.coalesce, c.batchMax, c.inFlight, c.sending = false, true, max, inFlight, true
	}
}

// WithoutBatching sends every decision alone, in its own round trip and on
// its caller's goroutine, as the store did before coalescing became its
// default. It costs Redis and the app more per decision under concurrency
// and gains nothing measurable when idle; it is there for comparison and
// for clients whose every command must go alone.
func WithoutBatching() Option {
	return func(c *config) { c.batch, c.coalesce, c.sending = false, false, true }
}

// check reports the first option that cannot work, quoting it.
func (c *config) check() error {
	switch {
	case strings.ContainsAny(c.prefix, "{}"):
		return fmt.Errorf("redisstore: WithPrefix(%q): a prefix must not contain { or }, which would break the keys' Cluster hash tag", c.prefix)
	case c.timeout <= 0:
		return fmt.Errorf("redisstore: WithTimeout(%v): the timeout must be positive", c.timeout)
	case c.denyMaxKeys < 0:
		return fmt.Errorf("redisstore: WithDenyCache(%d): the size must be 0 (off) or positive", c.denyMaxKeys)
	case c.batch && c.batchMax < 0:
		return fmt.Errorf("redisstore: WithBatching(%v, %d): the batch size must be 0 (default) or positive", c.batchWindow, c.batchMax)
	case c.coalesce && c.batchMax < 0:
		return fmt.Errorf("redisstore: WithCoalescing(%d, %d): the batch size must be 0 (default) or positive", c.batchMax, c.inFlight)
	case c.coalesce && c.inFlight < 0:
		return fmt.Errorf("redisstore: WithCoalescing(%d, %d): the batches in flight must be 0 (default) or positive", c.batchMax, c.inFlight)
	case c.batch && c.batchWindow <= 0:
		return fmt.Errorf("redisstore: WithBatching(%v, %d): the window must be positive", c.batchWindow, c.batchMax)
	}
	return nil
}
