package core

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func request(remote string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/items/7", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func TestByIP(t *testing.T) {
	tests := []struct {
		name, remote, want string
	}{
		{"IPv4 with port", "192.0.2.1:1234", "192.0.2.1"},
		{"IPv4 without port", "192.0.2.1", "192.0.2.1"},
		{"IPv6 grouped by /64", "[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"IPv6 neighbour in the same /64", "[2001:db8:1:2:ffff::9]:443", "2001:db8:1:2::/64"},
		{"IPv6 with zone", "[fe80::1%eth0]:80", "fe80::/64"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"forwarded headers ignored", "192.0.2.1:1", "192.0.2.1"},
		{"not an IP", "@", "@"},
		{"not an IP, long", strings.Repeat("x", 200), "#" + HashIdentity(strings.Repeat("x", 200))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ByIP(request(tt.remote, "X-Forwarded-For", "10.0.0.1", "X-Real-IP", "10.0.0.2"))
			if err != nil || got != tt.want {
				t.Errorf("ByIP(%q) = %q, %v; want %q", tt.remote, got, err, tt.want)
			}
		})
	}
}

type ctxKey struct{}

type userID struct{ n int }

func (u userID) String() string { return "user-" + string(rune('0'+u.n)) }

func TestKeyFunctions(t *testing.T) {
	secret := "sk_live_0123456789"
	long := strings.Repeat("a", 300)
	withValue := func(v any) *http.Request {
		r := request(client)
		return r.WithContext(context.WithValue(r.Context(), ctxKey{}, v))
	}
	tests := []struct {
		name    string
		key     KeyFunc
		r       *http.Request
		want    string
		wantErr string
	}{
		{"header is hashed", ByHeader("x-api-key"), request(client, "X-API-Key", secret), HashIdentity(secret), ""},
		{"missing header", ByHeader("X-API-Key"), request(client), "", "no X-Api-Key header"},
		{"bearer token is hashed", ByBearerToken, request(client, "Authorization", "Bearer "+secret), HashIdentity(secret), ""},
		{"bearer scheme any case", ByBearerToken, request(client, "Authorization", "bearer "+secret), HashIdentity(secret), ""},
		{"basic auth is no bearer", ByBearerToken, request(client, "Authorization", "Basic dXNlcjpwYXNz"), "", "no bearer token"},
		{"empty bearer", ByBearerToken, request(client, "Authorization", "Bearer  "), "", "no bearer token"},
		{"context string", ByContextValue(ctxKey{}), withValue("u42"), "u42", ""},
		{"context int64", ByContextValue(ctxKey{}), withValue(int64(42)), "42", ""},
		{"context Stringer", ByContextValue(ctxKey{}), withValue(userID{3}), "user-3", ""},
		{"context missing", ByContextValue(ctxKey{}), request(client), "", "no value"},
		{"context wrong type", ByContextValue(ctxKey{}), withValue(3.5), "", "is a float64"},
		{"route without pattern is one identity, whatever the path", ByRoute, request(client), "(no route)", ""},
		{"global", Global, request(client), "*", ""},
		{"combined", Combine(ByIP, ByRoute), request(client), "203.0.113.7|(no route)", ""},
		{"combined part with separator is hashed", Combine(ByIP, ByContextValue(ctxKey{})), withValue("a|b"), "203.0.113.7|#" + HashIdentity("a|b"), ""},
		{"combined error", Combine(ByIP, ByHeader("X-API-Key")), request(client), "", "no X-Api-Key header"},
		{"combined long is hashed", Combine(ByContextValue(ctxKey{})), withValue(long), "#" + HashIdentity(long), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key(tt.r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
			if strings.Contains(got, secret) {
				t.Errorf("identity %q contains the secret", got)
			}
		})
	}
}

