// Command gin serves the stock-quote API with Gin and ginlimit:
//
//	go run ./examples/gin                                  # memory store, 127.0.0.1:8080
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/gin   # limits shared in Redis
//
// Anonymous clients get 100 requests a minute per IP, signed-in users a
// limit by plan (free 100/minute, pro 1000/minute) per user, and POST
// /login 5 failed attempts a minute per IP. GET /usage shows what is left
// of the caller's quotes budget without spending it; GET /metrics shows
// the decisions.
package main

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/examples/internal/quotes"
	"github.com/limitkit/limitkit/ginlimit"
)

func main() { quotes.Main("gin", newRouter) }

func newRouter(app *quotes.App) http.Handler {
	lim := core.WithLimiter(app.Limiter)
	r := gin.New()
	r.Use(gin.Recovery())

	// Only failed attempts count: each is reserved before login runs, so
	// guesses sent at once cannot slip past the limit.
	r.POST("/login", ginlimit.Limit(quotes.LoginLimit, lim, core.WithName(quotes.LoginScope),
		ginlimit.ChargeWhen(func(c *gin.Context) bool { return quotes.LoginFailed(c.Writer.Status()) }),
	), login)

	// Signed-in users are counted by id under their plan's limit; anonymous
	// requests have no user, so core counts them by IP under the base one.
	quotesLimit := ginlimit.MustNewMiddleware(quotes.AnonymousLimit, lim, core.WithName(quotes.QuotesScope),
		ginlimit.Key(func(c *gin.Context) (string, error) { return user(c).ID, nil }),
		ginlimit.Plans(quotes.Plans(), func(c *gin.Context) string { return user(c).Plan }),
	)
	api := r.Group("/quotes", identify, quotesLimit.Handle, refuseBadToken)
	api.GET("/:symbol", getQuote)

	// GET /usage peeks at the caller's quotes budget without spending it.
	r.GET("/usage", identify, ginlimit.Limit(quotes.UsageLimit, lim, core.WithName(quotes.UsageScope)), refuseBadToken,
		func(c *gin.Context) {
			u, err := quotesLimit.Peek(c)
			if err != nil {
				c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
				return
			}
			c.JSON(http.StatusOK, quotes.UsageOf(u))
		})

	// GET /export: every quote, three times per calendar day per IP.
	r.GET("/export", ginlimit.Limit(quotes.ExportLimit, lim, core.WithName(quotes.ExportScope)), func(c *gin.Context) {
		c.JSON(http.StatusOK, quotes.All())
	})

	// GET /report: at most two in flight per IP.
	r.GET("/report", ginlimit.Concurrency(quotes.ReportConcurrency, lim, core.WithName(quotes.ReportScope)), func(c *gin.Context) {
		c.JSON(http.StatusOK, app.Report(c.Request.Context()))
	})

	r.GET("/metrics", gin.WrapH(app.Metrics()))
	return r
}

// identify stores the user a bearer token names, or the token's error.
func identify(c *gin.Context) {
	u, ok, err := quotes.Identify(c.Request)
	if ok {
		c.Set("user", u)
	}
	if err != nil {
		c.Set("authError", err)
	}
}

// refuseBadToken runs after the limit, so that bad tokens are limited too.
func refuseBadToken(c *gin.Context) {
	if err, ok := c.Get("authError"); ok {
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": err.(error).Error()})
	}
}

func user(c *gin.Context) quotes.User {
	u, _ := c.Get("user")
	v, _ := u.(quotes.User)
	return v
}

func getQuote(c *gin.Context) {
	q, ok := quotes.Find(c.Param("symbol"))
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "unknown symbol"})
		return
	}
	c.JSON(http.StatusOK, q)
}

func login(c *gin.Context) {
	var req quotes.LoginRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "want {\"username\": ..., \"password\": ...}"})
		return
	}
	res, ok := quotes.Login(req)
	if !ok {
		c.JSON(http.StatusUnauthorized, gin.H{"error": "wrong user name or password"})
		return
	}
	c.JSON(http.StatusOK, res)
}
