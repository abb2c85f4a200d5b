package quotes

import (
	"context"
	"errors"
	"fmt"
	"log"
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

// Main runs an example: it builds the app from REDIS_URL, serves the
// routes newRouter makes on :PORT (default 8080) until SIGINT or SIGTERM,
// and then drains the requests in flight.
func Main(name string, newRouter func(*App) http.Handler) {
	app, err := NewApp(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: newRouter(app), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	store := "memory"
	if app.rdb != nil {
		store = "redis"
	}
	log.Printf("%s quote API on %s (%s store); try: curl localhost:%s/quotes/ACME", name, srv.Addr, store, port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
