package core

import (
	"fmt"
	"net/http"
	"testing"
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
