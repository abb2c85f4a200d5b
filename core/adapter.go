package core

import "fmt"

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
func Adapt[H any](constructor string, skip int, expr string, opts []Option, wrap func(*Middleware) H) (H, error) {
	return adapt(constructor, skip+1, expr, opts, wrap)
}

// MustAdapt is Adapt for an adapter's constructor that panics (such as
// ginlimit.Limit): it panics with Adapt's error.
func MustAdapt[H any](constructor string, skip int, expr string, opts []Option, wrap func(*Middleware) H) H {
	h, err := adapt(constructor, skip+1, expr, opts, wrap)
	if err != nil {
		panic(err)
	}
	return h
}

// adapt's skip counts the functions between the user's function and the
// call of adapt, Adapt or MustAdapt among them.
func adapt[H any](constructor string, skip int, expr string, opts []Option, wrap func(*Middleware) H) (H, error) {
	m, err := NewMiddlewareSkip(skip+1, expr, opts...)
	if err != nil {
		var none H
		return none, fmt.Errorf("%s(%q): %w", constructor, expr, err)
	}
	return wrap(m), nil
}
