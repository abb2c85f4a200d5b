package core

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A decision's event names the ServeMux pattern the request matched, not
// its path, and a native route function the adapter's context.
func TestEvent_routeIsThePatternNotThePath(t *testing.T) {
	type ctx struct{ route string }
	var got []string
	lim := closeLater(t, WithObserver(ObserverFunc(func(e Event) { got = append(got, e.Route) })))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	plain := MustNewMiddleware("100/minute", WithLimiter(lim))
	native := MustAdapt[*ctx]("fw.Limit", 1, "100/minute",
		[]AdapterOption{WithLimiter(lim), NativeRoute("fw.route", func(c *ctx) string { return c.route })},
		func(m *Middleware) *Middleware { return m })
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", plain.Handler(ok))
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/items/42?x=1", nil))
	plain.Handler(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/outside/a/mux", nil))

	r := httptest.NewRequest("GET", "/items/7", nil)
	native.EnforceWith(r, http.Header{}, &ctx{route: "/items/:id"})
	native.EnforceWith(r, http.Header{}, "another framework's context")

	want := []string{"GET /items/{id}", "", "/items/:id", ""}
	if len(got) != len(want) {
		t.Fatalf("routes %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: Route %q, want %q", i, got[i], want[i])
		}
	}
}
