package ginlimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/ginlimit"
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
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/items", ginlimit.Limit("2/minute"), func(c *gin.Context) {
		c.String(http.StatusOK, "items")
	})

	send(r, "/items")
	send(r, "/items")
	send(r, "/items")
	// Output:
	// 200 1 items
	// 200 0 items
	// 429 0 {"error":"rate limit exceeded","limit":"2/minute","retry_after":"Retry-After"}
}

// A limit on a group is one budget for all of its routes.
func ExampleLimit_group() {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	api := r.Group("/api")
	api.Use(ginlimit.Limit("2/minute"))
	api.GET("/quotes", func(c *gin.Context) { c.String(http.StatusOK, "quotes") })
	api.GET("/news", func(c *gin.Context) { c.String(http.StatusOK, "news") })

	send(r, "/api/quotes")
	send(r, "/api/news")
	send(r, "/api/quotes")
	// Output:
	// 200 1 quotes
	// 200 0 news
	// 429 0 {"error":"rate limit exceeded","limit":"2/minute","retry_after":"Retry-After"}
}

// Signed-in users are counted by the id an auth handler stored in Gin's
// context; anonymous clients, whose key is empty, by IP.
func ExampleKey() {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(func(c *gin.Context) { // a stand-in for real authentication
		if u := c.GetHeader("X-Demo-User"); u != "" {
			c.Set("user", u)
		}
	})
	r.GET("/me", ginlimit.Limit("1/minute", ginlimit.Key(func(c *gin.Context) (string, error) {
		return c.GetString("user"), nil
	})), func(c *gin.Context) { c.String(http.StatusOK, "hello %s", c.GetString("user")) })

	send(r, "/me", "X-Demo-User", "ann")
	send(r, "/me", "X-Demo-User", "bob")
	send(r, "/me", "X-Demo-User", "ann")
	// Output:
	// 200 0 hello ann
	// 200 0 hello bob
	// 429 0 {"error":"rate limit exceeded","limit":"1/minute","retry_after":"Retry-After"}
}

// OnDeny writes refusals in the app's own format.
func ExampleOnDeny() {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/search", ginlimit.Limit("1/minute", ginlimit.OnDeny(func(c *gin.Context, res core.Result) {
		c.JSON(http.StatusTooManyRequests, gin.H{"code": "SLOW_DOWN", "limit": res.Decision.Limit.String()})
	})), func(c *gin.Context) { c.String(http.StatusOK, "results") })

	send(r, "/search")
	send(r, "/search")
	// Output:
	// 200 0 results
	// 429 0 {"code":"SLOW_DOWN","limit":"1/minute"}
}

// Default limits for the whole app, as slowapi's default_limits: every
// route gets a budget of its own under the default, POST /login a limit of
// its own in place of it, and GET /healthz none. The same core.Config can
// be decoded from a file; see core.NewLimitSet.
func ExampleRoutes() {
	gin.SetMode(gin.TestMode)
	set := core.MustLimitSet(core.Config{
		Default: &core.LimitConfig{Limit: "2/minute"},
		Routes: map[string]core.LimitConfig{
			"POST /login":  {Limit: "5/minute"},
			"GET /healthz": {Exempt: true},
		},
	}, core.ConfigLimiter())
	defer set.Close()
	r := gin.New()
	r.Use(ginlimit.Routes(set)) // before the routes it limits
	r.GET("/items/:id", func(c *gin.Context) { c.String(http.StatusOK, "item") })
	r.GET("/users/:id", func(c *gin.Context) { c.String(http.StatusOK, "user") })
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })

	send(r, "/items/1")
	send(r, "/items/2") // the same route: the same budget
	send(r, "/items/3")
	send(r, "/users/1") // another route: a budget of its own
	send(r, "/healthz")
	// Output:
	// 200 1 item
	// 200 0 item
	// 429 0 {"error":"rate limit exceeded","limit":"2/minute","retry_after":"Retry-After"}
	// 200 1 user
	// 200  ok
}

// Only failed logins count: successes never spend the budget.
func ExampleChargeWhen() {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/login", ginlimit.Limit("2/minute", core.WithName("example-login"), ginlimit.ChargeWhen(func(c *gin.Context) bool {
		return c.Writer.Status() != http.StatusOK
	})), func(c *gin.Context) {
		if c.Query("password") != "secret" {
			c.String(http.StatusUnauthorized, "wrong")
			return
		}
		c.String(http.StatusOK, "welcome")
	})
	send(r, "/login?password=secret")
	send(r, "/login?password=secret")
	send(r, "/login?password=guess")
	send(r, "/login?password=guess")
	send(r, "/login?password=secret")
	// Output:
	// 200 1 welcome
	// 200 1 welcome
	// 401 1 wrong
	// 401 0 wrong
	// 429 0 {"error":"rate limit exceeded","limit":"2/minute","retry_after":"Retry-After"}
}

// NewMiddleware's Peek answers GET /usage for the quotes budget without
// spending it.
func ExampleNewMiddleware() {
	gin.SetMode(gin.TestMode)
	quotes := ginlimit.MustNewMiddleware("100/minute", core.WithName("example-quotes"))
	r := gin.New()
	r.GET("/quotes/:symbol", quotes.Handle, func(c *gin.Context) { c.String(http.StatusOK, "quote") })
	r.GET("/usage", func(c *gin.Context) {
		u, err := quotes.Peek(c)
		if err != nil {
			c.String(http.StatusServiceUnavailable, err.Error())
			return
		}
		c.JSON(http.StatusOK, gin.H{"limit": u.Decision.Limit.String(), "remaining": u.Remaining()})
	})
	send(r, "/quotes/ACME")
	send(r, "/usage")
	send(r, "/usage")
	// Output:
	// 200 99 quote
	// 200  {"limit":"100/minute","remaining":99}
	// 200  {"limit":"100/minute","remaining":99}
}
