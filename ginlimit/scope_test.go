package ginlimit_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/ginlimit"
	"github.com/limitkit/limitkit/internal/httptestkit"
)

// nextLine is the file:line after the caller's.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line+1)
}

// warnings are the lines of logs at level WARN.
func warnings(logs string) []string {
	var w []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=WARN") {
			w = append(w, l)
		}
	}
	return w
}

func TestLimit_builtPerRequestStillLimitsAndWarnsOfItsLine(t *testing.T) {
	lim, logs := httptestkit.NewLoggedLimiter(t)
	var site string
	h := gin.New()
	h.GET("/items", func(c *gin.Context) {
		site = nextLine()
		ginlimit.Limit("2/minute", core.WithLimiter(lim))(c)
		if !c.IsAborted() {
			c.Status(http.StatusNoContent)
		}
	})
	codes := httptestkit.Codes(h, httptestkit.Client, "/items", "/items", "/items", "/items", "/items")
	if want := []int{204, 204, 429, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("codes %v; want %v: a middleware built per request must still limit", codes, want)
	}
	if w := warnings(logs.String()); len(w) != 1 || !strings.Contains(w[0], "site="+site) {
		t.Errorf("warnings %q; want one, naming site=%s", w, site)
	}
}
