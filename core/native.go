package core

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
)

// The options in this file are for adapters. A framework's handlers get the
// framework's own context (Gin's *gin.Context, Echo's echo.Context), and an
// adapter's options let users write key functions, plan functions, exemptions
// and deny handlers against it. Core cannot name those types, so the adapter
// passes its context to Middleware.EnforceWith as "native", and these options
// hand it, as it is, to functions wrapped around the user's typed ones.
// NativeKey, NativePlans, NativeExempt and NativeDeny write those wrappers
// for any context type C, so that an adapter's option is one line and every
// adapter asserts the type, and fails, alike. Passing the context as a
// plain argument costs nothing per request: it is not stored in the
// request's context, which would cost two allocations.

// ErrNativeType is what the adapters' wrappers return (wrapped) when the
// native value is missing or of another framework's type. Adapt already
// refuses a native option of another framework's context, and the option
// types keep one from core's Handler, so this is the last line of defence,
// for an adapter that passes the wrong value. A key function failing so is handled by the key error
// policy, as any failing key function; a deny handler failing so leaves the
// default refusal in place.
var ErrNativeType = errors.New("limitkit: the framework context is missing or of another framework's type; a framework-typed option works only with its own adapter")

// NativeKeyFunc is a KeyFunc that also gets the native value the adapter
// passed to EnforceWith (nil from Enforce).
type NativeKeyFunc func(r *http.Request, native any) (string, error)

// NativeDenyFunc writes the response to a request the limit refused (429,
// or 413 for a cost that can never fit; see Result.OverLimit), in the
// framework's idiom, given the native value and Enforce's result. Its error
// is the adapter's to interpret: Echo's handlers return it, Gin has no
// place for it. An error wrapping ErrNativeType means the native value was
// not the wrapper's type, and the adapter refuses as it would without one.
type NativeDenyFunc func(native any, res Result) error

// The native options' settings, which NativeKey, NativePlans, NativeExempt
// and NativeDeny wrap: a native key replaces WithKey, and WithKey replaces
// it, the last given counts; a native exemption is checked beside
// WithExempt's; the deny function is stored for the adapter to fetch with
// Middleware.NativeDeny, core itself never calls it.
func (c *middlewareConfig) setNativeKey(k NativeKeyFunc) { c.key, c.nativeKey = nil, k }
func (c *middlewareConfig) setNativePlans(plans map[string]string, planOf func(*http.Request, any) string) {
	c.plans, c.planOf = plans, planOf
}

// native returns the option named name of an adapter whose context is C.
func native[C any](name string, apply func(*middlewareConfig)) AdapterOption {
	return nativeOption{name: name, native: reflect.TypeFor[C](), apply: apply}
}

// NativeDeny returns the function a NativeDeny option gave, or nil.
func (m *Middleware) NativeDeny() NativeDenyFunc { return m.nativeDeny }

// nativeOf returns the native value as a C, or false if it is missing, nil
// or of another type. C is comparable so that a nil C counts as missing, as
// no value does.
func nativeOf[C comparable](native any) (C, bool) {
	c, ok := native.(C)
	var none C
	return c, ok && c != none
}

// nativeTypeError is what option's functions return for a native value
// that is not a C: it names the option and the type, and wraps
// ErrNativeType. It is made once per option, not per request.
func nativeTypeError[C any](option string) error {
	return fmt.Errorf("%s got no %s: %w", option, reflect.TypeFor[C](), ErrNativeType)
}

// NativeKey is the Key option of an adapter whose framework context is C:
// it counts requests by the identity keys give from the context, combined
// as Combine combines, in place of WithKey. option is the option's name as
// users call it, such as "ginlimit.Key", for the errors: with no key, or a
// nil one, the constructor fails naming it; where the native value is not
// a C (core's own Handler, another framework's adapter), the key fails with
// an error wrapping ErrNativeType, and the key error policy applies.
func NativeKey[C comparable, F ~func(C) (string, error)](option string, keys ...F) AdapterOption {
	keys = slices.Clone(keys)
	for i, k := range keys {
		if k != nil {
			continue
		}
		if len(keys) == 1 {
			return invalid("%s(nil): give a key function, or leave the option out to key by IP", option)
		}
		return invalid("%s: key function %d of %d is nil", option, i+1, len(keys))
	}
	errType := nativeTypeError[C](option)
	var k NativeKeyFunc
	switch len(keys) {
	case 0:
		return invalid("%s(): give at least one key function, or leave the option out to key by IP", option)
	case 1:
		key := keys[0]
		k = func(_ *http.Request, native any) (string, error) {
			c, ok := nativeOf[C](native)
			if !ok {
				return "", errType
			}
			return key(c)
		}
	default:
		// The type is asserted once for all the keys.
		k = func(_ *http.Request, native any) (string, error) {
			c, ok := nativeOf[C](native)
			if !ok {
				return "", errType
			}
			return combine(len(keys), func(i int) (string, error) { return keys[i](c) })
		}
	}
	return native[C](option, func(c *middlewareConfig) { c.setNativeKey(k) })
}

