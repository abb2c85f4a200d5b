package httptestkit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
