package echolimit

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
)

// StatusClientClosedRequest is the status of the error a request ends with
// when its client went away while it was checked or held (nginx's 499, as
// Echo's proxy middleware uses): nothing reaches the client, but access logs
// can tell these requests apart.
const StatusClientClosedRequest = core.StatusClientClosedRequest

// Limit returns an Echo middleware enforcing the limits in expr (see
// core.ParseLimits), for a route, a group or, with e.Use, the whole app. It
// panics if expr or an option is invalid, with an error that names the call
// and quotes the expression, such as `echolimit.Limit("5/minit"): ...`: that
// is a mistake in set-up code, best found at start-up. Use New to get the
// error instead.
func Limit(expr string, opts ...Option) echo.MiddlewareFunc {
	return core.MustAdapt[echo.Context]("echolimit.Limit", 1, expr, withRoute(opts), middleware)
}

// New is Limit returning an error, rather than panicking, for an invalid
// expression or option. The error wraps core's: errors.As finds a
// *core.SyntaxError for a bad expression.
func New(expr string, opts ...Option) (echo.MiddlewareFunc, error) {
	return core.Adapt[echo.Context]("echolimit.New", 1, expr, withRoute(opts), middleware)
}

// Error is the Internal error of a refused request's *echo.HTTPError: the
// outcome of the check, for a custom HTTPErrorHandler to find with
// errors.As (HTTPError unwraps to it), as ExampleError shows. The
// HTTPError's Message is the refusal's reason, a string such as "rate limit
// exceeded", so that Echo's default handler writes
// {"message":"rate limit exceeded"} as it writes every other error of an
// Echo app. A handler that wants core's body instead, with the limit and
// retry_after, can write the Error itself (c.JSON(e.Result.Status, e)):
// it marshals to that body.
type Error struct {
	Result core.Result
}

// Error returns the refusal's reason.
func (e *Error) Error() string { return "echolimit: " + e.Result.Message() }

// Unwrap returns the error behind a refusal that is not about the limit,
// such as a store that did not answer under FailClosed; nil for a 429 or
// 413.
func (e *Error) Unwrap() error { return e.Result.Err }

// MarshalJSON returns core's body for the refusal, such as
// {"error":"rate limit exceeded","limit":"5/minute","retry_after":12}.
func (e *Error) MarshalJSON() ([]byte, error) { return e.Result.Body(), nil }

// Middleware is an Echo rate limit that can also tell a client what its
// budget holds without spending it: Handler limits a route or group as
// Limit's middleware does, and Peek answers for the budget Handler would
// charge a request to (its plan, its key), for a route such as GET /usage.
// For a plain limit, Limit is all you need.
type Middleware struct {
	core *core.Middleware
	mw   echo.MiddlewareFunc
}

// NewMiddleware is New returning a *Middleware, whose Handler is the Echo
// middleware and whose Peek looks at its budget:
//
//	quotes := echolimit.MustNewMiddleware("100/minute", core.WithName("quotes"))
//	e.GET("/quotes/:symbol", getQuote, quotes.Handler)
//	e.GET("/usage", func(c echo.Context) error { u, err := quotes.Peek(c); ... })
func NewMiddleware(expr string, opts ...Option) (*Middleware, error) {
	return core.Adapt[echo.Context]("echolimit.NewMiddleware", 1, expr, withRoute(opts), newMiddleware)
}

// MustNewMiddleware is NewMiddleware for set-up code: it panics with the
// error, which names the call and quotes the expression.
func MustNewMiddleware(expr string, opts ...Option) *Middleware {
	return core.MustAdapt[echo.Context]("echolimit.MustNewMiddleware", 1, expr, withRoute(opts), newMiddleware)
}

func newMiddleware(m *core.Middleware) *Middleware {
	return &Middleware{core: m, mw: middleware(m)}
}

// Handler is the Echo middleware enforcing the limit, as Limit returns it.
func (l *Middleware) Handler(next echo.HandlerFunc) echo.HandlerFunc { return l.mw(next) }

// Peek looks at the budget Handler would charge a request like c's to,
// charging nothing: see core.Middleware.Peek. It reads the Echo-typed
// options (Key, Plans) from c as Handler does, so run it after the
// middlewares that set what they read (the signed-in user).
func (l *Middleware) Peek(c echo.Context) (core.Usage, error) {
	return l.core.PeekWith(c.Request(), c)
}

// Core returns the core middleware, for its Scope and String.
func (l *Middleware) Core() *core.Middleware { return l.core }

