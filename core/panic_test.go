package core

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A key or cost function that panics is a bug in the app, but Enforce must
// not pass the panic on: the request is answered by the key error policy,
// as for a key function that returned an error, and the bug is logged once
// per middleware, not once per request.
func TestCheck_panickingKeyOrCostFunctionFollowsTheKeyErrorPolicy(t *testing.T) {
	panicKey := func(*http.Request) (string, error) { panic("key bug") }
	panicNative := func(*frameworkContext) (string, error) { panic("native key bug") }
	panicCost := func(*http.Request) int64 { panic("cost bug") }
	funcs := []struct {
		name string
		opt  AdapterOption
		says string
	}{
		{"key", WithKey(panicKey), "key function panicked: key bug"},
		{"native key", NativeKey("fw.Key", panicNative), "key function panicked: native key bug"},
		{"cost", WithCost(panicCost), "cost function panicked: cost bug"},
	}
	policies := []struct {
		policy   KeyErrorPolicy
		verdicts string // of two requests under 1/minute
		status   int    // of the second
		keys     string // the store keys asked for
	}{
		{KeyErrorPeerIP, "[1 2]", http.StatusTooManyRequests, "[s:ip:203.0.113.7 s:ip:203.0.113.7]"},
		{KeyErrorRefuse, "[2 2]", http.StatusBadRequest, "[]"},
		{KeyErrorServe, "[1 1]", 0, "[]"},
	}
	for _, fn := range funcs {
		for _, p := range policies {
			t.Run(fn.name+"/"+p.policy.String(), func(t *testing.T) {
				store := &keyRecorder{MemoryStore: NewMemoryStore()}
				var logs bytes.Buffer
				lim := closeLater(t, WithStore(store), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				m := fw("1/minute", WithLimiter(lim), WithName("s"), fn.opt, WithKeyErrorPolicy(p.policy))
				var verdicts []Verdict
				var last Result
				for range 2 {
					r := httptest.NewRequest(http.MethodGet, "/", nil)
					r.RemoteAddr = client
					func() {
						defer func() {
							if p := recover(); p != nil {
								t.Fatalf("Enforce panicked: %v", p)
							}
						}()
						last = m.EnforceWith(r, http.Header{}, &frameworkContext{})
					}()
					verdicts = append(verdicts, last.Verdict)
				}
				if got := fmt.Sprint(verdicts); got != p.verdicts || last.Status != p.status {
					t.Errorf("verdicts %s, last status %d; want %s and %d", got, last.Status, p.verdicts, p.status)
				}
				// Under KeyErrorPeerIP the store decided, and the keys show the policy.
				if p.policy != KeyErrorPeerIP && (last.Err == nil || !strings.Contains(last.Err.Error(), fn.says)) {
					t.Errorf("result error %v; want one saying %q", last.Err, fn.says)
				}
				if got := fmt.Sprint(store.keys); got != p.keys {
					t.Errorf("store keys %s; want %s", got, p.keys)
				}
				if n := strings.Count(logs.String(), "function panicked;"); n != 1 || !strings.Contains(logs.String(), "level=ERROR") {
					t.Errorf("%d log lines about the panic, want one at Error level:\n%s", n, logs.String())
				}
			})
		}
	}
}

// Handler answers as Enforce decided, with the panic behind it.
func TestHandler_panickingKeyFunctionIsRefusedNotPassedOn(t *testing.T) {
	lim, _ := clockedLimiter(t, WithLogger(quiet))
	h := MustNewMiddleware("1/minute", WithLimiter(lim), WithKeyErrorPolicy(KeyErrorRefuse),
		WithKey(func(*http.Request) (string, error) { panic("key bug") })).Handler(okHandler)
	var w *httptest.ResponseRecorder
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("EnforceWith panicked: %v", p)
			}
		}()
		w = get(h, "/", client)
	}()
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "cannot identify the client") {
		t.Errorf("got %d %q; want 400 by the key error policy", w.Code, w.Body)
	}
}

// An exempt or plan function that panics is answered in the safe direction:
// the request is limited (not exempt), under the middleware's own limits
// (no plan), and the panic is logged once per middleware.
func TestCheck_panickingExemptOrPlanFunctionLimitsTheRequest(t *testing.T) {
	tests := []struct {
		name string
		opt  AdapterOption
		says string
	}{
		{"exempt", WithExempt(func(*http.Request) bool { panic("exempt bug") }), "exempt function panicked"},
		{"native exempt", NativeExempt("fw.Exempt", func(*frameworkContext) bool { panic("native exempt bug") }), "exempt function panicked"},
		{"plan", WithPlans(map[string]string{"pro": "100/minute"}, func(*http.Request) string { panic("plan bug") }), "plan function panicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			lim := closeLater(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			m := fw("2/minute", WithLimiter(lim), WithName("s"), tt.opt)
			var got []int
			for range 4 {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = client
				w := httptest.NewRecorder()
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("EnforceWith panicked: %v", p)
						}
					}()
					// as an adapter does, passing its context for the native exemption
					if res := m.EnforceWith(r, w.Header(), &frameworkContext{}); res.Verdict == Refuse {
						m.Refuse(w, r, res)
					}
				}()
				got = append(got, w.Code)
			}
			if fmt.Sprint(got) != "[200 200 429 429]" {
				t.Errorf("statuses %v, want [200 200 429 429]: limited under the middleware's own 2/minute", got)
			}
			if n := strings.Count(logs.String(), tt.says); n != 1 {
				t.Errorf("the panic was logged %d times, want once:\n%s", n, logs.String())
			}
		})
	}
}
