// Package compilecheck proves, by type-checking small programs, that the
// mistakes the option types exist to catch do not compile: an option handed
// to a constructor of another kind (a limiter's to a middleware, a
// middleware's to New, one adapter's to another adapter, a store's to
// anything else). A run-time test cannot show this; the type checker can.
package compilecheck

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// imports are the packages every snippet may use.
var imports = []string{
	"net/http",
	"time",
	"github.com/gin-gonic/gin",
	"github.com/labstack/echo/v4",
	"github.com/limitkit/limitkit/chilimit",
	"github.com/limitkit/limitkit/core",
	"github.com/limitkit/limitkit/echolimit",
	"github.com/limitkit/limitkit/ginlimit",
	"github.com/limitkit/limitkit/redisstore",
}

// program wraps body, the statements of one snippet, in a file that uses
// every import.
func program(body string) string {
	var b strings.Builder
	b.WriteString("package snippet\n\nimport (\n")
	for _, p := range imports {
		b.WriteString("\t" + `"` + p + `"` + "\n")
	}
	b.WriteString(`)

var (
	_ http.Handler
	_ time.Duration
	_ *gin.Context
	_ echo.Context
	_ = chilimit.Limit
	_ = core.New
	_ = echolimit.Limit
	_ = ginlimit.Limit
	_ = redisstore.New
)

func _() {
`)
	b.WriteString(body)
	b.WriteString("\n}\n")
	return b.String()
}

// newChecker returns a function that type-checks a snippet and returns its
// errors, reading the imports' export data as the go command built them.
func newChecker(t *testing.T) func(body string) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the export data with")
	}
	args := append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}, imports...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "\t"); ok && file != "" {
			exports[path] = file
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) { return os.Open(exports[path]) })
	return func(body string) []string {
		f, err := parser.ParseFile(fset, "snippet.go", program(body), 0)
		if err != nil {
			t.Fatalf("snippet does not parse: %v\n%s", err, body)
		}
		var errs []string
		conf := types.Config{Importer: imp, Error: func(err error) { errs = append(errs, err.Error()) }}
		_, _ = conf.Check("snippet", fset, []*ast.File{f}, nil)
		return errs
	}
}

func TestOptions_misuseDoesNotCompile(t *testing.T) {
	check := newChecker(t)
	const ginKey = `ginlimit.Key(func(*gin.Context) (string, error) { return "", nil })`
	const echoKey = `echolimit.Key(func(echo.Context) (string, error) { return "", nil })`
	tests := []struct {
		name, code, want string
	}{
		// The issue's own cases.
		{"Gin's key on chi", `chilimit.New("2/minute", ` + ginKey + `)`, "does not implement chilimit.Option (missing method ChiOption)"},
		{"Gin's OnDeny on Echo", `echolimit.Limit("2/minute", ginlimit.OnDeny(func(*gin.Context, core.Result) {}))`, "does not implement echolimit.Option (missing method EchoOption)"},
		{"Echo's Skipper on Gin", `ginlimit.Limit("2/minute", echolimit.Skipper(func(echo.Context) bool { return false }))`, "does not implement ginlimit.Option (missing method GinOption)"},
		{"a header option on a Limiter", `core.New(core.WithIETFHeaders())`, "does not implement core.Option (missing method applyLimiter)"},
		{"a limiter option on core's middleware", `core.NewMiddleware("2/minute", core.WithStore(nil))`, "does not implement core.MiddlewareOption"},
		// The rest of each pair of kinds.
		{"a limiter option on Gin", `ginlimit.Limit("2/minute", core.WithTimeout(time.Second))`, "does not implement ginlimit.Option"},
		{"a limiter option on Echo", `echolimit.New("2/minute", core.WithLogger(nil))`, "does not implement echolimit.Option"},
		{"a limiter option on chi", `chilimit.Limit("2/minute", core.WithFailurePolicy(core.FailOpen))`, "does not implement chilimit.Option"},
		{"a limiter option in a list for Gin", `_ = []ginlimit.Option{core.WithName("a"), core.WithObserver(nil)}`, "does not implement ginlimit.Option"},
		{"a middleware option on a Limiter", `core.New(core.WithName("api"))`, "does not implement core.Option"},
		{"an adapter's option on a Limiter", `core.New(` + ginKey + `)`, "does not implement core.Option"},
		{"Gin's key on core's middleware", `core.NewMiddleware("2/minute", ` + ginKey + `)`, "does not implement core.MiddlewareOption"},
		{"a bare native option on core's middleware", `core.MustNewMiddleware("2/minute", core.NativeKey("x.Key", func(*gin.Context) (string, error) { return "", nil }))`, "does not implement core.MiddlewareOption"},
		{"a bare native option on Gin", `ginlimit.Limit("2/minute", core.NativeKey("x.Key", func(*gin.Context) (string, error) { return "", nil }))`, "does not implement ginlimit.Option"},
		{"Echo's key on chi", `chilimit.Limit("2/minute", ` + echoKey + `)`, "does not implement chilimit.Option"},
		{"Echo's key on Gin", `ginlimit.New("2/minute", ` + echoKey + `)`, "does not implement ginlimit.Option"},
		{"Gin's plans on Echo", `echolimit.Limit("2/minute", ginlimit.Plans(nil, func(*gin.Context) string { return "" }))`, "does not implement echolimit.Option"},
		{"chi's ByRoute on Gin", `ginlimit.Limit("2/minute", chilimit.ByRoute())`, "does not implement ginlimit.Option"},
		{"Gin's ByRoute on Echo", `echolimit.Limit("2/minute", ginlimit.ByRoute())`, "does not implement echolimit.Option"},
		{"a limiter option on the memory store", `core.NewMemoryStore(core.WithClock(nil))`, "as core.MemoryOption value"},
		{"a memory store option on a Limiter", `core.New(core.MemoryMaxKeys(10))`, "does not implement core.Option"},
		{"a limiter option on the Redis store", `redisstore.New(nil, core.WithTimeout(time.Second))`, "as redisstore.Option value"},
		{"a Redis store option on a Limiter", `core.New(redisstore.WithPrefix("app:"))`, "does not implement core.Option"},
		{"a Redis store option on Gin", `ginlimit.Limit("2/minute", redisstore.WithPrefix("app:"))`, "does not implement ginlimit.Option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := check(tt.code)
			if len(errs) == 0 {
				t.Fatalf("compiles; want an error containing %q:\n%s", tt.want, tt.code)
			}
			if !strings.Contains(strings.Join(errs, "\n"), tt.want) {
				t.Errorf("errors:\n%s\nwant one containing %q", strings.Join(errs, "\n"), tt.want)
			}
		})
	}
}

