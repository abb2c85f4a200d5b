package core

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
	"sync"
)

// scopeCounts counts, per building function and expression, the middlewares
// built so far in this process.
var scopeCounts struct {
	sync.Mutex
	m map[string]int
}

// deriveScope finds the function skip frames above its caller's caller
// (skip 0 is the function that called the caller of deriveScope) and returns
// the scope of its next middleware with expr, and how it was derived.
func deriveScope(skip int, expr string) (scope, fn string, n int) {
	var pcs [1]uintptr
	fn = "unknown"
	if runtime.Callers(skip+3, pcs[:]) == 1 {
		frame, _ := runtime.CallersFrames(pcs[:]).Next()
		if frame.Function != "" {
			fn = frame.Function
		}
	}
	id := fn + "\x00" + expr
	scopeCounts.Lock()
	if scopeCounts.m == nil {
		scopeCounts.m = make(map[string]int)
	}
	n = scopeCounts.m[id]
	scopeCounts.m[id] = n + 1
	scopeCounts.Unlock()
	sum := sha256.Sum256([]byte(id + "\x00" + strconv.Itoa(n)))
	return hex.EncodeToString(sum[:6]), fn, n
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
