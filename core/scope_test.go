package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// buildHere builds a middleware whose scope belongs to buildHere.
func buildHere(expr string) *Middleware { return MustNewMiddleware(expr) }

// scopeFor is the documented derivation, written out independently.
func scopeFor(fn, expr string, n int) string {
	sum := sha256.Sum256([]byte(fn + "\x00" + expr + "\x00" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:6])
}

func TestScope_isDerivedFromFunctionExpressionAndCount(t *testing.T) {
	const fn = "github.com/limitkit/limitkit/core.buildHere"
	// A unique expression, so that only this test counts it; -count=N runs
	// it N times in one process, so the first count is found, not assumed.
	expr := "7/13 hours"
	first := buildHere(expr).Scope()
	n0 := countOf(fn, expr, first)
	if n0 < 0 {
		t.Fatalf("scope %s is not hash(%s, %q, n) for any n < 1000", first, fn, expr)
	}
	for i := 1; i <= 2; i++ {
		if got, want := buildHere(expr).Scope(), scopeFor(fn, expr, n0+i); got != want {
			t.Errorf("build %d: scope %s; want %s = hash(%s, %q, %d)", i, got, want, fn, expr, n0+i)
		}
	}
}

// countOf finds the n of a scope, or -1.
func countOf(fn, expr, scope string) int {
	for n := range 1000 {
		if scopeFor(fn, expr, n) == scope {
			return n
		}
	}
	return -1
}

func TestScope_namesTheCallerOfTheAdapter(t *testing.T) {
	// An adapter calls NewMiddlewareSkip from the function its user calls.
	adapter := func(expr string) *Middleware {
		m, err := NewMiddlewareSkip(1, expr)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	expr := "3/17 minutes"
	fn := "github.com/limitkit/limitkit/core.TestScope_namesTheCallerOfTheAdapter"
	if got := adapter(expr).Scope(); countOf(fn, expr, got) < 0 {
		t.Errorf("scope %s is not derived from %s", got, fn)
	}
}

// freshProcess makes the test derive scopes as a process that has built no
// middleware yet would, until it ends.
func freshProcess(t *testing.T) {
	old := scopes.Load()
	scopes.Store(newScopeRegistry())
	t.Cleanup(func() { scopes.Store(old) })
}

// loggedLimiter is a limiter whose warnings (and worse) go to the buffer.
func loggedLimiter(t *testing.T) (*Limiter, *bytes.Buffer) {
	var logs bytes.Buffer
	lim, _ := clockedLimiter(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	return lim, &logs
}

// nextLine is the file:line after the caller's, where a test builds a
// middleware whose site a warning must name.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line+1)
}

func TestScope_ofALoopOverAMapIsTheSameInEveryProcessOrNamedAtStartUp(t *testing.T) {
	// Config-driven routes: two share an expression, one has its own. Two
	// processes range over the map in different orders.
	limits := map[string]string{"/a": "4/11 minutes", "/b": "4/11 minutes", "/c": "5/11 minutes"}
	var site string
	process := func(order ...string) (scope map[string]string, logs string) {
		freshProcess(t)
		lim, buf := loggedLimiter(t)
		scope = map[string]string{}
		for _, route := range order {
			site = nextLine()
			scope[route] = MustNewMiddleware(limits[route], WithLimiter(lim)).Scope()
		}
		return scope, buf.String()
	}
	one, logsOne := process("/a", "/b", "/c")
	two, logsTwo := process("/c", "/b", "/a")
	if one["/a"] == one["/b"] {
		t.Errorf("routes /a and /b share the budget %s", one["/a"])
	}
	for _, route := range slices.Sorted(maps.Keys(limits)) {
		if one[route] == two[route] {
			continue
		}
		// The budgets differ: each process must have said so at start-up,
		// naming the place and the expression to give a name to.
		for i, logs := range []string{logsOne, logsTwo} {
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "site="+site) || !strings.Contains(logs, strconv.Quote(limits[route])) {
				t.Errorf("route %s: scope %s in one process, %s in another, and process %d did not warn of %q at %s; logs:\n%s",
					route, one[route], two[route], i+1, limits[route], site, logs)
			}
		}
	}
	for i, logs := range []string{logsOne, logsTwo} {
		if strings.Contains(logs, strconv.Quote(limits["/c"])) {
			t.Errorf("process %d warned of %q, which only one route has; logs:\n%s", i+1, limits["/c"], logs)
		}
	}
}

