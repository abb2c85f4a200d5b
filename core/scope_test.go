package core

import (
	"crypto/sha256"
	"encoding/hex"
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
