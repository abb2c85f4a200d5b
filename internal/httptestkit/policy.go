package httptestkit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// PanicRefused sends GET / to h, whose framework-typed key function panics
// under core.KeyErrorRefuse, and checks that the panic does not escape the
// middleware: the key error policy answers it with 400.
func PanicRefused(t *testing.T, h http.Handler) {
	t.Helper()
	var w *httptest.ResponseRecorder
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("the key function's panic escaped the middleware: %v", p)
			}
		}()
		w = Do(h, "GET", "/", Client)
	}()
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "cannot identify the client") {
		t.Errorf("got %d %q; want 400 by the key error policy", w.Code, w.Body)
	}
}

// Quiet is a logger that discards, for tests that do not read the log.
var Quiet = slog.New(slog.DiscardHandler)

// CostNeverFits checks the response of h, which limits GET / to 5/minute
// and charges every request 6: a cost that can never fit is refused with
// 413 Content Too Large and without Retry-After, since waiting cannot help,
// with the rate-limit headers and a JSON body naming the limit.
func CostNeverFits(t *testing.T, h http.Handler) {
	t.Helper()
	w := Do(h, "GET", "/", Client)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d; want 413", w.Code)
	}
	if ra, ok := w.Header()["Retry-After"]; ok {
		t.Errorf("Retry-After %q sent for a request that can never be admitted", ra)
	}
	if got := w.Header().Get("X-RateLimit-Limit"); got != "5" {
		t.Errorf("X-RateLimit-Limit = %q; want 5", got)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if _, ok := body["retry_after"]; ok || body["limit"] != "5/minute" || !strings.Contains(fmt.Sprint(body["error"]), "can never be admitted") {
		t.Errorf("body = %v; want the error and the limit, without retry_after", body)
	}
}

// endable is a request context that ends, with err, when done is closed:
// a hold ends as it would at a real deadline, without waiting for one.
type endable struct {
	context.Context
	done chan struct{}
	err  error
}

func (c *endable) Done() <-chan struct{} { return c.done }

func (c *endable) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Ended is one way a held request's context ends, and the status the
// middleware must answer it with.
type Ended struct {
	Name   string
	Err    error
	Status int
	Body   string // what the body must contain
}

// EndedCases are the ways a held request's context can end: its client
// leaves (499), or a server-side timeout passes (503, with core's JSON body).
var EndedCases = []Ended{
	{"client left", context.Canceled, core.StatusClientClosedRequest, ""},
	{"server deadline", context.DeadlineExceeded, http.StatusServiceUnavailable, "request timed out in the rate limiter"},
}

// EndedWhileHeld sends GET / to h, which holds it (a leaky bucket whose
// queue has a request in it), ends its context with e.Err once decided
// reports the decision, and checks the status h answers with.
func EndedWhileHeld(t *testing.T, h http.Handler, decided <-chan struct{}, e Ended) {
	t.Helper()
	ctx := &endable{Context: context.Background(), done: make(chan struct{}), err: e.Err}
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	req.RemoteAddr = Client
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(w, req); close(done) }()
	<-decided // admitted and about to be held
	close(ctx.done)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold did not end with the request's context")
	}
	if w.Code != e.Status || !strings.Contains(w.Body.String(), e.Body) {
		t.Errorf("response %d %q; want %d with a body containing %q", w.Code, w.Body, e.Status, e.Body)
	}
}
