// Package httptestkit holds what the framework adapters' tests share: a
// limiter on a driven clock, a request helper, a store that always fails and
// the checks of a default refusal. chilimit, ginlimit and echolimit use it so
// that they test their middleware the same way, each against its own
// framework.
//
// core's own tests cannot use it: they are package core, which this imports.
package httptestkit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

// Client is the address tests send from when the sender does not matter.
const Client = "203.0.113.7:41000"

// NewLimiter returns a limiter of its own on a memory store driven by a
// storetest.ManualClock, so that tests share no state and control time. The clock
// stands at a day's start, so at a minute's too; the limiter closes with the
// test.
func NewLimiter(t testing.TB, opts ...core.Option) (*core.Limiter, *storetest.ManualClock) {
	t.Helper()
	clk := storetest.NewClock()
	l := core.New(append([]core.Option{core.WithClock(clk.Now)}, opts...)...)
	t.Cleanup(func() { l.Close() })
	return l, clk
}

// Do sends one request from remote with the header pairs given.
func Do(h http.Handler, method, path, remote string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Codes sends a GET for each path from remote and returns the statuses.
func Codes(h http.Handler, remote string, paths ...string) []int {
	var codes []int
	for _, p := range paths {
		codes = append(codes, Do(h, http.MethodGet, p, remote).Code)
	}
	return codes
}

// ErrDown is the error FailingStore returns.
var ErrDown = errors.New("store is down")

// FailingStore is a core.Store whose every call fails with ErrDown.
type FailingStore struct{}

// Take fails.
func (FailingStore) Take(context.Context, string, core.Rule, int64) (core.Decision, error) {
	return core.Decision{}, ErrDown
}

// Reset fails.
func (FailingStore) Reset(context.Context, string, core.Rule) error { return ErrDown }

// Close succeeds: there is nothing to release.
func (FailingStore) Close() error { return nil }

// ReusedWriter is a ResponseWriter whose header map survives between
// requests, as a server's does, so that allocations counted are the
// framework's and limitkit's, not the recorder's.
type ReusedWriter struct{ H http.Header }

// NewReusedWriter returns a ReusedWriter with an empty header map.
func NewReusedWriter() *ReusedWriter { return &ReusedWriter{H: http.Header{}} }

// Header returns the one header map.
func (w *ReusedWriter) Header() http.Header { return w.H }

// Write discards b.
func (w *ReusedWriter) Write(b []byte) (int, error) { return len(b), nil }

// WriteHeader discards the status.
func (w *ReusedWriter) WriteHeader(int) {}

// CheckRefusal reports through t what of the default refusal w lacks: the
// Retry-After header of retryAfter seconds, X-RateLimit-Remaining 0 and a
// JSON body naming the error, the limit and retry_after. The status is the
// caller's to check, beside what else it counts.
func CheckRefusal(t testing.TB, w *httptest.ResponseRecorder, limit string, retryAfter int) {
	t.Helper()
	if got, want := w.Header().Get("Retry-After"), strconv.Itoa(retryAfter); got != want {
		t.Errorf("Retry-After = %q; want %s", got, want)
	}
	if got := w.Header().Get("X-RateLimit-Remaining"); got != "0" {
		t.Errorf("X-RateLimit-Remaining = %q; want 0", got)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q; want JSON", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if body["error"] != "rate limit exceeded" || body["limit"] != limit || body["retry_after"] != float64(retryAfter) {
		t.Errorf("body = %v", body)
	}
}
