package benchmarks

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/echolimit"
	"github.com/limitkit/limitkit/ginlimit"
	ulule "github.com/ulule/limiter/v3"
	ululegin "github.com/ulule/limiter/v3/drivers/middleware/gin"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"
)

// The HTTP family measures whole requests in process: each framework's
// router is built once per cell and driven with handler.ServeHTTP, no
// network, so a row's time is the framework's routing, the middleware and a
// handler that writes "ok". The rows per framework:
//
//   - bare: the route without a limiter, the baseline;
//   - limitkit: the framework's limitkit adapter on a memory store of its
//     own (a fresh core.New() through core.WithLimiter, as a peer gets
//     a fresh store), default headers on;
//   - limitkit-ietf: the same with core.WithIETFHeaders, which adds the
//     RateLimit-Policy and RateLimit fields;
//   - for Echo, limitkit-noheaders too: Echo's middleware sends no
//     headers, so this is the like-for-like row;
//   - the peer a user of that framework would pick: ulule/limiter's Gin
//     middleware with its memory store, Echo's own RateLimiter with its
//     memory store, httprate.LimitByIP for chi.
//
// What matters is the time and the allocations a limiter adds to a request,
// its row minus the bare row; run.sh prints those (internal/benchsum).
//
// Each framework runs under two limits (see httpLimits), every row of a
// cell under the same one:
//
//   - limit=100-per-minute, a limit an API sets, whose header values have
//     at most three digits. No client may pass 100 requests in a run, so
//     the requests come from httpManyClients addresses, cycled: a cell of
//     a few hundred thousand requests sends each client a few, and every
//     request is admitted. A run long enough to exhaust a client fails,
//     naming it, rather than timing refusals.
//   - limit=1e9-per-hour, a limit no run can reach, from 1,000 clients,
//     whose header values have ten digits (X-RateLimit-Limit 1000000000,
//     X-RateLimit-Remaining 999999999).
//
// Every request must be answered 200. Each peer is checked to see the
// clients as distinct (see warmHTTP), so no row is fast because it counts
// everyone as one.
//
// Names are BenchmarkHTTP<Framework>/keys=<clients>/limit=<limit>/mode=<mode>/lib=<row>,
// like the other families with the limit added, so that the tables line up.
func BenchmarkHTTPGin(b *testing.B) {
	runHTTP(b, []httpContender{
		{"bare", ginBare},
		{"limitkit", ginLimitkit(false)},
		{"limitkit-ietf", ginLimitkit(true)},
		{"ulule", ginUlule},
	})
}

func BenchmarkHTTPEcho(b *testing.B) {
	runHTTP(b, []httpContender{
		{"bare", echoBare},
		{"limitkit", echoLimitkit(false)},
		{"limitkit-ietf", echoLimitkit(true)},
		{"limitkit-noheaders", echoLimitkitNoHeaders},
		{"echo", echoRateLimiter},
	})
}

func BenchmarkHTTPChi(b *testing.B) {
	runHTTP(b, []httpContender{
		{"bare", chiBare},
		{"limitkit", chiLimitkit(false)},
		{"limitkit-ietf", chiLimitkit(true)},
		{"httprate", chiHTTPRate},
	})
}

// httpLimit is one limit the family runs under: name is its cell's, expr
// limitkit's spelling, count and period what the peers are given, and
// clients how many distinct addresses send the requests.
type httpLimit struct {
	name    string
	expr    string
	count   int
	period  time.Duration
	ulule   string // ulule/limiter's spelling
	clients int
}

// httpManyClients is how many clients send the 100-per-minute cells'
// requests: at 100 requests a client, 10 million requests in a cell, some
// seconds of -benchtime, before any client could be refused.
const httpManyClients = 100_000

var httpLimits = []httpLimit{
	{"100-per-minute", "100/minute", 100, time.Minute, "100-M", httpManyClients},
	{"1e9-per-hour", "1000000000/hour", 1_000_000_000, time.Hour, "1000000000-H", 1000},
}

// httpPath is the route every row serves.
const httpPath = "/items"

// httpName is the name every limitkit row gives its middleware. Without
// one, limitkit derives a scope from the function that builds the
// middleware, and warns on stderr when one function builds many, as every
// cell here does.
const httpName = "items"

// httpContender builds one row's handler for a limit. check, when not nil,
// is called with the addresses of the clients and the X-RateLimit-Remaining
// value of each one's first response (in order), and says why the library
// did not see them as distinct clients.
type httpContender struct {
	name  string
	setup func(b *testing.B, l httpLimit) (h http.Handler, check func(addrs, remaining []string) error)
}

// --- Gin ---

func newGin() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	return gin.New()
}

func ginOK(c *gin.Context) { c.String(http.StatusOK, "ok") }

func ginBare(b *testing.B, _ httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	r := newGin()
	r.GET(httpPath, ginOK)
	return r, nil
}

