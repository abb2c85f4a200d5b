package redistest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Standalone is one Redis server for a test: a local redis-server this
// package started, or the database REDIS_URL names. Its methods fail the
// test on error.
type Standalone struct {
	t    testing.TB
	opts *redis.Options // how to connect; Addr is fixed for the test's life

	mu   sync.Mutex
	bin  string
	dir  string
	proc *process // nil while stopped, and always for REDIS_URL
}

// Start gives the test a standalone Redis with an empty database, stopped
// when the test ends: the one REDIS_URL names (flushed first) or a new local
// redis-server. It skips or fails the test, as the package doc says, when
// neither is possible.
func Start(t testing.TB) *Standalone {
	t.Helper()
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("redistest: REDIS_URL %q: %v", url, err)
		}
		s := &Standalone{t: t, opts: opts}
		c := s.Client()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.FlushDB(ctx).Err(); err != nil {
			unavailable(t, "REDIS_URL "+url+" does not answer: "+err.Error())
		}
		return s
	}
	bin, err := binary()
	if err != nil {
		unavailable(t, err.Error())
	}
	s := &Standalone{t: t, bin: bin, dir: t.TempDir()}
	p, err := start(bin, s.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	s.opts = &redis.Options{Addr: p.addr()}
	t.Cleanup(s.stop)
	return s
}

// Server is Start(t).Client(): a client of a fresh Redis, for tests that
// need nothing else.
func Server(t testing.TB) *redis.Client {
	t.Helper()
	return Start(t).Client()
}

// Addr is the server's address, host:port.
func (s *Standalone) Addr() string { return s.opts.Addr }

// Client returns a new client of the server, closed when the test ends. It
// retries nothing, so that tests see failures as they happen.
func (s *Standalone) Client() *redis.Client {
	o := *s.opts
	o.MaxRetries = -1
	c := redis.NewClient(&o)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Local reports whether this package runs the server, so that Stop and
// Restart work; it is false for REDIS_URL.
func (s *Standalone) Local() bool { return s.bin != "" }

func (s *Standalone) needLocal() {
	s.t.Helper()
	if !s.Local() {
		s.t.Skip("redistest: cannot stop or restart the server REDIS_URL names")
	}
}

// Stop kills the server, as an outage would: clients then get connection
// errors until Restart. It skips the test for REDIS_URL.
func (s *Standalone) Stop() {
	s.t.Helper()
	s.needLocal()
	s.stop()
}

func (s *Standalone) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Restart kills the server if it runs and starts a new one on the same
// address with no data, as a crash of a Redis without persistence would.
// Clients reconnect on their next command. It skips the test for REDIS_URL.
func (s *Standalone) Restart() {
	s.t.Helper()
	s.needLocal()
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	// The port was ours a moment ago; redis-server binds with SO_REUSEADDR,
	// so only another process grabbing it in between can make this fail.
	p, err := startProcess(s.bin, s.dir, portOf(s.opts.Addr))
	if err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
	s.proc = p
}
