package core

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReview_panickingPlanOfEscapesCheck shows that, unlike the key and cost
// functions, a panicking planOf (WithPlans) or exempt function (WithExempt)
// escapes Enforce and Handler: under net/http the server then drops the
// connection with no status at all (claim: every request ends with a
// status; panicking functions never escape). A planOf that reads a claim of
// a token or a header the client sends can be made to panic by the client.
//
// Fix: recover around planOf and exempt as identify does, and hand the
// request to the key error policy.
func TestReview_panickingPlanOfEscapesCheck(t *testing.T) {
	lim := New()
	defer lim.Close()
	for name, opt := range map[string]Option{
		"plans":  WithPlans(map[string]string{"pro": "5/minute"}, func(r *http.Request) string { panic("no claims") }),
		"exempt": WithExempt(func(r *http.Request) bool { panic("nil map") }),
	} {
		m := MustNewMiddleware("1/minute", WithLimiter(lim), WithName("p-"+name), opt)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: Enforce panicked: %v", name, p)
				}
			}()
			m.Enforce(httptest.NewRequest("GET", "/", nil), http.Header{})
		}()
	}
}

// TestReview_clientChoosesIdentityBehindXRealIPProxy shows ByClientIP's
// documented default at work behind the most common nginx set-up,
// `proxy_set_header X-Real-IP $remote_addr;` with the client's own
// X-Forwarded-For passed through: the first header present is read, so a
// client that sends X-Forwarded-For picks its identity and a fresh budget
// per request. The doc tells such users to use ByClientIPHeader, but nothing
// warns a user who does not read it.
//
// Fix (design): when X-Real-IP is present as well, and X-Forwarded-For's
// rightmost hop disagrees with it, trust neither and key by the peer or
// X-Real-IP; or make the header an explicit argument.
func TestReview_clientChoosesIdentityBehindXRealIPProxy(t *testing.T) {
	key := MustByClientIP("10.0.0.1")
	ids := map[string]bool{}
	for _, forged := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:5555"
		r.Header.Set("X-Real-IP", "203.0.113.9") // set by nginx: the real client
		r.Header.Set("X-Forwarded-For", forged)  // sent by the client, passed through
		id, _ := key(r)
		ids[id] = true
	}
	if len(ids) != 1 {
		t.Errorf("one client behind an X-Real-IP proxy got %d identities: %v", len(ids), ids)
	}
}