// buildInLiterals builds middlewares as chi's Route and Group callbacks
// do, inside function literals, one of them nested, after a literal that
// builds nothing.
func buildInLiterals(expr string) (scopes []string) {
	run := func(f func()) { f() }
	run(func() {})
	run(func() { scopes = append(scopes, MustNewMiddleware(expr).Scope()) })
	run(func() {
		run(func() { scopes = append(scopes, MustNewMiddleware(expr).Scope()) })
	})
	return scopes
}

func TestScope_ofAMiddlewareInAFuncLiteralIsNamedByTheFunctionItIsWrittenIn(t *testing.T) {
	// So adding or removing a literal above it changes nothing.
	freshProcess(t)
	const fn = "github.com/limitkit/limitkit/core.buildInLiterals"
	expr := "3/19 minutes"
	want := []string{scopeFor(fn, expr, 0), scopeFor(fn, expr, 1)}
	if got := buildInLiterals(expr); !slices.Equal(got, want) {
		t.Errorf("scopes %v; want %v, hash(%s, %q, 0 and 1)", got, want, fn, expr)
	}
}

func TestScope_literalsAreFoundInTheFunctionTheyAreWrittenIn(t *testing.T) {
	// Inlining prefixes a literal's name with the functions its own was
	// inlined into.
	for _, tt := range []struct {
		fn, lit string
		want    bool
	}{
		{"example.com/app.routes", "example.com/app.routes.func1", true},
		{"example.com/app.routes", "example.com/app.routes.func1.2", true},
		{"example.com/app.routes", "example.com/app.main.routes.func2", true},
		{"example.com/app.(*Server).routes", "example.com/app.(*Server).routes.gowrap1", true},
		{"example.com/app.T.M", "example.com/app.T.M.T.M.func1.func2", true},
		{"example.com/app.G[...]", "example.com/app.G[...].func1", true},
		{"example.com/other.routes", "example.com/app.routes.func1", false},
		{"example.com/app.main", "example.com/app.main.routes.func2", false},
		{"example.com/app.routes.func1", "example.com/app.routes.func1.1", false},
		{"main", "app.main.func1", false},
	} {
		if got := encloses(tt.fn, tt.lit); got != tt.want {
			t.Errorf("encloses(%q, %q) = %v; want %v", tt.fn, tt.lit, got, tt.want)
		}
	}
	for _, named := range []string{"example.com/app.routes", "example.com/v2.routes", "example.com/app.(*T).func", "example.com/app.F[...]"} {
		if isLiteral(named) {
			t.Errorf("%s taken for a literal", named)
		}
	}
}

func TestScope_ofAMiddlewareBuiltPerRequestIsOneBudgetAndWarnsOfItsLine(t *testing.T) {
	lim, logs := loggedLimiter(t)
	var site string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		site = nextLine()
		MustNewMiddleware("2/minute", WithLimiter(lim)).Handler(okHandler).ServeHTTP(w, r)
	})
	var codes []int
	for range 5 {
		codes = append(codes, get(mux, "/items", client).Code)
	}
	if want := []int{200, 200, 429, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("codes %v; want %v: a middleware built per request must still limit", codes, want)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "site="+site) {
		t.Errorf("%d warnings; want 1, naming site=%s; logs:\n%s", n, site, logs.String())
	}
}

func TestScope_withNameIsTheName(t *testing.T) {
	if got := MustNewMiddleware("5/minute", WithName("login")).Scope(); got != "login" {
		t.Errorf("scope %q; want login", got)
	}
}

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", "a b", `a"b`, "a:b", "é", strings.Repeat("n", 65)} {
		if checkName("WithName", bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	for _, good := range []string{"api", "login.v2", "tier/pro", "A-Z_0-9"} {
		if err := checkName("WithName", good); err != nil {
			t.Errorf("name %q rejected: %v", good, err)
		}
	}
}

func TestScope_ofTwoLimitsBuiltPerRequestOnOneLineAreTwoBudgets(t *testing.T) {
	lim := closeLater(t, WithLogger(quiet))
	var a, b string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, b = MustNewMiddleware("6/minute", WithLimiter(lim)).Scope(), MustNewMiddleware("6/minute", WithLimiter(lim)).Scope()
	})
	get(h, "/", client)
	if a == b {
		t.Errorf("both limits have the scope %s", a)
	}
}
