package echolimit_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

// recordErrors makes e's error handler Echo's default one, recording what
// it was given.
func recordErrors(e *echo.Echo) *[]error {
	var errs []error
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		errs = append(errs, err)
		e.DefaultHTTPErrorHandler(err, c)
	}
	return &errs
}

// With Echo's default error handler a refusal reads as every other error of
// an Echo app, {"message": ...}, its HTTPError's Message being a string;
// the decision is still found with errors.As, and a refusal's cause with
// errors.Is.
func TestLimit_refusalsWithEchosDefaultErrorHandler(t *testing.T) {
	tests := []struct {
		name, body, retryAfter string
		status                 int
		build                  func(lim *core.Limiter) echo.MiddlewareFunc
		prepare                func(lim *core.Limiter, e *echo.Echo)
		cause                  error
	}{
		{
			name: "over the limit", status: http.StatusTooManyRequests, retryAfter: "60",
			body: `{"message":"rate limit exceeded"}`,
			build: func(lim *core.Limiter) echo.MiddlewareFunc {
				return echolimit.Limit("1/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow))
			},
			prepare: func(_ *core.Limiter, e *echo.Echo) { httptestkit.Do(e, "GET", "/", httptestkit.Client) },
		},
		{
			name: "a cost that never fits", status: http.StatusRequestEntityTooLarge,
			body: `{"message":"request exceeds the rate limit and can never be admitted"}`,
			build: func(lim *core.Limiter) echo.MiddlewareFunc {
				return echolimit.Limit("5/minute", core.WithLimiter(lim), core.WithCost(func(*http.Request) int64 { return 6 }))
			},
		},
		{
			name: "a closed limiter", status: http.StatusServiceUnavailable,
			body:    `{"message":"rate limiter unavailable"}`,
			build:   func(lim *core.Limiter) echo.MiddlewareFunc { return echolimit.Limit("5/minute", core.WithLimiter(lim)) },
			prepare: func(lim *core.Limiter, _ *echo.Echo) { lim.Close() },
			cause:   core.ErrClosed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim, _ := httptestkit.NewLimiter(t)
			e := echo.New()
			errs := recordErrors(e)
			e.GET("/", ok, tt.build(lim))
			if tt.prepare != nil {
				tt.prepare(lim, e)
			}
			*errs = nil
			w := httptestkit.Do(e, "GET", "/", httptestkit.Client)
			if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.body || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("%d %q %s; want %d %s as JSON", w.Code, w.Body, w.Header().Get("Content-Type"), tt.status, tt.body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q; want %q", got, tt.retryAfter)
			}
			if len(*errs) != 1 {
				t.Fatalf("the error handler ran %d times; want once", len(*errs))
			}
			err := (*errs)[0]
			var he *echo.HTTPError
			var refused *echolimit.Error
			if !errors.As(err, &he) || he.Code != tt.status || !errors.As(err, &refused) || refused.Result.Status != tt.status {
				t.Fatalf("error %#v; want an *echo.HTTPError of %d wrapping an *echolimit.Error", err, tt.status)
			}
			if msg, ok := he.Message.(string); !ok || msg != refused.Result.Message() {
				t.Errorf("Message %#v; want the string %q", he.Message, refused.Result.Message())
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("errors.Is(%v, %v) is false", err, tt.cause)
			}
		})
	}
}

// The decision a custom handler reads: the refusal's limit and wait.
func TestLimit_refusalCarriesTheDecision(t *testing.T) {
	lim, clk := httptestkit.NewLimiter(t)
	e := echo.New()
	errs := recordErrors(e)
	e.GET("/", ok, echolimit.Limit("2/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow)))
	httptestkit.Do(e, "GET", "/", httptestkit.Client)
	httptestkit.Do(e, "GET", "/", httptestkit.Client)
	clk.Advance(15 * time.Second)
	httptestkit.Do(e, "GET", "/", httptestkit.Client)
	var refused *echolimit.Error
	if len(*errs) != 1 || !errors.As((*errs)[0], &refused) {
		t.Fatalf("errors %v; want one refusal", *errs)
	}
	if d := refused.Result.Decision; d.Allowed || d.Limit != core.Per(2, time.Minute) || d.RetryAfter != 45*time.Second {
		t.Errorf("decision %+v; want the refusal by 2/minute, retry after 45s", d)
	}
}

// ErrorHandler writes core's body for refusals, nothing for HEAD, and hands
// every other error on.
func TestErrorHandler(t *testing.T) {
	lim, _ := httptestkit.NewLimiter(t)
	e := echo.New()
	e.HTTPErrorHandler = echolimit.ErrorHandler(e.DefaultHTTPErrorHandler)
	mw := echolimit.Limit("1/minute", core.WithLimiter(lim), core.WithAlgorithm(core.FixedWindow))
	e.GET("/", ok, mw)
	e.HEAD("/", ok, mw)
	httptestkit.Do(e, "GET", "/", httptestkit.Client)
	w := httptestkit.Do(e, "GET", "/", httptestkit.Client)
	httptestkit.CheckRefusal(t, w, "1/minute", 60)
	if w := httptestkit.Do(e, "HEAD", "/", httptestkit.Client); w.Code != http.StatusTooManyRequests || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q; want 429 without a body", w.Code, w.Body)
	}
	if w := httptestkit.Do(e, "GET", "/nowhere", httptestkit.Client); w.Code != http.StatusNotFound || strings.TrimSpace(w.Body.String()) != `{"message":"Not Found"}` {
		t.Errorf("another error: %d %q; want Echo's own 404", w.Code, w.Body)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "echolimit.ErrorHandler(nil)") {
			t.Errorf("ErrorHandler(nil) panicked with %v; want a message naming it", p)
		}
	}()
	echolimit.ErrorHandler(nil)
}
