package benchmarks

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
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
// handler that writes "ok". Three rows per framework:
//
//   - bare: the route without a limiter, the baseline;
//   - limitkit: the framework's limitkit adapter on a memory store of its
//     own (a fresh core.New() through core.WithLimiter, as a peer gets
//     a fresh store), default headers on;
//   - for Echo, limitkit-noheaders too: Echo's middleware sends no
//     headers, so this is the like-for-like row;
//   - the peer a user of that framework would pick: ulule/limiter's Gin
//     middleware with its memory store, Echo's own RateLimiter with its
//     memory store, httprate.LimitByIP for chi.
//
// What matters is the time and the allocations a limiter adds to a request,
// its row minus the bare row; run.sh prints those.
//
// Requests come from httpClients distinct peer addresses (RemoteAddr),
// cycled, and every one must be answered 200 under limits no run can reach.
// Each peer is checked to see them as httpClients distinct clients (see
// checkDistinct), so no row is fast because it counts everyone as one.
//
// Names are BenchmarkHTTP<Framework>/keys=<clients>/mode=<mode>/lib=<row>,
// like the other families, so that the tables line up.
func BenchmarkHTTPGin(b *testing.B) {
	runHTTP(b, []httpContender{
		{"bare", ginBare},
		{"limitkit", ginLimitkit},
		{"ulule", ginUlule},
	})
}

func BenchmarkHTTPEcho(b *testing.B) {
	runHTTP(b, []httpContender{
		{"bare", echoBare},
		{"limitkit", echoLimitkit},
		{"limitkit-noheaders", echoLimitkitNoHeaders},
		{"echo", echoRateLimiter},
	})
}

func BenchmarkHTTPChi(b *testing.B) {
	runHTTP(b, []httpContender{
		{"bare", chiBare},
		{"limitkit", chiLimitkit},
		{"httprate", chiHTTPRate},
	})
}

// httpClients is how many distinct client addresses send the requests.
const httpClients = 1000

// httpLimit is the limit of every limited row, as limitkit's grammar writes
// it: far above the few million requests a run makes on each client.
const (
	httpLimit       = "1000000000/hour"
	httpLimitCount  = 1_000_000_000
	httpLimitPeriod = time.Hour
)

// httpPath is the route every row serves.
const httpPath = "/items"

// httpContender builds one row's handler. check, when not nil, is called
// with the responses to one request from every client (in order) and says
// why the library did not see httpClients distinct clients.
type httpContender struct {
	name  string
	setup func(b *testing.B) (h http.Handler, check func([]*benchWriter) error)
}

// --- Gin ---

func newGin() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	return gin.New()
}

func ginOK(c *gin.Context) { c.String(http.StatusOK, "ok") }

func ginBare(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	r := newGin()
	r.GET(httpPath, ginOK)
	return r, nil
}

func ginLimitkit(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	r := newGin()
	r.GET(httpPath, ginlimit.Limit(httpLimit, core.WithLimiter(newLimiter(b))), ginOK)
	return r, sameRemaining
}

