package promlimit

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"log/slog"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/labeltest"
	"github.com/prometheus/client_golang/prometheus"
)

var quiet = slog.New(slog.DiscardHandler)

// series returns the label sets of the named metric in reg.
func series(t *testing.T, reg *prometheus.Registry, name string) []map[string]string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, labels)
		}
	}
	return out
}

// A route's requests are labelled with its pattern and its middleware's
// name, on every router.
func TestCollector_labelsRequestsByNameAndRoute(t *testing.T) {
	for i, name := range labeltest.Names {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			lim := core.New(Observe(reg), core.WithLogger(quiet))
			defer lim.Close()
			app := labeltest.Apps(t, lim)[i]
			app.Handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/items/42", nil))
			var group []map[string]string
			for _, s := range series(t, reg, "limitkit_requests_total") {
				if s["scope"] == labeltest.GroupName {
					group = append(group, s)
				}
			}
			if len(group) != 1 || group[0]["route"] != app.Routes[0] {
				t.Errorf("series of scope %q: %v; want one with route=%q", labeltest.GroupName, group, app.Routes[0])
			}
		})
	}
}

// A flood of requests with paths and methods no one registered, from
// thousands of clients, adds no series: the labels take only the app's
// names, scopes and route patterns.
func TestCollector_aFloodOfPathsAndMethodsMakesNoSeries(t *testing.T) {
	for i, name := range labeltest.Names {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			lim := core.New(Observe(reg), core.WithLogger(quiet))
			defer lim.Close()
			app := labeltest.Apps(t, lim)[i]
			labeltest.Flood(app.Handler, 2000)
			got := series(t, reg, "limitkit_requests_total")
			scopes := map[string]bool{}
			for _, s := range got {
				if !slices.Contains(app.Routes, s["route"]) {
					t.Errorf("route label %q is none of the app's patterns %q", s["route"], app.Routes)
				}
				scopes[s["scope"]] = true
			}
			// Two middlewares, each allowed by the store, on at most every
			// route.
			if len(scopes) != 3 || !scopes[labeltest.GroupName] || !scopes[labeltest.RootName] {
				t.Errorf("scopes %v; want %q, %q and the login route's hash", scopes, labeltest.RootName, labeltest.GroupName)
			}
			if max := 3 * len(app.Routes); len(got) > max || len(got) < 2 {
				t.Errorf("%d series after 2000 requests, want 3 to %d: %v", len(got), max, got)
			}
		})
	}
}