func TestByRoute_usesTheServeMuxPattern(t *testing.T) {
	mux := http.NewServeMux()
	var got []string
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := ByRoute(r)
		got = append(got, k)
	})
	mux.Handle("GET /items/{id}", record)
	mux.Handle("PURGE /cache", record)
	mux.Handle("/any/", record)
	for _, req := range []struct{ method, path string }{
		{"GET", "/items/1"}, {"HEAD", "/items/2"}, {"PURGE", "/cache"}, {"GET", "/any/x"}, {"X2", "/any/y"},
	} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	want := "[GET /items/{id} GET /items/{id} PURGE /cache GET /any/ OTHER /any/]"
	if g := "[" + strings.Join(got, " ") + "]"; g != want {
		t.Errorf("keys %s; want %s", g, want)
	}
}

func TestMiddleware_hashesLongIdentitiesAndKeepsSecretsOutOfEvents(t *testing.T) {
	rec := &recorder{}
	lim, _ := clockedLimiter(t, WithObserver(rec))
	secret := "sk_live_" + strings.Repeat("z", 40)
	h := MustNewMiddleware("5/minute", WithLimiter(lim), WithKey(ByHeader("X-API-Key"))).Handler(okHandler)
	get(h, "/", client, "X-API-Key", secret)
	e := rec.last()
	if e.Identity != HashIdentity(secret) || strings.Contains(e.Identity, "sk_live") {
		t.Errorf("event identity %q; want the secret's hash", e.Identity)
	}
}

// Frameworks resolve a client's address without a port; IPIdentity must
// count those clients exactly as ByIP counts peers.
func TestIPIdentity_groupsBareAddressesAsByIPGroupsPeers(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{"IPv4", "198.51.100.4", "198.51.100.4"},
		{"IPv4 with port", "198.51.100.4:80", "198.51.100.4"},
		{"IPv6 grouped by /64", "2001:db8:5:6:1::1", "2001:db8:5:6::/64"},
		{"IPv6 neighbour in the same /64", "2001:db8:5:6:ffff::2", "2001:db8:5:6::/64"},
		{"IPv6 with port", "[2001:db8:5:6::1]:443", "2001:db8:5:6::/64"},
		{"IPv4-mapped IPv6 is IPv4", "::ffff:198.51.100.4", "198.51.100.4"},
		{"non-canonical IPv4 is not an IP", "198.051.100.4", "198.051.100.4"},
		{"not an IP", "unknown", "unknown"},
		{"not an IP, long", strings.Repeat("y", 200), "#" + HashIdentity(strings.Repeat("y", 200))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IPIdentity(tt.addr); got != tt.want {
				t.Errorf("IPIdentity(%q) = %q; want %q", tt.addr, got, tt.want)
			}
			if got, _ := ByIP(request(tt.addr)); got != tt.want {
				t.Errorf("ByIP with RemoteAddr %q = %q; want %q, as IPIdentity", tt.addr, got, tt.want)
			}
		})
	}
}

func TestByContextValue_missingValueCostsNoAllocation(t *testing.T) {
	k := ByContextValue(ctxKey{})
	r := request(client)
	if _, err := k(r); err == nil {
		t.Fatal("no error for a request without the value")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = k(r) }); n != 0 {
		t.Errorf("%v allocations per anonymous request; want 0: the error is made once", n)
	}
}

