package core

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// The memory store is given a request's key in two parts (storeKey), and
// keeps it as one string: however the key is split, it is the same key as
// the whole string, for Take, Peek, Reset and the bound alike.
func TestMemoryStore_aSplitKeyIsTheWholeKey(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	ctx := context.Background()
	rule := MustRule("10/minute", FixedWindow)
	for _, k := range []storeKey{{"scope:", "id"}, {"", "scope:id"}, {"s", "cope:id"}, {"scope:id", ""}} {
		if _, err := s.take(k, &rule, 1, new(Decision)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("%d keys after four splits of one key; want 1", n)
	}
	d, err := s.Peek(ctx, "scope:id", rule, 1)
	if err != nil || d.Remaining != 5 {
		t.Fatalf("Peek of the whole key: remaining %d, %v; want 5 (four charged, one more peeked)", d.Remaining, err)
	}
	if d, _ := s.peek(storeKey{"scope:", "idx"}, rule, 1); d.Remaining != 9 {
		t.Errorf("another key: remaining %d; want 9, its budget whole", d.Remaining)
	}
	if err := s.Reset(ctx, "scope:id", rule); err != nil || s.Len() != 0 {
		t.Errorf("Reset of the whole key: %v, %d keys left; want none", err, s.Len())
	}
	// A key longer than hashOf joins on the stack is hashed as a stream.
	long := strings.Repeat("x", 200)
	if _, err := s.take(storeKey{"scope:", long}, &rule, 1, new(Decision)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Peek(ctx, "scope:"+long, rule, 1); d.Remaining != 8 {
		t.Errorf("a long key: remaining %d by the whole key; want 8 (one charged, one more peeked)", d.Remaining)
	}
}

// A request's store key is its middleware's scope, ":" and its identity,
// as Middleware.Scope documents, also on the memory store, which is given
// the key in parts: the limiter's own calls reach the budget a request was
// charged to by that string.
func TestMiddleware_limiterCallsReachARequestsBudgetByItsKey(t *testing.T) {
	lim := closeLater(t)
	m := MustNewMiddleware("3/minute", WithLimiter(lim), WithName("quotes"))
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	get(h, "/", "192.0.2.1:1234")
	get(h, "/", "192.0.2.1:1234")
	rule := *m.base.ruleFor(lim)
	d, err := lim.Peek(context.Background(), "quotes:192.0.2.1", rule, 1)
	if err != nil || d.Remaining != 0 {
		t.Fatalf("Peek(quotes:192.0.2.1): remaining %d, %v; want 0 (two charged, one more peeked)", d.Remaining, err)
	}
	if err := lim.Reset(context.Background(), "quotes:192.0.2.1", rule); err != nil {
		t.Fatal(err)
	}
	if w := get(h, "/", "192.0.2.1:1234"); w.Header().Get(HeaderRemaining) != "2" {
		t.Errorf("after Reset: X-RateLimit-Remaining %q; want 2, a fresh budget", w.Header().Get(HeaderRemaining))
	}
}
