// Package quotestest is the end-to-end suite every example app passes, so
// that the Gin, Echo and chi versions are shown to behave alike.
package quotestest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
	"github.com/limitkit/limitkit/examples/internal/quotes"
)

// server is one example app on a driven clock.
type server struct {
	t   *testing.T
	h   http.Handler
	clk *storetest.ManualClock
	app *quotes.App
}

func newServer(t *testing.T, newRouter func(*quotes.App) http.Handler) *server {
	t.Helper()
	clk := storetest.NewClock() // a day's start, so a minute's too
	app, err := quotes.NewApp("", core.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	app.ReportStarted = make(chan struct{})
	app.ReportGate = make(chan struct{})
	return &server{t: t, h: newRouter(app), clk: clk, app: app}
}

const (
	anon  = "203.0.113.7:41000"
	other = "198.51.100.9:41000"
)

func (s *server) do(method, path, remote, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remote
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w
}

func (s *server) quote(remote, token string) *httptest.ResponseRecorder {
	return s.do("GET", "/quotes/ACME", remote, token, "")
}

func (s *server) login(remote, user, password string) *httptest.ResponseRecorder {
	return s.do("POST", "/login", remote, "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, password))
}

// token signs user in from a remote of its own, so as not to spend the
// login budget of the remotes the tests count.
func (s *server) token(user, password string) string {
	s.t.Helper()
	w := s.login("192.0.2.200:1", user, password)
	var res quotes.LoginResponse
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.Token == "" {
		s.t.Fatalf("login as %s: %d %s", user, w.Code, w.Body)
	}
	return res.Token
}

// served counts how many of n quote requests are served before the first
// refusal, and returns that refusal.
func (s *server) served(n int, remote, token string) (int, *httptest.ResponseRecorder) {
	for i := range n {
		w := s.quote(remote, token)
		if w.Code != http.StatusOK {
			return i, w
		}
	}
	return n, nil
}

func wantRefusal(t *testing.T, w *httptest.ResponseRecorder, limit string) {
	t.Helper()
	if w == nil {
		t.Fatal("no request was refused")
	}
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("refused with %d %s; want 429", w.Code, w.Body)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q; want whole seconds, at least 1", w.Header().Get("Retry-After"))
	}
	var body struct {
		Error string `json:"error"`
		Limit string `json:"limit"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "rate limit exceeded" || body.Limit != limit {
		t.Errorf("body %s; want a rate limit error naming %s", w.Body, limit)
	}
}

// Run drives the router that newRouter builds through the quote API's
// limits.
func Run(t *testing.T, newRouter func(*quotes.App) http.Handler) {
	t.Run("serves quotes as JSON with rate-limit headers", func(t *testing.T) {
		s := newServer(t, newRouter)
		w := s.do("GET", "/quotes/acme", anon, "", "")
		var q quotes.Quote
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &q) != nil || q.Symbol != "ACME" || q.Price == 0 {
			t.Fatalf("GET /quotes/acme: %d %s; want the ACME quote", w.Code, w.Body)
		}
		if w.Header().Get("X-RateLimit-Limit") != "100" || w.Header().Get("X-RateLimit-Remaining") != "99" {
			t.Errorf("headers %v; want X-RateLimit-Limit 100 and Remaining 99", w.Header())
		}
		if w := s.do("GET", "/quotes/NOPE", anon, "", ""); w.Code != http.StatusNotFound {
			t.Errorf("unknown symbol: %d; want 404", w.Code)
		}
	})

	t.Run("anonymous clients get 100 a minute per IP", func(t *testing.T) {
		s := newServer(t, newRouter)
		n, refused := s.served(101, anon, "")
		if n != 100 {
			t.Fatalf("served %d anonymous requests; want 100", n)
		}
		wantRefusal(t, refused, "100/minute")
		if w := s.quote(other, ""); w.Code != http.StatusOK {
			t.Errorf("another IP: %d; want 200, it has a budget of its own", w.Code)
		}
		// The sliding window forgets the burst two minutes on.
		s.clk.Advance(2 * time.Minute)
		if w := s.quote(anon, ""); w.Code != http.StatusOK {
			t.Errorf("two minutes later: %d; want 200", w.Code)
		}
	})

	t.Run("signed-in users get their plan's limit per user", func(t *testing.T) {
		s := newServer(t, newRouter)
		free, pro := s.token("alice", "wonderland"), s.token("bob", "builder")
		n, refused := s.served(101, anon, free)
		if n != 100 {
			t.Fatalf("served %d requests of a free user; want 100", n)
		}
		wantRefusal(t, refused, "100/minute")
		if n, refused := s.served(1001, anon, pro); n != 1000 {
			t.Errorf("served %d requests of a pro user from the same IP; want 1000", n)
		} else {
			wantRefusal(t, refused, "1000/minute")
		}
		if w := s.quote(anon, ""); w.Code != http.StatusOK {
			t.Errorf("anonymous request from the users' IP: %d; want 200, users do not spend the IP's budget", w.Code)
		}
		if w := s.quote(other, free); w.Code != http.StatusTooManyRequests {
			t.Errorf("the free user from another IP: %d; want 429, the budget is the user's", w.Code)
		}
	})

	t.Run("a bad token is refused and limited as anonymous", func(t *testing.T) {
		s := newServer(t, newRouter)
		if w := s.quote(anon, "u-1002.forged"); w.Code != http.StatusUnauthorized || w.Header().Get("X-RateLimit-Remaining") != "99" {
			t.Fatalf("bad token: %d, remaining %q; want 401 after spending the IP's budget", w.Code, w.Header().Get("X-RateLimit-Remaining"))
		}
		if n, _ := s.served(100, anon, ""); n != 99 {
			t.Errorf("served %d anonymous requests after one with a bad token; want 99", n)
		}
	})

	t.Run("login counts only failed attempts, 5 a minute per IP", func(t *testing.T) {
		s := newServer(t, newRouter)
		for i := range 20 {
			if w := s.login(anon, "alice", "wonderland"); w.Code != http.StatusOK {
				t.Fatalf("successful login %d: %d %s; want all 20 served, successes do not count", i, w.Code, w.Body)
			}
		}
		var codes []int
		for i := range 5 {
			codes = append(codes, s.login(anon, "alice", "guess"+strconv.Itoa(i)).Code)
		}
		if fmt.Sprint(codes) != "[401 401 401 401 401]" {
			t.Fatalf("five wrong passwords: %v; want five 401s", codes)
		}
		for _, password := range []string{"wonderland", "guess5"} {
			wantRefusal(t, s.login(anon, "alice", password), "5/minute")
		}
		if w := s.login(other, "alice", "wonderland"); w.Code != http.StatusOK {
			t.Errorf("login from another IP: %d; want 200", w.Code)
		}
		// The sliding window forgets the failures two minutes on.
		s.clk.Advance(2 * time.Minute)
		if w := s.login(anon, "alice", "wonderland"); w.Code != http.StatusOK {
			t.Errorf("two minutes later: %d; want 200", w.Code)
		}
	})

	t.Run("usage shows the quotes budget without spending it", func(t *testing.T) {
		s := newServer(t, newRouter)
		usage := func(token string) (u quotes.Usage) {
			t.Helper()
			w := s.do("GET", "/usage", anon, token, "")
			var raw map[string]any
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &u) != nil || json.Unmarshal(w.Body.Bytes(), &raw) != nil {
				t.Fatalf("GET /usage: %d %s; want JSON", w.Code, w.Body)
			}
			if _, ok := raw["remaining"]; !ok {
				t.Fatalf("GET /usage: %s; want a field remaining", w.Body)
			}
			return u
		}
		if u := usage(""); u != (quotes.Usage{Plan: "anonymous", Limit: "100/minute", Remaining: 100}) {
			t.Errorf("fresh anonymous usage %+v; want 100 of 100/minute", u)
		}
		s.served(3, anon, "")
		for range 10 {
			if u := usage(""); u.Remaining != 97 || u.RetryAfter != 0 {
				t.Fatalf("usage after 3 quotes: %+v; want 97 remaining, no wait", u)
			}
		}
		if n, _ := s.served(101, anon, ""); n != 97 {
			t.Errorf("served %d more quotes after asking for usage 10 times; want 97: usage spends nothing", n)
		}
		if u := usage(""); u.Remaining != 0 || u.RetryAfter < 1 {
			t.Errorf("usage when spent: %+v; want 0 remaining and a wait", u)
		}
		free, pro := s.token("alice", "wonderland"), s.token("bob", "builder")
		s.served(5, anon, pro)
		if u := usage(free); u != (quotes.Usage{Plan: "free", Limit: "100/minute", Remaining: 100}) {
			t.Errorf("free user's usage %+v; want 100 of 100/minute, apart from the IP's", u)
		}
		if u := usage(pro); u.Plan != "pro" || u.Limit != "1000/minute" || u.Remaining != 995 {
			t.Errorf("pro user's usage %+v; want 995 of 1000/minute", u)
		}
		if w := s.do("GET", "/usage", anon, "u-1002.forged", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("usage with a bad token: %d; want 401", w.Code)
		}
	})

	t.Run("export is a calendar quota: 3 a day, back at midnight UTC", func(t *testing.T) {
		s := newServer(t, newRouter)
		s.clk.Advance(23*time.Hour + 30*time.Minute) // 23:30 UTC
		for i := range 3 {
			w := s.do("GET", "/export", anon, "", "")
			var all []quotes.Quote
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &all) != nil || len(all) != 4 {
				t.Fatalf("export %d: %d %s; want the four quotes", i+1, w.Code, w.Body)
			}
		}
		w := s.do("GET", "/export", anon, "", "")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1800" {
			t.Fatalf("4th export: %d, Retry-After %q; want 429 until midnight, 1800 s", w.Code, w.Header().Get("Retry-After"))
		}
		if w := s.do("GET", "/export", other, "", ""); w.Code != http.StatusOK {
			t.Errorf("another client's first export: %d; want its own budget", w.Code)
		}
		s.clk.Advance(30 * time.Minute) // midnight: a new calendar day
		if w := s.do("GET", "/export", anon, "", ""); w.Code != http.StatusOK {
			t.Errorf("export after midnight: %d; want a fresh day's quota", w.Code)
		}
	})

	t.Run("report: at most 2 in flight per IP, the slot back when one ends", func(t *testing.T) {
		s := newServer(t, newRouter)
		done := make(chan *httptest.ResponseRecorder, 2)
		for range 2 {
			go func() { done <- s.do("GET", "/report", anon, "", "") }()
			<-s.app.ReportStarted // its handler runs: it holds a slot
		}
		w := s.do("GET", "/report", anon, "", "")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || w.Header().Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("3rd report in flight: %d, Retry-After %q, X-RateLimit-Limit %q; want 429, 1, 2",
				w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-RateLimit-Limit"))
		}
		go func() { done <- s.do("GET", "/report", other, "", "") }()
		<-s.app.ReportStarted // another client has slots of its own
		close(s.app.ReportGate)
		for range 3 {
			if w := <-done; w.Code != http.StatusOK {
				t.Errorf("a report held in flight ended with %d", w.Code)
			}
		}
		go func() { done <- s.do("GET", "/report", anon, "", "") }()
		<-s.app.ReportStarted
		if w := <-done; w.Code != http.StatusOK {
			t.Errorf("report after the others ended: %d; want its slot back", w.Code)
		}
	})

	t.Run("metrics report the denials", func(t *testing.T) {
		s := newServer(t, newRouter)
		for range 102 { // two refused
			s.quote(anon, "")
		}
		for range 6 {
			s.login(anon, "alice", "wrong")
		}
		w := s.do("GET", "/metrics", anon, "", "")
		if w.Code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", w.Code)
		}
		// Each series also carries the route pattern, spelt as each router
		// spells it.
		for _, want := range []string{
			`limitkit_requests_total{decided_by="store",result="denied",route="/[^"]*",scope="quotes"} 2`,
			`limitkit_requests_total{decided_by="store",result="allowed",route="/[^"]*",scope="quotes"} 100`,
			`limitkit_requests_total{decided_by="store",result="denied",route="/login",scope="login"} 1`,
		} {
			re := regexp.MustCompile("(?m)^" + strings.NewReplacer("{", `\{`, "}", `\}`).Replace(want) + "$")
			if !re.MatchString(w.Body.String()) {
				t.Errorf("metrics lack %s:\n%s", want, w.Body)
			}
		}
	})
}
