package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/chilimit"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

// app serves the router over the limits of file, on a driven clock.
func app(t *testing.T, file string) (*core.LimitSet, http.Handler) {
	t.Helper()
	cfg, err := load(file)
	if err != nil {
		t.Fatal(err)
	}
	clk := storetest.NewClock()
	set, err := newSet(cfg, core.ConfigLimiter(core.WithClock(clk.Now)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	r := newRouter(set)
	if err := chilimit.CheckRoutes(set, r); err != nil {
		t.Fatalf("the file names routes the app does not have: %v", err)
	}
	return set, r
}

func codes(h http.Handler, method, path string, n int, header ...string) string {
	var out []string
	for range n {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "203.0.113.7:1"
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		out = append(out, fmt.Sprint(w.Code))
	}
	return strings.Join(out, " ")
}

func TestLimitsFile_limitsAsWrittenAndReloadsKeepingState(t *testing.T) {
	set, h := app(t, "limits.json")
	if got := codes(h, "POST", "/login", 6); got != "200 200 200 200 200 429" {
		t.Errorf("POST /login: %s; want five 200s, then 429 (5/minute)", got)
	}
	if got := codes(h, "GET", "/healthz", 150); strings.Contains(got, "429") {
		t.Error("GET /healthz was limited; the file exempts it")
	}
	if got := codes(h, "GET", "/items/1", 101); !strings.HasSuffix(got, "200 429") || strings.Count(got, "200") != 100 {
		t.Errorf("GET /items/1: %d admitted; want 100 (the default), then 429", strings.Count(got, "200"))
	}
	if got := codes(h, "GET", "/export", 11, "X-API-Key", "k"); !strings.HasSuffix(got, "200 429") {
		t.Errorf("GET /export: %s; want ten 200s then 429 (10/hour per API key)", got)
	}

	// The same file again: the spent budgets stay spent.
	if err := reload(set, "limits.json"); err != nil {
		t.Fatal(err)
	}
	if got := codes(h, "POST", "/login", 1); got != "429" {
		t.Errorf("POST /login after reloading the same file: %s; want 429", got)
	}

	// An edited file: the changed limit starts afresh, the rest keep state.
	text, err := os.ReadFile("limits.json")
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(t.TempDir(), "limits.json")
	if err := os.WriteFile(edited, []byte(strings.Replace(string(text), `"5/minute"`, `"6/minute"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reload(set, edited); err != nil {
		t.Fatal(err)
	}
	if got := codes(h, "POST", "/login", 7); got != "200 200 200 200 200 200 429" {
		t.Errorf("POST /login after raising it to 6/minute: %s; want a fresh budget of 6", got)
	}
	if got := codes(h, "GET", "/items/1", 1); got != "429" {
		t.Errorf("GET /items/1 after another limit changed: %s; want 429 (kept)", got)
	}

	// A broken file is refused, and the limits stay.
	broken := filepath.Join(t.TempDir(), "limits.json")
	if err := os.WriteFile(broken, []byte(`{"routes": {"POST /login": {"limit": "5/fortnight"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reload(set, broken); err == nil || !strings.Contains(err.Error(), `routes["POST /login"].limit: invalid limit "5/fortnight"`) {
		t.Errorf("reload of a broken file: %v; want an error naming routes[\"POST /login\"].limit", err)
	}
	if got := codes(h, "POST", "/login", 1); got != "429" {
		t.Errorf("POST /login after a refused reload: %s; want 429", got)
	}
}

func TestLoad_refusesAMisspeltField(t *testing.T) {
	f := filepath.Join(t.TempDir(), "limits.json")
	if err := os.WriteFile(f, []byte(`{"default": {"limt": "5/minute"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(f); err == nil || !strings.Contains(err.Error(), `unknown field "limt"`) {
		t.Errorf("load: %v; want an error naming the unknown field", err)
	}
}
