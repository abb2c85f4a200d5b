package httptestkit

import (
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
