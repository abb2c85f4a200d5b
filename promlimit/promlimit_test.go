package promlimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/prometheus/client_golang/prometheus"
)

// brokenStore fails every call while broken is true.
type brokenStore struct {
	core.Store
	broken bool
}

func (s *brokenStore) Take(ctx context.Context, key string, rule core.Rule, cost int64) (core.Decision, error) {
	if s.broken {
		return core.Decision{}, errors.New("connection refused")
	}
	return s.Store.Take(ctx, key, rule, cost)
}

func send(h http.Handler, n int) {
	for range n {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

func fixed() time.Time { return time.Unix(1_700_000_000, 0) }

func TestCollector_countsDecisionsByScopeAndResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	lim := core.New(core.WithClock(fixed), Observe(reg))
	defer lim.Close()
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	send(core.MustNewMiddleware("2/minute", core.WithLimiter(lim), core.WithName("login")).Handler(ok), 5)
	send(core.MustNewMiddleware("1/minute", core.WithLimiter(lim), core.WithName("trial"), core.WithShadow()).Handler(ok), 3)

	want := `limitkit_requests_total{decided_by="store",result="allowed",route="",scope="login"} 2
limitkit_requests_total{decided_by="store",result="allowed",route="",scope="trial"} 1
limitkit_requests_total{decided_by="store",result="denied",route="",scope="login"} 3
limitkit_requests_total{decided_by="store",result="shadow_denied",route="",scope="trial"} 2
limitkit_store_latency_seconds_count 8
`
	if got := gather(t, reg, "limitkit_requests_total", "limitkit_store_latency_seconds"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}

func TestCollector_countsStoreFailuresAndTransitions(t *testing.T) {
	reg := prometheus.NewRegistry()
	mem := core.NewMemoryStore(core.MemoryClock(fixed))
	defer mem.Close()
	store := &brokenStore{Store: mem, broken: true}
	now := fixed()
	clock := func() time.Time { return now }
	lim := core.New(core.WithStore(store), core.WithClock(clock), core.WithFailurePolicy(core.FailClosed),
		core.WithLogger(slog.New(slog.DiscardHandler)), Observe(reg))
	defer lim.Close()
	h := core.MustNewMiddleware("5/minute", core.WithLimiter(lim), core.WithName("api")).Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	send(h, 3)
	store.broken = false
	now = now.Add(2 * time.Second)
	send(h, 1)

	want := `limitkit_requests_total{decided_by="fail_closed",result="denied",route="",scope="api"} 3
limitkit_requests_total{decided_by="store",result="allowed",route="",scope="api"} 1
limitkit_store_errors_total{scope="api"} 1
limitkit_store_transitions_total{to="down"} 1
limitkit_store_transitions_total{to="up"} 1
`
	if got := gather(t, reg, "limitkit_store_errors_total", "limitkit_store_transitions_total", "limitkit_requests_total"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}

// gather renders the named metrics of reg one series a line, sorted:
// counters by value, histograms by their count. (prometheus/testutil would
// do this, but its diff dependency is not in the module's go.sum.)
func gather(t *testing.T, reg *prometheus.Registry, names ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			series := mf.GetName()
			if len(labels) > 0 {
				series += "{" + strings.Join(labels, ",") + "}"
			}
			if h := m.GetHistogram(); h != nil {
				lines = append(lines, fmt.Sprintf("%s_count %d", series, h.GetSampleCount()))
			} else {
				lines = append(lines, fmt.Sprintf("%s %g", series, m.GetCounter().GetValue()))
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func TestObserve_reusesTheCollectorOfARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := core.New(core.WithClock(fixed), Observe(reg))
	defer a.Close()
	b := core.New(core.WithClock(fixed), Observe(reg)) // must not panic
	defer b.Close()
	rule := core.MustRule("5/minute", 0)
	a.Allow(context.Background(), "k", rule)
	b.Allow(context.Background(), "k", rule)
	want := `limitkit_requests_total{decided_by="store",result="allowed",route="",scope=""} 2
`
	if got := gather(t, reg, "limitkit_requests_total"); got != want {
		t.Errorf("metrics:\n%s\nwant (both limiters in one collector):\n%s", got, want)
	}
}

func TestObserve_panicsOnAClash(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "limitkit_store_errors_total", Help: "someone else's"}))
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), "promlimit.Observe") {
			t.Errorf("panic %v; want one naming promlimit.Observe", p)
		}
	}()
	Observe(reg)
}

func TestCollector_observingAKnownScopeAllocatesNothing(t *testing.T) {
	c := NewCollector()
	e := core.Event{Kind: core.EventDecision, Scope: "api", Route: "/items/{id}", Decision: core.Decision{Allowed: true}, Latency: time.Millisecond}
	c.Observe(e)
	if n := testing.AllocsPerRun(100, func() { c.Observe(e) }); n != 0 {
		t.Errorf("%v allocations per event; want 0", n)
	}
}

// A rule the limiter cannot enforce is counted once, by scope, however many
// of its requests are refused with 500.
func TestCollector_countsConfigurationErrorsOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Built for the default algorithm, then checked by a limiter whose
	// default, the log, keeps at most 100,000 entries.
	m := core.MustNewMiddleware("200000/minute", core.WithName("bulk"))
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	strict := core.New(core.WithAlgorithm(core.SlidingWindowLog), Observe(reg), core.WithLogger(slog.New(slog.DiscardHandler)))
	defer strict.Close()
	prev := core.Default()
	core.SetDefault(strict)
	defer core.SetDefault(prev)
	send(m.Handler(ok), 3)
	want := `limitkit_config_errors_total{scope="bulk"} 1
`
	if got := gather(t, reg, "limitkit_config_errors_total"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}