// The right uses compile, so the cases above fail for their misuse alone;
// among them, the user code written before the option types existed.
func TestOptions_rightUsesCompile(t *testing.T) {
	check := newChecker(t)
	code := `
	lim := core.New(core.WithStore(core.NewMemoryStore(core.MemoryMaxKeys(10))), core.WithAlgorithm(core.TokenBucket), core.WithBurst(5),
		core.WithClock(time.Now), core.WithTimeout(time.Second), core.WithFailurePolicy(core.FailOpen),
		core.WithProbeInterval(time.Second), core.WithLogger(nil), core.WithObserver(nil))
	common := []core.MiddlewareOption{core.WithLimiter(lim), core.WithName("x"), core.WithKey(core.ByIP), core.WithKeyErrorPolicy(core.KeyErrorRefuse),
		core.WithCost(func(*http.Request) int64 { return 1 }), core.WithExempt(nil), core.WithShadow(), core.WithDenyHandler(nil),
		core.WithPlans(nil, func(*http.Request) string { return "" }), core.WithHeaderNames("", "", ""), core.WithResetEpoch(),
		core.WithIETFHeaders(), core.WithAlgorithm(core.TokenBucket), core.WithBurst(2)}
	_, _ = core.NewMiddleware("5/minute", common...)
	_, _ = core.NewMiddleware("5/minute", core.WithKey(core.ByIP))
	_ = ginlimit.Limit("5/minute", core.WithName("x"))
	_ = ginlimit.Limit("5/minute", core.WithName("x"), core.WithAlgorithm(core.FixedWindow), ginlimit.Key(ginlimit.ClientIP), ginlimit.ByRoute(),
		ginlimit.Exempt(nil), ginlimit.OnDeny(nil), ginlimit.Plans(nil, func(*gin.Context) string { return "" }))
	_ = echolimit.Limit("5/minute", core.WithName("x"), core.WithBurst(3), echolimit.Key(echolimit.RealIP), echolimit.ByRoute(),
		echolimit.Skipper(nil), echolimit.OnDeny(nil), echolimit.Plans(nil, func(echo.Context) string { return "" }))
	_ = chilimit.Limit("5/minute", core.WithName("x"), core.WithIETFHeaders(), chilimit.ByRoute(core.ByIP))
	for _, o := range common {
		_ = ginlimit.Limit("5/minute", o)
		_ = echolimit.Limit("5/minute", o)
		_ = chilimit.Limit("5/minute", o)
	}
	_ = redisstore.New(nil, redisstore.WithPrefix("app:"), redisstore.WithTimeout(time.Second))
`
	if errs := check(code); len(errs) > 0 {
		t.Errorf("right uses do not compile:\n%s", strings.Join(errs, "\n"))
	}
}
