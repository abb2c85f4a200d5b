package redisstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// refusedAddr returns an address on which nothing listens: a port the
// kernel gave a listener that is closed again.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// failureLog is a limiter's log and events, for asserting what they say.
type failureLog struct {
	mu     sync.Mutex
	log    bytes.Buffer
	events []core.Event
}

func (f *failureLog) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Write(p)
}

func (f *failureLog) Observe(e core.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *failureLog) limiter(t *testing.T, st *Store, timeout time.Duration) *core.Limiter {
	lim := core.New(core.WithStore(st), core.WithTimeout(timeout), core.WithFailurePolicy(core.FailClosed),
		core.WithProbeInterval(0), core.WithObserver(f), core.WithLogger(slog.New(slog.NewTextHandler(f, nil))))
	t.Cleanup(func() { lim.Close() })
	return lim
}

// namesRefusal fails the test unless err says both that the deadline passed
// and that the connection was refused, and errors.Is finds both.
func namesRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s: errors.Is(%v) finds ECONNREFUSED %v, DeadlineExceeded %v; want both", what, err,
			errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded))
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("%s: %q does not name the refused connection", what, err)
	}
}

// A server that refuses connections shows as a deadline passing, in the
// error, the event and the log, only if the store names the refusal too:
// go-redis keeps it in its pool and retries until the deadline.
func TestStore_refusedConnectionIsNamed(t *testing.T) {
	addr := refusedAddr(t)
	cases := []struct {
		name   string
		client func() redis.UniversalClient
		st     []Option
	}{
		{"plain client", func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: addr}) }, nil},
		{"ContextTimeoutEnabled", func() redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		}, nil},
		{"batching", func() redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		}, []Option{WithBatching(time.Millisecond, 0)}},
		{"Cluster client", func() redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true})
		}, nil},
		{"Ring", func() redis.UniversalClient {
			return redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": addr}, ContextTimeoutEnabled: true})
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client()
			t.Cleanup(func() { c.Close() })
			st := New(c, tc.st...)
			t.Cleanup(func() { st.Close() })
			var f failureLog
			lim := f.limiter(t, st, 100*time.Millisecond)

			_, err := lim.Allow(context.Background(), "k", core.MustRule("5/minute", 0))
			namesRefusal(t, "Allow", err)
			if !errors.Is(err, core.ErrUnavailable) {
				t.Errorf("Allow: %v does not wrap ErrUnavailable", err)
			}
			f.mu.Lock()
			events, log := f.events, f.log.String()
			f.mu.Unlock()
			var failures int
			for _, e := range events {
				if e.Kind == core.EventStoreDown || e.Kind == core.EventStoreError {
					failures++
					namesRefusal(t, e.Kind.String()+" event", e.Err)
				}
			}
			if failures != 2 {
				t.Errorf("heard %d store-down and store-error events, want 2: %+v", failures, events)
			}
			if !strings.Contains(log, "connection refused") || !strings.Contains(log, "did not answer within 100ms") {
				t.Errorf("the log does not name the refused connection and the deadline:\n%s", log)
			}

			// The store's other calls, each with a deadline of its own.
			within := func() context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			}
			rule := core.MustRule("5/minute", 0)
			namesRefusal(t, "Reset", st.Reset(within(), "k", rule))
			_, err = st.Peek(within(), "k", rule, 1)
			namesRefusal(t, "Peek", err)
			_, _, err = st.Reserve(within(), "k", rule, 1)
			namesRefusal(t, "Reserve", err)
			namesRefusal(t, "Refund", st.Refund(within(), "k", rule, core.Charge{Cost: 1, At: time.Now()}, 1))
		})
	}
}

