package redisenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds starting or restarting one server.
const startTimeout = 30 * time.Second

// standaloneArgs run redis purely in memory: a restarted server comes back
// empty, which is the "lost all state" outage the tests want to simulate.
// Protected mode is off because the test process is not on the container's
// loopback; the server is only reachable on the test's private network.
var standaloneArgs = []string{
	"--port", "6379",
	"--protected-mode", "no",
	"--save", "",
	"--appendonly", "no",
}

// Standalone is one Redis server in a container on its own private network.
// Its methods fail the test on error and must be called from the test's
// goroutine.
type Standalone struct {
	t       testing.TB
	pool    *Pool
	srv     *server
	version string
}

// StartStandalone connects to Docker (see NewPool) and starts a standalone
// Redis server, removed when the test ends.
func StartStandalone(t testing.TB) *Standalone {
	t.Helper()
	return NewPool(t).StartStandalone(t)
}

// StartStandalone starts a standalone Redis server and waits until it
// answers. The container and its network are removed when the test ends.
func (p *Pool) StartStandalone(t testing.TB) *Standalone {
	t.Helper()
	repo, tag := p.requireImage(t)
	n := p.newNetwork(t)
	srv, err := p.runRedis(t, n, repo, tag, "redis", standaloneArgs)
	if err != nil {
		t.Fatalf("redisenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	if err := waitPing(ctx, srv.addr); err != nil {
		t.Fatalf("redisenv: %v", err)
	}
	c := adminClient(srv.addr)
	defer c.Close()
	version, err := serverVersion(ctx, c)
	if err != nil {
		t.Fatalf("redisenv: INFO server on %s: %v", srv.addr, err)
	}
	return &Standalone{t: t, pool: p, srv: srv, version: version}
}

// Addr returns the server's host:port, reachable from the test process.
// It stays the same across Stop and Start.
func (s *Standalone) Addr() string { return s.srv.addr }

// Version returns the server's redis_version (from INFO server).
func (s *Standalone) Version() string { return s.version }

// NewClient returns a client for the server, closed when the test ends.
// Timeouts are short (1s) and a failed dial is not retried, so tests against
// a paused or stopped server see errors quickly; opts may change any option.
func (s *Standalone) NewClient(opts ...func(*redis.Options)) *redis.Client {
	o := &redis.Options{
		Addr:          s.srv.addr,
		DialTimeout:   time.Second,
		DialerRetries: 1,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
	}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Pause freezes the server (docker pause): connections stay open but nothing
// is answered, like a stalled or partitioned server. Clients see timeouts.
//
// It returns only once the freeze is seen from outside: a command sent on a
// fresh connection goes unanswered for frozenProbe. docker pause returns when
// the cgroup freezer reports FROZEN, yet a CI run once saw the server answer
// a GET sent after it returned; so Pause checks, and if the server still
// answers it thaws and freezes again, failing the test after a few tries.
func (s *Standalone) Pause() {
	s.t.Helper()
	const tries = 4
	for try := 1; ; try++ {
		if err := s.pool.docker.Client.PauseContainer(s.srv.id); err != nil {
			s.t.Fatalf("redisenv: pause %s: %v", s.srv.name, err)
		}
		answered, err := answers(s.srv.addr)
		if err != nil {
			s.t.Fatalf("redisenv: pause %s: probing %s: %v", s.srv.name, s.srv.addr, err)
		}
		if !answered {
			return
		}
		if try == tries {
			s.t.Fatalf("redisenv: pause %s: still answering PING after %d docker pauses", s.srv.name, tries)
		}
		s.t.Logf("redisenv: pause %s: docker pause returned but the server still answers; pausing again", s.srv.name)
		if err := s.pool.docker.Client.UnpauseContainer(s.srv.id); err != nil {
			s.t.Fatalf("redisenv: unpause %s: %v", s.srv.name, err)
		}
	}
}

// frozenProbe is how long a paused server must stay silent. A running server
// on the Docker bridge answers PING in well under a millisecond, so 150ms is
// far beyond a slow reply even on a loaded machine.
const frozenProbe = 150 * time.Millisecond

// answers reports whether a PING sent on a new connection to addr is answered
// within frozenProbe. A frozen server still completes the TCP handshake (the
// kernel does that), so only the missing reply tells it is frozen.
func answers(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(frozenProbe)); err != nil {
		return false, err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false, err
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	var netErr net.Error
	switch {
	case n > 0:
		return true, nil
	case errors.As(err, &netErr) && netErr.Timeout():
		return false, nil
	default:
		return false, fmt.Errorf("PING: read %q, %v", buf[:n], err)
	}
}

// Unpause resumes a paused server with its state intact.
func (s *Standalone) Unpause() {
	s.t.Helper()
	if err := s.pool.docker.Client.UnpauseContainer(s.srv.id); err != nil {
		s.t.Fatalf("redisenv: unpause %s: %v", s.srv.name, err)
	}
}

// Stop kills the server (SIGKILL), like a crash: open connections break and
// new ones fail until Start (with a dial timeout, not a refusal: while the
// container is down nothing answers at its address). All data is lost.
func (s *Standalone) Stop() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), startTimeout)
	defer cancel()
	if err := s.pool.kill(ctx, s.srv); err != nil {
		s.t.Fatalf("redisenv: stop %s: %v", s.srv.name, err)
	}
}

// Start restarts a stopped server, empty, at the same address, and waits
// until it answers.
func (s *Standalone) Start() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), startTimeout)
	defer cancel()
	cl := s.pool.docker.Client
	if err := cl.StartContainerWithContext(s.srv.id, nil, ctx); err != nil {
		s.t.Fatalf("redisenv: start %s: %v", s.srv.name, err)
	}
	// The engine allocates the address again on start. On a network with a
	// single container it gets the same one back; check rather than assume,
	// because clients under test keep dialing the old address.
	c, err := cl.InspectContainerWithContext(s.srv.id, ctx)
	if err != nil {
		s.t.Fatalf("redisenv: inspect %s: %v", s.srv.name, err)
	}
	for _, ep := range c.NetworkSettings.Networks {
		if ep.IPAddress != s.srv.ip {
			s.t.Fatalf("redisenv: %s restarted at %s, was %s", s.srv.name, ep.IPAddress, s.srv.ip)
		}
	}
	// The pending self-destruction ended with the kill; arm it again.
	_ = s.srv.res.Expire(expireSeconds)
	if err := waitPing(ctx, s.srv.addr); err != nil {
		s.t.Fatalf("redisenv: %v", err)
	}
}