func ginLimitkit(ietf bool) func(*testing.B, httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	return func(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
		r := newGin()
		r.GET(httpPath, ginlimit.Limit(l.expr, limitkitOptions[ginlimit.Option](b, ietf)...), ginOK)
		return r, sameRemaining
	}
}

// ginUlule is ulule/limiter's Gin middleware, whose default key is Gin's
// c.ClientIP(): with no forwarded header sent, that is RemoteAddr's IP.
func ginUlule(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	rt, err := ulule.NewRateFromFormatted(l.ulule)
	if err != nil {
		b.Fatal(err)
	}
	r := newGin()
	r.GET(httpPath, ululegin.NewMiddleware(ulule.New(ulmemory.NewStore(), rt)), ginOK)
	return r, sameRemaining
}

// --- Echo ---

func newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	return e
}

func echoOK(c echo.Context) error { return c.String(http.StatusOK, "ok") }

func echoBare(b *testing.B, _ httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	e := newEcho()
	e.GET(httpPath, echoOK)
	return e, nil
}

func echoLimitkit(ietf bool) func(*testing.B, httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	return func(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
		e := newEcho()
		e.GET(httpPath, echoOK, echolimit.Limit(l.expr, limitkitOptions[echolimit.Option](b, ietf)...))
		return e, sameRemaining
	}
}

// echoLimitkitNoHeaders is limitkit without the X-RateLimit headers, like
// for like with Echo's middleware, which sends none.
func echoLimitkitNoHeaders(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	e := newEcho()
	e.GET(httpPath, echoOK, echolimit.Limit(l.expr, limitkitOptions[echolimit.Option](b, false, core.WithHeaderNames("", "", ""))...))
	return e, nil
}

// echoRateLimiter is Echo's own middleware on its memory store: an
// x/time/rate bucket per identifier, here of the limit's count, refilled
// at its rate. Its default identifier is c.RealIP(), which reads
// X-Forwarded-For and X-Real-IP first and RemoteAddr's IP when neither is
// sent, as here; it sets no headers, so the check asks RealIP itself.
func echoRateLimiter(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	e := newEcho()
	store := echomw.NewRateLimiterMemoryStoreWithConfig(echomw.RateLimiterMemoryStoreConfig{
		Rate:  rate.Limit(float64(l.count) / l.period.Seconds()),
		Burst: l.count,
	})
	e.GET(httpPath, echoOK, echomw.RateLimiter(store))
	return e, func(addrs, _ []string) error {
		seen := make(map[string]bool, len(addrs))
		r := newHTTPRequest()
		for _, a := range addrs {
			r.RemoteAddr = a
			seen[e.NewContext(r, &benchWriter{}).RealIP()] = true
		}
		if len(seen) != len(addrs) {
			return fmt.Errorf("echo's RealIP sees %d clients", len(seen))
		}
		return nil
	}
}

// --- chi ---

func chiOK(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }

func chiBare(b *testing.B, _ httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	r := chi.NewRouter()
	r.Get(httpPath, chiOK)
	return r, nil
}

func chiLimitkit(ietf bool) func(*testing.B, httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	return func(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
		r := chi.NewRouter()
		r.With(chilimit.Limit(l.expr, limitkitOptions[chilimit.Option](b, ietf)...)).Get(httpPath, chiOK)
		return r, sameRemaining
	}
}

// chiHTTPRate is httprate.LimitByIP, keyed by RemoteAddr's IP. (v0.16.1
// marks it deprecated in favour of LimitBy with chi's ClientIPFrom*
// middlewares; for a server without a proxy it is what those come to.)
func chiHTTPRate(b *testing.B, l httpLimit) (http.Handler, func(addrs, remaining []string) error) {
	r := chi.NewRouter()
	//lint:ignore SA1019 the peer chi users pick today, as the comparison asks
	r.With(httprate.LimitByIP(l.count, l.period)).Get(httpPath, chiOK)
	return r, sameRemaining
}

// limitkitOptions are the options of a limitkit row, as the adapter's
// option type O: a fresh limiter on its own memory store, closed with the
// cell, the name, the IETF fields if ietf, and extra. core's middleware
// options satisfy every adapter's option type.
func limitkitOptions[O any](b *testing.B, ietf bool, extra ...core.MiddlewareOption) []O {
	l := core.New()
	b.Cleanup(func() { l.Close() })
	opts := append([]core.MiddlewareOption{core.WithLimiter(l), core.WithName(httpName)}, extra...)
	if ietf {
		opts = append(opts, core.WithIETFHeaders())
	}
	out := make([]O, len(opts))
	for i, o := range opts {
		out[i] = any(o).(O)
	}
	return out
}

// sameRemaining checks the X-RateLimit-Remaining of every client's first
// response: if the library tells the clients apart, each had its whole
// budget and got the same figure; if it counted them as one, the figure
// fell.
func sameRemaining(_, remaining []string) error {
	first := remaining[0]
	if first == "" {
		return fmt.Errorf("no X-RateLimit-Remaining header")
	}
	for i, got := range remaining {
		if got != first {
			return fmt.Errorf("client %d got X-RateLimit-Remaining %q, client 0 %q: clients share a budget", i, got, first)
		}
	}
	return nil
}

