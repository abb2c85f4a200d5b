package redisstore

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

var update = flag.Bool("update", false, "rewrite testdata/*.lua, the composed scripts, from lua/")

// TestScripts keeps testdata/ equal to the composed scripts, so that every
// script can be read whole and run with redis-cli --eval: after changing
// lua/, go test ./redisstore -run TestScripts -update rewrites them.
func TestScripts(t *testing.T) {
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		s := scripts[alg]
		for name, src := range map[string]any{alg.String() + ".lua": s.one, alg.String() + ".batch.lua": s.many, alg.String() + ".refund.lua": s.refund} {
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(src.(string)), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./redisstore -run TestScripts -update writes it)", err)
			}
			if string(golden) != src.(string) {
				t.Errorf("%s differs from the script composed from lua/: go test ./redisstore -run TestScripts -update rewrites it", path)
			}
		}
	}
}

// TestScripts_shaMatchesSource holds each script's SHA-1, which EVALSHA
// sends, to its source, which EVAL sends.
func TestScripts_shaMatchesSource(t *testing.T) {
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		s := scripts[alg]
		if s.oneSHA != sha1hex(s.one.(string)) || s.manySHA != sha1hex(s.many.(string)) || s.refundSHA != sha1hex(s.refund.(string)) {
			t.Errorf("%v: SHA-1 does not match the source", alg)
		}
	}
}

func TestCompose_fillsNestedSlots(t *testing.T) {
	got, used := compose("a\n  --{{x}}\nb\n", map[string]string{"x": "x1\n--{{y}}\n", "y": "y1\n"})
	if want := "a\nx1\ny1\nb\n"; got != want {
		t.Errorf("compose = %q, want %q", got, want)
	}
	if !used["x"] || !used["y"] {
		t.Errorf("used = %v, want x and y", used)
	}
}

func TestCompose_panicsOnSlotWithoutPart(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "--{{check}}") {
			t.Errorf("recover() = %v, want a panic naming the slot", r)
		}
	}()
	compose("--{{check}}\n", map[string]string{})
}

func TestCompose_panicsOnMarkerLeftInLine(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a marker that is not alone on its line was left in silently")
		}
	}()
	compose("x = 1 --{{check}}\n", map[string]string{"check": ""})
}

