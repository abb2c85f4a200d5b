package core

import (
	"errors"
	"strings"
	"testing"
)

// adapterNew and adapterLimit stand for an adapter's constructors.
func adapterNew(expr string, opts ...AdapterOption) (*Middleware, error) {
	return Adapt[any]("fw.New", 1, expr, opts, func(m *Middleware) *Middleware { return m })
}

func adapterLimit(expr string, opts ...AdapterOption) *Middleware {
	return MustAdapt[any]("fw.Limit", 1, expr, opts, func(m *Middleware) *Middleware { return m })
}

func TestAdapt_errorNamesTheCallAndWrapsCores(t *testing.T) {
	_, err := adapterNew("5/minnute")
	var se *SyntaxError
	if err == nil || !strings.HasPrefix(err.Error(), `fw.New("5/minnute"): limitkit: invalid limit "5/minnute"`) || !errors.As(err, &se) || se.Expr != "5/minnute" {
		t.Errorf("error %v; want one naming the call, wrapping the *SyntaxError", err)
	}
	_, err = adapterNew("5/minute", WithKey(nil))
	if err == nil || err.Error() != `fw.New("5/minute"): limitkit: WithKey(nil): give a key function, or leave the option out to key by IP` {
		t.Errorf("error %v; want the call, then the option's problem", err)
	}
}

func TestMustAdapt_panicsWithTheErrorAdaptReturns(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		var se *SyntaxError
		if err == nil || !strings.HasPrefix(err.Error(), `fw.Limit("5/minnute"): `) || !errors.As(err, &se) {
			t.Errorf("panic %v; want an error naming the call, wrapping the *SyntaxError", err)
		}
	}()
	adapterLimit("5/minnute")
}

func TestAdapt_scopeIsNamedByTheConstructorsCaller(t *testing.T) {
	fn := "github.com/limitkit/limitkit/core.TestAdapt_scopeIsNamedByTheConstructorsCaller"
	m, err := adapterNew("3/19 minutes")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Scope(); countOf(fn, "3/19 minutes", got) < 0 {
		t.Errorf("Adapt: scope %s is not derived from %s", got, fn)
	}
	if got := adapterLimit("3/23 minutes").Scope(); countOf(fn, "3/23 minutes", got) < 0 {
		t.Errorf("MustAdapt: scope %s is not derived from %s", got, fn)
	}
}
