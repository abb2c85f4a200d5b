package ginlimit

import (
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// StatusClientClosedRequest is the status a request is aborted with when its
// client went away while it was checked or held (nginx's 499): nothing
// reaches the client, but access logs can tell these requests apart.
const StatusClientClosedRequest = core.StatusClientClosedRequest

// Limit returns a Gin middleware enforcing the limits in expr (see
// core.ParseLimits), for a route or, with Use, a group. It panics if expr or
// an option is invalid, with an error that names the call and quotes the
// expression, such as `ginlimit.Limit("5/minit"): ...`: that is a mistake in
// set-up code, best found at start-up. Use New to get the error instead.
func Limit(expr string, opts ...Option) gin.HandlerFunc {
	return core.MustAdapt[*gin.Context]("ginlimit.Limit", 1, expr, withRoute(opts), handler)
}

// New is Limit returning an error, rather than panicking, for an invalid
// expression or option. The error wraps core's: errors.As finds a
// *core.SyntaxError for a bad expression.
func New(expr string, opts ...Option) (gin.HandlerFunc, error) {
	return core.Adapt[*gin.Context]("ginlimit.New", 1, expr, withRoute(opts), handler)
}

// Middleware is a Gin rate limit that can also tell a client what its
// budget holds without spending it: Handle limits a route or group as
// Limit's handler does, and Peek answers for the budget Handle would
// charge a request to (its plan, its key), for a route such as GET /usage.
// For a plain limit, Limit is all you need.
type Middleware struct {
	core   *core.Middleware
	handle gin.HandlerFunc
}

// NewMiddleware is New returning a *Middleware, whose Handle is the Gin
// handler and whose Peek looks at its budget:
//
//	quotes := ginlimit.MustNewMiddleware("100/minute", core.WithName("quotes"))
//	r.GET("/quotes/:symbol", quotes.Handle, getQuote)
//	r.GET("/usage", func(c *gin.Context) { u, err := quotes.Peek(c); ... })
func NewMiddleware(expr string, opts ...Option) (*Middleware, error) {
	return core.Adapt[*gin.Context]("ginlimit.NewMiddleware", 1, expr, withRoute(opts), newMiddleware)
}

// MustNewMiddleware is NewMiddleware for set-up code: it panics with the
// error, which names the call and quotes the expression.
func MustNewMiddleware(expr string, opts ...Option) *Middleware {
	return core.MustAdapt[*gin.Context]("ginlimit.MustNewMiddleware", 1, expr, withRoute(opts), newMiddleware)
}

func newMiddleware(m *core.Middleware) *Middleware {
	return &Middleware{core: m, handle: handler(m)}
}

// Handle is the Gin handler enforcing the limit, as Limit returns it.
func (l *Middleware) Handle(c *gin.Context) { l.handle(c) }

// Peek looks at the budget Handle would charge a request like c's to,
// charging nothing: see core.Middleware.Peek. It reads the Gin-typed
// options (Key, Plans) from c as Handle does, so run it after the handlers
// that set what they read (the signed-in user).
func (l *Middleware) Peek(c *gin.Context) (core.Usage, error) {
	return l.core.PeekWith(c.Request, c)
}

// Core returns the core middleware, for its Scope and String.
func (l *Middleware) Core() *core.Middleware { return l.core }

// withRoute puts first the option that tells core the route each request
// matched, for the events that metrics label (core.Event.Route): Gin's
// c.FullPath(), "" for a 404.
func withRoute(opts []Option) []Option { return append([]Option{routeOption}, opts...) }

var routeOption Option = option{core.NativeRoute("ginlimit.route", (*gin.Context).FullPath)}

// handler passes the *gin.Context to core as the native value, for the
// Gin-typed options (Key, Plans, Exempt, OnDeny, ChargeWhen) to find.
func handler(m *core.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) { respond(c, m, m.EnforceWith(c.Request, c.Writer.Header(), c)) }
}

// respond serves or refuses the request by m's result; under charge by
// outcome it serves the rest of the chain itself, to settle the charge.
func respond(c *gin.Context, m *core.Middleware, res core.Result) {
	switch res.Verdict {
	case core.Serve:
		if m.ChargesByOutcome() {
			serveThenFinish(m, c, res)
		}
		return // Gin runs the rest of the chain
	case core.Refuse:
		c.Abort()
		if answered, err := m.DenyNatively(c, res); answered && err == nil {
			return
		}
		m.Refuse(c.Writer, c.Request, res)
	default: // core.Gone
		c.AbortWithStatus(res.Status)
	}
}

// serveThenFinish runs the rest of the chain and settles the request's
// charge by its response (core.WithChargeWhen, ChargeWhen), also when a
// handler panics, which goes on up to gin.Recovery.
func serveThenFinish(m *core.Middleware, c *gin.Context, res core.Result) {
	done := false
	defer func() {
		m.Finish(c.Request, res, c, core.Response{Status: c.Writer.Status(), Written: c.Writer.Written(), Panicked: !done})
	}()
	c.Next()
	done = true
}

// Routes returns a Gin middleware that limits every route by set, a
// core.LimitSet (limits declared in a core.Config): a route that set's
// Routes names by its method and c.FullPath() ("POST /login") or its
// pattern alone ("/login") gets that limit or exemption only, and every
// other route its own budget under set's default. Requests that matched no
// route share one budget per client. Use it on the engine or a group before
// the routes it limits:
//
//	r.Use(ginlimit.Routes(set))
func Routes(set *core.LimitSet) gin.HandlerFunc {
	return func(c *gin.Context) {
		m, native := set.ForRoute(c.Request.Method, c.FullPath())
		if m == nil {
			return
		}
		respond(c, m, m.EnforceWith(c.Request, c.Writer.Header(), native))
	}
}

// Named returns a Gin middleware enforcing the limit called name in set's
// Config.Limits, as set has it now: a Reload changes it under the mounted
// middleware. It panics, naming the limit, if set has none of that name.
func Named(set *core.LimitSet, name string) gin.HandlerFunc {
	current, err := set.Mount(name)
	if err != nil {
		panic(fmt.Errorf("ginlimit.Named(%q): %w", name, err))
	}
	return func(c *gin.Context) {
		m := current()
		respond(c, m, m.EnforceWith(c.Request, c.Writer.Header(), c))
	}
}

// CheckRoutes reports, naming them, the entries of set's Config.Routes
// that match none of r's routes, so that a misspelt route is found at
// start-up rather than limited by the default; call it once the routes are
// registered. See core.LimitSet.CheckRoutes.
func CheckRoutes(set *core.LimitSet, r *gin.Engine) error {
	var routes []string
	for _, ri := range r.Routes() {
		routes = append(routes, ri.Method+" "+ri.Path)
	}
	return set.CheckRoutes(routes)
}
