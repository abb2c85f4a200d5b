// Command config serves a small API whose limits are declared in a file,
// read at start-up and again on SIGHUP, without losing the state of the
// limits that did not change:
//
//	go run ./examples/config -limits examples/config/limits.json
//	kill -HUP <pid>                # after editing the file
//
// It listens on 127.0.0.1:8080 unless ADDR (or PORT) says otherwise, as
// the other examples do.
//
// The file (limits.json beside this program) gives every route 100
// requests a minute per client and route, POST /login 5 a minute in place
// of that, exempts GET /healthz, and names a limit "export", 10 an hour
// per API key, that GET /export mounts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-chi/chi/v5"
	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/examples/internal/quotes"
)

func main() {
	path := flag.String("limits", "examples/config/limits.json", "the limits file (JSON)")
	flag.Parse()

	cfg, err := load(*path)
	if err != nil {
		slog.Error("cannot load the limits", "err", err)
		os.Exit(1)
	}
	set, err := newSet(cfg)
	if err != nil {
		slog.Error("bad limits", "file", *path, "err", err)
		os.Exit(1)
	}
	defer set.Close()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := reload(set, *path); err != nil {
				slog.Error("limits not reloaded; the old ones stay", "file", *path, "err", err)
				continue
			}
			slog.Info("limits reloaded", "file", *path)
		}
	}()

	router := newRouter(set)
	// A route in the file that the router does not have would be limited
	// by the default without a word; and from now on a reload with one is
	// refused.
	if err := chilimit.CheckRoutes(set, router); err != nil {
		slog.Error("the limits name routes the app does not have", "file", *path, "err", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", quotes.Addr(os.Getenv))
	if err != nil {
		slog.Error("cannot listen", "err", err)
		os.Exit(1)
	}
	slog.Info("the config example listens on http://"+ln.Addr().String(), "limits", *path)
	if err := http.Serve(ln, router); err != nil {
		slog.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

// load reads the limits file. Any decoder that fills core.Config will do:
// its fields carry json, yaml and toml tags.
func load(path string) (core.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return core.Config{}, err
	}
	defer f.Close()
	var cfg core.Config
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields() // a misspelt field is a mistake, not a default
	if err := dec.Decode(&cfg); err != nil {
		return core.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// newSet builds the limits of cfg, with what the file cannot say: the key
// "api-key" it names. opts are added (a store; tests give a clock).
func newSet(cfg core.Config, opts ...core.LimitSetOption) (*core.LimitSet, error) {
	opts = append([]core.LimitSetOption{
		core.ConfigKeys(map[string]core.KeyFunc{"api-key": core.ByHeader("X-API-Key")}),
		core.ConfigMiddleware(core.WithIETFHeaders()),
	}, opts...)
	return core.NewLimitSet(cfg, opts...)
}

// reload reads the file again and replaces the set's limits with it.
func reload(set *core.LimitSet, path string) error {
	cfg, err := load(path)
	if err != nil {
		return err
	}
	return set.Reload(cfg)
}

func newRouter(set *core.LimitSet) chi.Router {
	r := chi.NewRouter()
	r.Use(chilimit.Routes(set)) // the default, the routes' own limits, the exemptions
	r.Get("/items/{id}", answer("item "))
	r.Post("/login", answer("signed in "))
	r.Get("/healthz", answer("ok "))
	r.With(chilimit.Named(set, "export")).Get("/export", answer("export "))
	return r
}

func answer(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, text+chi.URLParam(r, "id"))
	}
}
