package core

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A cost that can never fit is a refusal by the limit, so a deny handler
// replaces it as it replaces a 429, and can tell the two apart by Never.
func TestMiddleware_denyHandlerAlsoAnswersACostThatCanNeverFit(t *testing.T) {
	lim, _ := clockedLimiter(t)
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := DecisionFrom(r.Context())
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprintf(w, "never=%v retry-after=%q", d.Never, w.Header().Get("Retry-After"))
	})
	h := MustNewMiddleware("5/minute", WithLimiter(lim), WithDenyHandler(deny), WithCost(func(*http.Request) int64 { return 6 })).Handler(okHandler)
	if w := get(h, "/", client); w.Code != http.StatusTeapot || w.Body.String() != `never=true retry-after=""` {
		t.Errorf("got %d %q; want the deny handler, told Never, with no Retry-After", w.Code, w.Body)
	}
}

// endable is a request context that the test ends, with err, when it likes:
// the hold ends as it would at a real deadline, without waiting for one.
type endable struct {
	context.Context
	done chan struct{}
	err  error
}

func newEndable(err error) *endable {
	return &endable{Context: context.Background(), done: make(chan struct{}), err: err}
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

// A request whose context ends before it is served is always answered with
// a status, never left to net/http's empty 200: 499 when the client left
// (context.Canceled), and, when a server-side timeout (http.TimeoutHandler,
// a context.WithTimeout middleware) ended it, 503 with the JSON body, for
// the client is still waiting for an answer.
func TestHandler_requestWhoseContextEndsIsAnsweredWithAStatus(t *testing.T) {
	tests := []struct {
		name   string
		during string // "check": ended before the check; "hold": while held
		err    error
		status int
		body   string
	}{
		{"client left during the hold", "hold", context.Canceled, StatusClientClosedRequest, ""},
		{"server deadline during the hold", "hold", context.DeadlineExceeded, http.StatusServiceUnavailable, "timed out"},
		{"client left before the check", "check", context.Canceled, StatusClientClosedRequest, ""},
		{"server deadline before the check", "check", context.DeadlineExceeded, http.StatusServiceUnavailable, "timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			held := make(chan struct{}, 1)
			wait := middlewareOption(func(c *middlewareConfig) {
				c.wait = func(ctx context.Context, d time.Duration) error {
					held <- struct{}{}
					<-ctx.Done()
					return ctx.Err()
				}
			})
			served := false
			h := MustNewMiddleware("1/second", WithLimiter(lim), WithAlgorithm(LeakyBucket), WithBurst(5), wait).
				Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }))
			get(h, "/", client) // the next request is held
			served = false
			ctx := newEndable(tt.err)
			if tt.during == "check" {
				close(ctx.done)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			r.RemoteAddr = client
			w := httptest.NewRecorder()
			done := make(chan struct{})
			go func() { h.ServeHTTP(w, r); close(done) }()
			if tt.during == "hold" {
				<-held
				close(ctx.done)
			}
			<-done
			if served || w.Code != tt.status || !strings.Contains(w.Body.String(), tt.body) || tt.body == "" && w.Body.Len() != 0 {
				t.Errorf("handler ran: %v; response %d %q; want %d with a body containing %q", served, w.Code, w.Body, tt.status, tt.body)
			}
			if tt.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "" {
				t.Errorf("Retry-After %q on a timed-out request; its slot is spent, not owed", w.Header().Get("Retry-After"))
			}
		})
	}
}
