// Command echo serves the stock-quote API with Echo and echolimit:
//
//	go run ./examples/echo                                  # memory store, 127.0.0.1:8080
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/echo   # limits shared in Redis
//
// Anonymous clients get 100 requests a minute per IP, signed-in users a
// limit by plan (free 100/minute, pro 1000/minute) per user, and POST
// /login 5 failed attempts a minute per IP. GET /usage shows what is left
// of the caller's quotes budget without spending it; GET /metrics shows
// the decisions.
package main

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/examples/internal/quotes"
)

func main() { quotes.Main("echo", newRouter) }

func newRouter(app *quotes.App) http.Handler {
	lim := core.WithLimiter(app.Limiter)
	e := echo.New()
	e.HideBanner = true
	// Refusals get core's body, with the limit and retry_after, as in the
	// Gin and Chi examples; Echo's default is {"message":"rate limit exceeded"}.
	e.HTTPErrorHandler = echolimit.ErrorHandler(e.DefaultHTTPErrorHandler)

	// Only failed attempts count: each is reserved before login runs, so
	// guesses sent at once cannot slip past the limit.
	e.POST("/login", login, echolimit.Limit(quotes.LoginLimit, lim, core.WithName(quotes.LoginScope),
		echolimit.ChargeWhen(func(c echo.Context, err error) bool { return quotes.LoginFailed(echolimit.Status(c, err)) }),
	))

	// Signed-in users are counted by id under their plan's limit; anonymous
	// requests have no user, so core counts them by IP under the base one.
	quotesLimit := echolimit.MustNewMiddleware(quotes.AnonymousLimit, lim, core.WithName(quotes.QuotesScope),
		echolimit.Key(func(c echo.Context) (string, error) { return user(c).ID, nil }),
		echolimit.Plans(quotes.Plans(), func(c echo.Context) string { return user(c).Plan }),
	)
	api := e.Group("/quotes", identify, quotesLimit.Handler, refuseBadToken)
	api.GET("/:symbol", getQuote)

	// GET /usage peeks at the caller's quotes budget without spending it.
	e.GET("/usage", func(c echo.Context) error {
		u, err := quotesLimit.Peek(c)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.JSON(http.StatusOK, quotes.UsageOf(u))
	}, identify, echolimit.Limit(quotes.UsageLimit, lim, core.WithName(quotes.UsageScope)), refuseBadToken)

	// GET /export: every quote, three times per calendar day per IP.
	e.GET("/export", func(c echo.Context) error {
		return c.JSON(http.StatusOK, quotes.All())
	}, echolimit.Limit(quotes.ExportLimit, lim, core.WithName(quotes.ExportScope)))

	// GET /report: at most two in flight per IP.
	e.GET("/report", func(c echo.Context) error {
		return c.JSON(http.StatusOK, app.Report(c.Request().Context()))
	}, echolimit.Concurrency(quotes.ReportConcurrency, lim, core.WithName(quotes.ReportScope)))

	e.GET("/metrics", echo.WrapHandler(app.Metrics()))
	return e
}

// identify stores the user a bearer token names, or the token's error.
func identify(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, ok, err := quotes.Identify(c.Request())
		if ok {
			c.Set("user", u)
		}
		if err != nil {
			c.Set("authError", err)
		}
		return next(c)
	}
}

// refuseBadToken runs after the limit, so that bad tokens are limited too.
func refuseBadToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err, ok := c.Get("authError").(error); ok {
			return echo.NewHTTPError(http.StatusUnauthorized, err.Error())
		}
		return next(c)
	}
}

func user(c echo.Context) quotes.User {
	u, _ := c.Get("user").(quotes.User)
	return u
}

func getQuote(c echo.Context) error {
	q, ok := quotes.Find(c.Param("symbol"))
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "unknown symbol")
	}
	return c.JSON(http.StatusOK, q)
}

func login(c echo.Context) error {
	// The body is JSON whatever the Content-Type says: c.Bind would read
	// curl -d's form content type as a form and find no user name.
	var req quotes.LoginRequest
	if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<10)).Decode(&req); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, `want {"username": ..., "password": ...}`)
	}
	res, ok := quotes.Login(req)
	if !ok {
		return echo.NewHTTPError(http.StatusUnauthorized, "wrong user name or password")
	}
	return c.JSON(http.StatusOK, res)
}
