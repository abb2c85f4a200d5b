package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// maxScopeFrames bounds the call path deriveScope looks at. Deeper paths
// are told apart by their innermost frames only, which is plenty for
// set-up code.
const maxScopeFrames = 128

// maxWarnedSites bounds the memory of per-request warnings. When full it is
// cleared, so that a warning is repeated rather than dropped.
const maxWarnedSites = 1024

// scopeRegistry is what one process remembers of the scopes derived so far.
type scopeRegistry struct {
	mu sync.Mutex
	// counts: middlewares built at start-up per function and expression.
	counts map[string]int
	// paths: middlewares built along each call path, per expression, to
	// find the places that build again and again (loops).
	paths map[string]int
	// warned: the per-request build sites already warned about, per logger.
	warned map[warnedSite]struct{}
}

type warnedSite struct {
	pc  uintptr
	log *slog.Logger
}

func newScopeRegistry() *scopeRegistry {
	return &scopeRegistry{counts: map[string]int{}, paths: map[string]int{}, warned: map[warnedSite]struct{}{}}
}

// scopes is this process's registry; tests swap in a fresh one to play
// another process.
var scopes atomic.Pointer[scopeRegistry]

func init() { scopes.Store(newScopeRegistry()) }

// build is where a middleware is being built, as the call stack tells.
type build struct {
	fn      string  // the named function whose code builds it
	site    string  // file:line of the building call
	caller  string  // file:line of the call of the building function
	pc      uintptr // of the building call
	call    string  // pc offsets in their functions: tells calls on one line apart
	path    []byte  // every pc of the call stack, to compare paths
	serving bool    // a ServeHTTP method is on the stack: built per request
}

// deriveScope returns the scope of a middleware built with expr by the
// function skip frames above its caller's caller (skip 0 is the function
// that called the caller of deriveScope), as Middleware.Scope documents,
// and tells log of builds that cannot be told apart across processes.
func deriveScope(skip int, expr string, log *slog.Logger) string {
	// From newMiddleware's frame up, so that pcs are the physical return
	// addresses, one per call instruction: with skip, two calls on one line
	// of a function that inlined MustNewMiddleware give one pc.
	var pcs [maxScopeFrames]uintptr
	b := buildOf(pcs[:runtime.Callers(2, pcs[:])], skip+1)
	reg := scopes.Load()
	if b.serving {
		scope := hashScope(b.fn, expr, "line "+b.site+" call "+b.call)
		if reg.firstWarning(b.pc, log) {
			log.Warn("limitkit: a middleware is built while serving a request; build it once, at start-up, and hand it to the route: until then every request counts against the one budget of this line",
				"site", b.site, "function", b.fn, "expr", expr, "scope", scope)
		}
		log.Debug("limitkit: middleware scope derived", "scope", scope, "func", b.fn, "expr", expr, "site", b.site)
		return scope
	}
	n, again := reg.next(b.fn, expr, string(b.path))
	scope := hashScope(b.fn, expr, strconv.Itoa(n))
	if again {
		log.Warn("limitkit: middlewares with one limit are built again and again at one place (a loop?); each gets the next scope in the order built, so if that order can change between processes (ranging over a map) so do their budgets: give each a core.WithName, such as its route",
			"site", b.site, "caller", b.caller, "function", b.fn, "expr", expr)
	}
	log.Debug("limitkit: middleware scope derived", "scope", scope, "func", b.fn, "expr", expr, "n", n, "site", b.site)
	return scope
}

func hashScope(fn, expr, which string) string {
	sum := sha256.Sum256([]byte(fn + "\x00" + expr + "\x00" + which))
	return hex.EncodeToString(sum[:6])
}

// next counts a start-up build: it returns how many middlewares fn had
// built with expr before, and whether this is the second build along path.
func (r *scopeRegistry) next(fn, expr, path string) (n int, again bool) {
	id := fn + "\x00" + expr
	path += "\x00" + expr
	r.mu.Lock()
	defer r.mu.Unlock()
	n = r.counts[id]
	r.counts[id] = n + 1
	r.paths[path]++
	return n, r.paths[path] == 2
}

// firstWarning reports whether log has not yet been warned of the
// per-request build at pc.
func (r *scopeRegistry) firstWarning(pc uintptr, log *slog.Logger) bool {
	k := warnedSite{pc, log}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.warned[k]; ok {
		return false
	}
	if len(r.warned) >= maxWarnedSites {
		clear(r.warned)
	}
	r.warned[k] = struct{}{}
	return true
}

