package redisstore

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/limitkit/limitkit/core"
)

// The scripts repeat core/decide.go step for step, in integer microseconds
// held in Lua's doubles (exact below 2^53, which core's validation keeps every
// quantity under), so that Redis and the memory store decide alike. Each
// script is one algorithm's check and commit inside the rule loop of core's
// decide: check every limit, let the most telling verdict speak (core's
// outranks), and charge all limits or none.
//
// They are written as straight-line code over local variables, with almost
// no functions or tables: Redis runs the whole chunk on every call, and each
// closure or table it creates costs a fraction of a microsecond. A first
// version with a function per step spent about 15µs of Redis's time per
// one-limit decision; this one about 10µs, against 5µs for the bare TIME,
// GET and SET it must make. That is why the state a check keeps for its
// commit, and each key's TTL, are written out in every algorithm's file
// rather than made helper functions.
//
// The Lua lives in lua/, one source for all ten scripts (each algorithm in
// two forms, see script):
//
//	lua/one.lua      the one-decision script: protocol, then the slots
//	                 prelude and decide, then the reply
//	lua/batch.lua    the batched script: the same decision as a function,
//	                 run for each decision of the batch
//	lua/prelude.lua  once per script: shorthands, the state slots, and the
//	                 slots algorithm (its name, filled in here) and helpers
//	lua/decide.lua   one decision: the time, the rule loop with the slot
//	                 check, outranks, the commit loop with the slot commit
//	lua/refund.lua   the refund script: gives back part of a charge, with
//	                 each algorithm's refund part
//	lua/<alg>.lua    an algorithm's parts: check, commit, refund and,
//	                 optionally, helpers (bucket.lua serves both buckets)
//
// A slot is a line that holds only --{{name}}; compose replaces it by the
// part of that name. An algorithm's file defines its parts: each starts
// after a line --{{define name}} and runs to the next such line or the end,
// and text before the first is for the reader. Nothing else is substituted.
// testdata/<alg>.lua and testdata/<alg>.batch.lua hold the composed
// scripts, which TestScripts keeps up to date (go test ./redisstore -run
// TestScripts -update) and which run as they are (see lua/one.lua for a
// redis-cli line), so that the line of a Redis error is a line of one of
// those files.

//go:embed lua/*.lua
var luaFiles embed.FS

// script is one algorithm's script in two forms: one decision, and a batch
// of decisions run one after another in one call (see lua/batch.lua); and
// its refund (lua/refund.lua), which gives back part of a charge. Each is
// kept with its SHA-1 and as interface values, so that a command's
// arguments can refer to them without allocating.
type script struct {
	one, many, refund          any // source
	oneSHA, manySHA, refundSHA any // SHA-1 in hex
}

// newScript composes alg's two scripts from lua/, with the parts defined
// in lua/file. It panics if a slot has no part or a part no slot: the
// sources are part of the program, and init is where that shows.
func newScript(alg core.Algorithm, file string) *script {
	parts := map[string]string{
		"algorithm": fmt.Sprintf("local ALGORITHM = '%s'\n", alg),
		"helpers":   "", // optional
		"prelude":   luaFile("prelude.lua"),
		"decide":    luaFile("decide.lua"),
	}
	defined := defines(luaFile(file), parts)
	one, oneUsed := compose(luaFile("one.lua"), parts)
	many, manyUsed := compose(luaFile("batch.lua"), parts)
	refund, refundUsed := compose(luaFile("refund.lua"), parts)
	for _, name := range defined {
		if name == "refund" && !refundUsed[name] || name != "refund" && (!oneUsed[name] || !manyUsed[name]) {
			panic("redisstore: lua/" + file + " defines " + name + ", which no slot of lua/one.lua, lua/batch.lua or lua/refund.lua takes")
		}
	}
	return &script{one: one, many: many, refund: refund, oneSHA: sha1hex(one), manySHA: sha1hex(many), refundSHA: sha1hex(refund)}
}

// luaFile returns the source lua/name.
func luaFile(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("redisstore: " + err.Error())
	}
	return string(b)
}

var (
	slotLine   = regexp.MustCompile(`(?m)^[ \t]*--\{\{([a-z]+)\}\}[ \t]*\n`)
	defineLine = regexp.MustCompile(`(?m)^--\{\{define ([a-z]+)\}\}[ \t]*\n`)
)

// defines adds the parts src defines to parts and returns their names.
func defines(src string, parts map[string]string) []string {
	locs := defineLine.FindAllStringSubmatchIndex(src, -1)
	var names []string
	for i, loc := range locs {
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		name := src[loc[2]:loc[3]]
		parts[name] = src[loc[1]:end]
		names = append(names, name)
	}
	return names
}

// compose replaces each slot of src, and each slot of the parts it puts in,
// by its part, and reports which parts it used. It panics on a slot without
// a part.
func compose(src string, parts map[string]string) (string, map[string]bool) {
	used := map[string]bool{}
	var fill func(src string, depth int) string
	fill = func(src string, depth int) string {
		if depth > len(parts) {
			panic("redisstore: the Lua slots nest in a loop")
		}
		return slotLine.ReplaceAllStringFunc(src, func(line string) string {
			name := slotLine.FindStringSubmatch(line)[1]
			part, ok := parts[name]
			if !ok {
				panic("redisstore: no Lua part fills the slot --{{" + name + "}}")
			}
			used[name] = true
			return fill(part, depth+1)
		})
	}
	out := fill(src, 0)
	if strings.Contains(out, "--{{") {
		panic("redisstore: a Lua slot marker is left after composing: " + out[strings.Index(out, "--{{"):][:40])
	}
	return out, used
}

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// scripts holds one script per algorithm, indexed by core.Algorithm.
var scripts = [...]*script{
	core.FixedWindow:          newScript(core.FixedWindow, "fixed-window.lua"),
	core.SlidingWindowLog:     newScript(core.SlidingWindowLog, "sliding-window-log.lua"),
	core.SlidingWindowCounter: newScript(core.SlidingWindowCounter, "sliding-window-counter.lua"),
	core.TokenBucket:          newScript(core.TokenBucket, "bucket.lua"),
	core.LeakyBucket:          newScript(core.LeakyBucket, "bucket.lua"),
}