// --- requests and responses ---

var (
	addrsMu sync.Mutex
	addrs   = map[int][]string{}
)

// httpAddrs returns the peer addresses (RemoteAddr) of n clients,
// 10.x.y.z, each with a port of its own; built once per n and shared,
// read-only, by every row.
func httpAddrs(n int) []string {
	addrsMu.Lock()
	defer addrsMu.Unlock()
	if a, ok := addrs[n]; ok {
		return a
	}
	a := make([]string, n)
	for i := range a {
		a[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) +
			":" + strconv.Itoa(40000+i%20000)
	}
	addrs[n] = a
	return a
}

// newHTTPRequest returns a GET of httpPath. The loops send one request
// value again and again, setting its RemoteAddr to the next client's, so
// that what a row costs is the row's, not building requests; each
// goroutine has its own, as a handler may in principle touch the request
// it is given.
func newHTTPRequest() *http.Request {
	r, err := http.NewRequest(http.MethodGet, "http://api.example"+httpPath, nil)
	if err != nil {
		panic(err)
	}
	return r
}

// benchWriter is a reusable http.ResponseWriter. Between requests reset
// empties its header map without freeing it, as a recorder made per
// request would not, so that the bare row does not hide a limiter's
// allocations among the recorder's.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header {
	if w.h == nil {
		w.h = make(http.Header)
	}
	return w.h
}

func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

// status is the response's status as a client would see it.
func (w *benchWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// --- the loop ---

func runHTTP(b *testing.B, contenders []httpContender) {
	for _, l := range httpLimits {
		b.Run("keys="+strconv.Itoa(l.clients), func(b *testing.B) {
			b.Run("limit="+l.name, func(b *testing.B) {
				for _, mode := range []string{"serial", "parallel"} {
					b.Run("mode="+mode, func(b *testing.B) {
						for _, c := range contenders {
							b.Run("lib="+c.name, func(b *testing.B) {
								h, check := c.setup(b, l)
								addrs := httpAddrs(l.clients)
								warmHTTP(b, h, addrs, check)
								if mode == "serial" {
									serveSerial(b, h, addrs)
								} else {
									serveParallel(b, h, addrs)
								}
							})
						}
					})
				}
			})
		})
	}
}

// warmHTTP sends one request from every client, so that the timed requests
// find their clients known, and runs the row's check on the responses.
func warmHTTP(b *testing.B, h http.Handler, addrs []string, check func(addrs, remaining []string) error) {
	b.Helper()
	r := newHTTPRequest()
	w := &benchWriter{}
	remaining := make([]string, len(addrs))
	for i, a := range addrs {
		w.reset()
		r.RemoteAddr = a
		h.ServeHTTP(w, r)
		if w.status() != http.StatusOK || w.n == 0 {
			b.Fatalf("warm-up request from %s: status %d, %d bytes; want 200 ok", a, w.status(), w.n)
		}
		remaining[i] = w.h.Get("X-Ratelimit-Remaining")
	}
	if check != nil {
		if err := check(addrs, remaining); err != nil {
			b.Fatalf("the library does not see %d distinct clients: %v", len(addrs), err)
		}
	}
}

// refused is the failure of a request that was not answered 200: with
// many clients cycled, a run so long that one of them reached its limit.
func refused(addr string, status, clients int) string {
	return "request from " + addr + ": status " + strconv.Itoa(status) +
		"; every request must be admitted (a run of more than 99 requests per client, " +
		strconv.Itoa(99*clients) + " in all, needs more clients or a shorter -benchtime)"
}

func serveSerial(b *testing.B, h http.Handler, addrs []string) {
	r := newHTTPRequest()
	w := &benchWriter{}
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		w.reset()
		r.RemoteAddr = addrs[i]
		h.ServeHTTP(w, r)
		if w.status() != http.StatusOK {
			b.Fatal(refused(addrs[i], w.status(), len(addrs)))
		}
		if i++; i == len(addrs) {
			i = 0
		}
	}
	reportCPU(b, cpu)
}

// serveParallel serves from GOMAXPROCS goroutines, each with its own
// request and writer and its own starting client.
func serveParallel(b *testing.B, h http.Handler, addrs []string) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	failed := runWorkers(b, func(n int, pb *testing.PB) string {
		r := newHTTPRequest()
		w := &benchWriter{}
		i := n * 7919 % len(addrs)
		for pb.Next() {
			w.reset()
			r.RemoteAddr = addrs[i]
			h.ServeHTTP(w, r)
			if w.status() != http.StatusOK {
				return refused(addrs[i], w.status(), len(addrs))
			}
			if i++; i == len(addrs) {
				i = 0
			}
		}
		return ""
	})
	reportCPU(b, cpu)
	if failed != "" {
		b.Fatal(failed)
	}
}
