package httptestkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/limitkit/limitkit/core"
)

// Held is the handler side of ConcurrencyLimit: its Slow handler reports
// each request it enters and returns when Free is closed, and its Panic
// handler panics.
type Held struct {
	Entered chan struct{}
	Free    chan struct{}
}

// NewHeld returns a Held whose requests wait.
func NewHeld() *Held { return &Held{Entered: make(chan struct{}, 64), Free: make(chan struct{})} }

// Slow is the body of a handler that holds its slot until Free closes.
func (h *Held) Slow() {
	h.Entered <- struct{}{}
	<-h.Free
}

// ConcurrencyLimit checks an adapter's concurrency middleware of 2 on a
// memory limiter, mounted at GET /slow (a handler calling held.Slow) and
// GET /panic (one that panics, behind the framework's own recovery): two
// requests in flight are served, a third is refused with 429 and the
// headers and body of a concurrency refusal, a panic gives its slot back,
// and once the slow ones return every slot is free.
func ConcurrencyLimit(t *testing.T, serve func(lim *core.Limiter) http.Handler, held *Held) {
	t.Helper()
	lim, _ := NewLimiter(t)
	h := serve(lim)
	store := lim.Store().(*core.MemoryStore)
	for range 3 {
		if w := Do(h, "GET", "/panic", Client); w.Code != http.StatusInternalServerError {
			t.Fatalf("GET /panic: %d, want the framework's 500", w.Code)
		}
		if n := store.Leases(); n != 0 {
			t.Fatalf("after a panicking handler, %d leases are live, want 0", n)
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = Do(h, "GET", "/slow", Client).Code }()
		<-held.Entered
	}
	w := Do(h, "GET", "/slow", Client)
	checkConcurrencyRefusal(t, w)
	close(held.Free)
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Fatalf("the two in flight: %v, want 200s", codes)
	}
	if n := store.Leases(); n != 0 {
		t.Fatalf("after every handler returned, %d leases are live, want 0", n)
	}
	if w := Do(h, "GET", "/slow", Client); w.Code != http.StatusOK || w.Header().Get("X-Ratelimit-Remaining") != "1" {
		t.Fatalf("after the slots came back: %d, remaining %q; want 200 and 1", w.Code, w.Header().Get("X-Ratelimit-Remaining"))
	}
}

func checkConcurrencyRefusal(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("a third request in flight: %d, want 429", w.Code)
	}
	if h := w.Header(); h.Get("X-Ratelimit-Limit") != "2" || h.Get("X-Ratelimit-Remaining") != "0" || h.Get("Retry-After") != "1" {
		t.Errorf("refusal headers %v: want limit 2, remaining 0, Retry-After 1", h)
	}
	var body struct {
		Limit      string `json:"limit"`
		RetryAfter int    `json:"retry_after"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Limit != "2 concurrent" || body.RetryAfter != 1 {
		t.Errorf("refusal body %s (%v): want limit \"2 concurrent\" and retry_after 1", w.Body, err)
	}
}
