package core

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 8, finding 5: the identities of key functions, the library's hashes
// and the fallback for unidentified requests never meet, whatever a key
// function returns.
func TestMiddleware_identitySourcesNeverShareABudget(t *testing.T) {
	type userKey struct{}
	long := strings.Repeat("u", 200)
	tests := []struct {
		name          string
		first, second string // the key function's identities; "" is an anonymous request
		share         bool
	}{
		{"a user named like an IP's fallback, then that IP anonymous", "ip:203.0.113.7", "", false},
		{"an anonymous IP, then a user named like its fallback", "", "ip:203.0.113.7", false},
		{"a long identity, then one named like its hash", long, "#" + HashIdentity(long), false},
		{"one named like a long identity's hash, then that identity", "#" + HashIdentity(long), long, false},
		{"the same user twice shares", "ip:203.0.113.7", "ip:203.0.113.7", true},
		{"the same anonymous IP twice shares", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := clockedLimiter(t)
			h := MustNewMiddleware("1/minute", WithLimiter(lim), WithKey(ByContextValue(userKey{}))).Handler(okHandler)
			send := func(user string) int {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = client
				if user != "" {
					r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			if c := send(tt.first); c != http.StatusOK {
				t.Fatalf("first request: %d", c)
			}
			if shared := send(tt.second) == http.StatusTooManyRequests; shared != tt.share {
				t.Errorf("second request shared the first's budget: %v; want %v", shared, tt.share)
			}
		})
	}
}

func TestBound_keepsKeyFunctionIdentitiesOutOfReservedNamespaces(t *testing.T) {
	long := strings.Repeat("x", MaxIdentity+1)
	tests := []struct {
		name, id, want string
	}{
		{"a plain identity as it is", "user-42", "user-42"},
		{"an IP as it is", "203.0.113.7", "203.0.113.7"},
		{"the longest kept as it is", long[:MaxIdentity], long[:MaxIdentity]},
		{"a long one hashed", long, "#" + HashIdentity(long)},
		{"one that could pass for the fallback hashed", "ip:203.0.113.7", "#" + HashIdentity("ip:203.0.113.7")},
		{"one that could pass for a hash hashed", "#" + HashIdentity("a"), "#" + HashIdentity("#"+HashIdentity("a"))},
		{"a bare hash as it is", HashIdentity("a"), HashIdentity("a")},
		{"a lone # hashed", "#", "#" + HashIdentity("#")},
		{"ip without the colon as it is", "ip", "ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bound(tt.id); got != tt.want {
				t.Errorf("bound(%q) = %q; want %q", tt.id, got, tt.want)
			}
		})
	}
}