// A server stopped under a working store: the next checks name the refused
// connection, and once the server is back and answers, the cause is
// forgotten, so that a later timeout does not blame an old refusal.
func TestStore_stoppedServerIsNamedUntilItAnswers(t *testing.T) {
	s := redistest.Start(t)
	st := New(s.Client())
	t.Cleanup(func() { st.Close() })
	var f failureLog
	lim := f.limiter(t, st, 200*time.Millisecond)
	rule := core.MustRule("5/minute", 0)
	ctx := context.Background()
	if _, err := lim.Allow(ctx, "k", rule); err != nil {
		t.Fatalf("before the stop: %v", err)
	}

	s.Stop()
	// The pooled connection may fail first with a reset or EOF, which names
	// itself; a few checks later, the store must be dialling and refused.
	var errs []error
	for range 5 {
		_, err := lim.Allow(ctx, "k", rule)
		errs = append(errs, err)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	namesRefusal(t, "Allow after the stop", errs[len(errs)-1])
	t.Logf("after the stop: %v", errs)
	if len(errs) > 2 {
		t.Errorf("took %d checks to name the refusal: %v", len(errs), errs)
	}

	s.Restart()
	var err error
	for range 5 {
		if _, err = lim.Allow(ctx, "k", rule); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if p := st.cause.last.Load(); p != nil {
		t.Errorf("after Redis answered, the store still blames %v", *p)
	}
}

// Redis's own error replies, and a deadline with no failed connection
// behind it, are returned as they are.
func TestDialCause_explainsOnlyConnectionFailures(t *testing.T) {
	var c dialCause
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	if got := c.explain(context.DeadlineExceeded); got != context.DeadlineExceeded {
		t.Errorf("nothing recorded: explain = %v, want the error as it is", got)
	}
	var err error = refused
	c.last.Store(&err)
	reply := redis.Nil
	if got := c.explain(reply); got != reply {
		t.Errorf("explain(a reply) = %v, want it as it is", got)
	}
	if got := c.explain(refused); got != error(refused) {
		t.Errorf("explain(the refusal itself) = %v, want it as it is", got)
	}
	got := c.explain(context.DeadlineExceeded)
	if want := "context deadline exceeded (last connection attempt: dial tcp: connection refused)"; got.Error() != want {
		t.Errorf("explain = %q, want %q", got, want)
	}
	if !errors.Is(got, context.DeadlineExceeded) || !errors.Is(got, syscall.ECONNREFUSED) {
		t.Errorf("errors.Is does not find both errors in %v", got)
	}
	c.forget()
	if got := c.explain(context.DeadlineExceeded); got != context.DeadlineExceeded {
		t.Errorf("after forget: explain = %v, want the error as it is", got)
	}
}

// Stores on one client share one hook: a hook per New would lengthen every
// command's chain with each Store (and did, by an allocation per hook per
// command, in BenchmarkTake, which builds a Store per run on one client).
func TestNew_storesOnOneClientShareTheHook(t *testing.T) {
	addr := refusedAddr(t)
	clients := map[string]redis.UniversalClient{
		"Client":        redis.NewClient(&redis.Options{Addr: addr}),
		"ClusterClient": redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}}),
		"Ring":          redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": addr}}),
	}
	for name, c := range clients {
		t.Cleanup(func() { c.Close() })
		a, b := New(c), New(c)
		if a.cause != b.cause {
			t.Errorf("%s: two Stores on one client have hooks of their own", name)
		}
		other := New(redis.NewClient(&redis.Options{Addr: addr}))
		if other.cause == a.cause {
			t.Errorf("%s: a Store on another client shares its hook", name)
		}
	}
}

// The hook costs a command that succeeds no allocation.
func TestDialCause_answeredCommandAllocatesNothing(t *testing.T) {
	var c dialCause
	hook := c.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	ctx, cmd := context.Background(), redis.NewStatusCmd(context.Background(), "ping")
	if n := testing.AllocsPerRun(100, func() { _ = hook(ctx, cmd) }); n != 0 {
		t.Errorf("%v allocations per command; want 0", n)
	}
}