// Issue 8, finding 4: a method or path the client chooses never makes a
// budget. Behind a method-less pattern, 2 POSTs spend 2/minute, and
// invented methods share one more budget, not one each.
func TestByRoute_clientChosenMethodsAndPathsMakeNoBudgets(t *testing.T) {
	tests := []struct {
		name    string
		pattern string // "" mounts the middleware without a ServeMux
		reqs    func(i int) (method, path string)
		served  int
	}{
		{"invented methods on a method-less pattern share one budget", "/any/", func(i int) (string, string) {
			if i < 2 {
				return http.MethodPost, "/any/x"
			}
			return fmt.Sprintf("X%d", i), "/any/x"
		}, 4},
		{"standard methods on a method-less pattern each have one", "/any/", func(i int) (string, string) {
			return []string{http.MethodGet, http.MethodPost}[i%2], "/any/x"
		}, 4},
		{"invented paths without a pattern share one budget", "", func(i int) (string, string) {
			return http.MethodGet, fmt.Sprintf("/p%d", i)
		}, 2},
		{"invented methods without a pattern share one budget", "", func(i int) (string, string) {
			return fmt.Sprintf("X%d", i), "/"
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			m := MustNewMiddleware("2/minute", WithLimiter(lim), WithKey(Combine(ByIP, ByRoute)))
			var h http.Handler = m.Handler(okHandler)
			if tt.pattern != "" {
				mux := http.NewServeMux()
				mux.Handle(tt.pattern, h)
				h = mux
			}
			served := 0
			for i := range 50 {
				method, path := tt.reqs(i)
				r := httptest.NewRequest(http.MethodGet, path, nil)
				r.Method, r.RemoteAddr = method, client
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code == http.StatusOK {
					served++
				}
			}
			if served != tt.served {
				t.Errorf("%d of 50 requests served under 2/minute; want %d", served, tt.served)
			}
		})
	}
}

func TestRouteIdentity(t *testing.T) {
	tests := []struct {
		name, method, route, want string
	}{
		{"a standard method and the route", http.MethodGet, "/items/{id}", "GET /items/{id}"},
		{"PATCH is standard", http.MethodPatch, "/items/{id}", "PATCH /items/{id}"},
		{"an invented method is OTHER", "X2", "/items/{id}", "OTHER /items/{id}"},
		{"methods are case-sensitive", "get", "/items/{id}", "OTHER /items/{id}"},
		{"no route, whatever the method", http.MethodGet, "", "(no route)"},
		{"no route, an invented method", "X2", "", "(no route)"},
		{"a long route hashed", http.MethodGet, "/" + strings.Repeat("r", 200), "#" + HashIdentity("GET /"+strings.Repeat("r", 200))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RouteIdentity(tt.method, tt.route); got != tt.want {
				t.Errorf("RouteIdentity(%q, %q) = %q; want %q", tt.method, tt.route, got, tt.want)
			}
		})
	}
}

// IPIdentity's fast path for IPv4 peers (ipv4Peer) gives what the general
// one gives, for every address: the seeds are the edges netip and
// SplitHostPort draw.
func FuzzIPIdentity(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1:1234", "192.0.2.1", "0.0.0.0:0", "255.255.255.255:65535", "1.2.3.4:",
		"01.2.3.4:80", "1.2.3.04", "1.2.3.256:1", "256.1.1.1", "1.2.3", "1.2.3.", ".1.2.3.4", "1..2.3",
		"1.2.3.4.5", "1.2.3.4:80:90", "1.2.3.4:8a", "1.2.3.4:[80]", "1.2.3.4]:80", "[1.2.3.4]:80",
		"1.2.3.4%eth0:80", "::ffff:1.2.3.4", "[::ffff:192.0.2.1]:80", "[2001:db8::1]:443", "2001:db8::1",
		"", ":", ":80", "@", "1.2.3.4 :80", " 1.2.3.4", "1.2.3.4:+80", "1.2.3.4:-1", "999.1.1.1:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if got, want := IPIdentity(addr), peerIdentity(addr); got != want {
			t.Errorf("IPIdentity(%q) = %q; the general path gives %q", addr, got, want)
		}
	})
}

// The default key function's cost per request, for the peer addresses a
// server sees most: IPv4 with a port, IPv4 without, and IPv6.
func BenchmarkIPIdentity(b *testing.B) {
	for _, addr := range []string{"10.0.3.232:41000", "192.0.2.1", "[2001:db8::1]:443"} {
		b.Run(addr, func(b *testing.B) {
			var sink string
			for b.Loop() {
				sink = IPIdentity(addr)
			}
			if sink == "" {
				b.Fatal("no identity")
			}
		})
	}
}