// TestScripts_32bitFormatsAsThe64bitPath runs every algorithm's script both
// as composed and with its 32-bit fallback forced (%.0f in place of %d, as
// a Redis whose C long is 32 bits wide gets), on the same clocked sequence of
// charges, refusals and peeks, and requires the same replies and the same
// stored state, so that the fallback a 64-bit test server never takes is
// exact too.
func TestScripts_32bitFormatsAsThe64bitPath(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	const check = "struct.size('l') < 8"
	// On this (64-bit) server the check is false, so the scripts as composed
	// take the %d path, and the forced copies below the other.
	if w, err := c.Eval(ctx, "return struct.size('l')", nil).Int64(); err != nil || w != 8 {
		t.Fatalf("struct.size('l') = %d, %v on the test server; want 8", w, err)
	}
	for _, alg := range []core.Algorithm{core.TokenBucket, core.FixedWindow, core.SlidingWindowCounter, core.SlidingWindowLog, core.LeakyBucket} {
		src := scripts[alg].one.(string)
		if !strings.Contains(src, check) {
			t.Fatalf("%v: the script has no %q to force", alg, check)
		}
		fallback := strings.Replace(src, check, "true", 1)
		state := func(key string) string {
			v, err := c.Eval(ctx, `if redis.call('TYPE', KEYS[1]).ok == 'list' then return table.concat(redis.call('LRANGE', KEYS[1], 0, -1), ' ') end return redis.call('GET', KEYS[1])`, []string{key}).Result()
			if err != nil && err != redis.Nil {
				t.Fatalf("%v: reading %s: %v", alg, key, err)
			}
			s, _ := v.(string)
			return s
		}
		now := int64(1_796_150_000_123_457) // µs, with digits in every place
		for i := range 40 {
			now += int64(i%7) * 1_234_567
			mode, cost := 0.0, 1.0
			if i%5 == 4 {
				mode = 1
			}
			if i%3 == 0 {
				cost = 2
			}
			args := []any{packArgs(float64(now), cost, 0, mode, 5, 60000000, 5)}
			keys := func(p string) []string { return []string{p + ":" + alg.String()} }
			want, err := replies(c.Eval(ctx, src, keys("64"), args...))
			if err != nil {
				t.Fatalf("%v call %d: %v", alg, i, err)
			}
			got, err := replies(c.Eval(ctx, fallback, keys("32"), args...))
			if err != nil {
				t.Fatalf("%v call %d, 32-bit fallback: %v", alg, i, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%v call %d: 32-bit fallback replies %v, the script %v", alg, i, got, want)
			}
			if g, w := state(keys("32")[0]), state(keys("64")[0]); g != w || w == "" {
				t.Fatalf("%v call %d: 32-bit fallback stores %q, the script %q", alg, i, g, w)
			}
		}
	}
}

// TestScripts_batchDecidesEachRuleAsAlone runs, for every algorithm, batches
// whose decisions change the first limit's count, window or burst one at a
// time, and rules of two limits among them, and requires each decision's
// reply to be the one the single-decision script gives on a copy of its
// key: the batch must find each decision's numbers where it packed them.
func TestScripts_batchDecidesEachRuleAsAlone(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	// Each limit: count, window in µs, burst.
	rules := [][][3]float64{
		{{5, 60000000, 5}},
		{{5, 3600000000, 5}}, // the same count, another window
		{{5, 3600000000, 2}}, // the same count and window, another burst
		{{7, 3600000000, 2}}, // another count
		{{5, 60000000, 5}, {7, 3600000000, 7}},
		{{7, 60000000, 7}, {5, 60000000, 5}},
		{{5, 60000000, 5}},
	}
	for _, alg := range []core.Algorithm{core.TokenBucket, core.FixedWindow, core.SlidingWindowCounter, core.SlidingWindowLog, core.LeakyBucket} {
		now := int64(1_796_150_000_000_000)
		for round := range 12 {
			now += int64(round%4) * 2_345_678
			var keys []string
			var args string
			var want [][]int64
			for d, rule := range rules {
				var dkeys []string
				nums := []float64{float64(now), 1, 0, 0}
				for l, lim := range rule {
					dkeys = append(dkeys, fmt.Sprintf("%v:%d:%d", alg, d, l))
					nums = append(nums, lim[:]...)
				}
				dargs := packArgs(nums...)
				// The same decision alone, on copies of the keys.
				var alone []string
				for _, k := range dkeys {
					alone = append(alone, "alone:"+k)
				}
				w, err := replies(c.Eval(ctx, scripts[alg].one.(string), alone, dargs))
				if err != nil {
					t.Fatalf("%v round %d decision %d alone: %v", alg, round, d, err)
				}
				want = append(want, w)
				keys = append(keys, dkeys...)
				args += packArgs(float64(len(rule))) + dargs
			}
			got, err := replies(c.Eval(ctx, scripts[alg].many.(string), keys, args))
			if err != nil {
				t.Fatalf("%v round %d: %v", alg, round, err)
			}
			if len(got) != replyLen*len(rules) {
				t.Fatalf("%v round %d: batch replies %v", alg, round, got)
			}
			for d := range rules {
				if g := got[d*replyLen : (d+1)*replyLen]; !reflect.DeepEqual(g, want[d]) {
					t.Fatalf("%v round %d decision %d (%v): batched %v, alone %v", alg, round, d, rules[d], g, want[d])
				}
			}
		}
	}
}

// TestWindows_repairAShortenedTTL cuts the TTL of a window's key short, as
// a replica or a Cluster migration resolving it on a clock behind would,
// and charges again on Redis's clock: the charge must give the key the TTL
// its window needs again (the counter's: to the next window's end), so
// that its state does not vanish mid-window and admit a fresh count.
func TestWindows_repairAShortenedTTL(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	const count, window = 100, 3_600_000_000 // µs
	redisMicros := func() int64 {
		tm, err := c.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter} {
		key := fmt.Sprintf("repair:%v", alg)
		for n := 1; n <= 3; n++ {
			r, err := replies(c.Eval(ctx, scripts[alg].one.(string), []string{key}, packArgs(math.NaN(), 1, 0, 0, count, window, count)))
			if err != nil || len(r) != replyLen || r[0]&1 != 1 || r[1] != int64(count-n) {
				t.Fatalf("%v charge %d: %v %v; want admitted with %d left", alg, n, r, err, count-n)
			}
			end := r[4] - r[4]%window + window
			if alg == core.SlidingWindowCounter {
				end += window
			}
			pttl, err := c.PTTL(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			// At least to the end from Redis's time after the PTTL was
			// read (less a millisecond of rounding), however slowly this
			// test runs; and no further than from the charge's own time.
			least := time.Duration(end-redisMicros())*time.Microsecond - time.Millisecond
			most := time.Duration(end-r[4])*time.Microsecond + time.Millisecond
			if pttl < least || pttl > most {
				t.Fatalf("%v charge %d: PTTL %v; want %v to %v, to the window's end", alg, n, pttl, least, most)
			}
			// Cut short before the next charge.
			if err := c.PExpire(ctx, key, 500*time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestWindows_startAsCoreBefore1970 decides on windows at times before 1970
// (negative µs, not on a boundary), where Lua's % floors and Go's
// truncates: the stores must still agree on every decision, the count and
// when the window resets.
func TestWindows_startAsCoreBefore1970(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	at := time.UnixMicro(-1_234_567_891)
	clock := func() time.Time { return at }
	st := New(c, WithClock(clock), WithTimeout(testTimeout), WithPrefix("1969:"))
	defer st.Close()
	mem := core.NewMemoryStore(core.MemoryClock(clock))
	defer mem.Close()
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter} {
		rule := core.Rule{Limits: []core.Limit{core.Per(3, time.Minute)}, Algorithm: alg}
		for i := range 12 {
			at = at.Add(time.Duration(i%4) * 7 * time.Second)
			want, err := mem.Take(ctx, "k", rule, 1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Take(ctx, "k", rule, 1)
			if err != nil || got != want {
				t.Fatalf("%v at %v (µs %d), take %d: Redis %+v, %v; memory %+v", alg, at.UTC(), at.UnixMicro(), i, got, err, want)
			}
		}
		// A charge within a window of 1970 (-30s) refunded a second later:
		// a refund compares the charge's window start with the state's,
		// where truncating and flooring differ.
		at = time.UnixMicro(-30_000_000)
		key := "r:" + alg.String()
		_, mc, err := mem.Reserve(ctx, key, rule, 2)
		if err != nil {
			t.Fatal(err)
		}
		_, rc, err := st.Reserve(ctx, key, rule, 2)
		if err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Second)
		if err := mem.Refund(ctx, key, rule, mc, 1); err != nil {
			t.Fatal(err)
		}
		if err := st.Refund(ctx, key, rule, rc, 1); err != nil {
			t.Fatal(err)
		}
		want, _ := mem.Peek(ctx, key, rule, 1)
		if got, err := st.Peek(ctx, key, rule, 1); err != nil || got != want {
			t.Fatalf("%v after a refund before 1970: Redis %+v, %v; memory %+v", alg, got, err, want)
		}
	}
}

// replies reads the packed replies of a decision script's call, five
// numbers per decision, as the store does (see request.unpackReply).
func replies(cmd *redis.Cmd) ([]int64, error) {
	s, err := cmd.Text()
	if err != nil {
		return nil, err
	}
	if len(s)%(8*replyLen) != 0 {
		return nil, fmt.Errorf("reply %q is no whole number of decisions", s)
	}
	var all []int64
	for i := 0; i < len(s); i += 8 * replyLen {
		v, err := new(request).unpackReply(s[i : i+8*replyLen])
		if err != nil {
			return nil, err
		}
		all = append(all, v...)
	}
	return all, nil
}

// packArgs packs nums as the scripts read their argument (see
// request.pack): NaN as the time reads Redis's TIME.
func packArgs(nums ...float64) string {
	var b []byte
	for _, v := range nums {
		b = appendDouble(b, v)
	}
	return string(b)
}

// TestScripts_documentedLinesRun runs the redis-cli lines that lua/one.lua,
// lua/batch.lua and doc.go give as examples, as written (from the
// repository's root, against the test server), and requires the replies
// they describe: each decision of cost 1 against 5 per minute admitted
// with 4 left.
func TestScripts_documentedLinesRun(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-cli is not installed (apt-get install -y redis-tools): %v", err)
		}
		t.Skipf("redis-cli is not installed: %v", err)
	}
	c := redistest.Server(t)
	host, port, err := net.SplitHostPort(c.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	for file, decisions := range map[string]int{"lua/one.lua": 1, "lua/batch.lua": 2, "doc.go": 1} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(src), "\n") {
			l = strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(l, "--"), "//"), " \t")
			if strings.HasPrefix(l, "redis-cli ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("%s: %d redis-cli lines; want 1", file, len(lines))
		}
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		line := cli + " -h " + host + " -p " + port + strings.TrimPrefix(lines[0], "redis-cli")
		cmd := exec.Command("bash", "-c", line)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %s: %v\n%s", file, lines[0], err, out)
		}
		got := strings.Fields(string(out))
		if len(got) != replyLen*decisions {
			t.Fatalf("%s: %s replies %q; want %d decisions", file, lines[0], got, decisions)
		}
		for d := range decisions {
			if r := got[d*replyLen:]; r[0] != "1" || r[1] != "4" || r[2] != "12000000" {
				t.Errorf("%s: decision %d replies %q; want admitted (1) with 4 left, full again in 12s", file, d, r[:replyLen])
			}
		}
	}
}

