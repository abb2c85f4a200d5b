package httptestkit

import (
	"fmt"
	"net/http"
	"testing"
)

// ClientChosenRouteKeys checks issue 8, finding 4 on h, a router with one
// route, GET /items/{id} (in its own syntax), and one middleware over all of
// it limiting each client to 2/minute per route with the adapter's route
// key: a method or a path the client invents never makes a budget. Of 50
// requests that match no route for their method, however they vary, 2 get
// past the limit (to the router's 404 or 405) and 48 are refused.
func ClientChosenRouteKeys(t *testing.T, h http.Handler) {
	t.Helper()
	standard := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace}
	tests := []struct {
		name    string
		request func(i int) (method, path string)
	}{
		{"invented methods on a route's path", func(i int) (string, string) { return fmt.Sprintf("X%d", i), "/items/1" }},
		{"invented methods on a path without a route", func(i int) (string, string) { return fmt.Sprintf("X%d", i), "/nope" }},
		{"standard methods the route does not take", func(i int) (string, string) { return standard[i%len(standard)], "/items/1" }},
		{"standard methods on a path without a route", func(i int) (string, string) { return standard[i%len(standard)], "/nope" }},
		{"invented paths", func(i int) (string, string) { return http.MethodGet, fmt.Sprintf("/nope/%d", i) }},
	}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote := fmt.Sprintf("198.51.100.%d:1", n+1) // a client per case
			passed := 0
			for i := range 50 {
				method, path := tt.request(i)
				if Do(h, method, path, remote).Code != http.StatusTooManyRequests {
					passed++
				}
			}
			if passed != 2 {
				t.Errorf("%d of 50 requests got past 2/minute; want 2", passed)
			}
			if c := Do(h, http.MethodGet, "/items/1", remote).Code; c != http.StatusOK {
				t.Errorf("then GET /items/1: %d; want 200, the route's own budget", c)
			}
		})
	}
}
