package httptestkit

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/core"
)

// BuiltPerRequest checks issue 8, finding 17 on an adapter: the handler
// that newHandler returns serves GET /items by building a 2/minute
// middleware with lim on every request, on the line after the one that
// calls mark, and answering 204 when it is let through. Such a middleware
// must still limit (2 of 5 requests served), and one warning must name the
// line that builds it.
func BuiltPerRequest(t *testing.T, newHandler func(lim *core.Limiter, mark func()) http.Handler) {
	t.Helper()
	lim, logs := NewLoggedLimiter(t)
	var site string
	mark := func() {
		_, file, line, _ := runtime.Caller(1)
		site = fmt.Sprintf("%s:%d", filepath.Base(file), line+1)
	}
	h := newHandler(lim, mark)
	codes := Codes(h, Client, "/items", "/items", "/items", "/items", "/items")
	if want := []int{204, 204, 429, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("codes %v; want %v: a middleware built per request must still limit", codes, want)
	}
	var warnings []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "site="+site) {
		t.Errorf("warnings %q; want one, naming site=%s", warnings, site)
	}
}
