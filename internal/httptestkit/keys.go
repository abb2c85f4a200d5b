package httptestkit

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/limitkit/limitkit/core"
)

// KeyRequest is one request of a KeyCase: its peer address and header
// pairs.
type KeyRequest struct {
	Remote string
	Header []string
}

// Req is a KeyRequest from remote with the header pairs given.
func Req(remote string, header ...string) KeyRequest { return KeyRequest{remote, header} }

// KeyCase is a check of who requests are counted for: Reqs, sent to GET /
// under a limit of 1/minute with Opts on an app E that Setup (if set)
// prepared first, and the codes expected: 200 for each new identity, 429
// for a repeated one.
type KeyCase[E any, O core.AdapterOption] struct {
	Name  string
	Setup func(E)
	Opts  []O
	Reqs  []KeyRequest
	Codes []int
}

// CoreKeyCases are the KeyCases every adapter shares, those of core's own
// key functions: the default key ignores a spoofed X-Forwarded-For (that
// Gin would trust and Echo's RealIP believe), and an API key header and
// core.ByClientIP with trusted proxies identify clients. They use no
// Setup.
func CoreKeyCases[E any, O core.AdapterOption]() []KeyCase[E, O] {
	return []KeyCase[E, O]{
		{
			Name: "the default key ignores a spoofed X-Forwarded-For that the framework would believe",
			Reqs: []KeyRequest{
				{Client, []string{"X-Forwarded-For", "198.51.100.1"}},
				{Client, []string{"X-Forwarded-For", "198.51.100.2"}},
				{"198.51.100.9:1", nil},
			},
			Codes: []int{200, 429, 200},
		},
		{
			Name: "an API key header",
			Opts: []O{As[O](core.WithKey(core.ByHeader("X-API-Key")))},
			Reqs: []KeyRequest{
				{Client, []string{"X-API-Key", "k1"}},
				{"198.51.100.9:1", []string{"X-API-Key", "k1"}},
				{Client, []string{"X-API-Key", "k2"}},
			},
			Codes: []int{200, 429, 200},
		},
		{
			Name: "trusted proxies are honoured by core.ByClientIP",
			Opts: []O{As[O](core.WithKey(core.MustByClientIP("10.0.0.0/8")))},
			Reqs: []KeyRequest{
				{"10.0.0.1:1", []string{"X-Forwarded-For", "198.51.100.1"}},
				{"10.0.0.2:1", []string{"X-Forwarded-For", "198.51.100.2"}},
				{"10.0.0.2:1", []string{"X-Forwarded-For", "198.51.100.1"}},
				{Client, []string{"X-Forwarded-For", "198.51.100.5"}}, // forged: keyed by peer
				{Client, []string{"X-Forwarded-For", "198.51.100.6"}},
			},
			Codes: []int{200, 200, 429, 200, 429},
		},
	}
}

// Keys runs each case, as a subtest, on the app serve returns: a new app
// E, given to setup if it is not nil, with GET / limited to 1/minute with
// opts, answering 200. opts begin with a limiter of the case's own.
func Keys[E any, O core.AdapterOption](t *testing.T, cases []KeyCase[E, O], serve func(setup func(E), opts []O) http.Handler) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			lim, _ := NewLimiter(t)
			h := serve(tt.Setup, append([]O{As[O](core.WithLimiter(lim))}, tt.Opts...))
			var codes []int
			for _, q := range tt.Reqs {
				codes = append(codes, Do(h, "GET", "/", q.Remote, q.Header...).Code)
			}
			if fmt.Sprint(codes) != fmt.Sprint(tt.Codes) {
				t.Errorf("codes %v; want %v", codes, tt.Codes)
			}
		})
	}
}

// As is core's option o as an adapter's option type O, which every core
// middleware option satisfies (see core.MiddlewareOption): for the cases
// that every adapter shares.
func As[O core.AdapterOption](o core.MiddlewareOption) O { return any(o).(O) }
