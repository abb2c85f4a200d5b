package core

import (
	"errors"
	"net/http"
)

// The options in this file are for adapters. A framework's handlers get the
// framework's own context (Gin's *gin.Context, Echo's echo.Context), and an
// adapter's options let users write key functions, plan functions, exemptions
// and deny handlers against it. Core cannot name those types, so the adapter
// passes its context to Middleware.CheckWith as "native", and these options
// hand it, as it is, to functions the adapter wrapped around the user's
// typed ones; each wrapper asserts the type it expects. Passing the context
// as a plain argument costs nothing per request: it is not stored in the
// request's context, which would cost two allocations.

// ErrNativeType is what the adapters' wrappers return (wrapped) when the
// native value is missing or of another framework's type: a Gin-typed
// option given to the Echo adapter, or to core.Middleware.Handler, which
// passes none. A key function failing so is handled by the key error
// policy, as any failing key function; a deny handler failing so leaves the
// default refusal in place.
var ErrNativeType = errors.New("limitkit: the framework context is missing or of another framework's type; a framework-typed option works only with its own adapter")

// NativeKeyFunc is a KeyFunc that also gets the native value the adapter
// passed to CheckWith (nil from Check).
type NativeKeyFunc func(r *http.Request, native any) (string, error)

// WithNativeKey is WithKey for adapters: the key functions get the native
// value as well as the request. Several are combined as Combine combines. It
// replaces WithKey, and WithKey replaces it: the last given counts.
func WithNativeKey(keys ...NativeKeyFunc) Option {
	keys = append([]NativeKeyFunc(nil), keys...)
	return func(c *config) {
		if len(keys) == 0 {
			c.mw.problem("limitkit: WithNativeKey(): give at least one key function")
			return
		}
		for i, k := range keys {
			if k == nil {
				c.mw.problem("limitkit: WithNativeKey: key function %d of %d is nil", i+1, len(keys))
				return
			}
		}
		c.mw.key = nil
		if len(keys) == 1 {
			c.mw.nativeKey = keys[0]
			return
		}
		c.mw.nativeKey = func(r *http.Request, native any) (string, error) {
			return combine(len(keys), func(i int) (string, error) { return keys[i](r, native) })
		}
	}
}

// WithNativePlans is WithPlans for adapters: planOf gets the native value
// as well as the request.
func WithNativePlans(plans map[string]string, planOf func(r *http.Request, native any) string) Option {
	return func(c *config) {
		if planOf == nil {
			c.mw.problem("limitkit: WithNativePlans: the planOf function is nil")
		}
		c.mw.plans, c.mw.planOf = plans, planOf
	}
}

// WithNativeExempt is WithExempt for adapters: exempt gets the native value
// as well as the request. It is checked beside WithExempt's function, so a
// middleware may have both.
func WithNativeExempt(exempt func(r *http.Request, native any) bool) Option {
	return func(c *config) { c.mw.nativeExempt = exempt }
}

// NativeDenyFunc writes the response to a request the limit refused (429,
// or 413 for a cost that can never fit; see Result.OverLimit), in the
// framework's idiom, given the native value and Check's result. Its error
// is the adapter's to interpret: Echo's handlers return it, Gin has no
// place for it. An error wrapping ErrNativeType means the native value was
// not the wrapper's type, and the adapter refuses as it would without one.
type NativeDenyFunc func(native any, res Result) error

// WithNativeDeny stores an adapter's deny handler with the middleware, for
// the adapter to fetch with Middleware.NativeDeny when it builds its
// handler. Core itself never calls it: Refuse and Handler use
// WithDenyHandler's handler.
func WithNativeDeny(deny NativeDenyFunc) Option {
	return func(c *config) { c.mw.nativeDeny = deny }
}

// NativeDeny returns the function WithNativeDeny gave, or nil.
func (m *Middleware) NativeDeny() NativeDenyFunc { return m.nativeDeny }
