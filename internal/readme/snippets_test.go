// Package readme tests that the README runs as written: every Go snippet
// compiles (and passes go vet) as the README has it, and every shell session
// of the example app gives, against each of the three examples, the output
// the README shows.
package readme

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// block is one fenced code block of the README.
type block struct {
	lang string
	line int // the README line of the block's first line of code
	code string
	mode string // from a preceding <!-- readme: MODE --> comment
}

func readmePath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var modeComment = regexp.MustCompile(`^<!-- readme: ([a-z]+(?: [a-z]+)?) -->$`)

// blocks returns the README's fenced blocks.
func blocks(t *testing.T) []block {
	t.Helper()
	src, err := os.ReadFile(readmePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var (
		out  []block
		cur  *block
		mode string
		code []string
	)
	for i, l := range strings.Split(string(src), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &block{lang: strings.TrimPrefix(l, "```"), line: i + 2, mode: mode}
			code, mode = nil, ""
		case cur != nil && l == "```":
			cur.code = strings.Join(code, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code = append(code, l)
		default:
			if m := modeComment.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				mode = strings.ReplaceAll(m[1], " ", "-")
			} else if strings.TrimSpace(l) != "" {
				mode = ""
			}
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a code block is never closed", cur.line-1)
	}
	return out
}

// Each prelude declares, at package level, what the README's snippets of
// one framework take as given (a router, handlers, a Redis client), so a
// snippet compiles as it is written; the snippet itself is the body of a
// function, so a variable it declares and never uses fails, as it would in
// the reader's program.
var imports = map[string]string{
	"context":    `"context"`,
	"errors":     `"errors"`,
	"fmt":        `"fmt"`,
	"http":       `"net/http"`,
	"time":       `"time"`,
	"slog":       `"log/slog"`,
	"log":        `"log"`,
	"os":         `"os"`,
	"json":       `"encoding/json"`,
	"testing":    `"testing"`,
	"httptest":   `"net/http/httptest"`,
	"gin":        `"github.com/gin-gonic/gin"`,
	"echo":       `"github.com/labstack/echo/v4"`,
	"middleware": `"github.com/labstack/echo/v4/middleware"`,
	"chi":        `"github.com/go-chi/chi/v5"`,
	"redis":      `"github.com/redis/go-redis/v9"`,
	"prometheus": `"github.com/prometheus/client_golang/prometheus"`,
	"promhttp":   `"github.com/prometheus/client_golang/prometheus/promhttp"`,
	"core":       `"github.com/limitkit/limitkit/core"`,
	"ginlimit":   `"github.com/limitkit/limitkit/ginlimit"`,
	"echolimit":  `"github.com/limitkit/limitkit/echolimit"`,
	"chilimit":   `"github.com/limitkit/limitkit/chilimit"`,
	"redisstore": `"github.com/limitkit/limitkit/redisstore"`,
	"promlimit":  `"github.com/limitkit/limitkit/promlimit"`,
}

// packages is imports and the module's own packages that may not exist in
// every revision (otellimit, limittest), for snippets that use them.
func packages(root string) map[string]string {
	out := make(map[string]string, len(imports)+2)
	for k, v := range imports {
		out[k] = v
	}
	for _, dir := range []string{"otellimit", "limittest"} {
		if _, err := os.Stat(filepath.Join(root, dir)); err == nil {
			out[dir] = `"github.com/limitkit/limitkit/` + dir + `"`
		}
	}
	return out
}

const common = `
var (
	ctx      context.Context
	rdb      *redis.Client
	tenantID string
	mux      *http.ServeMux
	items    http.Handler
	logger   *slog.Logger
	reg      *prometheus.Registry
	lim      *core.Limiter

	errTooManyTokens error
	callModel        func(context.Context) int64
	runJob           func(context.Context)
)
`

var preludes = map[string]string{
	"gin": `
var (
	r          *gin.Engine
	api        *gin.RouterGroup
	listItems, listOrders, me, login, getItem, getQuote, handler gin.HandlerFunc
)
`,
	"echo": `
var (
	e          *echo.Echo
	g          *echo.Group
	listItems, listOrders, me, login, getItem, getQuote, handler echo.HandlerFunc
)
`,
	"chi": `
var (
	r          chi.Router
	api        chi.Router
	listItems, listOrders, me, login, getItem, getQuote, handler http.HandlerFunc
)
`,
	"core": `
var (
	listItems, listOrders, me, login, getItem, getQuote, handler http.HandlerFunc
)
`,
}

// frameworkOf picks the prelude a snippet (or one line of one) is written
// against.
func frameworkOf(code string) string {
	switch {
	case strings.Contains(code, "ginlimit.") || strings.Contains(code, "gin."):
		return "gin"
	case strings.Contains(code, "echolimit.") || strings.Contains(code, "echo."):
		return "echo"
	case strings.Contains(code, "chilimit.") || strings.Contains(code, "chi."):
		return "chi"
	}
	return "core"
}

var topLevel = regexp.MustCompile(`(?m)^(func|type|package) `)

// program renders one snippet as a Go file of package pkg, with //line
// directives so that compile errors name README lines.
func program(root, pkg, readme string, b block, code string, line int) string {
	var f strings.Builder
	if strings.HasPrefix(code, "package ") {
		// A whole file: it is compiled as it is, in a package of its own.
		fmt.Fprintf(&f, "//line %s:%d\n%s", readme, line, code)
		return f.String()
	}
	prelude := common + preludes[frameworkOf(code)]
	fmt.Fprintf(&f, "package %s\n\nimport (\n", pkg)
	var anchors strings.Builder
	for name, path := range packages(root) {
		uses := regexp.MustCompile(`\b` + name + `\.`)
		if !uses.MatchString(code) && !uses.MatchString(prelude) {
			continue
		}
		fmt.Fprintf(&f, "\t%s %s\n", name, path)
		if a, ok := anchorOf[name]; ok {
			fmt.Fprintf(&anchors, "var _ = %s.%s\n", name, a)
		}
	}
	f.WriteString(")\n\n")
	f.WriteString(anchors.String())
	f.WriteString(prelude)
	if topLevel.MatchString(code) {
		fmt.Fprintf(&f, "\n//line %s:%d\n%s", readme, line, code)
	} else {
		fmt.Fprintf(&f, "\nfunc _() {\n//line %s:%d\n%s}\n", readme, line, code)
	}
	return f.String()
}

// anchorOf names one exported identifier of each import, so that an import
// a snippet does not use still compiles.
var anchorOf = map[string]string{
	"context": "Background", "errors": "New", "fmt": "Sprint", "http": "StatusOK",
	"time": "Second", "slog": "Default", "log": "Print", "os": "Getenv",
	"json": "Marshal", "testing": "Short", "httptest": "NewRecorder",
	"gin": "New", "echo": "New", "middleware": "Logger", "chi": "NewRouter",
	"redis": "NewClient", "prometheus": "NewRegistry", "promhttp": "Handler",
	"core": "New", "ginlimit": "Limit", "echolimit": "Limit", "chilimit": "Limit",
	"redisstore": "New", "promlimit": "Observe",
}

// TestGoSnippetsCompile compiles every ```go block of the README. A block
// after <!-- readme: lines --> is a list of independent one-line examples,
// perhaps of different frameworks: each line is compiled on its own. A block
// after <!-- readme: skip --> is not Go that compiles (a signature, an
// excerpt) and says so in the README's text. A block after
// <!-- readme: parts --> holds examples separated by blank lines, each
// compiled on its own.
func TestGoSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the README's snippets with the go command")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme := readmePath(t)
	dir, err := os.MkdirTemp(filepath.Join(root, "internal", "readme"), "snippets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := 0
	write := func(b block, code string, line int) {
		n++
		pkg := fmt.Sprintf("s%03d", n)
		if err := os.MkdirAll(filepath.Join(dir, pkg), 0o755); err != nil {
			t.Fatal(err)
		}
		src := program(root, pkg, readme, b, code, line)
		if err := os.WriteFile(filepath.Join(dir, pkg, "snippet.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range blocks(t) {
		if b.lang != "go" || b.mode == "skip" {
			continue
		}
		if b.mode == "parts" {
			line := b.line
			for _, part := range strings.Split(b.code, "\n\n") {
				write(b, part+"\n", line)
				line += strings.Count(part, "\n") + 2
			}
			continue
		}
		if b.mode == "lines" {
			for i, l := range strings.Split(strings.TrimRight(b.code, "\n"), "\n") {
				if strings.TrimSpace(l) != "" {
					write(b, l+"\n", b.line+i)
				}
			}
			continue
		}
		write(b, b.code, b.line)
	}
	if n == 0 {
		t.Fatal("the README has no Go snippets")
	}
	cmd := exec.Command("go", "vet", "./"+filepath.Base(dir)+"/...")
	cmd.Dir = filepath.Join(root, "internal", "readme")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's Go snippets do not compile (%d snippets):\n%s", n, out.String())
	}
	t.Logf("%d README snippets compile and pass go vet", n)
}