// TestUnpackReply_refusesWhatNoScriptSends: a reply of another length, or
// with a number that is no integer or beyond int64, is an error that quotes
// it, never a decision; a time beyond 2^53 µs, which a driven clock can
// give, is read.
func TestUnpackReply_refusesWhatNoScriptSends(t *testing.T) {
	good := packArgs(5, 4, 12000000, 0, 1796150000123457)
	if v, err := new(request).unpackReply(good); err != nil || !reflect.DeepEqual(v, []int64{5, 4, 12000000, 0, 1796150000123457}) {
		t.Fatalf("unpackReply(good) = %v, %v", v, err)
	}
	if v, err := new(request).unpackReply(packArgs(1, 4, 0, 0, 1<<60)); err != nil || v[4] != 1<<60 {
		t.Fatalf("unpackReply(a time of 2^60 µs) = %v, %v", v, err)
	}
	for name, reply := range map[string]string{
		"short":        good[:39],
		"long":         good + "x",
		"empty":        "",
		"fraction":     packArgs(1, 4.5, 0, 0, 0),
		"NaN":          packArgs(1, math.NaN(), 0, 0, 0),
		"beyond int64": packArgs(1, 1<<63, 0, 0, 0),
		"infinite":     packArgs(1, 0, math.Inf(-1), 0, 0),
	} {
		if v, err := new(request).unpackReply(reply); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", reply)) {
			t.Errorf("%s: unpackReply = %v, %v; want an error quoting the reply", name, v, err)
		}
	}
}

