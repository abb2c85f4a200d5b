package otellimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/labeltest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var quiet = slog.New(slog.DiscardHandler)

func fixed() time.Time { return time.Unix(1_700_000_000, 0) }

// newReader returns a manual reader and the provider it reads.
func newReader(t *testing.T) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return r, mp
}

// collect reads every metric of MeterName from r.
func collect(t *testing.T, r *sdkmetric.ManualReader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == MeterName {
			return sm.Metrics
		}
	}
	return nil
}

func attrs(s attribute.Set) string {
	var kvs []string
	for _, kv := range s.ToSlice() { // sorted by key
		kvs = append(kvs, string(kv.Key)+"="+kv.Value.Emit())
	}
	return "{" + strings.Join(kvs, ",") + "}"
}

// render writes the named metrics of ms one point a line, sorted: counters
// by value, histograms by their count, each with its unit.
func render(ms []metricdata.Metrics, names ...string) string {
	var lines []string
	for _, m := range ms {
		if !slices.Contains(names, m.Name) {
			continue
		}
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
				lines = append(lines, m.Name+" is not a cumulative counter")
			}
			for _, p := range d.DataPoints {
				lines = append(lines, fmt.Sprintf("%s[%s]%s %d", m.Name, m.Unit, attrs(p.Attributes), p.Value))
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				lines = append(lines, fmt.Sprintf("%s[%s]%s count %d", m.Name, m.Unit, attrs(p.Attributes), p.Count))
			}
		default:
			lines = append(lines, fmt.Sprintf("%s: unexpected %T", m.Name, m.Data))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func send(h http.Handler, n int) {
	for range n {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}
}

var ok = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func TestMetrics_countDecisionsByScopeAndResult(t *testing.T) {
	r, mp := newReader(t)
	lim := core.New(core.WithClock(fixed), Observe(mp))
	defer lim.Close()
	send(core.MustNewMiddleware("2/minute", core.WithLimiter(lim), core.WithName("login")).Handler(ok), 5)
	send(core.MustNewMiddleware("1/minute", core.WithLimiter(lim), core.WithName("trial"), core.WithShadow()).Handler(ok), 3)

	want := `limitkit.decisions[{decision}]{limitkit.decided_by=store,limitkit.result=allowed,limitkit.scope=login} 2
limitkit.decisions[{decision}]{limitkit.decided_by=store,limitkit.result=allowed,limitkit.scope=trial} 1
limitkit.decisions[{decision}]{limitkit.decided_by=store,limitkit.result=denied,limitkit.scope=login} 3
limitkit.decisions[{decision}]{limitkit.decided_by=store,limitkit.result=shadow_denied,limitkit.scope=trial} 2
limitkit.store.duration[s]{} count 8
`
	if got := render(collect(t, r), "limitkit.decisions", "limitkit.store.duration"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}

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

func TestMetrics_countStoreFailuresAndTransitions(t *testing.T) {
	r, mp := newReader(t)
	mem := core.NewMemoryStore(core.MemoryClock(fixed))
	defer mem.Close()
	store := &brokenStore{Store: mem, broken: true}
	now := fixed()
	clock := func() time.Time { return now }
	lim := core.New(core.WithStore(store), core.WithClock(clock), core.WithFailurePolicy(core.FailClosed),
		core.WithLogger(quiet), Observe(mp))
	defer lim.Close()
	h := core.MustNewMiddleware("5/minute", core.WithLimiter(lim), core.WithName("api")).Handler(ok)
	send(h, 3)
	store.broken = false
	now = now.Add(2 * time.Second)
	send(h, 1)

	want := `limitkit.decisions[{decision}]{limitkit.decided_by=fail_closed,limitkit.result=denied,limitkit.scope=api} 3
limitkit.decisions[{decision}]{limitkit.decided_by=store,limitkit.result=allowed,limitkit.scope=api} 1
limitkit.store.duration[s]{} count 2
limitkit.store.errors[{error}]{limitkit.scope=api} 1
limitkit.store.transitions[{transition}]{limitkit.store.state=down} 1
limitkit.store.transitions[{transition}]{limitkit.store.state=up} 1
`
	ms := collect(t, r)
	if got := render(ms, "limitkit.store.errors", "limitkit.store.transitions", "limitkit.decisions", "limitkit.store.duration"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
	for _, m := range ms {
		if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
			if b := h.DataPoints[0].Bounds; len(b) == 0 || b[0] != .00001 || b[len(b)-1] != 1 {
				t.Errorf("%s bounds %v; want promlimit's, 10µs to 1s", m.Name, b)
			}
		}
	}
}

// A rule the limiter cannot enforce is counted once, by scope, however many
// of its requests are refused with 500.
func TestMetrics_countConfigurationErrorsOnce(t *testing.T) {
	r, mp := newReader(t)
	m := core.MustNewMiddleware("200000/minute", core.WithName("bulk"))
	strict := core.New(core.WithAlgorithm(core.SlidingWindowLog), Observe(mp), core.WithLogger(quiet))
	defer strict.Close()
	prev := core.Default()
	core.SetDefault(strict)
	defer core.SetDefault(prev)
	send(m.Handler(ok), 3)
	want := "limitkit.config.errors[{error}]{limitkit.scope=bulk} 1\n"
	if got := render(collect(t, r), "limitkit.config.errors"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}

// Two limiters observed on one provider record to the same instruments.
func TestObserve_twiceOnOneProviderSharesTheInstruments(t *testing.T) {
	r, mp := newReader(t)
	a := core.New(core.WithClock(fixed), Observe(mp))
	defer a.Close()
	b := core.New(core.WithClock(fixed), Observe(mp))
	defer b.Close()
	rule := core.MustRule("5/minute", 0)
	a.Allow(context.Background(), "k", rule)
	b.Allow(context.Background(), "k", rule)
	want := "limitkit.decisions[{decision}]{limitkit.decided_by=store,limitkit.result=allowed,limitkit.scope=} 2\n"
	if got := render(collect(t, r), "limitkit.decisions"); got != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", got, want)
	}
}

// A route's requests carry its pattern and its middleware's name, on
// every router.
func TestMetrics_attributesNameTheMiddlewareAndTheRoute(t *testing.T) {
	for i, name := range labeltest.Names {
		t.Run(name, func(t *testing.T) {
			r, mp := newReader(t)
			lim := core.New(Observe(mp), core.WithLogger(quiet))
			defer lim.Close()
			app := labeltest.Apps(t, lim)[i]
			app.Handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/items/42", nil))
			want := fmt.Sprintf("limitkit.decisions[{decision}]{http.route=%s,limitkit.decided_by=store,limitkit.result=allowed,limitkit.scope=%s} 1\n",
				app.Routes[0], labeltest.GroupName)
			// The root limit's line is there too, with the route where the
			// router had told it.
			if got := render(collect(t, r), "limitkit.decisions"); !strings.Contains(got, want) {
				t.Errorf("metrics:\n%s\nwant among them:\n%s", got, want)
			}
		})
	}
}

// A flood of requests with paths and methods no one registered, from
// thousands of clients, adds no series: the attributes take only the app's
// names, scopes and route patterns.
func TestMetrics_aFloodOfPathsAndMethodsMakesNoSeries(t *testing.T) {
	for i, name := range labeltest.Names {
		t.Run(name, func(t *testing.T) {
			r, mp := newReader(t)
			lim := core.New(Observe(mp), core.WithLogger(quiet))
			defer lim.Close()
			app := labeltest.Apps(t, lim)[i]
			labeltest.Flood(app.Handler, 2000)
			var points []metricdata.DataPoint[int64]
			for _, m := range collect(t, r) {
				if m.Name == "limitkit.decisions" {
					points = m.Data.(metricdata.Sum[int64]).DataPoints
				}
			}
			scopes := map[string]bool{}
			for _, p := range points {
				route, _ := p.Attributes.Value(AttrRoute)
				if !slices.Contains(app.Routes, route.AsString()) {
					t.Errorf("http.route %q is none of the app's patterns %q", route.AsString(), app.Routes)
				}
				if p.Attributes.Len() > 4 {
					t.Errorf("attributes %s; want scope, route, result and decider only", attrs(p.Attributes))
				}
				scope, _ := p.Attributes.Value(AttrScope)
				scopes[scope.AsString()] = true
			}
			if len(scopes) != 3 || !scopes[labeltest.GroupName] || !scopes[labeltest.RootName] {
				t.Errorf("scopes %v; want %q, %q and the login route's hash", scopes, labeltest.RootName, labeltest.GroupName)
			}
			if max := 3 * len(app.Routes); len(points) > max || len(points) < 2 {
				t.Errorf("%d series after 2000 requests, want 2 to %d", len(points), max)
			}
		})
	}
}

func TestMetrics_recordingAKnownSeriesAllocatesNothing(t *testing.T) {
	_, mp := newReader(t)
	m, err := New(mp)
	if err != nil {
		t.Fatal(err)
	}
	e := core.Event{Kind: core.EventDecision, Scope: "api", Route: "/items/{id}", Decision: core.Decision{Allowed: true}, Latency: time.Millisecond}
	m.Observe(e)
	if n := testing.AllocsPerRun(100, func() { m.Observe(e) }); n != 0 {
		t.Errorf("%v allocations per event; want 0", n)
	}
}
