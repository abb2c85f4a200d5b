package redisstore

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestReview_luaStepEqualsGo runs the bucket script's step computation (the
// three lines of lua/bucket.lua that compute it) in Redis for many counts and windows,
// exact and inexact divisions, up to 2^52 and 2^50, and compares it with
// core's ceiling division. It passes: kept as a regression test.
func TestReview_luaStepEqualsGo(t *testing.T) {
	c := newRedisForStep(t)
	// The three lines of the check that compute the step, as lua/bucket.lua
	// has them.
	var lines []string
	for _, l := range strings.Split(luaFile("bucket.lua"), "\n") {
		if strings.Contains(l, "step") && !strings.HasPrefix(strings.TrimSpace(l), "--") && len(lines) < 3 {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[0], "local step") {
		t.Fatalf("the step lines of lua/bucket.lua are not where this test looks: %q", lines)
	}
	src := "local floor = math.floor\nlocal out = {}\nfor j = 1, #ARGV, 2 do\nlocal count, window = tonumber(ARGV[j]), tonumber(ARGV[j+1])\n" +
		strings.Join(lines, "\n") + "\nout[#out+1] = string.format('%.0f', step)\nend\nreturn out"
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var args []any
		var want []int64
		for range 500 {
			var cnt, w int64
			switch r.IntN(4) {
			case 0:
				cnt, w = r.Int64N(1<<52)+1, r.Int64N(1<<50)+1
			case 1:
				w = r.Int64N(1<<50) + 1
				cnt = r.Int64N(w) + 1
			case 2:
				cnt = r.Int64N(1<<20) + 1
				w = cnt*(r.Int64N(1<<30)+1) + r.Int64N(3) - 1
			default:
				cnt, w = r.Int64N(1000)+1, r.Int64N(1000000)+1
			}
			if w < 1 {
				w = 1
			}
			args = append(args, strconv.FormatInt(cnt, 10), strconv.FormatInt(w, 10))
			want = append(want, (w+cnt-1)/cnt)
		}
		got, err := c.Eval(context.Background(), src, nil, args...).StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			if g != strconv.FormatInt(want[i], 10) {
				t.Fatalf("round %d: count %v window %v: Lua step %s, Go %d", round, args[2*i], args[2*i+1], g, want[i])
			}
		}
	}
}

func newRedisForStep(t *testing.T) interface {
	Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd
} {
	return redistest.Server(t)
}
