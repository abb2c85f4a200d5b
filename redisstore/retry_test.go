package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
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
	srv, direct := retryServer(t)
	ctx := context.Background()
	rule := core.MustRule("5/minute", core.FixedWindow)
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

// TestTake_aCallRedisRefusedUnrunIsSentAgain: a refusal that proves the
// script did not run (LOADING, READONLY, TRYAGAIN, ...) is sent again by the
// store, as go-redis would resend it but for NoRetry, and charged once;
// unbatched and coalesced.
func TestTake_aCallRedisRefusedUnrunIsSentAgain(t *testing.T) {
	srv, direct := retryServer(t)
	ctx := context.Background()
	rule := core.MustRule("5/minute", core.FixedWindow)
	for _, tc := range []struct {
		name    string
		refusal string
		opts    []Option
	}{
		{"unbatched, LOADING", "-LOADING Redis is loading the dataset in memory\r\n", []Option{WithoutBatching()}},
		{"coalesced, TRYAGAIN", "-TRYAGAIN Multiple keys request during rehashing of slot\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := proxiedClientRefusing(t, srv, tc.refusal)
			defer c.Close()
			st := New(c, append([]Option{WithTimeout(10 * time.Second)}, tc.opts...)...)
			defer st.Close()
			key := "refused-" + tc.name
			d, err := st.Take(ctx, key, rule, 1)
			if err != nil || !d.Allowed {
				t.Fatalf("Take refused once unrun: %+v, %v; want it sent again and admitted", d, err)
			}
			if got, _ := direct.Peek(ctx, key, rule, 0); got.Remaining != 4 {
				t.Fatalf("after the Take: %d left, want 4: charged once", got.Remaining)
			}
		})
	}
	// A refusal that does not prove the script did not run is not resent.
	c := proxiedClientRefusing(t, srv, "-ERR something else\r\n")
	defer c.Close()
	st := New(c, WithoutBatching(), WithTimeout(10*time.Second))
	defer st.Close()
	if _, err := st.Take(ctx, "refused-other", rule, 1); err == nil || !strings.Contains(err.Error(), "something else") {
		t.Fatalf("Take refused with another error: %v; want that error", err)
	}
}

// TestBatch_aLostReplyChargesEachDecisionOnce: two decisions of different
// algorithms in one batch travel as a pipeline of two calls; the replies
// lost, go-redis would resend the whole pipeline and charge both twice.
func TestBatch_aLostReplyChargesEachDecisionOnce(t *testing.T) {
	srv, direct := retryServer(t)
	ctx := context.Background()
	rules := []core.Rule{core.MustRule("5/minute", core.FixedWindow), core.MustRule("5/minute", core.SlidingWindowCounter)}
	c := proxiedClient(t, srv)
	defer c.Close()
	// A batch leaves when it holds two decisions: these two.
	st := New(c, WithBatching(time.Minute, 2), WithTimeout(10*time.Second))
	defer st.Close()
	var wg sync.WaitGroup
	for i, r := range rules {
		wg.Go(func() { _, _ = st.Take(ctx, fmt.Sprint("batched-", i), r, 1) })
	}
	wg.Wait()
	for i, r := range rules {
		if d, err := direct.Peek(ctx, fmt.Sprint("batched-", i), r, 0); err != nil || d.Remaining != 4 {
			t.Errorf("%v after a batch whose replies were lost: %d left, %v; want 4: charged once", r.Algorithm, d.Remaining, err)
		}
	}
}

// retryServer starts a Redis and a store on it that is not proxied, and
// has Redis load every script the tests' calls run, so that a lost or
// refused call is one of a script Redis knows (a NOSCRIPT reply would
// prove nothing ran).
func retryServer(t *testing.T) (*redistest.Standalone, *Store) {
	t.Helper()
	srv := redistest.Start(t)
	direct := New(srv.Client(), WithoutBatching())
	t.Cleanup(func() { direct.Close() })
	ctx := context.Background()
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter} {
		rule := core.MustRule("5/minute", alg)
		_, charge, err := direct.Reserve(ctx, "warm", rule, 1)
		if err == nil {
			err = direct.Refund(ctx, "warm", rule, charge, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := direct.Acquire(ctx, "warm", "w", core.Concurrency{Limit: 1, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return srv, direct
}

// proxiedClient is a client of srv through a lossyProxy, with go-redis's
// default retries, said out loud: they are what would resend the script.
func proxiedClient(t *testing.T, srv *redistest.Standalone) *redis.Client {
	t.Helper()
	return proxiedClientRefusing(t, srv, "")
}

// proxiedClientRefusing is proxiedClient, whose proxy answers the first
// EVALSHA with refusal instead, if not empty (see lossyProxy).
func proxiedClientRefusing(t *testing.T, srv *redistest.Standalone, refusal string) *redis.Client {
	t.Helper()
	o := srv.Client().Options()
	return redis.NewClient(&redis.Options{
		Addr:       lossyProxy(t, srv.Addr(), refusal),
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
	srv, direct := retryServer(t)
	ctx := context.Background()
	one := core.Concurrency{Limit: 1, TTL: time.Minute}
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
// comes back, closes both connections instead of forwarding it. With a
// refusal (a RESP error line, such as "-LOADING ...\r\n"), it answers that
// command with the refusal instead and never passes it on, as Redis
// refusing it unrun. It stops when the test ends.
func lossyProxy(t *testing.T, addr, refusal string) string {
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
				forward(client, server, func([]byte) (bool, bool) { return !armed.Load(), !armed.Load() })
			})
			wg.Go(func() { // the client to Redis
				defer drop()
				forward(server, client, func(b []byte) (bool, bool) {
					if !bytes.Contains(bytes.ToLower(b), []byte("evalsha")) || !lost.CompareAndSwap(false, true) {
						return true, true
					}
					if refusal != "" {
						_, err := client.Write([]byte(refusal))
						return false, err == nil
					}
					armed.Store(true)
					return true, true
				})
			})
		}
	})
	return ln.Addr().String()
}

// forward copies what it reads from src to dst, each read if pass says to
// send it, until either fails or pass says not to go on.
func forward(dst, src net.Conn, pass func([]byte) (send, goOn bool)) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			send, goOn := pass(buf[:n])
			if !goOn {
				return
			}
			if !send {
				continue
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
