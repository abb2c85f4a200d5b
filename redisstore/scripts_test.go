package redisstore

import (
	"context"
	"flag"
	"fmt"
	"os"
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
			mode, cost := "0", "1"
			if i%5 == 4 {
				mode = "1"
			}
			if i%3 == 0 {
				cost = "2"
			}
			args := []any{now, cost, "0", mode, "5", "60000000", "5"}
			keys := func(p string) []string { return []string{p + ":" + alg.String()} }
			want, err := c.Eval(ctx, src, keys("64"), args...).Int64Slice()
			if err != nil {
				t.Fatalf("%v call %d: %v", alg, i, err)
			}
			got, err := c.Eval(ctx, fallback, keys("32"), args...).Int64Slice()
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
// time (the batch script keeps the last one's numbers by their strings, see
// lua/batch.lua), and rules of two limits among them, and requires each
// decision's reply to be the one the single-decision script gives on a copy
// of its key.
func TestScripts_batchDecidesEachRuleAsAlone(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	// Each limit: count, window in µs, burst.
	rules := [][][3]string{
		{{"5", "60000000", "5"}},
		{{"5", "3600000000", "5"}}, // the same count, another window
		{{"5", "3600000000", "2"}}, // the same count and window, another burst
		{{"7", "3600000000", "2"}}, // another count
		{{"5", "60000000", "5"}, {"7", "3600000000", "7"}},
		{{"7", "60000000", "7"}, {"5", "60000000", "5"}},
		{{"5", "60000000", "5"}},
	}
	for _, alg := range []core.Algorithm{core.TokenBucket, core.FixedWindow, core.SlidingWindowCounter, core.SlidingWindowLog, core.LeakyBucket} {
		now := int64(1_796_150_000_000_000)
		for round := range 12 {
			now += int64(round%4) * 2_345_678
			var keys []string
			var args []any
			var want [][]int64
			for d, rule := range rules {
				var dkeys []string
				dargs := []any{now, "1", "0", "0"}
				for l, lim := range rule {
					dkeys = append(dkeys, fmt.Sprintf("%v:%d:%d", alg, d, l))
					dargs = append(dargs, lim[0], lim[1], lim[2])
				}
				// The same decision alone, on copies of the keys.
				var alone []string
				for _, k := range dkeys {
					alone = append(alone, "alone:"+k)
				}
				w, err := c.Eval(ctx, scripts[alg].one.(string), alone, dargs...).Int64Slice()
				if err != nil {
					t.Fatalf("%v round %d decision %d alone: %v", alg, round, d, err)
				}
				want = append(want, w)
				keys = append(keys, dkeys...)
				args = append(append(args, len(rule)), dargs...)
			}
			got, err := c.Eval(ctx, scripts[alg].many.(string), keys, args...).Int64Slice()
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

// TestWindows_keepTheirTTLOnRedisClock charges a fixed window and a sliding
// counter on Redis's clock (no WithClock), where a charge in the window the
// key was written in keeps its TTL (SET KEEPTTL) instead of setting it
// again, and checks that every charge counts and that the key lives until
// its window (the counter: the next window) ends, by Redis's TIME; then
// the same with KEEPTTL refused, as Redis before 6.0 refuses it, where the
// script must fall back to setting the TTL.
func TestWindows_keepTheirTTLOnRedisClock(t *testing.T) {
	c := redistest.Server(t)
	ctx := context.Background()
	const count, window = 100, 3_600_000_000 // µs
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter} {
		for _, refused := range []bool{false, true} {
			src := scripts[alg].one.(string)
			if !strings.Contains(src, "'KEEPTTL'") {
				t.Fatalf("%v: the script does not use KEEPTTL", alg)
			}
			if refused {
				src = strings.ReplaceAll(src, "'KEEPTTL'", "'KEEPTTL-UNKNOWN'") // a syntax error, as on Redis 5
			}
			key := fmt.Sprintf("keep:%v:%v", alg, refused)
			for n := 1; n <= 4; n++ {
				r, err := c.Eval(ctx, src, []string{key}, "", "1", "0", "0", count, window, count).Int64Slice()
				if err != nil || len(r) != replyLen || r[0]&1 != 1 || r[1] != int64(count-n) {
					t.Fatalf("%v (KEEPTTL refused %v) charge %d: %v %v; want admitted with %d left", alg, refused, n, r, err, count-n)
				}
				now := r[4] // Redis's TIME, µs
				end := now - now%window + window
				if alg == core.SlidingWindowCounter {
					end += window
				}
				pttl, err := c.PTTL(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				// The TTL reaches the end (to the ms, rounded up when set),
				// and no further than the first charge set it.
				if want := time.Duration(end-now) * time.Microsecond; pttl < want-2*time.Millisecond || pttl > want+time.Second {
					t.Fatalf("%v (KEEPTTL refused %v) charge %d: PTTL %v; want the %v to the window's end", alg, refused, n, pttl, want)
				}
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
	}
}
