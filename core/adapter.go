package core

import (
	"fmt"
	"net/http"
	"reflect"
)

// Adapt is how an adapter's constructor that returns an error (such as
// ginlimit.New) builds its middleware: it builds the Middleware for expr
// and opts, as NewMiddlewareSkip does, and turns it into the framework's
// type with wrap. Every adapter's errors so read alike: each names the
// call and its expression, such as `ginlimit.New("5/minit"): ...`, and
// wraps core's error, so that errors.Is and errors.As find what core
// returned (a *SyntaxError, say). constructor is the call's name as users
// write it; skip counts the functions between the user's function and the
// call of Adapt, as NewMiddlewareSkip's does: 1 when the constructor calls
// Adapt itself.
//
// C is the framework context wrap's middleware passes to EnforceWith as the
// native value, given explicitly: Adapt[*gin.Context](...). An option built
// by NativeKey, NativePlans, NativeExempt or NativeDeny for another context
// fails the constructor, naming the option; an adapter whose middleware
// passes none (a net/http one, such as chilimit's) gives any, and then every
// native option fails. O is the adapter's own option type, an AdapterOption
// with the adapter's mark (see MiddlewareOption), so that the compiler
// already refuses other adapters' options.
func Adapt[C any, H any, O AdapterOption](constructor string, skip int, expr string, opts []O, wrap func(*Middleware) H) (H, error) {
	return adapt[C](constructor, skip+1, expr, opts, wrap)
}

// MustAdapt is Adapt for an adapter's constructor that panics (such as
// ginlimit.Limit): it panics with Adapt's error.
func MustAdapt[C any, H any, O AdapterOption](constructor string, skip int, expr string, opts []O, wrap func(*Middleware) H) H {
	h, err := adapt[C](constructor, skip+1, expr, opts, wrap)
	if err != nil {
		panic(err)
	}
	return h
}

// adapt's skip counts the functions between the user's function and the
// call of adapt, Adapt or MustAdapt among them.
func adapt[C any, H any, O AdapterOption](constructor string, skip int, expr string, opts []O, wrap func(*Middleware) H) (H, error) {
	m, err := newMiddleware(skip+1, expr, opts, nativeType[C]())
	if err != nil {
		var none H
		return none, fmt.Errorf("%s(%q): %w", constructor, expr, err)
	}
	return wrap(m), nil
}

// nativeType is the type of the native value C stands for: nil for any,
// which stands for none.
func nativeType[C any]() reflect.Type {
	t := reflect.TypeFor[C]()
	if t == reflect.TypeFor[any]() {
		return nil
	}
	return t
}

// Respond answers r by res, the result of Enforce or EnforceWith for it, as
// Handler does: Serve runs next (through a writer that records the status,
// to settle the charge, under WithChargeWhen), Refuse answers with Refuse,
// and Gone with res.Status alone. It is for net/http adapters that choose
// the middleware per request, as chilimit.Routes does.
func (m *Middleware) Respond(w http.ResponseWriter, r *http.Request, next http.Handler, res Result) {
	switch res.Verdict {
	case Serve:
		if m.chargeWhen != nil {
			m.serveThenFinish(next, w, r, res)
			return
		}
		next.ServeHTTP(w, r)
	case Refuse:
		m.Refuse(w, r, res)
	default: // Gone
		w.WriteHeader(res.Status)
	}
}