// ErrorHandler returns an HTTPErrorHandler that answers the refusals of
// this package with core's JSON body, as chilimit and ginlimit do, such as
// {"error":"rate limit exceeded","limit":"5/minute","retry_after":12}, and
// hands every other error to next, e.DefaultHTTPErrorHandler or the app's
// own handler:
//
//	e.HTTPErrorHandler = echolimit.ErrorHandler(e.DefaultHTTPErrorHandler)
//
// Without it, Echo's default handler writes {"message":"rate limit
// exceeded"}. It panics if next is nil.
func ErrorHandler(next echo.HTTPErrorHandler) echo.HTTPErrorHandler {
	if next == nil {
		panic("echolimit.ErrorHandler(nil): pass the handler for other errors, such as e.DefaultHTTPErrorHandler")
	}
	return func(err error, c echo.Context) {
		var refused *Error
		if !errors.As(err, &refused) || c.Response().Committed {
			next(err, c)
			return
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(refused.Result.Status)
			return
		}
		_ = c.JSONBlob(refused.Result.Status, refused.Result.Body())
	}
}

// withRoute puts first the option that tells core the route each request
// matched, for the events that metrics label (core.Event.Route): see
// routePath.
func withRoute(opts []Option) []Option { return append([]Option{routeOption}, opts...) }

var routeOption Option = option{core.NativeRoute("echolimit.route", routePath)}

// middleware passes the echo.Context to core as the native value, for the
// Echo-typed options (Key, Plans, Skipper, OnDeny, ChargeWhen) to find.
func middleware(m *core.Middleware) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			return respond(c, next, m, m.EnforceWith(c.Request(), c.Response().Header(), c))
		}
	}
}

// serveThenFinish runs next and settles the request's charge by its
// outcome (core.WithChargeWhen, ChargeWhen), also when next panics, which
// goes on up to Echo's Recover.
func serveThenFinish(m *core.Middleware, next echo.HandlerFunc, c echo.Context, res core.Result) (err error) {
	done := false
	defer func() {
		m.Finish(c.Request(), res, c, core.Response{Status: Status(c, err), Err: err, Written: c.Response().Committed, Panicked: !done})
	}()
	err = next(c)
	done = true
	return err
}

// Status is the status of the response to c once Echo has handled err,
// the error its handler returned: the status written, if the response is
// committed; else the code of an *echo.HTTPError (or 500 for another
// error, as Echo's default error handler answers), or 200 for none.
func Status(c echo.Context, err error) int {
	if r := c.Response(); r.Committed {
		return r.Status
	}
	if err == nil {
		return http.StatusOK
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code
	}
	return http.StatusInternalServerError
}

// respond serves or refuses the request by m's result, settling its
// charge after next under charge by outcome.
func respond(c echo.Context, next echo.HandlerFunc, m *core.Middleware, res core.Result) error {
	switch res.Verdict {
	case core.Serve:
		if m.ChargesByOutcome() {
			return serveThenFinish(m, next, c, res)
		}
		return next(c)
	case core.Refuse:
		if answered, err := m.DenyNatively(c, res); answered {
			return err
		}
		return &echo.HTTPError{Code: res.Status, Message: res.Message(), Internal: &Error{Result: res}}
	default: // core.Gone
		return &echo.HTTPError{Code: res.Status, Message: "client closed request", Internal: res.Err}
	}
}

// Routes returns an Echo middleware that limits every route by set, a
// core.LimitSet (limits declared in a core.Config): a route that set's
// Routes names by its method and c.Path() ("POST /login") or its pattern
// alone ("/login") gets that limit or exemption only, and every other
// route its own budget under set's default. Requests that matched no route
// (a 404, a 405) share one budget per client. Mount it with e.Use or a
// group's Use, which run after routing; under e.Pre no route is known yet,
// and every request would count as matching none.
//
//	e.Use(echolimit.Routes(set))
func Routes(set *core.LimitSet) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			m, native := set.ForRoute(c.Request().Method, routePath(c))
			if m == nil {
				return next(c)
			}
			return respond(c, next, m, m.EnforceWith(c.Request(), c.Response().Header(), native))
		}
	}
}

// Named returns an Echo middleware enforcing the limit called name in
// set's Config.Limits, as set has it now: a Reload changes it under the
// mounted middleware. It panics, naming the limit, if set has none of that
// name.
func Named(set *core.LimitSet, name string) echo.MiddlewareFunc {
	current, err := set.Mount(name)
	if err != nil {
		panic(fmt.Errorf("echolimit.Named(%q): %w", name, err))
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			m := current()
			return respond(c, next, m, m.EnforceWith(c.Request(), c.Response().Header(), c))
		}
	}
}

// CheckRoutes reports, naming them, the entries of set's Config.Routes
// that match none of e's routes, so that a misspelt route is found at
// start-up rather than limited by the default; call it once the routes are
// registered. See core.LimitSet.CheckRoutes.
func CheckRoutes(set *core.LimitSet, e *echo.Echo) error {
	var routes []string
	for _, rt := range e.Routes() {
		routes = append(routes, rt.Method+" "+rt.Path)
	}
	return set.CheckRoutes(routes)
}