// NativePlans is the Plans option of an adapter whose framework context is
// C: WithPlans with the plan read from the context. option names it in the
// errors, such as "ginlimit.Plans": a nil planOf, a plan name WithName
// would refuse or a plan's limit expression that does not parse fails the
// constructor naming the option and the plan. Where the native value is
// not a C, every request gets the middleware's own expression.
func NativePlans[C comparable, F ~func(C) string](option string, plans map[string]string, planOf F) AdapterOption {
	if planOf == nil {
		return invalid("%s: the planOf function is nil", option)
	}
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(plans)) {
		if err := checkName("plan", name); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", option, err))
		} else if _, err := ParseLimits(plans[name]); err != nil {
			problems = append(problems, fmt.Errorf("%s: plan %q: %w", option, name, err))
		}
	}
	if len(problems) > 0 {
		return InvalidOption(errors.Join(problems...))
	}
	plans = maps.Clone(plans)
	of := func(_ *http.Request, native any) string {
		if c, ok := nativeOf[C](native); ok {
			return planOf(c)
		}
		return ""
	}
	return native[C](option, func(c *middlewareConfig) { c.setNativePlans(plans, of) })
}

// NativeExempt is the exemption option of an adapter whose framework
// context is C (Gin's Exempt, Echo's Skipper): like WithExempt, with
// exempt reading the context, and checked beside WithExempt's function, so
// a middleware may have both. option names it, such as "ginlimit.Exempt".
// A nil exempt exempts nothing, as WithExempt(nil) does; where the native
// value is not a C, nothing is exempt.
func NativeExempt[C comparable, F ~func(C) bool](option string, exempt F) AdapterOption {
	var f func(*http.Request, any) bool
	if exempt != nil {
		f = func(_ *http.Request, native any) bool {
			c, ok := nativeOf[C](native)
			return ok && exempt(c)
		}
	}
	return native[C](option, func(c *middlewareConfig) { c.nativeExempt = f })
}

// NativeDeny is the OnDeny option of an adapter whose framework context is
// C: deny answers a refusal in the framework's idiom, with an error for
// frameworks whose handlers return one (Echo) or without (Gin); the
// adapter fetches it with Middleware.NativeDeny or calls DenyNatively.
// C cannot be inferred from the two shapes, so it is given:
// NativeDeny[*gin.Context]("ginlimit.OnDeny", deny). A nil deny keeps the
// default refusal; where the native value is not a C, deny is not called
// and Middleware.DenyNatively reports the refusal unanswered.
func NativeDeny[C comparable, D func(C, Result) error | func(C, Result)](option string, deny D) AdapterOption {
	var typed func(C, Result) error
	switch d := any(deny).(type) {
	case func(C, Result) error:
		typed = d
	case func(C, Result):
		if d != nil {
			typed = func(c C, res Result) error { d(c, res); return nil }
		}
	}
	var f NativeDenyFunc
	if typed != nil {
		errType := nativeTypeError[C](option)
		f = func(native any, res Result) error {
			c, ok := nativeOf[C](native)
			if !ok {
				return errType
			}
			return typed(c, res)
		}
	}
	return native[C](option, func(c *middlewareConfig) { c.nativeDeny = f })
}

// DenyNatively answers a refusal by the limit (see Result.OverLimit) with
// the function a NativeDeny option gave, and reports whether it did: not when
// there is none, the refusal is of another kind (a 503, a 400) or the
// native value was not the function's type (its error wraps ErrNativeType).
// err is the function's error, for an adapter whose framework has a place
// for it; otherwise the adapter refuses as it would without the function.
func (m *Middleware) DenyNatively(native any, res Result) (answered bool, err error) {
	if m.nativeDeny == nil || !res.OverLimit() {
		return false, nil
	}
	err = m.nativeDeny(native, res)
	if errors.Is(err, ErrNativeType) {
		return false, nil
	}
	return true, err
}

// InvalidOption returns an option that makes the middleware constructor it
// is given to fail with err: for an adapter's option that finds its own
// arguments wrong, so that the error names the option the user called. It
// fits every middleware.
func InvalidOption(err error) MiddlewareOption {
	return middlewareOption(func(c *middlewareConfig) { c.problems = append(c.problems, err) })
}

func invalid(format string, args ...any) MiddlewareOption {
	return InvalidOption(fmt.Errorf(format, args...))
}
