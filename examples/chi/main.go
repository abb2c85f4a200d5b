// Command chi serves the stock-quote API with chi and chilimit:
//
//	go run ./examples/chi                                  # memory store, 127.0.0.1:8080
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/chi   # limits shared in Redis
//
// Anonymous clients get 100 requests a minute per IP, signed-in users a
// limit by plan (free 100/minute, pro 1000/minute) per user, and POST
// /login 5 failed attempts a minute per IP. GET /usage shows what is left
// of the caller's quotes budget without spending it; GET /metrics shows
// the decisions.
package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/examples/internal/quotes"
)

func main() { quotes.Main("chi", newRouter) }

// The request-context keys of identify.
type (
	userKey      struct{} // the quotes.User
	userIDKey    struct{} // its id, which core.ByContextValue reads
	authErrorKey struct{}
)

func newRouter(app *quotes.App) http.Handler {
	lim := core.WithLimiter(app.Limiter)
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)

	// Only failed attempts count: each is reserved before login runs, so
	// guesses sent at once cannot slip past the limit.
	r.With(chilimit.Limit(quotes.LoginLimit, lim, core.WithName(quotes.LoginScope),
		core.WithChargeWhen(quotes.LoginFailed),
	)).Post("/login", login)

	// Signed-in users are counted by id under their plan's limit; anonymous
	// requests have no user id in the context, so core counts them by IP
	// under the base one.
	quotesLimit := chilimit.MustNewMiddleware(quotes.AnonymousLimit, lim, core.WithName(quotes.QuotesScope),
		core.WithKey(core.ByContextValue(userIDKey{})),
		core.WithPlans(quotes.Plans(), func(r *http.Request) string { return user(r).Plan }),
	)
	r.Route("/quotes", func(r chi.Router) {
		r.Use(identify, quotesLimit.Handler, refuseBadToken)
		r.Get("/{symbol}", getQuote)
	})

	// GET /usage peeks at the caller's quotes budget without spending it.
	r.With(identify, chilimit.Limit(quotes.UsageLimit, lim, core.WithName(quotes.UsageScope)), refuseBadToken).
		Get("/usage", func(w http.ResponseWriter, r *http.Request) {
			u, err := quotesLimit.Peek(r)
			if err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, quotes.UsageOf(u))
		})

	// GET /export: every quote, three times per calendar day per IP.
	r.With(chilimit.Limit(quotes.ExportLimit, lim, core.WithName(quotes.ExportScope))).
		Get("/export", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, quotes.All()) })

	// GET /report: at most two in flight per IP.
	r.With(chilimit.Concurrency(quotes.ReportConcurrency, lim, core.WithName(quotes.ReportScope))).
		Get("/report", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, app.Report(r.Context())) })

	r.Method(http.MethodGet, "/metrics", app.Metrics())
	return r
}

// identify puts the user a bearer token names, and the user's id, or the
// token's error, in the request's context.
func identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := quotes.Identify(r)
		ctx := r.Context()
		if ok {
			ctx = context.WithValue(context.WithValue(ctx, userKey{}, u), userIDKey{}, u.ID)
		}
		if err != nil {
			ctx = context.WithValue(ctx, authErrorKey{}, err)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refuseBadToken runs after the limit, so that bad tokens are limited too.
func refuseBadToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err, ok := r.Context().Value(authErrorKey{}).(error); ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func user(r *http.Request) quotes.User {
	u, _ := r.Context().Value(userKey{}).(quotes.User)
	return u
}

func getQuote(w http.ResponseWriter, r *http.Request) {
	q, ok := quotes.Find(chi.URLParam(r, "symbol"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown symbol"})
		return
	}
	writeJSON(w, http.StatusOK, q)
}

func login(w http.ResponseWriter, r *http.Request) {
	var req quotes.LoginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"username": ..., "password": ...}`})
		return
	}
	res, ok := quotes.Login(req)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong user name or password"})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
