package redisstore

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestTake_aLostReplyIsChargedOnce: Redis runs a decision's script and its
// reply is lost (the connection drops after the write), which go-redis by
// default answers by sending the command again, up to MaxRetries times. The
// store's calls forbid that: the decision fails, for the failure policy to
// decide, and its key is charged once, not twice; unbatched, coalesced, and
// for a refund, which a second run would give back twice.
func TestTake_aLostReplyIsChargedOnce(t *testing.T) {
	srv := redistest.Start(t)
	direct := New(srv.Client(), WithoutBatching())
	defer direct.Close()
	ctx := context.Background()
	rule := core.MustRule("5/minute", core.FixedWindow)
	// Loads the scripts, so that the lost call is a script that runs.
	if _, err := direct.Take(ctx, "warm", rule, 1); err != nil {
		t.Fatal(err)
	}
	_, warm, err := direct.Reserve(ctx, "warm", rule, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := direct.Refund(ctx, "warm", rule, warm, 1); err != nil {
		t.Fatal(err)
	}
	remaining := func(key string) int64 {
		t.Helper()
		d, err := direct.Peek(ctx, key, rule, 0)
		if err != nil {
			t.Fatal(err)
		}
		return d.Remaining
	}
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"unbatched", []Option{WithoutBatching()}},
		{"coalesced", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := proxiedClient(t, srv)
			defer c.Close()
			st := New(c, append([]Option{WithTimeout(10 * time.Second)}, tc.opts...)...)
			defer st.Close()
			key := "lost-" + tc.name
			_, err := st.Take(ctx, key, rule, 1)
			if got := remaining(key); got != 4 {
				t.Fatalf("after a Take whose reply was lost (err %v): %d left, want 4: charged once", err, got)
			}
			if err == nil {
				t.Fatal("Take whose reply was lost: no error; want the loss reported")
			}
			// The proxy loses one reply: the next calls go through.
			if _, err := st.Take(ctx, key, rule, 1); err != nil {
				t.Fatal(err)
			}
			if got := remaining(key); got != 3 {
				t.Fatalf("after a second Take: %d left, want 3", got)
			}
		})
	}
	t.Run("refund", func(t *testing.T) {
		c := proxiedClient(t, srv)
		defer c.Close()
		st := New(c, WithTimeout(10*time.Second))
		defer st.Close()
		key := "lost-refund"
		var charge core.Charge
		for range 3 {
			var err error
			if _, charge, err = direct.Reserve(ctx, key, rule, 1); err != nil {
				t.Fatal(err)
			}
		}
		err := st.Refund(ctx, key, rule, charge, 1)
		if got := remaining(key); got != 3 {
			t.Fatalf("after a refund of 1 whose reply was lost, on 3 charged (err %v): %d left, want 3: refunded once", err, got)
		}
		if err == nil {
			t.Fatal("Refund whose reply was lost: no error; want the loss reported")
		}
	})
}

// proxiedClient is a client of srv through a lossyProxy, with go-redis's
// default retries, said out loud: they are what would resend the script.
func proxiedClient(t *testing.T, srv *redistest.Standalone) *redis.Client {
	t.Helper()
	o := srv.Client().Options()
	return redis.NewClient(&redis.Options{
		Addr:       lossyProxy(t, srv.Addr()),
		Username:   o.Username,
		Password:   o.Password,
		DB:         o.DB,
		MaxRetries: 3,
	})
}

// TestAcquire_aLostReplyIsSentOnce: an Acquire whose first run took the one
// slot and whose reply was lost must fail, so that the limiter gives the
// slot back; resent, it would find the slot held by its own lease and be
// refused without an error, holding that slot, unrenewed, for its TTL.
func TestAcquire_aLostReplyIsSentOnce(t *testing.T) {
	srv := redistest.Start(t)
	direct := New(srv.Client(), WithoutBatching())
	defer direct.Close()
	ctx := context.Background()
	one := core.Concurrency{Limit: 1, TTL: time.Minute}
	// Loads the script, so that the lost call is a script that runs.
	if _, err := direct.Acquire(ctx, "warm", "w", one); err != nil {
		t.Fatal(err)
	}
	c := proxiedClient(t, srv)
	defer c.Close()
	st := New(c, WithTimeout(10*time.Second))
	defer st.Close()
	d, err := st.Acquire(ctx, "lost", "lease-1", one)
	if err == nil {
		t.Fatalf("Acquire whose reply was lost: %+v, no error; want the loss reported, for the limiter to give the slot back", d)
	}
	if err := direct.Release(ctx, "lost", "lease-1"); err != nil {
		t.Fatalf("releasing the lease the lost Acquire took: %v; want it held, once", err)
	}
	if d, err := direct.Acquire(ctx, "lost", "lease-2", one); err != nil || !d.Allowed {
		t.Fatalf("after the release: %+v, %v; want the slot free", d, err)
	}
}

// lossyProxy forwards connections to addr, but loses Redis's reply to the
// first command it sees whose bytes hold EVALSHA (every script call of the
// store, its scripts loaded): it passes the command on, and when the reply
// comes back, closes both connections instead of forwarding it. It stops
// when the test ends.
func lossyProxy(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var lost atomic.Bool // a reply was lost: pass everything from now on
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			var armed atomic.Bool // the next bytes from Redis are the reply to lose
			drop := func() { client.Close(); server.Close() }
			wg.Go(func() { // Redis to the client
				defer drop()
				forward(client, server, func([]byte) bool { return !armed.Load() })
			})
			wg.Go(func() { // the client to Redis
				defer drop()
				forward(server, client, func(b []byte) bool {
					if bytes.Contains(bytes.ToLower(b), []byte("evalsha")) && lost.CompareAndSwap(false, true) {
						armed.Store(true)
					}
					return true
				})
			})
		}
	})
	return ln.Addr().String()
}

// forward copies from src to dst what pass lets through, until either
// fails or pass refuses a read.
func forward(dst, src net.Conn, pass func([]byte) bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !pass(buf[:n]) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
