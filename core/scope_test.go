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
	// A unique expression, so that other tests cannot have used its count.
	expr := "7/13 hours"
	for n := range 3 {
		if got, want := buildHere(expr).Scope(), scopeFor(fn, expr, n); got != want {
			t.Errorf("build %d: scope %s; want %s = hash(%s, %q, %d)", n, got, want, fn, expr, n)
		}
	}
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
	if got, want := adapter(expr).Scope(), scopeFor(fn, expr, 0); got != want {
		t.Errorf("scope %s; want the one of %s", got, fn)
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