// TestStore_decidesAtADrivenTimeBeyond2pow53: a driven clock in 2260, past
// 2^53 µs, still gets decisions (the script's reply carries that time).
func TestStore_decidesAtADrivenTimeBeyond2pow53(t *testing.T) {
	c := redistest.Server(t)
	at := time.Date(2260, 1, 1, 0, 0, 0, 0, time.UTC)
	if at.UnixMicro() <= 1<<53 {
		t.Fatalf("%v is %d µs, not beyond 2^53", at, at.UnixMicro())
	}
	st := New(c, WithClock(func() time.Time { return at }), WithTimeout(testTimeout), WithPrefix("2260:"))
	defer st.Close()
	rule := core.Rule{Limits: []core.Limit{core.Per(5, time.Minute)}, Algorithm: core.TokenBucket}
	for want := int64(4); want >= 3; want-- {
		d, err := st.Take(context.Background(), "k", rule, 1)
		if err != nil || !d.Allowed || d.Remaining != want {
			t.Fatalf("take at %v: %+v, %v; want admitted with %d left", at, d, err, want)
		}
	}
}

// TestTake_allocationsPerDecision pins what one admitted decision on a
// real Redis allocates through a client that keeps to contexts, unbatched
// and coalesced (the default): idle, coalescing sends the caller's own
// decision as the unbatched call does, so it may allocate no more. Reading
// the packed reply allocates nothing: the request's arrays hold the
// arguments and the reply. A rise means a new allocation on the hot path;
// see BenchmarkRedis.
func TestTake_allocationsPerDecision(t *testing.T) {
	const most = 12 // measured with go-redis v9.23.0
	c := redis.NewClient(&redis.Options{Addr: redistest.Server(t).Options().Addr, ContextTimeoutEnabled: true})
	defer c.Close()
	rule := core.Rule{Limits: []core.Limit{core.Per(1_000_000, time.Hour)}, Algorithm: core.TokenBucket}
	// A request's context usually has a deadline (core's store timeout);
	// without one the store sets its own.
	timed, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), timed} {
		_, hasDeadline := ctx.Deadline()
		allocs := map[string]float64{}
		for name, opts := range map[string][]Option{"unbatched": {WithoutBatching()}, "coalesced": nil} {
			st := New(c, append(opts, WithPrefix("allocs:"+name+":"))...)
			if _, err := st.Take(ctx, "k", rule, 1); err != nil {
				t.Fatal(err)
			}
			var failed error
			allocs[name] = testing.AllocsPerRun(300, func() {
				if d, err := st.Take(ctx, "k", rule, 1); err != nil || !d.Allowed {
					failed = fmt.Errorf("%+v, %v", d, err)
				}
			})
			st.Close()
			if failed != nil {
				t.Fatalf("%s: %v", name, failed)
			}
			if allocs[name] > most {
				t.Errorf("%s, deadline %v: %v allocations per decision; want at most %d", name, hasDeadline, allocs[name], most)
			}
		}
		if allocs["coalesced"] > allocs["unbatched"] {
			t.Errorf("idle, deadline %v: coalescing allocates %v times per decision, more than unbatched's %v", hasDeadline, allocs["coalesced"], allocs["unbatched"])
		}
		t.Logf("deadline %v: %v", hasDeadline, allocs)
	}
	r, reply := new(request), packArgs(1, 4, 0, 0, 1796150000123457)
	if n := testing.AllocsPerRun(100, func() { _, _ = r.unpackReply(reply) }); n != 0 {
		t.Errorf("unpackReply allocates %v times; want none", n)
	}
}
