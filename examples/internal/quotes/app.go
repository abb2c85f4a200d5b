package quotes

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/promlimit"
	"github.com/limitkit/limitkit/redisstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// App is what an example's routes run on: the limiter every limit decides
// with and the registry GET /metrics serves.
type App struct {
	Limiter  *core.Limiter
	Registry *prometheus.Registry
	rdb      *redis.Client

	// ReportStarted and ReportGate, when set, hold each GET /report
	// request: it sends on ReportStarted once its handler runs, then waits
	// for ReportGate to close. Tests use them to have reports in flight.
	ReportStarted chan struct{}
	ReportGate    chan struct{}
}

// Report is the body of GET /report, a summary of the market that stands
// in for an expensive computation: the app allows only ReportConcurrency of
// them in flight per client.
func (a *App) Report(ctx context.Context) []Quote {
	if a.ReportStarted != nil {
		a.ReportStarted <- struct{}{}
	}
	if a.ReportGate != nil {
		select {
		case <-a.ReportGate:
		case <-ctx.Done():
		}
	}
	return All()
}

// NewApp returns an app on the memory store or, if redisURL is not empty
// (redis://user:password@host:6379/0), on Redis, so that every instance
// shares its limits. opts configure the limiter further; tests drive its
// clock with core.WithClock.
func NewApp(redisURL string, opts ...core.Option) (*App, error) {
	app := &App{Registry: prometheus.NewRegistry()}
	opts = append([]core.Option{promlimit.Observe(app.Registry)}, opts...)
	if redisURL != "" {
		ropts, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		// The limiter's deadline (core.WithTimeout) reaches Redis calls
		// only if the client honours contexts.
		ropts.ContextTimeoutEnabled = true
		app.rdb = redis.NewClient(ropts)
		opts = append(opts, core.WithStore(redisstore.New(app.rdb)))
	}
	app.Limiter = core.New(opts...)
	return app, nil
}

// Close releases the limiter's store and the Redis client.
func (a *App) Close() error {
	err := a.Limiter.Close()
	if a.rdb != nil {
		err = errors.Join(err, a.rdb.Close())
	}
	return err
}

// Metrics serves the app's metrics to Prometheus.
func (a *App) Metrics() http.Handler {
	return promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{})
}

// DefaultAddr is where an example listens unless ADDR says otherwise: the
// loopback interface only, so that trying an example never opens a port to
// the network. ADDR=:8080 listens on every interface.
const DefaultAddr = "127.0.0.1:8080"

// Addr is the address an example listens on: ADDR if set, else
// 127.0.0.1:PORT if PORT is set, else DefaultAddr.
func Addr(getenv func(string) string) string {
	if a := getenv("ADDR"); a != "" {
		return a
	}
	if p := getenv("PORT"); p != "" {
		return net.JoinHostPort("127.0.0.1", p)
	}
	return DefaultAddr
}

// Check makes sure the app's store answers before it serves: on Redis, a
// PING within two seconds. The error names the Redis address (never the
// password) and what went wrong, so a mistyped REDIS_URL is found at
// start-up, not as 503s under the first requests.
func (a *App) Check(ctx context.Context) (string, error) {
	if a.rdb == nil {
		return "memory store", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addr := a.rdb.Options().Addr
	// Dial once first: go-redis retries a refused connection with backoff
	// until the deadline, which would then be all the error says.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("REDIS_URL: cannot connect to Redis at %s: %w", addr, err)
	}
	conn.Close()
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("REDIS_URL: Redis at %s did not answer PING: %w", addr, err)
	}
	return "Redis store at " + addr, nil
}

// Main runs an example: it builds the app from REDIS_URL, checks that its
// store answers, serves the routes newRouter makes on Addr until SIGINT or
// SIGTERM, and then drains the requests in flight.
func Main(name string, newRouter func(*App) http.Handler) {
	log.SetFlags(log.LstdFlags | log.Lmsgprefix)
	log.SetPrefix(name + " example: ")
	app, err := NewApp(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := app.Check(ctx)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: Addr(os.Getenv), Handler: newRouter(app), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("the quote API listens on http://%s (limits kept in the %s); try: curl -i http://%s/quotes/ACME", ln.Addr(), store, ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
