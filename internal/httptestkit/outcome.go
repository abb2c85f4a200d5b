package httptestkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/limitkit/limitkit/core"
)

// The checks of charging by outcome (core.WithChargeWhen and the adapters'
// ChargeWhen), which every adapter must pass alike: a login route whose
// failures alone count, attacked.

// outcomeKey carries a request's script for LoginOutcome.
type outcomeKey struct{}

// outcomeScript is what LoginOutcome does for one request.
type outcomeScript struct {
	status  int             // the status to answer with; 0 for none
	panics  bool            // panic instead
	arrived chan<- struct{} // if set, told on arrival, and then release is awaited
	release <-chan struct{}
	leave   context.CancelFunc // if set, the client hangs up (after the status, if any)
	reached *atomic.Int32
}

// LoginOutcome is what the handler of ChargeByOutcome's route does for r:
// it returns the status to answer with (0: answer none), after waiting,
// panicking or hanging the client up, as the check asked. The route's
// handler writes that status, if any, and returns.
func LoginOutcome(r *http.Request) int {
	s, _ := r.Context().Value(outcomeKey{}).(*outcomeScript)
	if s == nil {
		return http.StatusOK
	}
	s.reached.Add(1)
	if s.arrived != nil {
		s.arrived <- struct{}{}
		<-s.release
	}
	if s.panics {
		panic("httptestkit: the handler panics")
	}
	if s.leave != nil {
		s.leave()
	}
	return s.status
}

// ChargeByOutcome checks the route serve builds on lim: POST /login,
// limited to 5/minute by client IP, charging only responses other than 200
// (in the adapter's idiom), with LoginOutcome as its handler and the
// framework's recovery middleware outside the limit, so that a panic
// answers 500.
func ChargeByOutcome(t *testing.T, serve func(lim *core.Limiter) http.Handler) {
	type run struct {
		h       http.Handler
		reached *atomic.Int32
	}
	newRun := func(t *testing.T) run {
		lim, _ := NewLimiter(t)
		return run{serve(lim), new(atomic.Int32)}
	}
	send := func(r run, s outcomeScript) int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if s.leave != nil {
			s.leave = cancel
		}
		s.reached = r.reached
		req := httptest.NewRequest(http.MethodPost, "/login", nil).WithContext(context.WithValue(ctx, outcomeKey{}, &s))
		req.RemoteAddr = Client
		w := httptest.NewRecorder()
		r.h.ServeHTTP(w, req)
		return w.Code
	}
	success := outcomeScript{status: http.StatusOK}
	failure := outcomeScript{status: http.StatusUnauthorized}
	wantNext := func(t *testing.T, r run, after string, want int) {
		t.Helper()
		for name, s := range map[string]outcomeScript{"success": success, "failure": failure} {
			if got := send(r, s); got != want {
				t.Fatalf("a %s after %s: %d; want %d", name, after, got, want)
			}
		}
	}

	t.Run("successes are not counted", func(t *testing.T) {
		r := newRun(t)
		for i := range 20 {
			if got := send(r, success); got != http.StatusOK {
				t.Fatalf("success %d: %d; want all 20 served", i, got)
			}
		}
	})
	t.Run("after 5 failures any attempt is refused", func(t *testing.T) {
		r := newRun(t)
		for i := range 5 {
			if got := send(r, failure); got != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d; want 401", i, got)
			}
		}
		if got := send(r, success); got != http.StatusTooManyRequests {
			t.Fatalf("the right password after 5 failures: %d; want 429", got)
		}
	})
	t.Run("20 concurrent failures admit 5 to the handler", func(t *testing.T) {
		r := newRun(t)
		arrived, release := make(chan struct{}, 20), make(chan struct{})
		codes := make(chan int, 20)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- send(r, outcomeScript{status: http.StatusUnauthorized, arrived: arrived, release: release})
			}()
		}
		refused := 0
		for admitted := 0; admitted+refused < 20; { // each is held in the handler or refused
			select {
			case <-arrived:
				admitted++
			case c := <-codes:
				if c != http.StatusTooManyRequests {
					t.Errorf("a request ended with %d before any handler returned; want 429", c)
				}
				refused++
			}
		}
		close(release)
		wg.Wait()
		if n := r.reached.Load(); n != 5 || refused != 15 {
			t.Fatalf("%d reached the handler, %d refused; want 5 and 15", n, refused)
		}
		wantNext(t, r, "the 5 failures", http.StatusTooManyRequests)
	})
	t.Run("a panicking handler is charged", func(t *testing.T) {
		r := newRun(t)
		for i := range 5 {
			if got := send(r, outcomeScript{panics: true}); got != http.StatusInternalServerError {
				t.Fatalf("panic %d: %d; want 500 from the framework's recovery", i, got)
			}
		}
		wantNext(t, r, "5 panics", http.StatusTooManyRequests)
	})
	t.Run("a client leaving before the answer is charged", func(t *testing.T) {
		r := newRun(t)
		for range 5 {
			send(r, outcomeScript{leave: func() {}})
		}
		wantNext(t, r, "5 clients left unanswered", http.StatusTooManyRequests)
	})
	t.Run("a client leaving after a success is not charged", func(t *testing.T) {
		r := newRun(t)
		for range 5 {
			send(r, outcomeScript{status: http.StatusOK, leave: func() {}})
		}
		if got := send(r, success); got != http.StatusOK {
			t.Fatalf("after 5 successes whose clients left: %d; want 200", got)
		}
	})
}
