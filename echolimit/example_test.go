package echolimit_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
)

// send makes one request to h from a fixed client and prints its status,
// X-RateLimit-Remaining and body. The seconds of Retry-After depend on the
// time the example runs, so they are replaced by "Retry-After".
func send(h http.Handler, path string, header ...string) {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = "203.0.113.7:41000"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	if ra := w.Header().Get("Retry-After"); ra != "" {
		body = strings.ReplaceAll(body, ":"+ra+"}", `:"Retry-After"}`)
	}
	fmt.Println(w.Code, w.Header().Get("X-RateLimit-Remaining"), strings.TrimSpace(body))
}

// A limit on one route: each client IP may call it twice a minute.
func ExampleLimit() {
	e := echo.New()
	e.GET("/items", func(c echo.Context) error {
		return c.String(http.StatusOK, "items")
	}, echolimit.Limit("2/minute"))

	send(e, "/items")
	send(e, "/items")
	send(e, "/items")
	// Output:
	// 200 1 items
	// 200 0 items
	// 429 0 {"message":"rate limit exceeded"}
}

// A limit on a group is one budget for all of its routes.
func ExampleLimit_group() {
	e := echo.New()
	api := e.Group("/api", echolimit.Limit("2/minute"))
	api.GET("/quotes", func(c echo.Context) error { return c.String(http.StatusOK, "quotes") })
	api.GET("/news", func(c echo.Context) error { return c.String(http.StatusOK, "news") })

	send(e, "/api/quotes")
	send(e, "/api/news")
	send(e, "/api/quotes")
	// Output:
	// 200 1 quotes
	// 200 0 news
	// 429 0 {"message":"rate limit exceeded"}
}

// Signed-in users are counted by the id an auth middleware stored in Echo's
// context; anonymous clients, whose key is empty, by IP.
func ExampleKey() {
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // a stand-in for real authentication
		return func(c echo.Context) error {
			if u := c.Request().Header.Get("X-Demo-User"); u != "" {
				c.Set("user", u)
			}
			return next(c)
		}
	})
	e.GET("/me", func(c echo.Context) error {
		return c.String(http.StatusOK, fmt.Sprint("hello ", c.Get("user")))
	}, echolimit.Limit("1/minute", echolimit.Key(func(c echo.Context) (string, error) {
		user, _ := c.Get("user").(string)
		return user, nil
	})))

	send(e, "/me", "X-Demo-User", "ann")
	send(e, "/me", "X-Demo-User", "bob")
	send(e, "/me", "X-Demo-User", "ann")
	// Output:
	// 200 0 hello ann
	// 200 0 hello bob
	// 429 0 {"message":"rate limit exceeded"}
}

// The app's HTTPErrorHandler renders refusals like its other errors, and
// finds the decision with errors.As.
func ExampleError() {
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		var limited *echolimit.Error
		if errors.As(err, &limited) {
			_ = c.JSON(limited.Result.Status, map[string]string{
				"code":  "SLOW_DOWN",
				"limit": limited.Result.Decision.Limit.String(),
			})
			return
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	e.GET("/search", func(c echo.Context) error { return c.String(http.StatusOK, "results") }, echolimit.Limit("1/minute"))

	send(e, "/search")
	send(e, "/search")
	// Output:
	// 200 0 results
	// 429 0 {"code":"SLOW_DOWN","limit":"1/minute"}
}

// Only failed logins count: the handler's error says how the login went.
func ExampleChargeWhen() {
	e := echo.New()
	e.GET("/login", func(c echo.Context) error {
		if c.QueryParam("password") != "secret" {
			return echo.NewHTTPError(http.StatusUnauthorized, "wrong")
		}
		return c.String(http.StatusOK, "welcome")
	}, echolimit.Limit("2/minute", core.WithName("example-login"), echolimit.ChargeWhen(func(c echo.Context, err error) bool {
		return echolimit.Status(c, err) != http.StatusOK
	})))
	send(e, "/login?password=secret")
	send(e, "/login?password=secret")
	send(e, "/login?password=guess")
	send(e, "/login?password=guess")
	send(e, "/login?password=secret")
	// Output:
	// 200 1 welcome
	// 200 1 welcome
	// 401 1 {"message":"wrong"}
	// 401 0 {"message":"wrong"}
	// 429 0 {"message":"rate limit exceeded"}
}