// buildOf reads a build from the call stack pcs, innermost first, whose
// first skip frames are the library's: the next one is the building call.
// runtime.Callers gives a pc per frame, also for inlined ones, whose pc is
// that of the call site, which two calls on one line share: so the pc of
// the library's frame below is part of the call too.
func buildOf(pcs []uintptr, skip int) build {
	b := build{fn: "unknown", site: "unknown", caller: "unknown"}
	literal := false
	logical := 0
	for i, pc := range pcs {
		b.path = binary.LittleEndian.AppendUint64(b.path, uint64(pc))
		frames := runtime.CallersFrames(pcs[i : i+1])
		for more := true; more; logical++ {
			var f runtime.Frame
			f, more = frames.Next()
			switch {
			case logical < skip:
				continue
			case logical == skip:
				if f.Function == "" {
					return b
				}
				b.fn, b.site, b.pc = f.Function, fileLine(f), pc
				b.call = offsetOf(pc)
				if i > 0 {
					b.call += "+" + offsetOf(pcs[i-1])
				}
				literal = isLiteral(b.fn)
			case logical == skip+1:
				b.caller = fileLine(f)
			}
			if literal && logical > skip && encloses(f.Function, b.fn) {
				b.fn, literal = f.Function, false
			}
			if strings.HasSuffix(f.Function, ".ServeHTTP") {
				b.serving = true
			}
		}
	}
	if literal {
		// The enclosing function has returned: name the literal by its
		// function as the compiler spells it.
		b.fn = trimLiterals(b.fn)
	}
	return b
}

// offsetOf is pc's offset in its function, the same in every process of
// a build.
func offsetOf(pc uintptr) string {
	if fn := runtime.FuncForPC(pc); fn != nil {
		pc -= fn.Entry()
	}
	return strconv.FormatUint(uint64(pc), 16)
}

func fileLine(f runtime.Frame) string {
	if f.File == "" {
		return "unknown"
	}
	return filepath.Base(f.File) + ":" + strconv.Itoa(f.Line)
}

// isLiteral reports whether fn names a function literal: the compiler
// names them after their enclosing function, "app.routes.func1",
// "app.routes.func1.2", "app.routes.gowrap1".
func isLiteral(fn string) bool { return trimLiterals(fn) != fn }

// trimLiterals removes the literal suffixes from fn's name.
func trimLiterals(fn string) string {
	for {
		i := strings.LastIndexByte(fn, '.')
		if i < 0 || strings.LastIndexByte(fn, '/') > i {
			return fn
		}
		last := fn[i+1:]
		for _, p := range []string{"func", "gowrap", "deferwrap"} {
			if strings.HasPrefix(last, p) {
				last = last[len(p):]
				break
			}
		}
		if last == "" || strings.Trim(last, "0123456789") != "" {
			return fn
		}
		fn = fn[:i]
	}
}

// encloses reports whether the literal lit is written in the named function
// fn. Inlining prefixes a literal's name with the functions its enclosing
// function was inlined into, as in "app.main.routes.func2" for a literal
// of app.routes inlined into app.main, so fn's name is matched as the end
// of lit's, within fn's package.
func encloses(fn, lit string) bool {
	if fn == "" || isLiteral(fn) {
		return false
	}
	outer := trimLiterals(lit)
	if outer == fn {
		return true
	}
	end := packageEnd(fn)
	if end >= len(fn) {
		return false
	}
	pkg := fn[:end]
	return strings.HasPrefix(outer, pkg+".") && strings.HasSuffix(outer, "."+fn[len(pkg)+1:])
}

// packageEnd is the index of the dot after fn's package path.
func packageEnd(fn string) int {
	slash := strings.LastIndexByte(fn, '/')
	if i := strings.IndexByte(fn[slash+1:], '.'); i >= 0 {
		return slash + 1 + i
	}
	return len(fn)
}

// checkName validates a name given to WithName or a plan: it becomes part
// of store keys, metric labels and the IETF headers' policy names.
func checkName(what, name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("limitkit: %s %q must be 1 to 64 characters long", what, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' || c == ':' {
			return fmt.Errorf("limitkit: %s %q: use printable ASCII without spaces, quotes, backslashes or colons", what, name)
		}
	}
	return nil
}