// ginUlule is ulule/limiter's Gin middleware, whose default key is Gin's
// c.ClientIP(): with no forwarded header sent, that is RemoteAddr's IP.
func ginUlule(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	rt, err := ulule.NewRateFromFormatted(strconv.Itoa(httpLimitCount) + "-H")
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

func echoBare(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	e := newEcho()
	e.GET(httpPath, echoOK)
	return e, nil
}

func echoLimitkit(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	e := newEcho()
	e.GET(httpPath, echoOK, echolimit.Limit(httpLimit, core.WithLimiter(newLimiter(b))))
	return e, sameRemaining
}

// echoLimitkitNoHeaders is limitkit without the X-RateLimit headers, like
// for like with Echo's middleware, which sends none.
func echoLimitkitNoHeaders(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	e := newEcho()
	e.GET(httpPath, echoOK, echolimit.Limit(httpLimit, core.WithLimiter(newLimiter(b)), core.WithHeaderNames("", "", "")))
	return e, nil
}

// echoRateLimiter is Echo's own middleware on its memory store: an
// x/time/rate bucket per identifier. Its default identifier is c.RealIP(),
// which reads X-Forwarded-For and X-Real-IP first and RemoteAddr's IP when
// neither is sent, as here; it sets no headers, so checkDistinct asks
// RealIP itself.
func echoRateLimiter(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	e := newEcho()
	store := echomw.NewRateLimiterMemoryStore(rate.Limit(float64(httpLimitCount) / httpLimitPeriod.Seconds()))
	e.GET(httpPath, echoOK, echomw.RateLimiter(store))
	return e, func([]*benchWriter) error {
		seen := make(map[string]bool)
		for _, r := range httpRequests() {
			seen[e.NewContext(r, &benchWriter{}).RealIP()] = true
		}
		if len(seen) != httpClients {
			return fmt.Errorf("echo's RealIP sees %d clients", len(seen))
		}
		return nil
	}
}

// --- chi ---

func chiOK(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }

func chiBare(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	r := chi.NewRouter()
	r.Get(httpPath, chiOK)
	return r, nil
}

func chiLimitkit(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	r := chi.NewRouter()
	r.With(chilimit.Limit(httpLimit, core.WithLimiter(newLimiter(b)))).Get(httpPath, chiOK)
	return r, sameRemaining
}

// chiHTTPRate is httprate.LimitByIP, keyed by RemoteAddr's IP. (v0.16.1
// marks it deprecated in favour of LimitBy with chi's ClientIPFrom*
// middlewares; for a server without a proxy it is what those come to.)
func chiHTTPRate(b *testing.B) (http.Handler, func([]*benchWriter) error) {
	r := chi.NewRouter()
	//lint:ignore SA1019 the peer chi users pick today, as the comparison asks
	r.With(httprate.LimitByIP(httpLimitCount, httpLimitPeriod)).Get(httpPath, chiOK)
	return r, sameRemaining
}

// newLimiter is a fresh limitkit limiter on its own memory store, closed
// with the cell.
func newLimiter(b *testing.B) *core.Limiter {
	l := core.New()
	b.Cleanup(func() { l.Close() })
	return l
}

// sameRemaining checks the responses to every client's first request: if
// the library tells the clients apart, each had its whole budget and got the
// same X-RateLimit-Remaining; if it counted them as one, the figure fell.
func sameRemaining(ws []*benchWriter) error {
	first := ws[0].h.Get("X-Ratelimit-Remaining")
	if first == "" {
		return fmt.Errorf("no X-RateLimit-Remaining header")
	}
	for i, w := range ws {
		if got := w.h.Get("X-Ratelimit-Remaining"); got != first {
			return fmt.Errorf("client %d got X-RateLimit-Remaining %q, client 0 %q: clients share a budget", i, got, first)
		}
	}
	return nil
}

// --- requests and responses ---

// httpRequests returns a fresh GET of httpPath from each of httpClients
// addresses, 10.0.x.y, each with its own port.
func httpRequests() []*http.Request {
	reqs := make([]*http.Request, httpClients)
	for i := range reqs {
		r, err := http.NewRequest(http.MethodGet, "http://api.example"+httpPath, nil)
		if err != nil {
			panic(err)
		}
		r.RemoteAddr = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":" + strconv.Itoa(40000+i)
		reqs[i] = r
	}
	return reqs
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
	b.Run("keys="+strconv.Itoa(httpClients), func(b *testing.B) {
		for _, mode := range []string{"serial", "parallel"} {
			b.Run("mode="+mode, func(b *testing.B) {
				for _, c := range contenders {
					b.Run("lib="+c.name, func(b *testing.B) {
						h, check := c.setup(b)
						warmHTTP(b, h, check)
						if mode == "serial" {
							serveSerial(b, h)
						} else {
							serveParallel(b, h)
						}
					})
				}
			})
		}
	})
}

// warmHTTP sends one request from every client, so that the timed requests
// find their clients known, and runs the row's check on the responses.
func warmHTTP(b *testing.B, h http.Handler, check func([]*benchWriter) error) {
	b.Helper()
	reqs := httpRequests()
	ws := make([]*benchWriter, len(reqs))
	for i, r := range reqs {
		ws[i] = &benchWriter{}
		h.ServeHTTP(ws[i], r)
		if ws[i].status() != http.StatusOK || ws[i].n == 0 {
			b.Fatalf("warm-up request from %s: status %d, %d bytes; want 200 ok", r.RemoteAddr, ws[i].status(), ws[i].n)
		}
	}
	if check != nil {
		if err := check(ws); err != nil {
			b.Fatalf("the library does not see %d distinct clients: %v", httpClients, err)
		}
	}
}

func serveSerial(b *testing.B, h http.Handler) {
	reqs := httpRequests()
	w := &benchWriter{}
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, reqs[i])
		if w.status() != http.StatusOK {
			b.Fatalf("request from %s: status %d; every request must be admitted", reqs[i].RemoteAddr, w.status())
		}
		if i++; i == len(reqs) {
			i = 0
		}
	}
	reportCPU(b, cpu)
}

// serveParallel serves from GOMAXPROCS goroutines, each with its own
// requests (a handler may in principle touch the request it is given) and
// its own starting client.
func serveParallel(b *testing.B, h http.Handler) {
	sets := make([][]*http.Request, runtime.GOMAXPROCS(0))
	for i := range sets {
		sets[i] = httpRequests()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	failed := runWorkers(b, func(n int, pb *testing.PB) string {
		reqs := sets[n%len(sets)]
		i := n * 7919 % len(reqs)
		w := &benchWriter{}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, reqs[i])
			if w.status() != http.StatusOK {
				return "request from " + reqs[i].RemoteAddr + ": status " + strconv.Itoa(w.status())
			}
			if i++; i == len(reqs) {
				i = 0
			}
		}
		return ""
	})
	reportCPU(b, cpu)
	if failed != "" {
		b.Fatalf("%s; every request must be admitted", failed)
	}
}
